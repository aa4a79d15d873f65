"""The stacked engine: network k of a stack ends as the same network trained alone by fit."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from bpexp.core import MLP, fit, fit_many
from bpexp.core.activations import HIDDEN_ACTIVATIONS
from bpexp.core.optim import SCHEDULES, UPDATES
from bpexp.core.training import TRAIN_EVAL, VARIANTS
from tests.conftest import XOR_X, XOR_Y

PAIRS = [
    ("sigmoid", "mse"),
    ("sigmoid", "bce"),
    ("softmax", "cross_entropy"),
    ("softmax", "mse"),
    ("identity", "mse"),
]
#: relative tolerance of stacked against alone, per dtype
RTOL = {"float64": 1e-12, "float32": 1e-4}
#: keys of a record that must agree (``seconds`` is the stack's time, by design)
MEASURES = ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "grad_norm", "lr")


def _data(rng: np.random.Generator, n: int, n_in: int, n_out: int, output: str, loss: str):
    X = rng.normal(size=(n, n_in))
    if output == "softmax":
        Y = np.eye(n_out)[rng.integers(0, n_out, n)]
    elif loss == "bce":
        Y = rng.integers(0, 2, (n, n_out)).astype(float)
    elif output == "sigmoid":
        Y = rng.random((n, n_out))
    else:
        Y = rng.normal(size=(n, n_out))
    return X, Y


def _case(seed: int, output: str, loss: str, activation: str, dtype: str = "float64", K: int = 3):
    """K random networks of one random shape, and a training and a validation set
    (7 samples: mbgd with batches of 3 ends on a short batch of 1)."""
    rng = np.random.default_rng(seed)
    n_out = 3 if output == "softmax" else int(rng.integers(1, 3))
    sizes = [3, *rng.integers(2, 6, int(rng.integers(1, 3))).tolist(), n_out]
    nets = [
        MLP(sizes, activation=activation, output=output, dtype=dtype, init="xavier_normal", seed=s)
        for s in rng.integers(0, 2**31, K).tolist()
    ]
    X, Y = _data(rng, 7, 3, n_out, output, loss)
    X_val, Y_val = _data(rng, 5, 3, n_out, output, loss)
    return nets, X, Y, X_val, Y_val


def _per_net(options: dict, k: int) -> dict:
    return {key: v[k] if isinstance(v, list) else v for key, v in options.items()}


def _assert_same(stacked: MLP, alone: MLP, hs, ha, rtol: float) -> None:
    """Parameters, records and outcome of a stacked network equal those of it alone."""
    for a, b in zip(stacked.weights + stacked.biases, alone.weights + alone.biases, strict=True):
        assert a.dtype == b.dtype
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * np.abs(b).max())
    assert (hs.converged, hs.diverged, hs.stop_reason) == (
        ha.converged,
        ha.diverged,
        ha.stop_reason,
    )
    assert (hs.loss_threshold, hs.train_eval) == (ha.loss_threshold, ha.train_eval)
    assert len(hs.records) == len(ha.records)
    assert hs.initial.keys() == ha.initial.keys()
    for rs, ra in zip([hs.initial, *hs.records], [ha.initial, *ha.records], strict=True):
        assert rs.keys() == ra.keys()
        for key in ("epoch", "updates", "samples"):
            assert rs[key] == ra[key]
        keys = [k for k in MEASURES if k in ra]
        np.testing.assert_allclose(
            [rs[k] for k in keys], [ra[k] for k in keys], rtol=rtol, atol=1e-15, equal_nan=True
        )


def _check_against_fit(nets, X, Y, options: dict, rtol: float) -> list:
    """Train copies of ``nets`` alone with fit and ``nets`` stacked; compare each."""
    alone = [net.copy() for net in nets]
    K = len(nets)
    expected = [fit(alone[k], X, Y, **_per_net(options, k)) for k in range(K)]
    histories = fit_many(nets, X, Y, **options)
    assert len(histories) == K
    for k in range(K):
        _assert_same(nets[k], alone[k], histories[k], expected[k], rtol)
    return histories


def _options(variant, update, schedule, train_eval, loss, X_val, Y_val, K=3, epochs=12):
    """Per-network learning rates, rule constants, schedule constants and seeds."""
    return dict(
        variant=variant,
        update=update,
        schedule=schedule,
        train_eval=train_eval,
        loss=loss,
        epochs=epochs,
        batch_size=3,
        lr=[0.05 * (k + 1) for k in range(K)] if update != "adam" else [0.01, 0.02, 0.005][:K],
        momentum=[0.9, 0.5, 0.0][:K],
        beta1=[0.9, 0.8, 0.95][:K],
        beta2=0.999,
        epsilon=[1e-8, 1e-6, 1e-7][:K],
        gamma=[0.5, 0.9, 0.7][:K],
        step_size=[3, 5, 1][:K],
        decay=[0.1, 0.01, 0.5][:K],
        seed=[11, 12, 13][:K],
        X_val=X_val,
        Y_val=Y_val,
    )


GRID = list(itertools.product(VARIANTS, UPDATES, PAIRS, TRAIN_EVAL, HIDDEN_ACTIVATIONS))


@pytest.mark.slow
@pytest.mark.parametrize(("variant", "update", "pair", "train_eval", "activation"), GRID)
def test_stacked_equals_alone_over_the_grid(variant, update, pair, train_eval, activation):
    """Every variant x update x (output, loss) x train_eval x hidden activation, in
    float64, on a random network shape each, the schedule cycling through all."""
    i = GRID.index((variant, update, pair, train_eval, activation))
    output, loss = pair
    nets, X, Y, X_val, Y_val = _case(i, output, loss, activation)
    opts = _options(variant, update, SCHEDULES[i % len(SCHEDULES)], train_eval, loss, X_val, Y_val)
    _check_against_fit(nets, X, Y, opts, RTOL["float64"])


@pytest.mark.parametrize(
    ("activation", "schedule"), list(itertools.product(HIDDEN_ACTIVATIONS, SCHEDULES))
)
def test_stacked_equals_alone_for_every_activation_and_schedule(activation, schedule):
    """mbgd with a short last batch, momentum, validation data."""
    nets, X, Y, X_val, Y_val = _case(7, "sigmoid", "mse", activation)
    opts = _options("mbgd", "momentum", schedule, "full", "mse", X_val, Y_val)
    _check_against_fit(nets, X, Y, opts, RTOL["float64"])


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("update", UPDATES)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_stacked_equals_alone_per_variant_update_and_dtype(variant, update, dtype):
    nets, X, Y, X_val, Y_val = _case(3, "softmax", "cross_entropy", "tanh", dtype)
    opts = _options(variant, update, "step", "running", "cross_entropy", X_val, Y_val)
    _check_against_fit(nets, X, Y, opts, RTOL[dtype])


@pytest.mark.parametrize("variant", VARIANTS)
def test_networks_stop_at_different_epochs_inside_one_stack(variant):
    """Two networks reach their thresholds at different epochs, a third diverges,
    a fourth runs the whole budget: each stops where it would alone and stops changing."""
    nets, X, Y, _, _ = _case(5, "identity", "mse", "identity", K=4)
    lr = [0.05, 0.05, 40.0, 0.05]
    probe = [
        fit(net.copy(), X, Y, variant=variant, lr=lr[k], epochs=40, seed=k, batch_size=3)
        for k, net in enumerate(nets)
    ]
    assert probe[2].diverged, "the precondition: lr 40 diverges"
    # midway between two epochs' losses, so that rounding cannot move the stop
    losses = [p.column("train_loss") for p in probe[:2]]
    thresholds = [
        (losses[0][3] + losses[0][4]) / 2,
        (losses[1][10] + losses[1][11]) / 2,
        None,
        None,
    ]
    opts = dict(
        variant=variant,
        lr=lr,
        epochs=40,
        seed=[0, 1, 2, 3],
        batch_size=3,
        loss_threshold=thresholds,
    )
    fresh = [net.copy() for net in nets]
    hs = _check_against_fit(nets, X, Y, opts, RTOL["float64"])
    assert [h.stop_reason for h in hs] == ["threshold", "threshold", "diverged", "epochs"]
    assert len({len(h.records) for h in hs}) == 4

    # memory bounded as fit bounds it: the same epochs kept, the same best and threshold
    thinned = _check_against_fit(fresh, X, Y, {**opts, "max_records": 4}, RTOL["float64"])
    for h, whole in zip(thinned, hs, strict=True):
        assert len(h.records) <= 5  # the stride's multiples and the newest
        assert h.records[-1]["epoch"] == whole.records[-1]["epoch"]
        assert (h.best_loss, h.epochs_to_threshold) == (whole.best_loss, whole.epochs_to_threshold)


@pytest.mark.parametrize("variant", VARIANTS)
def test_a_network_diverges_by_the_factor_inside_a_stack(variant):
    """Network 1's finite loss passes 10x its initial one and it stops there, as
    alone; network 2, the same network with no factor, goes on (to a NaN or
    infinite loss, or to the budget)."""
    nets, X, Y, _, _ = _case(5, "identity", "mse", "identity", K=3)
    nets[2] = nets[1].copy()
    fast = {"bgd": 0.5, "sgd": 0.22, "mbgd": 0.45}[variant]  # finite above 10x, then NaN
    opts = dict(
        variant=variant,
        lr=[0.05, fast, fast],
        epochs=40,
        seed=[0, 1, 1],
        batch_size=3,
        divergence_factor=[1e3, 10.0, None],
    )
    hs = _check_against_fit(nets, X, Y, opts, RTOL["float64"])
    assert [h.stop_reason for h in hs[:2]] == ["epochs", "diverged"]
    loss0 = hs[1].initial["train_loss"]
    assert 10 * loss0 < hs[1].final_loss < np.inf
    assert len(hs[1].records) < len(hs[2].records)
    assert not hs[2].diverged or not np.isfinite(hs[2].final_loss)
    assert hs[2].column("train_loss")[len(hs[1].records) - 1] == hs[1].final_loss


def test_one_network_is_the_ordinary_fit_on_xor():
    nets = [MLP([2, 4, 1], init="uniform", seed=42)]
    opts = dict(variant="bgd", lr=2.0, epochs=3000, loss_threshold=0.01)
    (h,) = _check_against_fit(nets, XOR_X, XOR_Y, opts, RTOL["float64"])
    assert h.converged and nets[0].predict(XOR_X).tolist() == [0, 1, 1, 0]


def test_each_network_draws_one_permutation_per_epoch_from_its_own_generator():
    """The run's generators (which already drew weights) go on as fit leaves them."""
    gens = [np.random.default_rng(s) for s in (1, 2)]
    twins = [np.random.default_rng(s) for s in (1, 2)]
    nets = [MLP([2, 3, 1], rng=g) for g in gens]
    alone = [MLP([2, 3, 1], rng=g) for g in twins]
    hs = fit_many(nets, XOR_X, XOR_Y, variant="sgd", lr=0.5, epochs=7, rng=gens)
    ha = [
        fit(a, XOR_X, XOR_Y, variant="sgd", lr=0.5, epochs=7, rng=g) for a, g in zip(alone, twins)
    ]
    for k in range(2):
        _assert_same(nets[k], alone[k], hs[k], ha[k], RTOL["float64"])
        assert gens[k].random() == twins[k].random()


def test_callbacks_one_per_network_or_one_for_all():
    seen: list[tuple[int, int]] = []
    stop_at_3 = [lambda r: r["epoch"] == 3, None, lambda r: r["epoch"] == 0]
    nets = [MLP([2, 3, 1], seed=s) for s in range(3)]
    before = [w.copy() for w in nets[2].weights]
    hs = fit_many(nets, XOR_X, XOR_Y, lr=0.5, epochs=5, callback=stop_at_3)
    assert [h.stop_reason for h in hs] == ["callback", "epochs", "callback"]
    assert [len(h.records) for h in hs] == [3, 5, 0]
    assert all(np.array_equal(a, b) for a, b in zip(nets[2].weights, before))

    def record(r):
        seen.append((r["epoch"], round(r["train_loss"], 12)))

    nets = [MLP([2, 3, 1], seed=s) for s in range(2)]
    hs = fit_many(nets, XOR_X, XOR_Y, lr=0.5, epochs=2, callback=record)
    expected = {
        (r["epoch"], round(r["train_loss"], 12)) for h in hs for r in [h.initial, *h.records]
    }
    assert set(seen) == expected and len(seen) == 6


@pytest.mark.parametrize(
    ("nets", "kwargs", "match"),
    [
        ([MLP([2, 3, 1]), MLP([2, 4, 1])], {}, r"nets\[1\]: sizes .* one shape"),
        ([MLP([2, 3, 1]), MLP([2, 3, 1], activation="tanh")], {}, r"nets\[1\]: activation"),
        ([MLP([2, 3, 1]), MLP([2, 3, 1], dtype="float32")], {}, r"nets\[1\]: dtype"),
        ([], {}, "nets: need at least one network"),
        ([MLP([2, 3, 1])] * 2, {}, r"nets\[1\]: the same network as nets\[0\]"),
        ([MLP([2, 3, 1])] * 1, {"lr": [0.1, 0.2]}, "lr: expected one value or a list of 1"),
        ([MLP([2, 3, 1]), MLP([2, 3, 1])], {"lr": [0.1, -1]}, r"lr\[1\]: must be > 0, got -1"),
        ([MLP([2, 3, 1]), MLP([2, 3, 1])], {"seed": [1, 2, 3]}, "seed: expected one value"),
        (
            [MLP([2, 3, 1]), MLP([2, 3, 1])],
            {"update": "momentum", "momentum": [0.5, 1.5]},
            r"momentum\[1\]: must be in \[0, 1\)",
        ),
        (
            [MLP([2, 3, 1]), MLP([2, 3, 1])],
            {"rng": [np.random.default_rng(0)]},
            "rng: expected a list of 2",
        ),
        (
            [MLP([2, 3, 1]), MLP([2, 3, 1])],
            {"rng": [np.random.default_rng(0)] * 2},
            "rng: one generator per network",
        ),
        ([MLP([2, 3, 1]), MLP([2, 3, 1])], {"callback": [print]}, "callback: expected one"),
        (
            [MLP([2, 3, 1])],
            {"variant": "full"},
            "variant: must be one of bgd, sgd, mbgd, got 'full'",
        ),
        ([MLP([2, 3, 1])], {"loss_threshold": [0]}, r"loss_threshold\[0\]: must be > 0, got 0"),
    ],
)
def test_bad_input_is_one_line_naming_the_keyword(nets, kwargs, match):
    with pytest.raises(ValueError, match=match) as err:
        fit_many(nets, XOR_X, XOR_Y, **kwargs)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("variant", VARIANTS)
def test_networks_without_biases(variant):
    rng = np.random.default_rng(4)
    nets = [MLP([3, 4, 2], activation="relu", bias=False, seed=s) for s in range(3)]
    X, Y = _data(rng, 7, 3, 2, "sigmoid", "mse")
    opts = dict(variant=variant, lr=[0.3, 0.2, 0.1], epochs=10, batch_size=3, seed=[1, 2, 3])
    _check_against_fit(nets, X, Y, opts, RTOL["float64"])
    assert all(net.biases == [] for net in nets)


@pytest.mark.parametrize("chunked", [True, False])
def test_sets_evaluated_in_several_chunks(monkeypatch, chunked):
    """Sets larger than one evaluation chunk (a few rows, the last one short), and a
    validation set larger than the training set (its buffers outgrow the first's)."""
    import bpexp.core.stacked as stacked

    if chunked:
        monkeypatch.setattr(stacked, "EVAL_ELEMENTS", 3 * 5 * 3)  # 3 rows: 3 nets of width 5
    nets, X, Y, _, _ = _case(9, "softmax", "cross_entropy", "sigmoid")
    X_val, Y_val = _data(np.random.default_rng(1), 11, 3, 3, "softmax", "cross_entropy")
    opts = _options("mbgd", "adam", "exponential", "full", "cross_entropy", X_val, Y_val)
    _check_against_fit(nets, X, Y, opts, RTOL["float64"])


def test_seconds_is_the_stacks_training_time():
    nets = [MLP([2, 3, 1], seed=s) for s in range(2)]
    hs = fit_many(nets, XOR_X, XOR_Y, variant="sgd", lr=0.5, epochs=4)
    secs = [[r["seconds"] for r in h.records] for h in hs]
    assert secs[0] == secs[1] and secs[0] == sorted(secs[0]) and secs[0][0] > 0
