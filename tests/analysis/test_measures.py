"""Time to target, runtime distributions and carried curves against hand-worked values."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from bpexp.analysis import (
    Target,
    carried_curves,
    cast_param,
    deduplicate,
    ecdf,
    parse_target,
    quantiles,
    run_measures,
    summarize,
    swept_keys,
    wilson_interval,
)
from bpexp.analysis.runs import ordered_values


def history(run_id: str, losses, *, updates_per_epoch: int, n: int, acc=None) -> pd.DataFrame:
    """One run's long history: epoch e has the loss losses[e]."""
    epochs = np.arange(len(losses))
    wide = pd.DataFrame(
        {
            "run_id": run_id,
            "epoch": epochs,
            "updates": epochs * updates_per_epoch,
            "samples": epochs * n,
            "seconds": epochs * 0.1,
            "train_loss": losses,
        }
    )
    if acc is not None:
        wide["train_accuracy"] = acc
    return wide.melt(
        id_vars=["run_id", "epoch", "updates", "samples", "seconds"], var_name="metric"
    )


def runs_frame(rows: list[dict]) -> pd.DataFrame:
    base = {"status": "FINISHED", "dataset.name": "xor", "trainer.epochs": 4, "seed": 0}
    df = pd.DataFrame([{**base, **r} for r in rows])
    df.attrs["params"] = [c for c in df.columns if "." in c or c == "seed"]
    return df


@pytest.fixture
def sweep():
    """Three sgd runs (one reaches 0.1 at epoch 2, one at 3, one never) and two bgd
    runs (one reaches it at 4, one diverges)."""
    runs = runs_frame(
        [
            {"run_id": "s0", "optimizer.variant": "sgd", "seed": 0},
            {"run_id": "s1", "optimizer.variant": "sgd", "seed": 1},
            {"run_id": "s2", "optimizer.variant": "sgd", "seed": 2},
            {"run_id": "b0", "optimizer.variant": "bgd", "seed": 0},
            {"run_id": "b1", "optimizer.variant": "bgd", "seed": 1},
        ]
    )
    hist = pd.concat(
        [
            # s0 stops at its threshold: three records only
            history("s0", [1.0, 0.5, 0.09], updates_per_epoch=4, n=4, acc=[0.5, 0.75, 1.0]),
            history(
                "s1",
                [1.0, 0.6, 0.2, 0.1, 0.1],
                updates_per_epoch=4,
                n=4,
                acc=[0.5, 0.5, 1.0, 1.0, 1.0],
            ),
            history(
                "s2",
                [1.0, 0.9, 0.8, 0.7, 0.6],
                updates_per_epoch=4,
                n=4,
                acc=[0.5, 0.5, 0.75, 0.75, 0.75],
            ),
            history(
                "b0",
                [1.0, 0.8, 0.4, 0.3, 0.1],
                updates_per_epoch=1,
                n=4,
                acc=[0.5, 0.5, 0.75, 1.0, 1.0],
            ),
            history("b1", [1.0, 3.0, math.inf], updates_per_epoch=1, n=4, acc=[0.5, 0.5, 0.5]),
        ],
        ignore_index=True,
    )
    measures = run_measures(runs, hist, [Target("train_loss", 0.1)])
    return runs.join(measures, on="run_id"), hist


def test_time_to_target_on_four_axes_and_failures_never_reach_it(sweep):
    table, _ = sweep
    t = table.set_index("run_id")
    s0 = t.loc["s0"]
    assert (s0["epochs_to_target"], s0["updates_to_target"], s0["samples_to_target"]) == (2, 8, 8)
    assert s0["seconds_to_target"] == pytest.approx(0.2)
    assert t.loc["s1", "epochs_to_target"] == 3 and t.loc["b0", "updates_to_target"] == 4
    assert list(t["outcome"]) == ["success", "success", "not reached", "success", "diverged"]
    assert math.isinf(t.loc["s2", "epochs_to_target"]) and math.isinf(
        t.loc["b1", "seconds_to_target"]
    )
    # s0 stopped at epoch 2 of a 4-epoch budget: its budget on each axis is where 4 would end
    assert (s0["budget_epoch"], s0["budget_updates"]) == (4, 16)


def test_summary_counts_failures_as_never_reaching_the_target(sweep):
    table, _ = sweep
    s = summarize(table, ["optimizer.variant"]).set_index("optimizer.variant")
    # numbers-as-numbers, strings in the order the runs first show them
    assert list(s.index) == ["sgd", "bgd"]
    sgd = s.loc["sgd"]
    assert (sgd["runs"], sgd["successes"], sgd["seeds"]) == (3, 2, 3)
    # median of (2, 3, inf) is 3, not the 2.5 of the successful runs alone
    assert (sgd["epoch_q25"], sgd["epoch_median"], sgd["epoch_q75"]) == (2, 3, math.inf)
    bgd = s.loc["bgd"]
    # one of two reached it at epoch 4: half the runs by 4, the rest never
    assert (bgd["epoch_median"], bgd["epoch_q75"], bgd["diverged"]) == (4, math.inf, 1)
    assert (bgd["success_low"], bgd["success_high"]) == pytest.approx(wilson_interval(1, 2))


def test_ecdf_is_a_runtime_distribution_ending_at_the_success_rate(sweep):
    table, _ = sweep
    data = ecdf(table, ["optimizer.variant"], "epoch")
    sgd = data[data["optimizer.variant"] == "sgd"]
    assert list(sgd["x"]) == [0, 2, 3, 4] and list(sgd["fraction"]) == pytest.approx(
        [0, 1 / 3, 2 / 3, 2 / 3]
    )
    for _, g in data.groupby("optimizer.variant"):
        assert (np.diff(g["fraction"]) >= 0).all()
    bgd = data[data["optimizer.variant"] == "bgd"]
    assert bgd["fraction"].iloc[-1] == 0.5 and set(bgd["runs"]) == {2}
    # on the updates axis each group ends at its own budget: 4 epochs x its updates per epoch
    up = ecdf(table, ["optimizer.variant"], "updates").groupby("optimizer.variant")["x"].max()
    assert (up["sgd"], up["bgd"]) == (16, 4)


def test_carried_curves_are_over_every_run_and_never_rise_after_a_threshold(sweep):
    table, hist = sweep
    data = carried_curves(table, hist, ["optimizer.variant"], axis="epoch")
    sgd = data[data["optimizer.variant"] == "sgd"].set_index("x")
    assert (sgd["runs"] == 3).all()
    # epoch 4: s0 carried at 0.09 (it stopped at 2), s1 0.1, s2 0.6 -> median 0.1
    assert sgd.loc[4, "median"] == pytest.approx(0.1)
    assert (sgd.loc[3, "q25"], sgd.loc[3, "q75"]) == (0.09, 0.7)
    assert (np.diff(sgd["median"]) <= 0).all()
    bgd = data[data["optimizer.variant"] == "bgd"].set_index("x")
    # the diverged run ranks above every finite loss
    assert (bgd.loc[4, "median"], bgd.loc[4, "q75"]) == (0.1, math.inf)
    assert (bgd["runs"] == 2).all()


def test_a_network_at_chance_has_not_learnt_whatever_loss_it_reached():
    runs = runs_frame(
        [{"run_id": "dead", "dataset.name": "mnist"}, {"run_id": "ok", "dataset.name": "mnist"}]
    )
    hist = pd.concat(
        [
            history("dead", [2.3, 0.5, 0.5], updates_per_epoch=1, n=4, acc=[0.1, 0.1, 0.1035]),
            history("ok", [2.3, 0.9, 0.4], updates_per_epoch=1, n=4, acc=[0.1, 0.6, 0.9]),
        ]
    )
    m = run_measures(runs, hist, [parse_target("train_loss=1.0")])
    assert m.loc["dead", "reached"] and m.loc["dead", "outcome"] == "at chance"
    assert not m.loc["dead", "success"] and math.isinf(m.loc["dead", "epochs_to_target"])
    assert m.loc["ok", "success"] and m.loc["ok", "epochs_to_target"] == 1
    assert m.loc["dead", "chance"] == pytest.approx(0.1)


def test_a_finite_loss_above_the_runs_divergence_factor_is_divergence():
    """fit's rule, with each run's own trainer.divergence_factor: a loss above factor x
    the epoch-0 loss diverged, finite or not; a run without the param (or null)
    diverged only on a NaN or infinite loss."""
    grows = [2.0, 30.0, 2.5e5]  # MNIST at lr 1e6 goes 2.4 -> 3e5
    runs = runs_frame(
        [
            {"run_id": "f1000", "trainer.divergence_factor": 1000.0},
            {"run_id": "f1e6", "trainer.divergence_factor": 1e6},
            {"run_id": "null", "trainer.divergence_factor": None},
            {"run_id": "f10", "trainer.divergence_factor": 10.0},
        ]
    )
    hist = pd.concat(
        [
            history(rid, grows, updates_per_epoch=1, n=4, acc=[0.5, 0.5, 0.5])
            for rid in ("f1000", "f1e6", "null", "f10")
        ]
    )
    m = run_measures(runs, hist, [Target("train_loss", 0.1)])
    assert m["diverged"].to_dict() == {"f1000": True, "f1e6": False, "null": False, "f10": True}
    assert m.loc["f1000", "outcome"] == "diverged" and m.loc["f1e6", "outcome"] == "not reached"
    no_param = run_measures(
        runs_frame([{"run_id": "old"}]),
        history("old", grows, updates_per_epoch=1, n=4),
        [Target("train_loss", 0.1)],
    )
    assert not no_param.loc["old", "diverged"]


def test_several_targets_must_hold_at_the_same_epoch():
    runs = runs_frame([{"run_id": "a", "dataset.name": "mnist"}])
    hist = history("a", [2.0, 0.5, 0.2, 0.1], updates_per_epoch=1, n=4, acc=[0.1, 0.5, 0.8, 0.95])
    hist = hist.replace({"metric": {"train_accuracy": "val_accuracy"}})
    targets = [parse_target("train_loss=0.5"), parse_target("val_accuracy>=0.9")]
    assert run_measures(runs, hist, targets).loc["a", "epochs_to_target"] == 3


def test_targets_parse_with_the_direction_of_their_metric():
    assert str(parse_target("val_accuracy=0.9")) == "val_accuracy >= 0.9"
    assert str(parse_target("train_loss<=1e-2")) == "train_loss <= 0.01"
    for bad in ("val_accuracy<=0.9", "loss=0.1", "train_loss", "train_loss=nan"):
        with pytest.raises(ValueError, match="target"):
            parse_target(bad)


def test_wilson_interval_known_values():
    assert wilson_interval(0, 5) == pytest.approx((0.0, 0.4345), abs=1e-4)
    assert wilson_interval(5, 5) == pytest.approx((0.5655, 1.0), abs=1e-4)
    assert wilson_interval(4, 5) == pytest.approx((0.3755, 0.9638), abs=1e-4)
    assert all(math.isnan(v) for v in wilson_interval(0, 0))


def test_quantiles_are_those_of_the_runtime_distribution():
    assert quantiles([1, 2, 3, 4, 5]) == (2, 3, 4)
    assert quantiles([5, 1, 2, 3]) == (1, 2, 3)
    assert quantiles([1, 2, math.inf]) == (1, 2, math.inf)
    assert quantiles([7, math.inf]) == (7, 7, math.inf)
    assert quantiles([math.inf, math.inf]) == (math.inf, math.inf, math.inf)


def test_swept_keys_and_their_order():
    runs = runs_frame(
        [
            {
                "run_id": str(i),
                "optimizer.lr": lr,
                "optimizer.variant": v,
                "seed": s,
                "tracking.uri": f"sqlite:///{i}.db",
                "trainer.epochs": 10 if v == "sgd" else 20,
            }
            for i, (lr, v, s) in enumerate(
                [(l, v, s) for l in (10.0, 3.0, 100.0) for v in ("sgd", "bgd") for s in (0, 1)]
            )
        ]
    )
    # trainer.epochs changes with the variant: it adds no group; seeds and tracking are not axes
    assert swept_keys(runs) == ["optimizer.variant", "optimizer.lr"]
    assert ordered_values(runs["optimizer.lr"]) == [3.0, 10.0, 100.0]
    assert [cast_param(v) for v in ("3", "0.5", "true", "null", "relu")] == [
        3,
        0.5,
        True,
        None,
        "relu",
    ]


def test_a_configuration_and_seed_count_once():
    runs = runs_frame(
        [
            {"run_id": "old", "optimizer.lr": 0.5, "start_time": 1, "tracking.uri": "a"},
            {"run_id": "new", "optimizer.lr": 0.5, "start_time": 2, "tracking.uri": "b"},
            {"run_id": "failed", "optimizer.lr": 0.5, "start_time": 3, "status": "FAILED"},
            {"run_id": "other", "optimizer.lr": 0.5, "start_time": 4, "seed": 1},
        ]
    )
    kept, dropped = deduplicate(runs)
    assert list(kept["run_id"]) == ["new", "other"] and dropped == 2


def test_a_sweep_over_update_rules_is_grouped_by_the_rule_not_its_knobs():
    # adam runs alone log update.beta1, momentum runs alone update.momentum
    nan = float("nan")
    runs = pd.DataFrame(
        {
            "update.name": ["plain", "momentum", "adam"] * 2,
            "update.momentum": [nan, 0.9, nan] * 2,
            "update.beta1": [nan, nan, 0.9] * 2,
            "optimizer.lr": [1.0] * 6,
            "seed": [0, 0, 0, 1, 1, 1],
        }
    )
    assert swept_keys(runs) == ["update.name"]
