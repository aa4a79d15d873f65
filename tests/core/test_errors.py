"""Bad input: one clear line, naming the key and what would be valid."""

from __future__ import annotations

import numpy as np
import pytest

from bpexp.core import MLP, fit
from tests.conftest import XOR_X, XOR_Y


def one_line_error(fn, *match: str) -> str:
    with pytest.raises(ValueError) as info:
        fn()
    message = str(info.value)
    assert "\n" not in message, message
    for m in match:
        assert m in message, (m, message)
    return message


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (
            {"activation": "swish"},
            ["activation", "'swish'", "sigmoid, tanh, relu, leaky_relu, identity"],
        ),
        ({"output": "tanh"}, ["output activation", "sigmoid, softmax, identity"]),
        ({"init": "glorot"}, ["initialisation", "xavier_uniform", "he_normal", "lecun_normal"]),
        ({"dtype": "float16"}, ["dtype", "float32, float64"]),
        ({"leaky_slope": 1.5}, ["leaky_slope", "(0, 1)"]),
    ],
)
def test_bad_network_names(kwargs, match):
    one_line_error(lambda: MLP([2, 4, 1], **kwargs), *match)


@pytest.mark.parametrize("sizes", [[2, 0, 1], [2, -3, 1], [2, 2.5, 1], [3]])
def test_bad_layer_sizes(sizes):
    one_line_error(lambda: MLP(sizes), "sizes")


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"variant": "minibatch"}, ["variant", "bgd, sgd, mbgd"]),
        ({"loss": "hinge"}, ["loss", "mse, bce, cross_entropy"]),
        ({"update": "rmsprop"}, ["update rule", "plain, momentum, nesterov, adam"]),
        ({"schedule": "cosine"}, ["schedule", "constant, step, exponential, inverse_time"]),
        ({"train_eval": "sometimes"}, ["train_eval", "full, running"]),
        ({"lr": 0}, ["lr", "> 0"]),
        ({"lr": -0.1}, ["lr", "> 0"]),
        ({"lr": float("nan")}, ["lr"]),
        ({"lr": "fast"}, ["lr"]),
        ({"batch_size": 0}, ["batch_size", ">= 1"]),
        ({"batch_size": 2.5}, ["batch_size", "integer"]),
        ({"epochs": 0}, ["epochs", ">= 1"]),
        ({"loss_threshold": -1.0}, ["loss_threshold"]),
        ({"momentum": 1.5, "update": "momentum"}, ["momentum", "[0, 1)"]),
        ({"X_val": XOR_X}, ["X_val and Y_val"]),
        ({"loss": "cross_entropy"}, ["cross_entropy", "'sigmoid'", "softmax"]),
    ],
)
def test_bad_training_options(kwargs, match):
    net = MLP([2, 4, 1], seed=0)
    before = net.weights[0].copy()
    one_line_error(lambda: fit(net, XOR_X, XOR_Y, **kwargs), *match)
    assert np.array_equal(net.weights[0], before)  # nothing trained


def test_bce_needs_a_sigmoid_output():
    net = MLP([2, 4, 1], output="identity")
    one_line_error(lambda: fit(net, XOR_X, XOR_Y, loss="bce"), "bce", "'identity'", "sigmoid")


@pytest.mark.parametrize(
    "X,Y,match",
    [
        (np.zeros((4, 3)), XOR_Y, ["X", "(n_samples, 2)", "(4, 3)"]),
        (XOR_X, np.zeros((3, 1)), ["Y", "(4, 1)", "(3, 1)"]),
        (XOR_X, np.zeros((4, 2)), ["Y", "(4, 1)"]),
        (np.zeros((0, 2)), np.zeros((0, 1)), ["X", "no samples"]),
        (np.array([[0, np.nan], [0, 1], [1, 0], [1, 1]]), XOR_Y, ["X", "NaN or infinite"]),
        (XOR_X, np.array([[0], [np.inf], [1], [0]]), ["Y", "NaN or infinite"]),
    ],
)
def test_bad_data(X, Y, match):
    net = MLP([2, 4, 1])
    one_line_error(lambda: fit(net, X, Y), *match)
    one_line_error(lambda: net.loss_and_gradients(X, Y), *match)


def test_bad_validation_data_is_named_as_such():
    net = MLP([2, 4, 1])
    one_line_error(lambda: fit(net, XOR_X, XOR_Y, X_val=np.zeros((2, 5)), Y_val=XOR_Y[:2]), "X_val")
    one_line_error(
        lambda: fit(net, XOR_X, XOR_Y, X_val=XOR_X, Y_val=np.zeros((4, 3))), "Y_val", "(4, 1)"
    )


def test_targets_outside_the_loss_domain():
    net = MLP([2, 3], output="softmax")
    one_line_error(lambda: fit(net, XOR_X, np.ones((4, 3)), loss="cross_entropy"), "sum to 1")
    net = MLP([2, 1], output="sigmoid")
    one_line_error(lambda: fit(net, XOR_X, XOR_Y * 2, loss="bce"), "bce", "[0, 1]")


def test_a_one_dimensional_target_is_fine_for_one_output_unit():
    net = MLP([2, 4, 1], seed=0)
    h = fit(net, XOR_X, XOR_Y.ravel(), epochs=2)
    assert len(h.records) == 2
