"""Turning tracked runs into convergence comparisons (pandas).

- :func:`load_runs`: one row per run of an experiment, a sweep or a filter, with
  params cast back to their types, the group choices, summary metrics and status.
- :func:`load_histories`: the complete per-epoch histories of many runs (from
  their ``history.csv`` artifacts, never thinned) as one long DataFrame.
- :func:`convergence`: per-run measures: epochs, updates, samples and seconds to
  a loss threshold (absolute, or a fraction of the initial loss), final and best
  loss, area under the log-loss curve, converged / diverged.
- :func:`compare`: those measures grouped by any config axes, aggregated across
  seeds (median and inter-quartile range, mean and standard deviation, success
  rate, number of runs).

Fair comparison is the point: BGD makes one update per epoch, SGD makes ``n``.
Every measure and curve is available against the four x-axes of ``AXES``.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import unquote, urlparse

import numpy as np
import pandas as pd

#: the x-axes every comparison can use: epochs, updates, samples seen, wall seconds
AXES = ("epoch", "updates", "samples", "seconds")
#: the summary metrics a run logs
SUMMARY = (
    "initial_loss",
    "final_loss",
    "best_loss",
    "epochs_run",
    "epochs_to_threshold",
    "converged",
    "diverged",
    "wall_seconds",
    "train_seconds",
    "final_train_accuracy",
    "final_val_loss",
    "final_val_accuracy",
)


class NoRunsError(LookupError):
    """Nothing matched: the message says what was looked for, and where."""


def _client(tracking_uri: str | None):
    from mlflow import MlflowClient

    from bpexp.tracking import resolve_tracking_uri

    return MlflowClient(tracking_uri=resolve_tracking_uri(tracking_uri))


def cast_param(value: str):
    """An MLflow param string back to the value it was: int, float, bool, None, list or str."""
    if value in ("null", "None"):
        return None
    if value in ("true", "True"):
        return True
    if value in ("false", "False"):
        return False
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return value


def load_runs(
    experiment: str | None = None,
    *,
    parent: str | None = None,
    filter_string: str = "",
    tracking_uri: str | None = None,
    include_parents: bool = False,
) -> pd.DataFrame:
    """One row per run, with typed params, choices, summary metrics and status.

    Parameters
    ----------
    experiment : str, optional
        Experiment name; every experiment when omitted (with ``parent``, the
        parent's own experiment).
    parent : str, optional
        A sweep's parent run id: only its child runs.
    filter_string : str
        An MLflow filter, e.g. ``"params.`optimizer.variant` = 'sgd'"``.
    tracking_uri : str, optional
        Default as for the runs: ``$MLFLOW_TRACKING_URI``, else ``./mlflow.db``.
    include_parents : bool
        Keep the sweeps' parent runs (left out by default).

    Returns
    -------
    DataFrame
        Columns: ``run_id``, ``run_name``, ``status``, ``experiment``,
        ``parent_run_id``, ``start_time``, ``end_time``, ``artifact_uri``, every
        param under its own dotted name (``optimizer.lr``, ``optimizer``...),
        every summary metric of :data:`SUMMARY` (NaN where a run lacks it), and
        the tags ``dataset``, ``variant``, ``stop_reason``, ``error``.

    Raises
    ------
    NoRunsError
        When nothing matches, naming the experiment (or parent) and the store.
    """
    client = _client(tracking_uri)
    where = f"the tracking store {client.tracking_uri}"
    if parent is not None:
        parent_run = client.get_run(parent)
        experiments = [client.get_experiment(parent_run.info.experiment_id)]
        clause = f"tags.mlflow.parentRunId = '{parent}'"
        filter_string = f"{filter_string} and {clause}" if filter_string else clause
    elif experiment is not None:
        exp = client.get_experiment_by_name(experiment)
        if exp is None:
            names = [e.name for e in client.search_experiments()]
            raise NoRunsError(
                f"no experiment named {experiment!r} in {where}; "
                f"experiments there: {', '.join(names) or 'none'}"
            )
        experiments = [exp]
    else:
        experiments = client.search_experiments()
    experiment_ids = [e.experiment_id for e in experiments]
    names = {e.experiment_id: e.name for e in experiments}
    rows, token = [], None
    while True:
        page = client.search_runs(
            experiment_ids, filter_string=filter_string, max_results=5000, page_token=token
        )
        for run in page:
            tags = run.data.tags
            if not include_parents and tags.get("bpexp.role") == "sweep":
                continue
            row = {
                "run_id": run.info.run_id,
                "run_name": run.info.run_name,
                "status": run.info.status,
                "experiment": names.get(run.info.experiment_id, run.info.experiment_id),
                "parent_run_id": tags.get("mlflow.parentRunId"),
                "start_time": pd.to_datetime(run.info.start_time, unit="ms"),
                "end_time": pd.to_datetime(run.info.end_time, unit="ms")
                if run.info.end_time
                else pd.NaT,
                "artifact_uri": run.info.artifact_uri,
            }
            row.update({k: cast_param(v) for k, v in run.data.params.items()})
            row.update({k: run.data.metrics.get(k, math.nan) for k in SUMMARY})
            row.update({k: tags.get(k) for k in ("dataset", "variant", "stop_reason", "error")})
            rows.append(row)
        token = page.token
        if not token:
            break
    if not rows:
        what = (
            f"sweep {parent}"
            if parent
            else f"experiment {experiment!r}"
            if experiment
            else "any experiment"
        )
        raise NoRunsError(f"no runs in {what} in {where}")
    df = pd.DataFrame(rows)
    df = df.sort_values("start_time", kind="stable").reset_index(drop=True)
    df.attrs["params"] = sorted({k for run in rows for k in run} - set(FIXED) - set(SUMMARY))
    return df


#: the columns load_runs makes besides params and summary metrics
FIXED = (
    "run_id",
    "run_name",
    "status",
    "experiment",
    "parent_run_id",
    "start_time",
    "end_time",
    "artifact_uri",
    "dataset",
    "variant",
    "stop_reason",
    "error",
)


def varied_axes(runs: pd.DataFrame, exclude: tuple[str, ...] = ("seed",)) -> list[str]:
    """The config keys whose value differs between runs (the sweep's axes), seeds
    excluded; a group choice is dropped when its dotted twin says the same
    (``optimizer`` vs ``optimizer.variant``)."""
    params = runs.attrs.get("params") or [c for c in runs.columns if "." in c]
    axes = [
        p
        for p in params
        if p in runs and p not in exclude and runs[p].astype(str).nunique(dropna=False) > 1
    ]
    dotted = [a for a in axes if "." in a]
    axes = [
        a
        for a in axes
        if "." in a or not any(runs[a].astype(str).equals(runs[d].astype(str)) for d in dotted)
    ]
    # the variant first, then the learning rate: what a comparison is usually about
    first = ("optimizer.variant", "optimizer.lr")
    return sorted(axes, key=lambda a: (first.index(a) if a in first else len(first), a))


def _history_path(client, run_id: str, artifact_uri: str) -> Path:
    """The run's history.csv, read in place from a local store, else downloaded."""
    parsed = urlparse(artifact_uri)
    if parsed.scheme in ("", "file"):
        local = Path(unquote(parsed.path)) / "history.csv"
        if local.is_file():
            return local
    return Path(client.download_artifacts(run_id, "history.csv"))


def load_histories(
    runs: pd.DataFrame, *, tracking_uri: str | None = None, threads: int = 8
) -> pd.DataFrame:
    """The complete per-epoch histories of ``runs`` as one long DataFrame.

    Reads each run's ``history.csv`` artifact (every epoch, whatever was thinned
    for MLflow's metric store): in place for a local store, else downloaded on
    ``threads`` threads.

    Returns
    -------
    DataFrame
        Columns ``run_id`` (categorical), ``epoch``, ``updates``, ``samples``,
        ``seconds``, ``metric`` (categorical) and ``value``.  Runs without a
        history artifact (e.g. failed before training) are left out.
    """
    client = _client(tracking_uri)

    from mlflow.exceptions import MlflowException

    def read(item):
        run_id, uri = item
        try:
            path = _history_path(client, run_id, uri)
        except (OSError, MlflowException):
            return None  # a run without a history (it never trained)
        frame = pd.read_csv(path)
        frame.insert(0, "run_id", run_id)
        return frame

    items = list(zip(runs["run_id"], runs["artifact_uri"], strict=True))
    with ThreadPoolExecutor(max_workers=threads) as pool:
        frames = [f for f in pool.map(read, items) if f is not None]
    if not frames:
        return pd.DataFrame(columns=["run_id", *AXES, "metric", "value"])
    wide = pd.concat(frames, ignore_index=True)
    measures = [c for c in wide.columns if c not in ("run_id", *AXES)]
    long = wide.melt(id_vars=["run_id", *AXES], value_vars=measures, var_name="metric")
    long = long.dropna(subset=["value"])
    long["run_id"] = long["run_id"].astype("category")
    long["metric"] = long["metric"].astype("category")
    return long.reset_index(drop=True)


def convergence(
    histories: pd.DataFrame,
    *,
    threshold: float | None = None,
    relative: float | None = None,
    metric: str = "train_loss",
) -> pd.DataFrame:
    """Convergence measures per run, from long histories.

    Parameters
    ----------
    threshold : float, optional
        An absolute loss to reach.
    relative : float, optional
        Or a fraction of each run's initial (epoch 0) loss, e.g. 0.01.
    metric : str
        The curve to measure (``train_loss`` or ``val_loss``).

    Returns
    -------
    DataFrame indexed by ``run_id`` with ``initial``, ``final``, ``best``,
    ``target`` (the loss to reach), ``epoch_to_threshold``, ``updates_to_threshold``,
    ``samples_to_threshold``, ``seconds_to_threshold`` (NaN when never reached),
    ``converged`` (reached), ``diverged`` (a non-finite loss), ``auc_log_loss``
    (the mean of log10 loss over the epochs run: the area under the log-loss curve
    per epoch; lower is better).
    """
    if threshold is not None and relative is not None:
        raise ValueError("give threshold or relative, not both")
    curves = histories[histories["metric"] == metric]
    out = []
    for run_id, c in curves.groupby("run_id", observed=True, sort=False):
        c = c.sort_values("epoch")
        loss = c["value"].to_numpy(dtype=float)
        finite = np.isfinite(loss)
        initial = loss[0]
        target = (
            threshold
            if threshold is not None
            else (relative * initial if relative is not None else math.nan)
        )
        row = {
            "run_id": run_id,
            "initial": initial,
            "final": loss[-1],
            "best": loss[finite].min() if finite.any() else math.nan,
            "target": target,
            "diverged": not finite.all(),
        }
        hit = np.flatnonzero(finite & (loss <= target)) if math.isfinite(target) else []
        for axis in AXES:
            row[f"{axis}_to_threshold"] = c[axis].to_numpy()[hit[0]] if len(hit) else math.nan
        row["converged"] = len(hit) > 0
        epochs = c["epoch"].to_numpy(dtype=float)
        if finite.all() and len(loss) > 1 and (loss > 0).all():
            row["auc_log_loss"] = np.trapezoid(np.log10(loss), epochs) / (epochs[-1] - epochs[0])
        else:
            row["auc_log_loss"] = math.nan
        out.append(row)
    return pd.DataFrame(out).set_index("run_id")


def compare(
    table: pd.DataFrame,
    by: list[str] | str,
    value: str,
    *,
    success: str | None = "converged",
) -> pd.DataFrame:
    """Aggregate ``value`` across seeds for each combination of the ``by`` axes.

    Returns one row per group with ``n`` (runs), ``median``, ``q25``, ``q75``,
    ``mean``, ``std`` (over runs where ``value`` is finite), ``n_finite`` and,
    when the ``success`` column exists, ``success_rate`` (its mean over all
    runs of the group).
    """
    by = [by] if isinstance(by, str) else list(by)
    missing = [c for c in [*by, value] if c not in table.columns]
    if missing:
        raise KeyError(
            f"no column {', '.join(missing)}; columns: {', '.join(map(str, table.columns))}"
        )
    t = table.copy()
    t["_v"] = pd.to_numeric(t[value], errors="coerce").replace([np.inf, -np.inf], np.nan)
    g = t.groupby(by, dropna=False, sort=True)
    result = pd.DataFrame(
        {
            "n": g.size(),
            "n_finite": g["_v"].count(),
            "median": g["_v"].median(),
            "q25": g["_v"].quantile(0.25),
            "q75": g["_v"].quantile(0.75),
            "mean": g["_v"].mean(),
            "std": g["_v"].std(),
        }
    )
    if success is not None and success in t.columns:
        result["success_rate"] = g[success].apply(lambda s: s.astype(float).mean())
    return result.reset_index()


def runs_with_convergence(runs: pd.DataFrame, conv: pd.DataFrame) -> pd.DataFrame:
    """``runs`` joined with their convergence measures on ``run_id``.

    ``converged`` and ``diverged`` then mean the analysis's (its threshold); the
    runs' own (``trainer.loss_threshold``) become ``run_converged``/``run_diverged``.
    """
    runs = runs.rename(columns={"converged": "run_converged", "diverged": "run_diverged"})
    return runs.join(conv, on="run_id")


def to_markdown(df: pd.DataFrame, floatfmt: str = ".4g") -> str:
    """A DataFrame as a Markdown table (via tabulate)."""
    return df.to_markdown(index=False, floatfmt=floatfmt)
