"""Time to target, the honest way: per run, per group, and as runtime distributions.

The measure is the time a run takes to reach a target (a training loss at or
below a value, a validation accuracy at or above one), counted on four x-axes
(epochs, updates, samples seen, training seconds), as the COCO platform
compares optimisers.  A run that never reaches the target is not dropped: it
counts as never reaching it (time infinite), so that

- :func:`ecdf` (the fraction of a group's runs that reached the target by x)
  ends at the group's success rate, never above;
- medians of time to target are medians over all the group's runs, infinite
  when fewer than half succeeded;
- :func:`carried_curves` keep a run that stopped at its threshold at its last
  value to the end of the axis, so a group's median curve is always over all of
  its runs, never over the ones still going.

A run succeeds when it finished, reached every target, never diverged and
learnt: a classifier whose accuracy stays near chance has failed whatever loss
it reached (a relative loss target is easy for a dead network).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from bpexp.analysis.runs import AXES, ordered_values
from bpexp.core.training import divergence_limit

#: column of the time to target on each x-axis
TO_TARGET = {
    "epoch": "epochs_to_target",
    "updates": "updates_to_target",
    "samples": "samples_to_target",
    "seconds": "seconds_to_target",
}
#: what each x-axis counts, for tables and figure labels
AXIS_LABELS = {
    "epoch": "epochs",
    "updates": "updates (parameter steps)",
    "samples": "samples seen",
    "seconds": "training time (s)",
}
#: the curves a target can be on (the history's columns)
TARGET_METRICS = ("train_loss", "val_loss", "train_accuracy", "val_accuracy")
#: how far above chance a classifier's final accuracy must be to have learnt:
#: this fraction of the way from chance to perfect (MNIST: 0.19, XOR: 0.55)
LEARNT_MARGIN = 0.1
#: why a run did not succeed, in the order tables list them
OUTCOMES = ("success", "not reached", "diverged", "at chance", "unfinished")
#: quantiles of a group: the median and the inter-quartile range
QUANTILES = (0.25, 0.5, 0.75)


@dataclass(frozen=True)
class Target:
    """A value a run's curve must reach: losses from above, accuracies from below."""

    metric: str
    value: float

    def __post_init__(self) -> None:
        if self.metric not in TARGET_METRICS:
            raise ValueError(
                f"target metric {self.metric!r}: must be one of {', '.join(TARGET_METRICS)}"
            )
        if not math.isfinite(self.value):
            raise ValueError(f"target {self.metric}: must be a finite number, got {self.value}")

    @property
    def higher_is_better(self) -> bool:
        return self.metric.endswith("accuracy")

    def met(self, values: np.ndarray) -> np.ndarray:
        """Where ``values`` meet the target (NaN never does)."""
        with np.errstate(invalid="ignore"):
            return values >= self.value if self.higher_is_better else values <= self.value

    def __str__(self) -> str:
        return f"{self.metric} {'>=' if self.higher_is_better else '<='} {self.value:g}"


def parse_target(text: str) -> Target:
    """``"val_accuracy=0.9"`` or ``"train_loss<=0.01"`` as a :class:`Target`.

    The direction follows the metric (losses down, accuracies up); an explicit
    ``<=`` or ``>=`` must agree with it.
    """
    m = re.fullmatch(r"\s*([a-z_]+)\s*(<=|>=|=)\s*([-+0-9.eE]+)\s*", text)
    if m is None:
        raise ValueError(
            f"target {text!r}: write METRIC=VALUE, e.g. train_loss=0.01 or val_accuracy=0.9"
        )
    metric, op, value = m.groups()
    target = Target(metric, float(value))
    if op != "=" and (op == ">=") != target.higher_is_better:
        raise ValueError(
            f"target {text!r}: {metric} is reached from {'below' if op == '<=' else 'above'}; "
            f"write {metric}={value}"
        )
    return target


def describe_targets(targets: list[Target]) -> str:
    return " and ".join(map(str, targets))


def chance_accuracy(n_classes: int) -> float:
    """The accuracy of guessing: one class in ``n_classes``."""
    return 1.0 / n_classes


def run_measures(
    runs: pd.DataFrame, histories: pd.DataFrame, targets: list[Target]
) -> pd.DataFrame:
    """Per run: time to reach every target on each x-axis, final values, outcome.

    Parameters
    ----------
    runs : DataFrame
        As :func:`bpexp.analysis.load_runs` (``run_id``, ``status``,
        ``dataset.name``...).
    histories : DataFrame
        As :func:`bpexp.analysis.load_histories` (long form).
    targets : list of Target
        All must hold at the same epoch for the run to have reached them.

    Returns
    -------
    DataFrame indexed by ``run_id``: ``epochs_to_target``, ``updates_to_target``,
    ``samples_to_target``, ``seconds_to_target`` (the first record meeting every
    target; infinite for a run that did not succeed), ``last_epoch``,
    ``last_updates``, ``last_samples``, ``last_seconds`` (where the run ended),
    ``budget_epoch``... (where ``trainer.epochs`` would have ended it), ``reached``,
    ``final_loss`` (training), ``final_accuracy`` (validation when held out,
    else training), ``chance``, ``learnt``, ``diverged``, ``outcome`` (one of
    :data:`OUTCOMES`) and ``success``.
    """
    from bpexp.data import SHAPES

    wide = histories.pivot_table(
        index=["run_id", *AXES], columns="metric", values="value", observed=True
    ).reset_index()
    by_run = {rid: g.sort_values("epoch") for rid, g in wide.groupby("run_id", observed=True)}
    rows = [_one_run(r, by_run.get(r["run_id"]), targets, SHAPES) for r in runs.to_dict("records")]
    return pd.DataFrame(rows).set_index("run_id")


def with_measures(
    runs: pd.DataFrame, histories: pd.DataFrame, targets: list[Target]
) -> pd.DataFrame:
    """``runs`` with their :func:`run_measures` (which replace the runs' own
    ``final_loss`` and ``diverged``: the measures read every epoch)."""
    measures = run_measures(runs, histories, targets)
    return runs.drop(columns=[c for c in measures.columns if c in runs]).join(measures, on="run_id")


def _loss_limit(run: dict, h: pd.DataFrame, loss: np.ndarray) -> float:
    """The training loss above which the run diverged, by fit's rule: its
    ``trainer.divergence_factor`` times its epoch-0 loss (infinite when the run
    has no factor or its history no epoch 0: only NaN or infinite losses count)."""
    factor = run.get("trainer.divergence_factor")
    if not isinstance(factor, (int, float)) or isinstance(factor, bool) or h["epoch"].iloc[0]:
        return math.inf
    return divergence_limit(float(loss[0]), float(factor))


def _one_run(run: dict, h: pd.DataFrame | None, targets: list[Target], shapes) -> dict:
    row = {"run_id": run["run_id"]}
    inf = {TO_TARGET[a]: math.inf for a in AXES}
    last = {f"last_{a}": float(h[a].iloc[-1]) if h is not None and len(h) else 0.0 for a in AXES}
    # the budget on each axis: the epoch budget at the run's own pace (a run that
    # stopped at its threshold could have gone on)
    epochs = run.get("trainer.epochs")
    pace = epochs / last["last_epoch"] if epochs and last["last_epoch"] else 1.0
    last.update({f"budget_{a}": last[f"last_{a}"] * pace for a in AXES})
    finished = run.get("status") == "FINISHED"
    if h is None or h.empty:
        return {
            **row,
            **inf,
            **last,
            "reached": False,
            "final_loss": math.nan,
            "final_accuracy": math.nan,
            "chance": math.nan,
            "learnt": math.nan,
            "diverged": False,
            "outcome": "unfinished" if not finished else "not reached",
            "success": False,
        }
    met = np.ones(len(h), dtype=bool)
    for t in targets:
        col = h[t.metric].to_numpy(float) if t.metric in h else np.full(len(h), np.nan)
        met &= t.met(col)
    hit = np.flatnonzero(met)
    loss = h["train_loss"].to_numpy(float) if "train_loss" in h else np.full(len(h), np.nan)
    diverged = bool((~np.isfinite(loss) | (loss > _loss_limit(run, h, loss))).any())
    acc_col = next((c for c in ("val_accuracy", "train_accuracy") if c in h), None)
    final_acc = float(h[acc_col].iloc[-1]) if acc_col else math.nan
    n_classes = shapes.get(run.get("dataset.name"), (None, None))[1]
    chance = chance_accuracy(n_classes) if n_classes and acc_col else math.nan
    learnt = (
        bool(final_acc >= chance + LEARNT_MARGIN * (1 - chance))
        if math.isfinite(chance)
        else math.nan
    )
    if not finished:
        outcome = "unfinished"
    elif diverged:
        outcome = "diverged"
    elif len(hit) == 0:
        outcome = "not reached"
    elif learnt is False:  # reached a loss target, yet predicts no better than a guess
        outcome = "at chance"
    else:
        outcome = "success"
    success = outcome == "success"
    times = {TO_TARGET[a]: float(h[a].iloc[hit[0]]) if success else math.inf for a in AXES}
    return {
        **row,
        **times,
        **last,
        "reached": len(hit) > 0,
        "final_loss": float(loss[-1]),
        "final_accuracy": final_acc,
        "chance": chance,
        "learnt": learnt,
        "diverged": diverged,
        "outcome": outcome,
        "success": success,
    }


def wilson_interval(successes: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """The Wilson score interval of a success rate (95% by default); (nan, nan) for n = 0."""
    if n == 0:
        return math.nan, math.nan
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def quantiles(values: np.ndarray) -> tuple[float, float, float]:
    """The 25th, 50th and 75th percentiles, failures (infinite) included.

    Each is the smallest value with at least that fraction of the runs at or
    below it: the quantile of the runtime distribution (:func:`ecdf`) itself,
    never an interpolation towards infinity, and never NaN.  Of a group of two
    where one run reached the target at ``t``, the median is ``t`` and the 75th
    percentile infinite.
    """
    v = np.asarray(values, dtype=float)
    if v.size == 0:
        return math.nan, math.nan, math.nan
    return tuple(float(q) for q in np.quantile(v, QUANTILES, method="inverted_cdf"))


def group_frame(table: pd.DataFrame, by: list[str]):
    """``table`` grouped by the ``by`` keys in their natural (numeric) order."""
    if not by:
        return [((), table)]
    keys = table[by].apply(tuple, axis=1)
    order = sorted(
        set(keys), key=lambda k: tuple(ordered_values(table[b]).index(v) for b, v in zip(by, k))
    )
    return [(k, table[keys == k]) for k in order]


def summarize(table: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """One row per group of the ``by`` keys (across seeds).

    ``table`` is runs joined with :func:`run_measures`.  Columns: the keys;
    ``runs`` (finished runs: the denominator of everything below),
    ``unfinished``, ``seeds``, ``successes``, ``success_rate`` and its 95%
    Wilson interval ``success_low`` / ``success_high``; for each x-axis the
    ``median``, ``q25`` and ``q75`` of the time to target over every finished
    run (a failure counts as infinite); the same of ``final_loss`` and, when the
    runs have one, ``final_accuracy``; and the count of each failure outcome.
    """
    rows = []
    has_accuracy = table["final_accuracy"].notna().any()
    for keys, g in group_frame(table, by):
        done = g[g["outcome"] != "unfinished"]
        n, s = len(done), int(done["success"].sum())
        lo, hi = wilson_interval(s, n)
        row = dict(zip(by, keys))
        row.update(
            runs=n,
            unfinished=len(g) - n,
            seeds=done["seed"].nunique() if "seed" in done else n,
            successes=s,
            success_rate=s / n if n else math.nan,
            success_low=lo,
            success_high=hi,
        )
        for axis in AXES:
            q25, med, q75 = quantiles(done[TO_TARGET[axis]])
            row.update({f"{axis}_q25": q25, f"{axis}_median": med, f"{axis}_q75": q75})
        measures = ("final_loss", "final_accuracy") if has_accuracy else ("final_loss",)
        for m in measures:
            q25, med, q75 = quantiles(done[m].dropna())
            row.update({f"{m}_q25": q25, f"{m}_median": med, f"{m}_q75": q75})
        for outcome in OUTCOMES[1:]:
            row[outcome] = int((g["outcome"] == outcome).sum())
        rows.append(row)
    return pd.DataFrame(rows)


def ecdf(table: pd.DataFrame, by: list[str], axis: str) -> pd.DataFrame:
    """Runtime distributions: per group, the fraction of its finished runs that
    reached the target by ``x`` on ``axis``, failures counted as never.

    Returns a long frame with the ``by`` keys, ``x`` (0, then each success time,
    then the end of the group's budget: ``trainer.epochs`` on that axis, which
    differs between variants on the updates axis and is an estimate in seconds), ``fraction`` (a
    non-decreasing step function ending at the success rate) and ``runs``.
    """
    col = TO_TARGET[axis]
    frames = []
    for keys, g in group_frame(table, by):
        done = g[g["outcome"] != "unfinished"]
        n = len(done)
        x_end = float(done[f"budget_{axis}"].max()) if n else math.nan
        times = np.sort(done.loc[done["success"], col].to_numpy(float))
        xs = np.concatenate([[0.0], times, [max(x_end, times[-1]) if times.size else x_end]])
        counts = np.concatenate([[0], np.arange(1, times.size + 1), [times.size]])
        frame = pd.DataFrame({"x": xs, "fraction": counts / n if n else np.nan, "runs": n})
        for k, v in zip(by, keys):
            frame.insert(len(frame.columns) - 3, k, v)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def carried_curves(
    table: pd.DataFrame,
    histories: pd.DataFrame,
    by: list[str],
    *,
    metric: str = "train_loss",
    axis: str = "epoch",
    points: int = 400,
) -> pd.DataFrame:
    """Per group, the median and inter-quartile range of ``metric`` against ``axis``
    over all the group's finished runs.

    A run's value at ``x`` is its last record at or before ``x``: a run that
    stopped (at its threshold, or diverged) keeps its last value to the end of
    the axis, so every point is over every run of the group (``runs``).  A
    non-finite value (a diverged run) ranks above every finite one.

    Returns a long frame with the ``by`` keys, ``x``, ``q25``, ``median``,
    ``q75`` and ``runs``.
    """
    curves = histories[histories["metric"] == metric]
    per_run = {
        rid: (c[axis].to_numpy(float), c["value"].to_numpy(float))
        for rid, c in curves.sort_values([axis, "epoch"]).groupby("run_id", observed=True)
    }
    done = table[(table["outcome"] != "unfinished") & table["run_id"].isin(list(per_run))]
    x_end = max((xs[-1] for xs, _ in per_run.values()), default=0.0)
    frames = []
    for keys, g in group_frame(done, by):
        xs_all = np.unique(np.concatenate([per_run[r][0] for r in g["run_id"]] + [[x_end]]))
        if xs_all.size > points:  # evenly spaced among the records' own x values
            xs_all = xs_all[np.unique(np.linspace(0, xs_all.size - 1, points).round().astype(int))]
        stack = np.empty((len(g), xs_all.size))
        for i, rid in enumerate(g["run_id"]):
            xs, ys = per_run[rid]
            ys = np.where(np.isfinite(ys), ys, np.inf)
            idx = np.searchsorted(xs, xs_all, side="right") - 1
            stack[i] = np.where(idx >= 0, ys[np.clip(idx, 0, None)], np.nan)
        qs = np.array([quantiles(col) for col in stack.T])
        frame = pd.DataFrame(
            {"x": xs_all, "q25": qs[:, 0], "median": qs[:, 1], "q75": qs[:, 2], "runs": len(g)}
        )
        for k, v in zip(by, keys):
            frame.insert(len(frame.columns) - 5, k, v)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
