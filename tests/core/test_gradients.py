"""Backpropagation against the finite-difference oracle."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from bpexp.core import HIDDEN_ACTIVATIONS, INITIALISERS, MLP, activations, check_gradients
from bpexp.core.activations import DERIVATIVES, softmax_lse
from bpexp.core.losses import get_loss

# (output activation, loss, number of output units)
PAIRS = [
    ("sigmoid", "mse", 2),
    ("sigmoid", "bce", 2),
    ("softmax", "mse", 3),
    ("softmax", "cross_entropy", 3),
    ("identity", "mse", 2),
]


def _data(loss: str, n_out: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((6, 3))
    if loss == "cross_entropy":
        Y = np.eye(n_out)[rng.integers(0, n_out, 6)]
    elif loss == "bce":
        Y = rng.random((6, n_out))  # soft targets in (0, 1): the general case
    else:
        Y = rng.standard_normal((6, n_out))
    return X, Y


@pytest.mark.parametrize(
    "activation,pair,init", list(itertools.product(HIDDEN_ACTIVATIONS, PAIRS, INITIALISERS))
)
def test_backprop_matches_finite_differences(activation, pair, init):
    output, loss, n_out = pair
    X, Y = _data(loss, n_out)
    net = MLP([3, 5, 4, n_out], activation=activation, output=output, init=init, seed=3)
    check = check_gradients(net, X, Y, loss)
    assert set(check.errors) == {"W0", "W1", "W2", "b0", "b1", "b2"}
    assert check.max_error < 1e-6, check.errors


@pytest.mark.parametrize("output,loss,n_out", PAIRS)
def test_backprop_without_biases(output, loss, n_out):
    X, Y = _data(loss, n_out, seed=1)
    net = MLP([3, 4, n_out], activation="tanh", output=output, bias=False, seed=1)
    check = check_gradients(net, X, Y, loss)
    assert set(check.errors) == {"W0", "W1"}
    assert check.max_error < 1e-6, check.errors


def test_float32_gradients_agree_with_float64():
    X, Y = _data("cross_entropy", 3, seed=2)
    net32 = MLP([3, 6, 3], activation="relu", output="softmax", dtype="float32", seed=2)
    loss32, gw32, gb32 = net32.loss_and_gradients(X, Y, "cross_entropy")
    loss64, gw64, gb64 = net32.astype("float64").loss_and_gradients(X, Y, "cross_entropy")
    assert all(g.dtype == np.float32 for g in gw32 + gb32)
    assert loss32 == pytest.approx(loss64, rel=1e-5)
    for a, b in zip(gw32 + gb32, gw64 + gb64, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    # and the float32 network passes the oracle (which runs on a float64 copy)
    assert check_gradients(net32, X, Y, "cross_entropy").max_error < 1e-6


def test_oracle_catches_the_tutorials_sigmoid_mistake(monkeypatch):
    """A derivative written from z instead of a = sigmoid(z) must fail the check."""

    def wrong(A, delta, scratch=None):
        Z = np.log(A / (1 - A))  # recover z, then make the tutorial's mistake
        delta *= Z * (1 - Z)

    X, Y = _data("mse", 2)
    net = MLP([3, 4, 2], activation="sigmoid", output="sigmoid", seed=0)
    assert check_gradients(net, X, Y, "mse").max_error < 1e-6
    # every network built from now on (the checker's float64 copy too) gets it
    monkeypatch.setattr(activations, "sigmoid_derivative", wrong)
    assert check_gradients(net, X, Y, "mse").max_error > 1e-2


def test_max_entries_samples_large_arrays():
    rng = np.random.default_rng(0)
    X, Y = rng.random((5, 40)), np.eye(10)[rng.integers(0, 10, 5)]
    net = MLP([40, 30, 10], activation="relu", output="softmax", init="he_normal")
    check = check_gradients(net, X, Y, "cross_entropy", max_entries=25)
    assert check.analytic["W0"].shape == (25,)
    assert check.max_error < 1e-6


def test_derivative_table_covers_every_hidden_activation():
    assert set(DERIVATIVES) == set(HIDDEN_ACTIVATIONS)


@pytest.mark.parametrize("rows", [5, 3000])  # both ways of taking row maxima
def test_loss_values_match_their_definitions_for_saturated_and_tall_outputs(rows):
    """The losses as the docstrings define them, checked with plain NumPy (float64),
    including the cross-entropy from the softmax's own log-sum-exp."""
    rng = np.random.default_rng(4)
    Z = rng.normal(0, 30, (rows, 7))  # many probabilities underflow to 0
    Y = np.eye(7)[rng.integers(0, 7, rows)]
    A = np.empty_like(Z)
    lse = softmax_lse(Z, A)
    exact = np.log(np.exp(Z - Z.max(1, keepdims=True)).sum(1)) + Z.max(1)  # logsumexp
    np.testing.assert_allclose(lse[:, 0], exact, rtol=1e-13)
    np.testing.assert_allclose(A.sum(1), 1.0, rtol=1e-12)
    expected = np.mean(exact - (Y * Z).sum(1))  # -mean(log softmax(z)[label])
    ce = get_loss("cross_entropy", "softmax")
    assert ce.value(Z, A, Y) == pytest.approx(expected, rel=1e-12)
    assert ce.value(Z, A, Y, lse) == pytest.approx(expected, rel=1e-12)
    z = Z[:, :1] / 10  # bce from its definition needs log(s) and log(1 - s) finite
    s_ = 1 / (1 + np.exp(-z))
    y = Y[:, :1]
    bce = -np.mean(y * np.log(s_) + (1 - y) * np.log1p(-s_))
    assert get_loss("bce", "sigmoid").value(z, s_, y) == pytest.approx(bce, rel=1e-9)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_relu_keeps_nan_so_divergence_is_seen(dtype):
    Z = np.array([[-2.0, -0.0, 0.0, 3.5], [np.nan, 1e-30, -1e30, np.inf]], dtype=dtype)
    expected = np.array([[0, 0, 0, 3.5], [np.nan, 1e-30, 0, np.inf]], dtype=dtype)
    np.testing.assert_array_equal(activations.relu(Z), expected)
    assert activations.relu(Z).dtype == np.dtype(dtype)


def test_loss_of_a_softmax_network_is_the_cross_entropy_of_its_definition():
    rng = np.random.default_rng(2)
    X, Y = rng.normal(0, 5, (40, 6)), np.eye(4)[rng.integers(0, 4, 40)]
    net = MLP([6, 8, 4], activation="relu", output="softmax", init="normal", seed=3)
    Z = np.maximum(X @ net.weights[0] + net.biases[0], 0) @ net.weights[1] + net.biases[1]
    logp = Z - Z.max(1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(1, keepdims=True))
    assert net.loss(X, Y, "cross_entropy") == pytest.approx(-np.mean((Y * logp).sum(1)), rel=1e-12)


@pytest.mark.parametrize("activation", HIDDEN_ACTIVATIONS)
def test_forward_matches_the_formula(activation):
    """Every layer is g(a @ W + b), row by row; forward keeps each z and a."""
    rng = np.random.default_rng(5)
    n = 37
    X = rng.normal(size=(n, 6))
    net = MLP([6, 9, 8, 3], activation=activation, output="identity", init="normal", seed=1)
    for b in net.biases:
        b[...] = rng.normal(size=b.shape)
    g = {
        "sigmoid": lambda z: 1 / (1 + np.exp(-z)),
        "tanh": np.tanh,
        "relu": lambda z: np.maximum(z, 0),
        "leaky_relu": lambda z: np.where(z > 0, z, 0.01 * z),
        "identity": lambda z: z,
    }[activation]
    zs, activations = net.forward(X)
    assert len(zs) == 3 and len(activations) == 4 and activations[0] is X
    a = X
    for l, (W, b) in enumerate(zip(net.weights, net.biases, strict=True)):
        z = a @ W + b
        a = z if l == 2 else g(z)
        np.testing.assert_allclose(zs[l], z, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(activations[l + 1], a, rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(net.feedforward(X), activations[-1])
