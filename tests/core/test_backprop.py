"""The readable core: forward, backward and one step, as a reader follows them."""

from __future__ import annotations

import itertools
import warnings
from decimal import Decimal, getcontext

import numpy as np
import pytest

from bpexp.core import (
    HIDDEN_ACTIVATIONS,
    INITIALISERS,
    MLP,
    check_gradients,
    fit,
    update_mini_batch,
)
from bpexp.core.activations import sigmoid
from bpexp.core.losses import get_loss
from bpexp.core.optim import make_update
from tests.conftest import XOR_X, XOR_Y
from tests.core.test_errors import one_line_error
from tests.core.test_gradients import PAIRS, _data


def _mazur_net() -> MLP:
    """Matt Mazur's "A Step by Step Backpropagation Example" (2015): a 2-2-2 sigmoid
    network. His w1..w4 map the inputs to the hidden units (w1: i1 -> h1, w2: i2 -> h1,
    w3: i1 -> h2, w4: i2 -> h2), w5..w8 the hidden units to the outputs in the same
    pattern; our W[i, j] maps unit i to unit j."""
    net = MLP([2, 2, 2], activation="sigmoid", output="sigmoid")
    net.weights[0][...] = [[0.15, 0.25], [0.20, 0.30]]
    net.weights[1][...] = [[0.40, 0.50], [0.45, 0.55]]
    net.biases[0][...] = 0.35
    net.biases[1][...] = 0.60
    return net


def test_one_step_reproduces_a_published_worked_example():
    """His total error is sum 1/2 (target - out)^2 over the outputs, our mse for one
    sample; lr 0.5. Published values are given to 9 significant digits."""
    net = _mazur_net()
    X, Y = np.array([[0.05, 0.10]]), np.array([[0.01, 0.99]])
    zs, activations = net.forward(X)
    np.testing.assert_allclose(activations[1], [[0.593269992, 0.596884378]], rtol=1e-8)
    np.testing.assert_allclose(activations[2], [[0.75136507, 0.772928465]], rtol=1e-8)
    loss = get_loss("mse", "sigmoid")
    assert loss.value(zs[-1], activations[-1], Y) == pytest.approx(0.298371109, rel=1e-8)

    update_mini_batch(net, X, Y, loss, make_update("plain", net.weights + net.biases), lr=0.5)
    w1, w2, w3, w4 = 0.149780716, 0.19956143, 0.24975114, 0.29950229
    w5, w6, w7, w8 = 0.35891648, 0.408666186, 0.511301270, 0.561370121
    np.testing.assert_allclose(net.weights[0], [[w1, w3], [w2, w4]], rtol=5e-8)
    np.testing.assert_allclose(net.weights[1], [[w5, w7], [w6, w8]], rtol=5e-8)


def test_update_mini_batch_is_forward_backward_then_w_minus_lr_g():
    net = MLP([3, 5, 2], activation="tanh", output="softmax", bias_init="normal", seed=4)
    X, Y = _data("cross_entropy", 2, seed=4)
    before = [p.copy() for p in net.weights + net.biases]
    _, activations = net.forward(X)
    nabla_w, nabla_b = net.backward(activations, Y, "cross_entropy")
    loss = get_loss("cross_entropy", "softmax")
    _, grads = update_mini_batch(
        net, X, Y, loss, make_update("plain", net.weights + net.biases), lr=0.3
    )
    for g, expected in zip(grads, nabla_w + nabla_b, strict=True):
        np.testing.assert_array_equal(g, expected)
    for p, p0, g in zip(net.weights + net.biases, before, grads, strict=True):
        np.testing.assert_array_equal(p, p0 - 0.3 * g)


@pytest.mark.parametrize("m", [1, 2, 7])  # one sample is the outer-product path
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_backward_shapes_dtypes_and_the_sum_over_samples(m, bias, dtype):
    """nabla_w[i] has the shape of weights[i]; for a batch it is the sum over the
    samples of each one's gradient divided by m, the gradient of the mean loss."""
    sizes = [4, 6, 5, 3]
    net = MLP(sizes, activation="relu", output="identity", bias=bias, seed=1, dtype=dtype)
    rng = np.random.default_rng(m)
    X, Y = rng.normal(size=(m, 4)).astype(dtype), rng.normal(size=(m, 3)).astype(dtype)
    zs, activations = net.forward(X)
    assert [z.shape for z in zs] == [(m, s) for s in sizes[1:]]
    assert [a.shape for a in activations] == [(m, s) for s in sizes]
    nabla_w, nabla_b = net.backward(activations, Y, "mse")
    assert [g.shape for g in nabla_w] == [W.shape for W in net.weights]
    assert [g.shape for g in nabla_b] == [b.shape for b in net.biases]
    assert len(nabla_b) == (3 if bias else 0)
    assert all(g.dtype == np.dtype(dtype) for g in nabla_w + nabla_b)
    one_by_one = [net.backward(net.forward(X[k : k + 1])[1], Y[k : k + 1], "mse") for k in range(m)]
    for i, g in enumerate(nabla_w + nabla_b):
        parts = [gw[i] if i < 3 else gb[i - 3] for gw, gb in one_by_one]
        rtol = 1e-4 if dtype == "float32" else 1e-12
        np.testing.assert_allclose(g, sum(parts) / m, rtol=rtol, atol=rtol * 1e-2)


@pytest.mark.parametrize(
    "case,activation,pair",
    [(i, *c) for i, c in enumerate(itertools.product(HIDDEN_ACTIVATIONS, PAIRS))],
)
def test_random_networks_pass_the_gradient_check(case, activation, pair):
    """Random depths, widths (1 included), initialisations and biases (N(0, 1)),
    every hidden activation x output x loss.  Through a width-1 leaky ReLU layer a
    gradient can be ~1e-6 while the finite differences carry ~1e-11 of rounding,
    hence 1e-5; a wrong derivative gives errors above 1e-2."""
    output, loss, n_out = pair
    rng = np.random.default_rng(case)
    for _ in range(3):
        sizes = [3, *rng.integers(1, 7, size=rng.integers(1, 4)).tolist(), n_out]
        init = rng.choice(list(INITIALISERS))
        net = MLP(sizes, activation, output, init=init, bias_init="normal", rng=rng)
        X, Y = _data(loss, n_out, seed=int(rng.integers(1000)))
        check = check_gradients(net, X, Y, loss)
        assert check.max_error < 1e-5, (sizes, init, check.errors)


def test_sigmoid_is_accurate_in_relative_terms():
    """Against 50-digit decimal arithmetic, in float64 and float32, without warnings."""
    getcontext().prec = 50
    zs = [-700.0, -40.0, -25.0, 0.0, 30.0]

    def exact(z: float) -> float:
        e = Decimal(-abs(z)).exp()  # exp(-|z|): no overflow in the reference either
        return float((e if z < 0 else Decimal(1)) / (1 + e))

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out64 = sigmoid(np.array([zs]))
        out32 = sigmoid(np.array([zs], dtype=np.float32))
        extremes = sigmoid(np.array([[-1e300, -np.inf, np.inf, 1e300, np.nan]]))
    for z, got in zip(zs, out64[0], strict=True):
        assert got == pytest.approx(exact(z), rel=4e-16, abs=0), z
    assert out32.dtype == np.float32
    assert out32[0, 0] == 0.0  # 1e-304 is below float32's smallest number
    for z, got in zip(zs[1:], out32[0, 1:], strict=True):
        assert got == pytest.approx(exact(z), rel=2e-7, abs=0), z
    np.testing.assert_array_equal(extremes, [[0.0, 0.0, 1.0, 1.0, np.nan]])


def test_activations_and_deltas_allocate_when_given_no_buffer():
    """The readable calls, g(z) and delta(a, y), agree with the in-place ones."""
    net = MLP([2, 3, 2], activation="leaky_relu", output="softmax")
    Z = np.random.default_rng(0).normal(size=(5, 3))
    for name, g in net._activations.items():
        out = np.empty_like(Z)
        assert np.array_equal(g(Z), g(Z, out)) and g(Z, out) is out, name
    for name, g_prime in net._derivatives.items():
        a, d = net._activations[name](Z), np.ones_like(Z)
        expected = g_prime(a, d.copy(), np.empty_like(Z))
        np.testing.assert_array_equal(g_prime(a, d.copy()), expected, err_msg=name)
    Y = np.eye(3)[[0, 1, 2, 0, 1]]
    for loss, output in [("mse", "sigmoid"), ("mse", "softmax"), ("cross_entropy", "softmax")]:
        fn, A = get_loss(loss, output).delta(output), net._activations[output](Z)
        np.testing.assert_array_equal(fn(A, Y), fn(A, Y, np.empty_like(A), np.empty_like(A)))


def test_bias_init_zeros_by_default_and_normal_after_the_weights():
    a = MLP([3, 200, 50], init="he_normal", seed=9)
    b = MLP([3, 200, 50], init="he_normal", seed=9, bias_init="normal")
    assert a.bias_init == "zeros" and all(not bias.any() for bias in a.biases)
    for Wa, Wb in zip(a.weights, b.weights, strict=True):  # weights of a seed unchanged
        np.testing.assert_array_equal(Wa, Wb)
    replay = np.random.default_rng(9)
    for W in a.weights:  # the weights' draws, then one N(0, 1) vector per layer
        replay.standard_normal(W.shape)
    for bias in b.biases:
        np.testing.assert_array_equal(bias, replay.standard_normal(bias.shape))
    draws = np.concatenate(b.biases)
    assert abs(draws.mean()) < 0.25 and 0.8 < draws.std() < 1.2  # 250 draws of N(0, 1)
    assert MLP([3, 4, 2], bias=False, bias_init="normal").biases == []


def test_bias_init_survives_save_and_load(tmp_path):
    net = MLP([2, 3, 1], bias_init="normal", seed=2)
    back = MLP.load(net.save(tmp_path / "w.npz"))
    assert back.bias_init == "normal" and repr(back) == repr(net)
    np.testing.assert_array_equal(back.biases[0], net.biases[0])
    # a file written before bias_init existed loads as zeros
    arrays = {k: v for k, v in net.to_arrays().items() if k != "bias_init"}
    assert MLP.from_arrays(arrays).bias_init == "zeros"


def test_nielsen_chapter_1_configured_with_options_alone():
    """N(0, 1) weights and biases, sigmoid, quadratic cost, mini-batches: the
    network.py recipe learns XOR from options alone."""
    net = MLP([2, 8, 1], init="normal", bias_init="normal", seed=0)
    h = fit(net, XOR_X, XOR_Y, variant="mbgd", batch_size=2, lr=3.0, epochs=2000, loss="mse")
    assert net.predict(XOR_X).tolist() == [0, 1, 1, 0], h.final_loss


def test_bad_bias_init_and_bad_forward_input_give_one_line():
    one_line_error(
        lambda: MLP([2, 3, 1], bias_init="ones"), "bias initialisation", "'ones'", "zeros, normal"
    )
    net = MLP([2, 3, 1])
    one_line_error(lambda: net.forward(np.zeros((4, 3))), "X", "(n_samples, 2)", "(4, 3)")
    one_line_error(lambda: net.feedforward(np.zeros(2)), "X", "(n_samples, 2)")
