"""A run in MLflow, from a job's output directory.

- :func:`start_run`: at a job's start, its run is created RUNNING with its
  params, so the UI shows it; ``run.json`` records what publishing needs.
- :class:`LivePoints`: a long run's thinned points, sent during training with
  MLflow's own asynchronous logging, so the UI draws its curves as it trains.
- :func:`publish`: at the end, the thinned metric points, the summary, the
  tags and the files go to the run, which ends with the job's status.
  ``python -m bpexp.sync`` is the same call, for a job whose store was away,
  or whose process was killed before it could publish.

Everything published is read from the output directory, so what the job wrote
and what MLflow shows are the same, whoever publishes it.  (A job whose output
directory cannot be written publishes from a temporary one it fills from memory.)
"""

from __future__ import annotations

import fcntl
import logging
import math
import os
import socket
import time
from pathlib import Path

from bpexp.tracking.files import (
    artifact_dir,
    logged_epochs,
    read_history,
    read_record,
    read_summary,
    recover_history,
    write_record,
)
from bpexp.tracking.names import (
    ERROR_TAG,
    HISTORY,
    PARENT_RUN_ID,
    PARTIAL,
    PUBLISHED_FROM,
    RUN_FILE,
    STOP_REASON,
)
from bpexp.tracking.store import (
    HIDDEN,
    TrackingError,
    check_store,
    client_for,
    first_line,
    masked,
    open_experiment,
    open_store,
)

log = logging.getLogger(__name__)

#: MLflow takes at most 1,000 metrics and 100 params in one ``log_batch``
METRICS_PER_BATCH = 1000
PARAMS_PER_BATCH = 100
#: MLflow keeps at most this many characters of a param value
PARAM_MAX = 6000
#: a run's states in ``run.json``
RUNNING, ENDED, PUBLISHED = "running", "ended", "published"


class NothingToPublish(FileNotFoundError):
    """The directory holds no run, or one already published."""


class PublishedFromMemory(NothingToPublish):
    """The directory's run was published from its job's memory, its disk full."""


def start_run(
    output_dir: Path,
    *,
    uri: str,
    experiment: str,
    run_name: str,
    tags: dict[str, str],
    params: dict[str, str],
    metric_keys: list[str],
    epochs: int,
    max_points: int | None,
    experiment_id: str | None = None,
) -> dict:
    """Record the run in ``output_dir/run.json``, then create it RUNNING in the
    store with its params.  Returns the record (with ``run_id``, or None when the
    store could not be reached: the run is then created by :func:`publish`).

    ``run.json`` holds the store's URI with its password masked; publishing it
    later (``bpexp.sync``) takes the password from ``--tracking-uri``.
    """
    output_dir.mkdir(parents=True, exist_ok=True)
    record = {
        "tracking_uri": masked(uri),
        "experiment": experiment,
        "experiment_id": experiment_id,
        "run_id": None,
        "run_name": run_name,
        "tags": tags,
        "params": {k: v[:PARAM_MAX] for k, v in params.items()},
        "metric_keys": metric_keys,
        "epochs": epochs,
        "max_points": max_points,
        "state": RUNNING,
        "status": None,
        "host": socket.gethostname(),
        "pid": os.getpid(),
    }
    write_record(output_dir, record)
    try:
        client = client_for(uri)
        if experiment_id is None:
            client, experiment_id = open_experiment(uri, experiment)
        run = client.create_run(experiment_id, run_name=run_name, tags=tags)
        _log_params(client, run.info.run_id, record["params"])
    except Exception as exc:  # the job trains all the same; publish tries again
        log.warning("could not start the run in %s (%s): it is kept in %s", masked(uri),
                    first_line(exc), output_dir)  # fmt: skip
        return record
    record.update(experiment_id=experiment_id, run_id=run.info.run_id)
    write_record(output_dir, record)
    return record


def _log_params(client, run_id: str, params: dict[str, str], have: dict | None = None) -> None:
    from mlflow.entities import Param

    todo = [Param(k, v) for k, v in params.items() if k not in (have or {})]
    for i in range(0, len(todo), PARAMS_PER_BATCH):
        client.log_batch(run_id, params=todo[i : i + PARAMS_PER_BATCH])


class LivePoints:
    """A long run's thinned points, sent to its MLflow run while it trains.

    Nothing is sent in a run's first ``after`` seconds (most runs of a sweep
    end sooner, and are published whole at their end); then the points
    gathered are sent every ``every`` seconds through MLflow's asynchronous
    logging, which sends from its own thread.  :meth:`wait` returns the epochs
    sent, which :func:`publish` then leaves out.
    """

    def __init__(self, uri: str, record: dict, after: float = 5.0, every: float = 10.0) -> None:
        self.uri, self.run_id = uri, record["run_id"]
        self.steps = logged_epochs(record["epochs"], record["max_points"])
        self.keys = record["metric_keys"]
        self.every = every
        self.due = time.monotonic() + after
        #: the run's start (ms), which each point's time counts from
        self.start = int(time.time() * 1000)
        self.pending: list[dict] = []
        self.sent: set[int] = set()
        self.operations: list = []
        self.client = None

    def add(self, record: dict) -> None:
        if self.run_id is None or record["epoch"] not in self.steps:
            return
        self.pending.append(record)
        if time.monotonic() >= self.due:
            self._send()

    def _send(self) -> None:
        from mlflow.entities import Metric

        self.due = time.monotonic() + self.every
        points = [(r, k) for r in self.pending for k in self.keys if k in r]
        start = self.start
        metrics = [Metric(k, float(r[k]), start + int(1000 * r.get("seconds", 0.0)), r["epoch"])
                   for r, k in points]  # fmt: skip
        self.client = self.client or client_for(self.uri)
        try:
            for i in range(0, len(metrics), METRICS_PER_BATCH):
                batch = metrics[i : i + METRICS_PER_BATCH]
                self.operations.append(self.client.log_batch(self.run_id, batch, synchronous=False))
        except Exception as exc:  # the points are in history.csv: publish sends them
            log.warning("live metrics not sent (%s); publishing sends them", first_line(exc))
            self.run_id = None
            return
        self.sent.update(r["epoch"] for r in self.pending)
        self.pending = []

    def wait(self) -> set[int]:
        """Wait for the points in flight; return the epochs the store has."""
        try:
            for op in self.operations:
                op.wait()
        except Exception as exc:
            log.warning("live metrics not all sent (%s); publishing sends them", first_line(exc))
            return set()
        return self.sent


def end_in_store(uri: str, run_id: str | None, status: str, error: str) -> bool:
    """End a run in the store alone, its error as a tag (its files could not be
    written).  Returns whether it could; never raises."""
    if run_id is None:
        return False
    from mlflow.entities import RunTag

    try:
        client = client_for(uri)
        client.log_batch(run_id, tags=[RunTag(ERROR_TAG, error[:5000])])
        client.set_terminated(run_id, status)
    except Exception:
        return False
    return True


def tag_in_store(uri: str, run_id: str | None, key: str, value: str) -> bool:
    """Set a tag of a run in the store.  Returns whether it could; never raises."""
    if run_id is None:
        return False
    try:
        client_for(uri).set_tag(run_id, key, value)
    except Exception:
        return False
    return True


def process_alive(record: dict) -> bool:
    """Whether the process that wrote a job's ``run.json`` is still running (on another
    host: assumed not, as ``bpexp.sync`` is run once its job is over)."""
    if record.get("host") != socket.gethostname():
        return False  # another node's: bpexp.sync is run once its job is over
    try:
        os.kill(record["pid"], 0)
    except ProcessLookupError:
        return False
    except (PermissionError, KeyError, TypeError):
        return True
    return True


def earlier_run(output_dir: Path) -> dict | None:
    """The record of a run an earlier attempt at this job left in ``output_dir``
    (a resumed sweep), or None.

    Raises
    ------
    TrackingError
        When that attempt's process is still running: two commands would run the
        same job of the same sweep.
    """
    try:
        record = read_record(output_dir)
    except (OSError, ValueError):
        return None
    if record.get("state") == RUNNING and process_alive(record):
        raise TrackingError(f"{output_dir}: this job is running in process {record['pid']} already")
    return record


def publish(
    output_dir: str | Path,
    tracking_uri: str | None = None,
    *,
    logged_steps: set[int] | None = None,
    parent_run_id: str | None = None,
    force: bool = False,
) -> str:
    """Send the run of ``output_dir`` to its store and end it; return its run id.

    The run created at the job's start receives what it lacks (params, the
    thinned metric points, summary metrics, ``stop_reason`` and ``error`` tags,
    the files of ``artifacts/``) and ends with the job's status.  When the store
    no longer has it (or ``tracking_uri`` names another store), a run with the
    same name, tags, params and parent is created there.

    A job whose process is gone without ending its run (``kill -9``, a power
    cut) is published as KILLED, with the epochs its history kept.

    Parameters
    ----------
    tracking_uri
        The store to publish to; default: the job's (needed when its URI held a
        password, which ``run.json`` does not keep).
    logged_steps
        The epochs whose points the run already has (the job's live points);
        default: asked of the store.
    parent_run_id
        The sweep's parent run in the store published to, when it is not the
        one the job recorded (a sweep synced into another store).
    force
        Publish a run recorded as running although its process seems alive.

    Raises
    ------
    NothingToPublish
        No ``run.json``, or its run was published already (by the job from its
        memory, its disk full: :class:`PublishedFromMemory`).
    TrackingError
        The store cannot be reached or refuses the run; nothing is marked
        published, so the same call can be made again.
    """
    output_dir = Path(output_dir)
    path = output_dir / RUN_FILE
    if not path.is_file():
        raise NothingToPublish(f"{path} not found: no run of bpexp in {output_dir}")
    # the directory, not run.json, which each step replaces by a new file
    lock = os.open(output_dir, os.O_RDONLY)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a second bpexp.sync of it waits for the first
        return _publish_locked(output_dir, tracking_uri, logged_steps, parent_run_id, force)
    finally:
        os.close(lock)


def _publish_locked(output_dir: Path, tracking_uri, logged_steps, parent_run_id, force) -> str:
    record = read_record(output_dir)
    if record["state"] == PUBLISHED:
        raise NothingToPublish(
            f"{output_dir}: nothing to sync, run {record['run_id']} was published already"
        )
    if record["state"] == RUNNING and process_alive(record) and not force:
        raise NothingToPublish(f"{output_dir}: its job (process {record['pid']}) is still running")
    uri = tracking_uri or record["tracking_uri"]
    if HIDDEN in uri and not tracking_uri:
        raise TrackingError(
            f"{output_dir}: its store {uri} needs a password, which bpexp does not write to "
            "disk: give it with --tracking-uri"
        )
    check_store(uri)
    if record["state"] == RUNNING:
        if source := _published_from(uri, record):
            record.update(state=PUBLISHED, status="FAILED", published_from=source)
            try:
                write_record(output_dir, record)
            except OSError:
                pass  # the disk is still full: the store is asked again next time
            raise PublishedFromMemory(
                f"{output_dir}: nothing to sync, run {record['run_id']} was logged from the "
                "job's memory (its output disk was full) and ended FAILED"
            )
        # killed before it could end its run: what it kept is an unfinished run
        recover_history(artifact_dir(output_dir))
        record.update(state=ENDED, status="KILLED",
                      error="the job's process ended without ending its run (killed?)")  # fmt: skip
        write_record(output_dir, record)
    try:
        run_id = _send(output_dir, record, uri, logged_steps, parent_run_id)
    except TrackingError:
        raise
    except Exception as exc:
        raise TrackingError(
            f"publishing {output_dir} to {masked(uri)} failed ({first_line(exc)})"
        ) from exc
    record.update(state=PUBLISHED, run_id=run_id)
    write_record(output_dir, record)
    return run_id


def _send(output_dir: Path, record: dict, uri: str, logged_steps, parent_run_id) -> str:
    from mlflow.entities import Metric, RunTag
    from mlflow.exceptions import MlflowException

    client = open_store(uri)
    run = None
    if record.get("run_id"):
        try:
            run = client.get_run(record["run_id"])
        except MlflowException:
            run = None
    if run is None:  # never created, or not in this store
        logged_steps = set()
        client, experiment_id = open_experiment(uri, record["experiment"])
        tags = dict(record["tags"])
        if parent_run_id is not None:
            tags[PARENT_RUN_ID] = parent_run_id
        run = client.create_run(experiment_id, run_name=record["run_name"], tags=tags)
    run_id = run.info.run_id
    _log_params(client, run_id, record["params"], run.data.params)

    files = artifact_dir(output_dir)
    summary = read_summary(output_dir) or {}
    steps = logged_epochs(record["epochs"], record["max_points"])
    threshold = summary.get("metrics", {}).get("epochs_to_threshold")
    if threshold is not None:
        steps.add(int(threshold))
    history = read_history(files / HISTORY, steps) if (files / HISTORY).is_file() else []
    if logged_steps is None:
        logged_steps = {m.step for m in client.get_metric_history(run_id, "train_loss")}
    # a point's time is when training reached it: the run's start plus its
    # training seconds (MLflow's relative-time axis then shows training time)
    start = run.info.start_time or int(time.time() * 1000)
    metrics = [
        Metric(k, float(r[k]), start + int(1000 * r.get("seconds", 0.0)), r["epoch"])
        for r in history
        if r["epoch"] not in logged_steps
        for k in record["metric_keys"]
        if k in r
    ]
    ts = int(time.time() * 1000)
    step = history[-1]["epoch"] if history else 0
    for k, v in summary.get("metrics", {}).items():
        if k not in run.data.metrics:
            metrics.append(Metric(k, math.nan if v is None else float(v), ts, step))
    tags = []
    if "stop_reason" in summary:
        tags.append(RunTag(STOP_REASON, summary["stop_reason"]))
    if record.get("error"):
        tags.append(RunTag(ERROR_TAG, record["error"][:5000]))
    for i in range(0, max(len(metrics), 1), METRICS_PER_BATCH):
        client.log_batch(run_id, metrics=metrics[i : i + METRICS_PER_BATCH], tags=tags)
        tags = []
    if files.is_dir():
        for path in sorted(files.iterdir()):
            if path.is_file() and not path.name.endswith((PARTIAL, ".tmp")):
                client.log_artifact(run_id, str(path))
    if record.get("published_from"):  # last: the tag says every part above was sent
        client.set_tag(run_id, PUBLISHED_FROM, record["published_from"])
    client.set_terminated(run_id, record.get("status") or "FINISHED")
    return run_id


def _published_from(uri: str, record: dict) -> str | None:
    """Where a job's run, its ``run.json`` left stale by a full disk, was published
    from and ended (``memory``: see :meth:`bpexp.tracking.RunTracker.finish`); None
    when it was not."""
    from mlflow.exceptions import MlflowException

    if not record.get("run_id"):
        return None
    try:
        run = open_store(uri).get_run(record["run_id"])
    except MlflowException:
        return None
    if run.info.status == "RUNNING":
        return None
    return run.data.tags.get(PUBLISHED_FROM)
