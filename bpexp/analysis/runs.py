"""Runs and sweeps from the tracking store, as pandas frames.

- :func:`select_runs`: the runs a comparison is about: one sweep (the newest in
  the store by default, a parent run id, or a sweep directory), or an
  experiment's newest sweep (every sweep with ``all_sweeps``), each
  (configuration, seed) pair counted once.
- :func:`load_runs`: one row per run of an experiment or a sweep, with params
  cast back to their types, summary metrics and status.
- :func:`load_histories`: the complete per-epoch histories of many runs (their
  ``history.csv`` artifacts, never thinned) as one long frame.
- :func:`swept_keys`: the configuration keys that differ between runs (a sweep's
  axes), seeds aside.
"""

from __future__ import annotations

import json
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlparse

import pandas as pd

from bpexp.tracking.names import (
    HISTORY,
    JOB_TAGS,
    NOT_THE_EXPERIMENT,
    PARENT_FILE,
    PARENT_RUN_ID,
    ROLE,
    SUMMARY,
)
from bpexp.tracking.store import client_for, download_artifact, find_run, resolve_tracking_uri

#: the x-axes every comparison can use: epochs, updates, samples seen, training seconds
AXES = ("epoch", "updates", "samples", "seconds")
#: the columns load_runs makes besides params and summary metrics
FIXED = (
    "run_id",
    "run_name",
    "status",
    "experiment_name",
    "parent_run_id",
    "start_time",
    "end_time",
    "artifact_uri",
    *JOB_TAGS,
)
#: the axes a comparison is usually about, in the order tables and figures use them;
#: an update rule or schedule before its own knobs (``update.beta1`` is logged by adam
#: runs only: it varies with ``update.name`` and adds no group of its own)
FIRST_AXES = ("dataset.name", "optimizer.variant", "optimizer.lr", "update.name", "schedule.name")


class NoRunsError(LookupError):
    """Nothing matched: the message says what was looked for, and where."""


def client(tracking_uri: str | None):
    """An ``MlflowClient`` for ``tracking_uri`` (default as for the runs)."""
    return client_for(resolve_tracking_uri(tracking_uri))


def cast_param(value: str):
    """An MLflow param string back to the value it was: int, float, bool, None or str."""
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


def _row(run, experiment_name: str) -> dict:
    tags = run.data.tags
    info = run.info
    row = {
        "run_id": info.run_id,
        "run_name": info.run_name,
        "status": info.status,
        "experiment_name": experiment_name,
        "parent_run_id": tags.get(PARENT_RUN_ID),
        "start_time": pd.to_datetime(info.start_time, unit="ms"),
        "end_time": pd.to_datetime(info.end_time, unit="ms") if info.end_time else pd.NaT,
        "artifact_uri": info.artifact_uri,
    }
    row.update({k: cast_param(v) for k, v in run.data.params.items()})
    row.update({k: run.data.metrics.get(k, math.nan) for k in SUMMARY})
    row.update({k: tags.get(k) for k in JOB_TAGS})
    return row


def _search(mlflow_client, experiment_ids: list[str], filter_string: str) -> list:
    runs, token = [], None
    while True:
        page = mlflow_client.search_runs(
            experiment_ids, filter_string=filter_string, max_results=5000, page_token=token
        )
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def _frame(rows: list[dict]) -> pd.DataFrame:
    df = pd.DataFrame(rows)
    df = df.sort_values("start_time", kind="stable").reset_index(drop=True)
    df.attrs["params"] = sorted({k for run in rows for k in run} - set(FIXED) - set(SUMMARY))
    return df


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
        Columns: ``run_id``, ``run_name``, ``status``, ``experiment_name`` (the
        MLflow experiment), ``parent_run_id``, ``start_time``, ``end_time``,
        ``artifact_uri``, every param under its own name (``optimizer.lr``, and the
        group choices ``optimizer``, ``experiment``...),
        every summary metric of :data:`SUMMARY` (NaN where a run lacks it), and
        the tags ``dataset``, ``variant``, ``stop_reason``, ``error``.  Oldest first.

    Raises
    ------
    NoRunsError
        When nothing matches, naming the experiment (or parent) and the store.
    """
    c = client(tracking_uri)
    where = f"the tracking store {c.tracking_uri}"
    if parent is not None:
        parent_run = find_run(c, parent)
        if parent_run is None:
            raise NoRunsError(f"no run {parent!r} in {where}")
        experiments = [c.get_experiment(parent_run.info.experiment_id)]
        clause = f"tags.`{PARENT_RUN_ID}` = '{parent}'"
        filter_string = f"{filter_string} and {clause}" if filter_string else clause
    elif experiment is not None:
        experiments = [_experiment(c, experiment)]
    else:
        experiments = c.search_experiments()
    names = {e.experiment_id: e.name for e in experiments}
    rows = [
        _row(run, names[run.info.experiment_id])
        for run in _search(c, list(names), filter_string)
        if include_parents or run.data.tags.get(ROLE) != "sweep"
    ]
    if not rows:
        what = (
            f"sweep {parent}"
            if parent
            else f"experiment {experiment!r}"
            if experiment
            else "any experiment"
        )
        raise NoRunsError(f"no runs in {what} in {where}")
    return _frame(rows)


def _experiment(c, name: str):
    exp = c.get_experiment_by_name(name)
    if exp is None:
        names = [e.name for e in c.search_experiments()]
        raise NoRunsError(
            f"no experiment named {name!r} in the tracking store {c.tracking_uri}; "
            f"experiments there: {', '.join(names) or 'none'}"
        )
    return exp


def identity_keys(runs: pd.DataFrame) -> list[str]:
    """The params that say what was trained: dotted config keys and ``seed``, less
    :data:`NOT_THE_EXPERIMENT` (group choices such as ``optimizer`` repeat a dotted
    key's value and are left out)."""
    params = runs.attrs.get("params") or [c for c in runs.columns if "." in c or c == "seed"]
    return [
        p
        for p in params
        if p in runs
        and ("." in p or p == "seed")
        and not any(p.startswith(prefix) for prefix in NOT_THE_EXPERIMENT)
    ]


def deduplicate(runs: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Each (configuration, seed) once: the newest finished run of it, else the newest.

    Returns the runs kept (oldest first) and how many were dropped.
    """
    keys = identity_keys(runs)
    if not keys or runs.empty:
        return runs, 0
    ident = [repr(row) for row in runs[keys].itertuples(index=False, name=None)]
    order = runs.assign(_finished=runs["status"].eq("FINISHED"), _ident=ident).sort_values(
        ["_finished", "start_time"], kind="stable"
    )
    kept = order.drop_duplicates("_ident", keep="last").sort_values("start_time", kind="stable")
    kept = kept.drop(columns=["_finished", "_ident"])
    kept.attrs = runs.attrs
    return kept.reset_index(drop=True), len(runs) - len(kept)


def ordered_values(series: pd.Series) -> list:
    """A column's distinct values: numbers ordered as numbers (never as strings),
    then the rest in the order they first appear (a sweep's own order, as runs
    come oldest first)."""
    values = list(pd.unique(pd.Series(series.tolist(), dtype=object)))

    def key(item):
        i, v = item
        number = isinstance(v, (int, float)) and not isinstance(v, bool)
        return (0, float(v)) if number else (1, float(i))

    return [v for _, v in sorted(enumerate(values), key=key)]


def swept_keys(runs: pd.DataFrame, exclude: tuple[str, ...] = ("seed",)) -> list[str]:
    """The keys whose values differ between ``runs`` (the sweep's axes), seeds aside.

    A key is kept only when it splits the runs further than the keys before it
    (``optimizer.variant``, ``optimizer.lr`` first, then alphabetically): a key
    that changes together with another (a data set's own defaults swept with
    ``dataset.name``) adds no group.
    """
    candidates = [
        k for k in identity_keys(runs) if k not in exclude and runs[k].map(repr).nunique() > 1
    ]
    candidates.sort(key=lambda k: (FIRST_AXES.index(k) if k in FIRST_AXES else len(FIRST_AXES), k))
    chosen: list[str] = []
    groups = 1
    for k in candidates:
        n = runs[[*chosen, k]].map(repr).drop_duplicates().shape[0]
        if n > groups:
            chosen.append(k)
            groups = n
    return chosen


# ----------------------------------------------------------------- sweeps
@dataclass
class Selection:
    """The runs a comparison covers, and how they were chosen.

    Attributes
    ----------
    runs : DataFrame
        As :func:`load_runs`, each (configuration, seed) once.
    what : str
        One line naming them: the sweep (name and id) or the experiment.
    notes : list of str
        What the reader must know: other sweeps left out, duplicates dropped.
    parents : list of str
        The parent run ids of the sweeps covered.
    tracking_uri : str
        The store they came from.
    """

    runs: pd.DataFrame
    what: str
    tracking_uri: str
    notes: list[str] = field(default_factory=list)
    parents: list[str] = field(default_factory=list)


def _sweeps(c, experiment_ids: list[str] | None) -> list:
    """Sweep parent runs, newest first."""
    ids = experiment_ids or [e.experiment_id for e in c.search_experiments()]
    return c.search_runs(
        ids,
        filter_string=f"tags.`{ROLE}` = 'sweep'",
        order_by=["attributes.start_time DESC"],
        max_results=1000,
    )


def _describe(run) -> str:
    return f"sweep {run.info.run_name!r} ({run.info.run_id})"


def select_runs(
    *,
    parent: str | None = None,
    sweep_dir: str | Path | None = None,
    experiment: str | None = None,
    all_sweeps: bool = False,
    tracking_uri: str | None = None,
) -> Selection:
    """The runs of one sweep, or of an experiment, each (configuration, seed) once.

    Parameters
    ----------
    parent : str, optional
        A sweep's parent run id, or ``"latest"``: the newest sweep in the store
        (also what is chosen when nothing is given).
    sweep_dir : path, optional
        A sweep's directory (``multirun/DATE/TIME-ID``): its parent run, in the
        store it was tracked in (unless ``tracking_uri`` is given).
    experiment : str, optional
        An MLflow experiment: its newest sweep (the notes say how many others it
        holds), every sweep with ``all_sweeps``; runs outside sweeps when it has none.
    all_sweeps : bool
        With ``experiment``: every run of it.

    Raises
    ------
    NoRunsError
        One line naming what was looked for and the store.
    """
    if sweep_dir is not None:
        path = Path(sweep_dir) / PARENT_FILE
        try:
            record = json.loads(path.read_text())
            parent = record["run_id"]
        except (OSError, ValueError, KeyError):
            raise NoRunsError(
                f"{sweep_dir} is not a sweep directory with a tracked parent run "
                f"({PARENT_FILE} missing or unreadable)"
            ) from None
        tracking_uri = tracking_uri or record.get("tracking_uri")
    c = client(tracking_uri)
    uri = c.tracking_uri
    notes: list[str] = []
    if experiment is not None:
        exp = _experiment(c, experiment)
        sweeps = _sweeps(c, [exp.experiment_id])
        if not sweeps or all_sweeps:
            runs = load_runs(experiment, tracking_uri=uri)
            what = f"experiment {experiment!r}" + (
                f", all {len(sweeps)} sweeps" if len(sweeps) > 1 else ""
            )
            parents = [s.info.run_id for s in sweeps]
        else:
            newest = sweeps[0]
            if len(sweeps) > 1:
                notes.append(
                    f"experiment {experiment!r} holds {len(sweeps)} sweeps; this report covers "
                    f"the newest, {_describe(newest)}, started "
                    f"{pd.to_datetime(newest.info.start_time, unit='ms'):%Y-%m-%d %H:%M}; "
                    "--all-sweeps pools them (each configuration and seed counted once)"
                )
            runs = load_runs(parent=newest.info.run_id, tracking_uri=uri)
            what = f"{_describe(newest)} in experiment {experiment!r}"
            parents = [newest.info.run_id]
    else:
        if parent in (None, "latest"):
            sweeps = _sweeps(c, None)
            if not sweeps:
                raise NoRunsError(
                    f"no sweep in the tracking store {uri}: run one "
                    "(python -m bpexp -m ...) or name an experiment (--experiment NAME)"
                )
            parent = sweeps[0].info.run_id
        runs = load_runs(parent=parent, tracking_uri=uri)
        parent_run = c.get_run(parent)
        what = f"{_describe(parent_run)} in experiment {runs['experiment_name'].iloc[0]!r}"
        parents = [parent]
    runs, dropped = deduplicate(runs)
    if dropped:
        notes.append(
            f"{dropped} run{'s' if dropped > 1 else ''} repeated a configuration and seed "
            "already covered; each pair is counted once (the newest finished run)"
        )
    return Selection(runs=runs, what=what, tracking_uri=uri, notes=notes, parents=parents)


# -------------------------------------------------------------- histories
def _history_path(mlflow_client, run_id: str, artifact_uri: str) -> Path | None:
    """The run's history.csv, read in place from a local store, else downloaded."""
    parsed = urlparse(artifact_uri)
    if parsed.scheme in ("", "file"):
        local = Path(unquote(parsed.path)) / HISTORY
        if local.is_file():
            return local
    return download_artifact(mlflow_client, run_id, HISTORY)


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
    c = client(tracking_uri)

    def read(item):
        run_id, uri = item
        path = _history_path(c, run_id, uri)
        if path is None:
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
