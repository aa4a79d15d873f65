"""Training: variants, known answers, reproducibility, dtypes, stopping rules."""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import pytest

from bpexp.core import MLP, fit
from bpexp.core.training import History, training_bytes
from tests.conftest import XOR_X, XOR_Y

TOY3_X = np.array([[0, 0, 1], [0, 1, 1], [1, 0, 1], [1, 1, 1], [0, 0, 1]], dtype=float)
TOY3_Y = np.array([[0], [1], [1], [0], [0]], dtype=float)


def sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


def test_one_hand_worked_sgd_step_on_a_2_2_1_network():
    """Every number of one SGD step, worked out with scalars, independently of NumPy."""
    W1 = [[0.15, 0.25], [0.20, 0.30]]  # W1[i][j]: input i -> hidden j
    b1 = [0.35, 0.35]
    W2 = [0.40, 0.45]  # hidden j -> output
    b2 = 0.60
    x, y, lr = [0.05, 0.10], 0.01, 0.5

    # forward: z = x @ W + b, a = sigmoid(z)
    h = [sigmoid(x[0] * W1[0][j] + x[1] * W1[1][j] + b1[j]) for j in range(2)]
    o = sigmoid(h[0] * W2[0] + h[1] * W2[1] + b2)
    # loss 1/2 (o - y)^2 (n = 1); backward by the chain rule
    d_out = (o - y) * o * (1 - o)
    d_hid = [d_out * W2[j] * h[j] * (1 - h[j]) for j in range(2)]
    W2_new = [W2[j] - lr * h[j] * d_out for j in range(2)]
    b2_new = b2 - lr * d_out
    W1_new = [[W1[i][j] - lr * x[i] * d_hid[j] for j in range(2)] for i in range(2)]
    b1_new = [b1[j] - lr * d_hid[j] for j in range(2)]

    net = MLP([2, 2, 1], activation="sigmoid", output="sigmoid")
    net.weights[0][...] = W1
    net.biases[0][...] = b1
    net.weights[1][...] = np.array(W2).reshape(2, 1)
    net.biases[1][...] = b2
    history = fit(net, [x], [[y]], variant="sgd", lr=lr, epochs=1, loss="mse")

    assert history.initial["train_loss"] == pytest.approx(0.5 * (o - y) ** 2, rel=1e-12)
    np.testing.assert_allclose(net.weights[0], W1_new, rtol=1e-12)
    np.testing.assert_allclose(net.biases[0], b1_new, rtol=1e-12)
    np.testing.assert_allclose(net.weights[1].ravel(), W2_new, rtol=1e-12)
    np.testing.assert_allclose(net.biases[1], [b2_new], rtol=1e-12)
    # the step went downhill
    assert history.final_loss < history.initial["train_loss"]


def test_xor_is_learnt_from_a_fixed_seed():
    net = MLP([2, 4, 1], activation="sigmoid", output="sigmoid", init="uniform", seed=42)
    history = fit(net, XOR_X, XOR_Y, variant="bgd", lr=2.0, epochs=10_000, loss_threshold=0.01)
    assert history.converged and not history.diverged
    assert history.final_loss < 0.01
    assert net.predict(XOR_X).tolist() == [0, 1, 1, 0]
    assert history.records[-1]["train_accuracy"] == 1.0


def _xor_successes(hidden: int) -> list[int | None]:
    out = []
    for seed in range(20):
        net = MLP([2, hidden, 1], activation="sigmoid", output="sigmoid", init="uniform", seed=seed)
        h = fit(net, XOR_X, XOR_Y, variant="bgd", lr=2.0, epochs=10_000, loss_threshold=0.01)
        out.append(h.epochs_to_threshold)
    return out


@pytest.mark.slow
def test_xor_success_rates_over_20_seeds():
    """2-4-1 always learns XOR; 2-2-1 gets stuck from some initialisations
    (Rumelhart, Hinton & Williams 1986): the honest measure is a rate."""
    wide = _xor_successes(4)
    narrow = _xor_successes(2)
    assert sum(e is not None for e in wide) == 20, wide
    assert sum(e is not None for e in narrow) == 14, narrow


def _iamtrask_net() -> MLP:
    """The 3-4-1 network of "A Neural Network in 11 lines of Python", with the
    weights its np.random.seed(1) draws (a private RandomState, not the global)."""
    rs = np.random.RandomState(1)
    net = MLP([3, 4, 1], activation="sigmoid", output="sigmoid", bias=False)
    net.weights[0][...] = 2 * rs.random_sample((3, 4)) - 1
    net.weights[1][...] = 2 * rs.random_sample((4, 1)) - 1
    return net


def test_iamtrask_error_at_step_0():
    net = _iamtrask_net()
    mae = np.mean(np.abs(TOY3_Y[:4] - net.feedforward(TOY3_X[:4])))
    assert round(mae, 4) == 0.4964


@pytest.mark.slow
@pytest.mark.parametrize(
    "step,expected", [(0.01, 0.0986), (1, 0.00351), (10, 0.00131), (100, 0.125), (1000, 0.5)]
)
def test_iamtrask_known_answers_after_50000_steps(step, expected):
    """His loss is the *sum* of 1/2 (y - yhat)^2; ours is the mean over the 4
    samples, so his step size s is our learning rate 4 s."""
    net = _iamtrask_net()
    fit(net, TOY3_X[:4], TOY3_Y[:4], variant="bgd", lr=4 * step, epochs=50_000, loss="mse")
    mae = np.mean(np.abs(TOY3_Y[:4] - net.feedforward(TOY3_X[:4])))
    assert mae == pytest.approx(expected, rel=5e-3)


def test_toy3_tutorial_network_learns_its_five_samples():
    """3-4-1 sigmoid, no biases, U(-1, 1) weights from seed 1, full batch.  The
    tutorial sums the loss over its 5 samples at lr 0.1: our mean needs 5 x 0.1."""
    net = MLP([3, 4, 1], activation="sigmoid", output="sigmoid", init="uniform", seed=1, bias=False)
    history = fit(net, TOY3_X, TOY3_Y, variant="bgd", lr=0.5, epochs=20_000)
    assert net.biases == []
    assert history.final_loss < 1e-3
    assert net.predict(TOY3_X).tolist() == [0, 1, 1, 0, 0]


@pytest.mark.parametrize(
    "variant,batch_size,n,per_epoch",
    [
        ("bgd", 32, 10, 1),
        ("sgd", 32, 10, 10),
        ("mbgd", 4, 10, 3),
        ("mbgd", 5, 10, 2),
        ("mbgd", 64, 10, 1),
    ],
)
def test_updates_and_samples_per_epoch(variant, batch_size, n, per_epoch):
    rng = np.random.default_rng(0)
    X, Y = rng.random((n, 3)), rng.random((n, 1))
    net = MLP([3, 4, 1], seed=0)
    h = fit(net, X, Y, variant=variant, batch_size=batch_size, lr=0.1, epochs=3)
    assert [r["epoch"] for r in h.records] == [1, 2, 3]
    assert [r["updates"] for r in h.records] == [per_epoch, 2 * per_epoch, 3 * per_epoch]
    assert [r["samples"] for r in h.records] == [n, 2 * n, 3 * n]
    secs = [r["seconds"] for r in h.records]
    assert secs == sorted(secs) and secs[0] > 0
    assert h.initial["epoch"] == 0 and h.initial["updates"] == 0


def test_record_keys_with_and_without_validation():
    net = MLP([2, 4, 1], seed=0)
    h = fit(net, XOR_X, XOR_Y, epochs=2)
    base = {
        "epoch",
        "train_loss",
        "train_accuracy",
        "grad_norm",
        "updates",
        "samples",
        "seconds",
        "lr",
    }
    assert set(h.records[0]) == base
    h = fit(net, XOR_X, XOR_Y, epochs=2, X_val=XOR_X, Y_val=XOR_Y)
    assert set(h.records[0]) == base | {"val_loss", "val_accuracy"}
    # validating on the training set gives the training measures
    assert h.records[-1]["val_loss"] == pytest.approx(h.records[-1]["train_loss"])


def test_mbgd_with_the_whole_set_as_one_batch_is_bgd():
    a, b = MLP([2, 4, 1], seed=5), MLP([2, 4, 1], seed=5)
    ha = fit(a, XOR_X, XOR_Y, variant="bgd", lr=0.5, epochs=50)
    hb = fit(b, XOR_X, XOR_Y, variant="mbgd", batch_size=4, lr=0.5, epochs=50)
    np.testing.assert_allclose(a.weights[0], b.weights[0], rtol=1e-12)
    assert ha.final_loss == pytest.approx(hb.final_loss, rel=1e-12)


def test_running_and_full_train_eval():
    """bgd, running: each epoch reports the loss before its update, which is the
    previous epoch's end-of-epoch loss."""
    a, b = MLP([2, 4, 1], seed=1), MLP([2, 4, 1], seed=1)
    full = fit(a, XOR_X, XOR_Y, lr=0.5, epochs=20, train_eval="full").column("train_loss", True)
    run = fit(b, XOR_X, XOR_Y, lr=0.5, epochs=20, train_eval="running").column("train_loss")
    np.testing.assert_allclose(run, full[:-1], rtol=1e-12)
    # sgd, running: a mean of per-sample losses before their updates; finite and close
    c = MLP([2, 4, 1], seed=1)
    h = fit(c, XOR_X, XOR_Y, variant="sgd", lr=0.5, epochs=20, train_eval="running")
    assert all(np.isfinite(h.column("train_loss")))


@pytest.mark.parametrize("batch_size", [4, 20])  # both leave a short last batch
def test_running_train_eval_replays_by_hand(batch_size):
    """mbgd, running: an epoch's loss and accuracy are those of each batch before
    its update, in the order the run's generator drew, replayed here with the
    public API (loss, loss_and_gradients) on a copy of the network."""
    rng = np.random.default_rng(3)
    X, labels = rng.normal(size=(50, 5)), rng.integers(0, 3, 50)
    Y = np.eye(3)[labels]
    net = MLP([5, 7, 3], activation="relu", output="softmax", init="he_normal", seed=2)
    twin = net.copy()
    h = fit(
        net,
        X,
        Y,
        variant="mbgd",
        batch_size=batch_size,
        lr=0.2,
        epochs=3,
        loss="cross_entropy",
        seed=11,
        train_eval="running",
    )
    replay = np.random.default_rng(11)
    for record in h.records:
        perm = replay.permutation(50)
        loss = correct = 0.0
        for i in range(0, 50, batch_size):
            xb, yb = X[perm[i : i + batch_size]], Y[perm[i : i + batch_size]]
            loss += twin.loss(xb, yb, "cross_entropy") * len(xb)
            correct += np.sum(twin.predict(xb) == labels[perm[i : i + batch_size]])
            _, w_grads, b_grads = twin.loss_and_gradients(xb, yb, "cross_entropy")
            for p, g in zip(twin.weights + twin.biases, w_grads + b_grads, strict=True):
                p -= 0.2 * g
        assert record["train_loss"] == pytest.approx(loss / 50, rel=1e-10)
        assert record["train_accuracy"] == correct / 50
    np.testing.assert_allclose(net.weights[0], twin.weights[0], rtol=1e-10, atol=1e-12)


def test_same_seed_gives_bit_identical_weights_and_histories():
    np.random.seed(1234)  # noqa: NPY002 - the global state must stay untouched
    global_state = np.random.get_state()[1].copy()  # noqa: NPY002

    def run(seed):
        rng = np.random.default_rng(seed)
        net = MLP([2, 5, 1], activation="tanh", init="he_normal", rng=rng)
        h = fit(net, XOR_X, XOR_Y, variant="mbgd", batch_size=3, lr=0.3, epochs=30, rng=rng)
        return net, [{k: v for k, v in r.items() if k != "seconds"} for r in h.records]

    (n1, h1), (n2, h2), (n3, _) = run(7), run(7), run(8)
    assert h1 == h2
    for a, b in zip(n1.weights + n1.biases, n2.weights + n2.biases, strict=True):
        assert np.array_equal(a, b)
    assert not np.array_equal(n1.weights[0], n3.weights[0])
    assert np.array_equal(np.random.get_state()[1], global_state)  # noqa: NPY002


@pytest.mark.parametrize("update", ["plain", "momentum", "nesterov", "adam"])
@pytest.mark.parametrize("variant", ["bgd", "sgd", "mbgd"])
def test_float32_stays_float32(update, variant):
    rng = np.random.default_rng(0)
    X, Y = rng.random((20, 4)), np.eye(3)[rng.integers(0, 3, 20)]  # float64 data
    net = MLP([4, 6, 3], activation="relu", output="softmax", dtype="float32")
    h = fit(net, X, Y, variant=variant, batch_size=8, loss="cross_entropy", update=update, epochs=3)
    assert all(p.dtype == np.float32 for p in net.weights + net.biases)
    assert net.feedforward(X).dtype == np.float32
    assert all(np.isfinite(h.column("train_loss")))


def test_float32_reaches_the_same_answer_as_float64():
    a = MLP([2, 4, 1], init="uniform", seed=42, dtype="float32")
    b = MLP([2, 4, 1], init="uniform", seed=42, dtype="float64")
    ha = fit(a, XOR_X, XOR_Y, lr=2.0, epochs=2000)
    hb = fit(b, XOR_X, XOR_Y, lr=2.0, epochs=2000)
    assert ha.final_loss == pytest.approx(hb.final_loss, rel=1e-2)


def test_loss_threshold_stops_and_reports_convergence():
    net = MLP([2, 4, 1], init="uniform", seed=42)
    h = fit(net, XOR_X, XOR_Y, lr=2.0, epochs=10_000, loss_threshold=0.05)
    assert h.converged and h.stop_reason == "threshold"
    assert h.epochs_to_threshold == len(h.records) == h.records[-1]["epoch"]
    assert h.records[-1]["train_loss"] <= 0.05 < h.records[-2]["train_loss"]


def test_divergence_is_a_result_not_an_exception():
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((30, 3)) * 100, rng.standard_normal((30, 2)) * 100
    net = MLP([3, 16, 2], activation="relu", output="identity", init="normal")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # and no floating-point warnings leak out
        h = fit(net, X, Y, variant="sgd", lr=10.0, epochs=200, divergence_factor=None)
    assert h.diverged and not h.converged and h.stop_reason == "diverged"
    assert not math.isfinite(h.final_loss)
    assert len(h.records) < 200
    assert math.isfinite(h.best_loss)


@pytest.mark.parametrize("factor", [10.0, 1e3])
def test_a_finite_loss_above_factor_times_the_initial_one_is_divergence(factor):
    """Training stops, diverged, at the first epoch whose loss exceeds factor x the
    initial loss, while it is still finite; without a factor it would go on."""
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((30, 3)), rng.standard_normal((30, 2))
    net = MLP([3, 8, 2], activation="identity", output="identity", seed=1)
    free = fit(net.copy(), X, Y, lr=5.0, epochs=30, divergence_factor=None)
    loss0, losses = free.initial["train_loss"], free.column("train_loss")
    first = int(np.argmax(losses > factor * loss0))  # the precondition: it is reached
    assert losses[first] > factor * loss0 and math.isfinite(losses[first])
    h = fit(net, X, Y, lr=5.0, epochs=30, divergence_factor=factor)
    assert h.diverged and h.stop_reason == "diverged" and not h.converged
    assert len(h.records) == first + 1
    assert h.final_loss == losses[first]


def test_healthy_noisy_sgd_never_trips_the_default_factor():
    """sgd on XOR at a large learning rate: its loss rises above the initial one
    (to 1.6x here) and still converges, with the default factor."""
    net = MLP([2, 4, 1], init="xavier_uniform", seed=0)
    h = fit(net, XOR_X, XOR_Y, variant="sgd", lr=10.0, epochs=2000, loss_threshold=0.01)
    assert h.column("train_loss").max() > 1.2 * h.initial["train_loss"]
    assert h.converged and not h.diverged


@pytest.mark.parametrize("factor", [1.0, 0.5, -1, "big", math.inf])
def test_a_divergence_factor_not_above_one_is_refused(factor):
    with pytest.raises(ValueError, match="divergence_factor"):
        fit(MLP([2, 2, 1]), XOR_X, XOR_Y, divergence_factor=factor)


def test_callback_sees_every_record_and_can_stop():
    seen = []
    net = MLP([2, 4, 1], seed=0)
    h = fit(
        net, XOR_X, XOR_Y, epochs=10, callback=lambda r: seen.append(r["epoch"]) or r["epoch"] == 4
    )
    assert seen == [0, 1, 2, 3, 4]
    assert h.stop_reason == "callback" and len(h.records) == 4


@pytest.mark.parametrize("update", ["momentum", "nesterov", "adam"])
def test_update_rules_learn_xor(update):
    net = MLP([2, 4, 1], init="uniform", seed=42)
    lr = 0.1 if update == "adam" else 0.5
    h = fit(net, XOR_X, XOR_Y, lr=lr, epochs=3000, update=update, loss_threshold=0.01)
    assert h.converged, (update, h.final_loss)


def test_adam_first_step_is_lr_times_the_gradient_sign():
    net = MLP([2, 3, 1], seed=0)
    _, gw, _ = net.loss_and_gradients(XOR_X, XOR_Y)
    before = net.weights[0].copy()
    fit(net, XOR_X, XOR_Y, lr=0.01, epochs=1, update="adam", epsilon=1e-12)
    np.testing.assert_allclose(before - net.weights[0], 0.01 * np.sign(gw[0]), rtol=1e-6)


@pytest.mark.parametrize("update", ["momentum", "nesterov"])
def test_momentum_rules_match_their_definitions(update):
    """v = mu v - lr g; w += v (heavy ball) or w += mu v - lr g (Nesterov)."""
    net, ref = MLP([2, 3, 1], seed=0), MLP([2, 3, 1], seed=0)
    params = ref.weights + ref.biases
    velocity = [np.zeros_like(p) for p in params]
    for _ in range(3):
        _, gw, gb = ref.loss_and_gradients(XOR_X, XOR_Y)
        for p, g, v in zip(params, gw + gb, velocity, strict=True):
            v[...] = 0.9 * v - 0.3 * g
            p += 0.9 * v - 0.3 * g if update == "nesterov" else v
    fit(net, XOR_X, XOR_Y, lr=0.3, epochs=3, update=update, momentum=0.9)
    for a, b in zip(net.weights + net.biases, params, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12)


@pytest.mark.parametrize(
    "schedule,kw,expected",
    [
        ("constant", {}, [0.8, 0.8, 0.8, 0.8, 0.8]),
        ("step", {"gamma": 0.5, "step_size": 2}, [0.8, 0.8, 0.4, 0.4, 0.2]),
        ("exponential", {"gamma": 0.5}, [0.8, 0.4, 0.2, 0.1, 0.05]),
        ("inverse_time", {"decay": 1.0}, [0.8, 0.4, 0.8 / 3, 0.2, 0.16]),
    ],
)
def test_learning_rate_schedules(schedule, kw, expected):
    net = MLP([2, 4, 1], seed=0)
    h = fit(net, XOR_X, XOR_Y, lr=0.8, epochs=5, schedule=schedule, **kw)
    np.testing.assert_allclose(h.column("lr"), expected)


def test_saturated_outputs_stay_finite_without_warnings():
    Z = np.array([[-1e4, 0.0, 1e4]])
    from bpexp.core.activations import sigmoid, softmax

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = np.empty_like(Z)
        sigmoid(Z, out)
        np.testing.assert_allclose(out, [[0.0, 0.5, 1.0]])
        softmax(Z, out)
        np.testing.assert_allclose(out, [[0.0, 0.0, 1.0]])
        # a confidently wrong saturated net: the log losses are finite (never log 0)
        net = MLP([1, 1], output="sigmoid")
        net.weights[0][...] = 1e4
        assert net.loss([[1.0]], [[0.0]], "bce") == pytest.approx(1e4)
        net = MLP([1, 2], output="softmax")
        net.weights[0][...] = [[1e4, -1e4]]
        assert net.loss([[1.0]], [[0.0, 1.0]], "cross_entropy") == pytest.approx(2e4)


def test_save_and_load_round_trip(tmp_path):
    net = MLP(
        [3, 5, 2],
        activation="leaky_relu",
        output="softmax",
        init="he_uniform",
        leaky_slope=0.2,
        seed=3,
        dtype="float32",
    )
    path = net.save(tmp_path / "weights.npz")
    assert [p.name for p in tmp_path.iterdir()] == ["weights.npz"]  # no temporary left
    with np.load(path, allow_pickle=False) as arrays:
        assert {"W0", "W1", "b0", "b1", "sizes", "activation"} <= set(arrays.files)
    back = MLP.load(path)
    assert repr(back) == repr(net) and back.leaky_slope == 0.2
    X = np.random.default_rng(0).random((4, 3))
    np.testing.assert_array_equal(back.feedforward(X), net.feedforward(X))


@pytest.mark.parametrize("variant,batch_size", [("sgd", 1), ("mbgd", 4), ("mbgd", 7)])
def test_recorded_order_is_the_order_used_and_the_only_draw(variant, batch_size):
    """record_order=True: each record's ``order`` is the epoch's permutation, one
    ``rng.permutation(n)`` per epoch and nothing else from the generator; replaying
    the batches in that order by hand gives the trained network."""
    rng = np.random.default_rng(3)
    X, labels = rng.normal(size=(18, 4)), rng.integers(0, 3, 18)
    Y = np.eye(3)[labels]
    net = MLP([4, 5, 3], activation="tanh", output="softmax", bias_init="normal", seed=1)
    twin = net.copy()
    run_rng = np.random.default_rng(21)
    h = fit(
        net, X, Y, variant=variant, batch_size=batch_size, lr=0.3, epochs=3,
        loss="cross_entropy", rng=run_rng, record_order=True,
    )  # fmt: skip
    replay = np.random.default_rng(21)
    for record in h.records:
        order = record["order"]
        np.testing.assert_array_equal(order, replay.permutation(18))
        for i in range(0, 18, batch_size):
            rows = order[i : i + batch_size]
            _, w_grads, b_grads = twin.loss_and_gradients(X[rows], Y[rows], "cross_entropy")
            for p, g in zip(twin.weights + twin.biases, w_grads + b_grads, strict=True):
                p -= 0.3 * g
    assert run_rng.bit_generator.state == replay.bit_generator.state  # no other draw
    for a, b in zip(net.weights + net.biases, twin.weights + twin.biases, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)


def test_bgd_draws_nothing_and_records_no_order():
    rng = np.random.default_rng(5)
    state = rng.bit_generator.state
    h = fit(MLP([2, 4, 1], seed=0), XOR_X, XOR_Y, epochs=3, rng=rng, record_order=True)
    assert [r["order"] for r in h.records] == [None, None, None]
    assert rng.bit_generator.state == state
    h = fit(MLP([2, 4, 1], seed=0), XOR_X, XOR_Y, variant="sgd", epochs=2)
    assert "order" not in h.records[0]  # only when asked


def test_evaluation_in_chunks_is_the_loss_over_the_whole_set(monkeypatch):
    """Large sets are evaluated EVAL_CHUNK rows at a time (the last chunk short):
    the result is the loss and accuracy over all of them."""
    from bpexp.core import training
    from bpexp.core.losses import get_loss

    rng = np.random.default_rng(8)
    X, Y = rng.normal(size=(50, 4)), np.eye(3)[rng.integers(0, 3, 50)]
    net = MLP([4, 6, 3], activation="relu", output="softmax", seed=2)
    monkeypatch.setattr(training, "EVAL_CHUNK", 7)
    loss, accuracy = training.evaluate(net, X, Y, get_loss("cross_entropy", "softmax"))
    assert loss == pytest.approx(net.loss(X, Y, "cross_entropy"), rel=1e-12)
    assert accuracy == net.accuracy(X, Y)


@pytest.mark.parametrize(
    ("variant", "update", "dtype"),
    [("bgd", "plain", "float64"), ("mbgd", "adam", "float32"), ("sgd", "momentum", "float64")],
)
def test_training_bytes_is_the_memory_fit_takes_within_a_factor_two(variant, update, dtype):
    """The estimate from shapes against what NumPy allocates (tracemalloc sees it)
    for a network and its training on 1000 samples."""
    import tracemalloc

    rng = np.random.default_rng(0)
    n, sizes = 1000, [64, 1500, 10]
    X = rng.random((n, 64)).astype(dtype)
    Y = np.eye(10, dtype=dtype)[rng.integers(0, 10, n)]
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    net = MLP(sizes, output="softmax", dtype=dtype, seed=0)
    fit(net, X, Y, variant=variant, update=update, loss="cross_entropy", epochs=1, batch_size=32)
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    estimate = training_bytes(sizes, dtype, n, variant, 32, update)
    assert 0.5 < peak / estimate < 2, (peak, estimate)


def test_a_bounded_history_thins_evenly_and_keeps_every_epochs_summary():
    def train(max_records):
        net = MLP([2, 3, 1], seed=1)
        return fit(net, XOR_X, XOR_Y, lr=2.0, epochs=3000, max_records=max_records)

    def same(a: dict, b: dict) -> bool:  # seconds are the clock's
        return {k: v for k, v in a.items() if k != "seconds"} == {
            k: v for k, v in b.items() if k != "seconds"
        }

    full, kept = train(None), train(100)
    assert len(full.records) == 3000
    assert 50 <= len(kept.records) <= 100
    assert same(kept.records[-1], full.records[-1])  # the last epoch is always kept
    epochs = [r["epoch"] for r in kept.records[:-1]]  # evenly spaced, and the last
    assert {b - a for a, b in itertools.pairwise([0, *epochs])} == {epochs[0]}
    assert all(same(r, full.records[r["epoch"] - 1]) for r in kept.records)  # each one exact
    # what is computed over every epoch is not changed by the thinning
    assert kept.best_loss == full.best_loss and kept.final_loss == full.final_loss


def test_a_bounded_history_remembers_what_it_dropped():
    history = History(initial={"epoch": 0, "train_loss": 1.0}, loss_threshold=0.5, max_records=4)
    for epoch, loss in enumerate([1.0, 0.3, 0.9, 0.45, 1.0, 1.0, 1.0, 1.0, 1.0, 0.8], start=1):
        history.add({"epoch": epoch, "train_loss": loss})
    assert len(history.records) <= 4 and history.records[-1]["epoch"] == 10
    assert 2 not in [r["epoch"] for r in history.records]  # the best epoch was dropped...
    assert history.best_loss == 0.3 and history.epochs_to_threshold == 2  # ...not forgotten
