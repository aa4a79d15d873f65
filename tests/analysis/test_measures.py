"""Convergence measures and comparisons against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from bpexp.analysis import cast_param, compare, convergence


def long_history(run_id: str, losses: list[float], per_epoch_updates: int, n: int) -> pd.DataFrame:
    epochs = np.arange(len(losses))
    return pd.DataFrame(
        {
            "run_id": run_id,
            "epoch": epochs,
            "updates": epochs * per_epoch_updates,
            "samples": epochs * n,
            "seconds": epochs * 0.1,
            "metric": "train_loss",
            "value": losses,
        }
    )


@pytest.fixture
def histories():
    return pd.concat(
        [
            long_history("a", [1.0, 0.5, 0.2, 0.05, 0.01], per_epoch_updates=4, n=8),
            long_history("b", [1.0, 10.0, math.inf], per_epoch_updates=1, n=8),
            long_history("c", [2.0, 1.5, 1.2, 1.1, 1.0], per_epoch_updates=8, n=8),
        ],
        ignore_index=True,
    )


def test_absolute_threshold_on_four_axes(histories):
    c = convergence(histories, threshold=0.1)
    a = c.loc["a"]
    assert (a["epoch_to_threshold"], a["updates_to_threshold"], a["samples_to_threshold"]) == (
        3,
        12,
        24,
    )
    assert a["seconds_to_threshold"] == pytest.approx(0.3)
    assert a["converged"] and not a["diverged"]
    assert (a["initial"], a["final"], a["best"], a["target"]) == (1.0, 0.01, 0.01, 0.1)
    # mean of log10 loss over the epochs, by the trapezoid rule, worked by hand:
    # log10: 0, -0.30103, -0.69897, -1.30103, -2 -> area -3.30103 over 4 epochs
    assert a["auc_log_loss"] == pytest.approx(-3.30103 / 4, abs=1e-5)
    assert not c.loc["c"]["converged"] and math.isnan(c.loc["c"]["epoch_to_threshold"])


def test_relative_threshold(histories):
    c = convergence(histories, relative=0.6)
    assert c.loc["a"]["target"] == 0.6 and c.loc["a"]["epoch_to_threshold"] == 1
    assert c.loc["c"]["target"] == pytest.approx(1.2) and c.loc["c"]["epoch_to_threshold"] == 2


def test_divergence(histories):
    b = convergence(histories, threshold=0.1).loc["b"]
    assert b["diverged"] and not b["converged"]
    assert b["best"] == 1.0 and math.isinf(b["final"]) and math.isnan(b["auc_log_loss"])


def test_compare_groups_and_success_rates():
    table = pd.DataFrame(
        {
            "variant": ["sgd"] * 4 + ["bgd"] * 2,
            "lr": [0.1] * 6,
            "epochs": [1.0, 2.0, 3.0, math.nan, 10.0, 20.0],
            "converged": [True, True, True, False, True, True],
        }
    )
    out = compare(table, ["variant", "lr"], "epochs").set_index("variant")
    sgd, bgd = out.loc["sgd"], out.loc["bgd"]
    assert (sgd["n"], sgd["n_finite"], sgd["median"], sgd["q25"], sgd["q75"]) == (
        4,
        3,
        2.0,
        1.5,
        2.5,
    )
    assert sgd["mean"] == 2.0 and sgd["std"] == 1.0 and sgd["success_rate"] == 0.75
    assert (bgd["n"], bgd["median"], bgd["success_rate"]) == (2, 15.0, 1.0)
    with pytest.raises(KeyError, match="no column nope"):
        compare(table, ["nope"], "epochs")


@pytest.mark.parametrize(
    "text,value",
    [("0.1", 0.1), ("3", 3), ("true", True), ("False", False), ("null", None), ("None", None),
     ("sgd", "sgd"), ("[10, 20]", "[10, 20]"), ("1e-08", 1e-08)],
)  # fmt: skip
def test_params_cast_back(text, value):
    out = cast_param(text)
    assert out == value and type(out) is type(value)
