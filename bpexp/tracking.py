"""MLflow tracking of runs and sweeps.

- The store: ``tracking.uri``, else ``MLFLOW_TRACKING_URI``, else
  ``sqlite:///<launch dir>/mlflow.db``, made absolute in the launching process
  (relative SQLite paths resolve against the directory the command ran in).
  Artifacts of a SQLite store go to ``mlartifacts/`` beside the database.
- A multirun is one parent run, created by :class:`SweepCallback` in the
  launching process (which also creates the SQLite schema once, before any
  parallel job), and one child run per job, linked by ``mlflow.parentRunId``.
  The parent's id reaches the jobs through a small file in the sweep directory,
  so it works with any launcher whose jobs see that directory.
- Metrics are sent in batches (``log_batch``) and bounded to
  ``tracking.max_points`` points per metric; the complete per-epoch history is
  always written as the ``history.csv`` artifact.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import re
import shlex
import subprocess
import sys
import threading
import time
import traceback
import warnings
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from hydra.errors import CompactHydraException
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from bpexp import signals

log = logging.getLogger(__name__)

PARENT_FILE = ".bpexp-parent.json"
#: left in a job's output directory when its tracking failed (see bpexp.sync)
SYNC_FILE = "sync.json"
#: MLflow accepts at most 1,000 metrics in one log_batch call
BATCH = 1000
#: epochs from which the tracking process, not the job, draws the loss curve
FIGURE_REMOTE_FROM = 1000
#: send what has accumulated at least this often during a long run (seconds)
FLUSH_EVERY = 10.0
HISTORY_KEYS = (
    "train_loss",
    "train_accuracy",
    "val_loss",
    "val_accuracy",
    "grad_norm",
    "updates",
    "samples",
    "seconds",
    "lr",
)


# ------------------------------------------------------------------ the store
#: ``scheme://user:PASSWORD@``: the password part of a URI's user information,
#: also as Hydra shows overrides (``http\://user\:PASSWORD@``, doubled in reprs)
_PASSWORD = re.compile(r"(\b[A-Za-z][A-Za-z0-9+.-]*\\*://[^\s/:@\\]+\\*:)[^\s/@]+@")
#: ``scheme://user[:password]@``: all of a URI's user information
_USERINFO = re.compile(r"(\b[A-Za-z][A-Za-z0-9+.-]*://)[^\s/@]+@")
#: the port ``mlflow ui`` is told to use in the commands bpexp prints
UI_PORT = 5000


def masked(text: str) -> str:
    """``text`` with the password of every URI in it replaced by ``***``.

    ``http://user:secret@host:5000`` becomes ``http://user:***@host:5000``; a
    URI without a password is returned as it is.
    """
    return _PASSWORD.sub(r"\1***@", text)


def _without_userinfo(uri: str) -> str:
    """``uri`` without its ``user:password@`` part."""
    return _USERINFO.sub(r"\1", uri)


def _mask_log_record(factory):
    def make(*args, **kwargs) -> logging.LogRecord:
        record = factory(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a malformed call: left for the handler to report
            return record
        if "@" in message:
            record.msg, record.args = masked(message), ()
        if record.exc_info and not record.exc_text:
            record.exc_text = masked("".join(traceback.format_exception(*record.exc_info)))
            record.exc_text = record.exc_text.rstrip("\n")
        return record

    make.bpexp_masks = True
    return make


class _MaskedStream:
    """A text stream that masks URI passwords in what is written to it."""

    def __init__(self, stream) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        return self.stream.write(masked(text) if "@" in text else text)

    def writelines(self, lines) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str):
        return getattr(self.stream, name)


def mask_passwords() -> None:
    """Mask URI passwords (:func:`masked`) in this process's log records and in
    all it prints on stdout and stderr.  Idempotent.

    Hydra logs each job's overrides (``tracking.uri=http://user:secret@...``)
    and writes a failed job's overrides to stderr itself: a log-record factory
    reaches every record (log files too), whatever handlers Hydra configures
    later, and the wrapped streams what is written to them directly.
    """
    factory = logging.getLogRecordFactory()
    if not getattr(factory, "bpexp_masks", False):
        logging.setLogRecordFactory(_mask_log_record(factory))
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if stream is not None and not isinstance(stream, _MaskedStream):
            setattr(sys, name, _MaskedStream(stream))


def ui_lines(uri: str, route: str) -> list[str]:
    """Where to see ``route`` (e.g. ``experiments/1/runs``) of the store ``uri`` in
    the MLflow UI: its URL for a tracking server; for a database, the command that
    starts the UI on it and the URL then.

    The UI is a hash-routed single-page app: ``#/experiments/ID`` alone opens
    an experiment on its GenAI "Traces" tab in MLflow 3, ``#/experiments/ID/runs``
    on its runs table.  Passwords are masked in the command and left out of URLs
    (the browser asks for them).
    """
    if uri.startswith(("http://", "https://")):
        return [f"{_without_userinfo(uri).rstrip('/')}/#/{route}"]
    if uri.startswith("databricks"):
        return []
    return [
        f"mlflow ui --backend-store-uri {shlex.quote(masked(uri))} --port {UI_PORT}",
        f"then open http://127.0.0.1:{UI_PORT}/#/{route}",
    ]


def launch_dir() -> Path:
    """The directory the command was run in (set once by the launching process)."""
    return Path(os.environ.get("BPEXP_LAUNCH_DIR") or os.getcwd())


def resolve_tracking_uri(uri: str | None) -> str:
    """The absolute tracking URI for ``tracking.uri`` (see module docstring)."""
    uri = uri or os.environ.get("MLFLOW_TRACKING_URI") or "sqlite:///mlflow.db"
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        path = uri[len("sqlite:///") :]
        if path != ":memory:":
            uri = f"sqlite:///{(launch_dir() / path).resolve()}"
    return uri


def artifact_root(uri: str) -> str | None:
    """Where a new experiment's artifacts go: beside a SQLite file; else the server's choice."""
    if uri.startswith("sqlite:////"):
        return (Path(uri[len("sqlite:///") :]).parent / "mlartifacts").as_uri()
    return None


class TrackingUnavailable(CompactHydraException, RuntimeError):
    """The tracking server cannot be reached (Hydra prints the message alone)."""


def check_server(uri: str, timeout: float = 5.0) -> None:
    """For an ``http(s)://`` tracking URI, one quick ``/health`` request.

    Raises
    ------
    TrackingUnavailable
        At once, naming the server, instead of minutes of client retries.
    """
    if not uri.startswith(("http://", "https://")):
        return
    import base64
    import urllib.error
    import urllib.request
    from urllib.parse import unquote, urlsplit

    # urllib takes no user:password in a URL (MLflow's client sends it as basic auth)
    parts = urlsplit(uri)
    request = urllib.request.Request(f"{_without_userinfo(uri).rstrip('/')}/health")
    if parts.username is not None:
        user_pass = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        token = base64.b64encode(user_pass.encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as r:
            if r.status == 200:
                return
            reason = f"HTTP {r.status}"
    except urllib.error.HTTPError as exc:
        reason = f"HTTP {exc.code}"
    except (OSError, ValueError) as exc:
        reason = str(getattr(exc, "reason", None) or exc)
    raise TrackingUnavailable(
        f"tracking server {masked(uri)} is unreachable ({masked(reason)}); start it "
        "(python -m bpexp.server ...) or choose another tracking.uri"
    )


def client_for(uri: str):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri)


def tracking_process_enabled() -> bool:
    """Whether a job's MLflow calls run in a forked process (:class:`ClientProcess`).

    ``BPEXP_TRACKING_PROCESS``: ``auto`` (default) for the jobs the launching
    process runs itself (a single run, the basic launcher's sweep), whose
    second core is otherwise idle; not in the workers of parallel launchers,
    whose cores are already busy with other jobs.  ``1``: always, ``0``: never.
    Linux only (it forks).
    """
    mode = os.environ.get("BPEXP_TRACKING_PROCESS", "auto")
    if sys.platform != "linux" or mode == "0":
        return False
    launcher = os.environ.get("BPEXP_LAUNCH_PID", str(os.getpid()))
    return mode == "1" or launcher == str(os.getpid())


class ClientProcess:
    """An ``MlflowClient`` whose calls run in a process forked from this one.

    MLflow's stores are Python-heavy (SQLite through SQLAlchemy's ORM: ~0.15 ms
    per metric value), and in a background thread that work competes with
    training for the GIL.  In a forked process it runs on another core.  The
    fork happens before the job loads its data, and inherits the imports.

    Method calls are forwarded in order and return the client's result; an
    exception in the process is raised here (an ``MlflowException`` as one, with
    its message; anything else as a ``RuntimeError`` naming its type).  The
    process ignores Ctrl-C, which is the job's to handle, and ends with
    :meth:`close` or when this process goes away.  A call interrupted here (by
    Ctrl-C) ends it, and the calls after that run in this process.
    """

    def __init__(self, uri: str) -> None:
        import multiprocessing

        ctx = multiprocessing.get_context("fork")
        self._conn, child = ctx.Pipe()
        self._lock = threading.Lock()
        self._uri = uri
        #: the in-process client that takes over after a call was interrupted
        self._local = None
        self._proc = ctx.Process(
            target=_serve_client, args=(uri, child), name="bpexp-tracking", daemon=True
        )
        self._proc.start()
        child.close()

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        return functools.partial(self._call, name)

    def save_loss_curve(self, path: Path, records: list[dict], title: str) -> None:
        """Draw and save the loss-curve figure in the process (see :func:`save_loss_curve`)."""
        self._call("save_loss_curve", path, records, title)

    def _call(self, name: str, *args, **kwargs):
        with self._lock:
            if self._local is not None:
                return _dispatch(self._local, name)(*args, **kwargs)
            try:
                self._conn.send((name, args, kwargs))
                ok, value = self._conn.recv()
            except (EOFError, OSError) as exc:
                raise RuntimeError("the tracking process ended unexpectedly") from exc
            except BaseException:
                # Ctrl-C mid-call: the pipe may hold half a request or an unread
                # reply.  End the process (SQLite rolls back what it had begun)
                # and make the remaining calls (the run's KILLED) in this one.
                self._stop(kill=True)
                self._local = client_for(self._uri)
                raise
        if ok:
            return value
        kind, message, is_mlflow = value
        if is_mlflow:
            from mlflow.exceptions import MlflowException

            raise MlflowException(message)
        raise RuntimeError(f"{kind}: {message}")

    def close(self) -> None:
        with self._lock:
            if self._local is None:
                self._stop(kill=False)

    def _stop(self, kill: bool) -> None:
        if not kill:
            try:
                self._conn.send(None)
                self._proc.join(timeout=30)
            except OSError:
                pass
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join()
        self._conn.close()


def _dispatch(client, name: str):
    """What a forwarded call runs: the client's method, or bpexp's figure."""
    return save_loss_curve if name == "save_loss_curve" else getattr(client, name)


def _serve_client(uri: str, conn) -> None:
    import signal

    from mlflow.exceptions import MlflowException

    # Ctrl-C and SIGTERM are the job's to handle (it marks the run KILLED through
    # this process): a SIGTERM sent to the whole process group (SLURM, timeout) must
    # not end it first; it dies with the job instead, even when the job is SIGKILLed
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signals.die_with_parent(signal.SIGKILL)
    client = client_for(uri)
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        name, args, kwargs = message
        try:
            reply = (True, _dispatch(client, name)(*args, **kwargs))
        except BaseException as exc:
            reply = (False, (type(exc).__name__, str(exc), isinstance(exc, MlflowException)))
        conn.send(reply)


def ensure_experiment(client, name: str, uri: str) -> str:
    """The id of experiment ``name``, creating it (and a new store's schema) if needed."""
    from mlflow.exceptions import MlflowException

    exp = client.get_experiment_by_name(name)
    if exp is not None:
        if exp.lifecycle_stage == "deleted":
            client.restore_experiment(exp.experiment_id)
        return exp.experiment_id
    try:
        return client.create_experiment(name, artifact_location=artifact_root(uri))
    except MlflowException:
        # created meanwhile by another process
        return client.get_experiment_by_name(name).experiment_id


def git_commit() -> str | None:
    """The commit of the launch directory's git checkout, if there is one."""
    if "BPEXP_GIT_COMMIT" in os.environ:
        return os.environ["BPEXP_GIT_COMMIT"] or None
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=launch_dir(),
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
        commit = out.stdout.strip() if out.returncode == 0 else ""
    except (OSError, subprocess.SubprocessError):
        commit = ""
    os.environ["BPEXP_GIT_COMMIT"] = commit
    return commit or None


# ------------------------------------------------------------ what to log
def flatten(cfg: DictConfig) -> dict[str, str]:
    """The resolved config (without ``hydra``) as ``{"optimizer.lr": "0.1", ...}``."""
    out: dict[str, str] = {}

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, dict) and node:
            for k, v in node.items():
                walk(v, f"{prefix}.{k}" if prefix else str(k))
        else:
            out[prefix] = "null" if node is None else str(node)

    container = OmegaConf.to_container(cfg, resolve=True)
    container.pop("hydra", None)
    walk(container, "")
    return out


def logged_epochs(epochs: int, max_points: int | None) -> set[int]:
    """The epochs (0 = before training) whose measures go to MLflow as points.

    All of them when ``epochs + 1 <= max_points`` (or ``max_points`` is None);
    else ``max_points`` evenly spaced ones that include the first and the last.
    The epoch the threshold is reached and the last one actually run are added
    at the end of the run.
    """
    if max_points is None or epochs + 1 <= max_points:
        return set(range(epochs + 1))
    return set(np.unique(np.linspace(0, epochs, max_points).round().astype(int)).tolist())


def artifact_dir(output_dir: Path) -> Path:
    """Where a job keeps the files it logs as artifacts (and ``bpexp.sync`` finds them)."""
    return Path(output_dir) / "artifacts"


def write_history_csv(path: Path, records: list[dict]) -> None:
    """Every record as a CSV row (epoch 0 first); a measure a record lacks is empty."""
    keys = ["epoch", *[k for k in HISTORY_KEYS if any(k in r for r in records)]]
    # repr() round-trips every float exactly, and a join beats csv.writer by ~2x here
    lines = (",".join([repr(r[k]) if k in r else "" for k in keys]) for r in records)
    path.write_text(",".join(keys) + "\n" + "\n".join(lines) + "\n")


def save_loss_curve(path: Path, records: list[dict], title: str) -> None:
    """The run's loss-curve figure as a PNG (``records``: epoch 0 first)."""
    from bpexp.plots import loss_curve_figure

    # compress_level=1: a third less time than PNG's default, same pixels
    loss_curve_figure(records, title=title).savefig(path, dpi=100, pil_kwargs={"compress_level": 1})


# ----------------------------------------------------------- a job's run
class RunTracker:
    """One MLflow run for one job: created at start, metrics batched and bounded,
    artifacts and summary at the end, FAILED or KILLED on an exception.

    Every MLflow call of the run goes, in order, to one background thread: the
    run's creation and its params overlap with loading the data and training,
    and metric batches with the epochs that follow.  The job waits for them only
    at the end (and an error in any of them is raised there).  On Linux that
    thread hands each call to a forked :class:`ClientProcess` and waits for it
    without holding the GIL, so MLflow's work runs on another core.
    """

    def __init__(
        self,
        cfg: DictConfig,
        *,
        run_name: str,
        output_dir: Path,
        tags: dict[str, str],
        parent: dict | None = None,
        extra_params: dict[str, str] | None = None,
    ) -> None:
        from mlflow.entities import Metric, Param, RunTag

        self._Metric, self._RunTag = Metric, RunTag
        self.cfg = cfg
        self.output_dir = Path(output_dir)
        if parent is not None:
            self.uri = parent["tracking_uri"]
            tags = {**tags, "mlflow.parentRunId": parent["run_id"]}
        else:
            self.uri = resolve_tracking_uri(cfg.tracking.uri)
        if parent is None:
            check_server(self.uri)
        # forked before the data is loaded: a small process to copy
        remote = tracking_process_enabled()
        if remote and cfg.tracking.log_figure:
            import bpexp.plots  # noqa: F401 - once per process, inherited by every fork
        self.client = ClientProcess(self.uri) if remote else client_for(self.uri)
        #: metric values worth a batch: sending costs this process little when remote
        self.batch_at = 200 if remote else BATCH
        #: set by the first failed MLflow call: the rest of the run is kept locally only
        self.broken: BaseException | None = None
        self.records: list[dict] = []
        self.pending: list = []
        self.steps = logged_epochs(cfg.trainer.epochs, cfg.tracking.max_points)
        constant_lr = cfg.schedule.name == "constant"
        self.keys = [k for k in HISTORY_KEYS if not (k == "lr" and constant_lr)]
        self.last_flush = time.monotonic()
        self.run_id: str | None = None
        self.experiment_id: str | None = None
        #: the network being trained, once built: a stopped run saves its weights
        self.net = None
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bpexp-tracking")
        self._futures: list[Future] = []
        flat = {**flatten(cfg), **(extra_params or {})}
        params = [Param(k, v[:6000]) for k, v in flat.items()]
        experiment_id = parent["experiment_id"] if parent is not None else None
        #: what `python -m bpexp.sync` needs to log the run later, if tracking fails
        self.sync_info = {
            "tracking_uri": self.uri,
            "experiment": cfg.tracking.experiment,
            "run_name": run_name,
            "tags": tags,
            "params": {k: v[:6000] for k, v in flat.items()},
            "keys": self.keys,
            "steps": sorted(self.steps),
        }
        self._submit(self._create, experiment_id, run_name, tags, params)

    # -- the tracking thread ---------------------------------------------
    def _submit(self, fn, *args) -> None:
        self._futures.append(self._pool.submit(self._call, fn, *args))

    def _call(self, fn, *args) -> None:
        # after one failure (a server gone, a store locked) skip the rest: each
        # call would wait out its own retries while training goes on regardless
        if self.broken is not None:
            return
        try:
            fn(*args)
        except BaseException as exc:
            self.broken = exc
            raise

    def _create(self, experiment_id, run_name, tags, params) -> None:
        if experiment_id is None:
            experiment_id = ensure_experiment(self.client, self.cfg.tracking.experiment, self.uri)
        run = self.client.create_run(experiment_id, run_name=run_name, tags=tags)
        self.experiment_id, self.run_id = experiment_id, run.info.run_id
        for i in range(0, len(params), 100):
            self.client.log_batch(self.run_id, params=params[i : i + 100])

    def _send(self, metrics: list, tags: list | None = None) -> None:
        for i in range(0, max(len(metrics), 1), BATCH):
            self.client.log_batch(self.run_id, metrics=metrics[i : i + BATCH], tags=tags or [])
            tags = None

    def wait(self) -> None:
        """Wait for every queued MLflow call; re-raise the first error."""
        futures, self._futures = self._futures, []
        errors = [f.exception() for f in futures]
        for error in errors:
            if error is not None:
                raise error

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        if isinstance(self.client, ClientProcess):
            self.client.close()

    def _log_artifacts(self, directory: Path) -> None:
        self.client.log_artifacts(self.run_id, str(directory))

    # -- during training -------------------------------------------------
    def on_epoch(self, record: dict) -> None:
        """The :func:`bpexp.core.fit` callback: keep every record, queue the chosen ones."""
        self.records.append(record)
        if record["epoch"] in self.steps:
            self._queue(record)
        if self.pending and (
            len(self.pending) >= self.batch_at or time.monotonic() - self.last_flush > FLUSH_EVERY
        ):
            self.flush()

    def _queue(self, record: dict) -> None:
        ts = int(time.time() * 1000)
        step = record["epoch"]
        self.pending.extend(
            self._Metric(k, float(record[k]), ts, step) for k in self.keys if k in record
        )

    def flush(self, tags: dict[str, str] | None = None) -> None:
        """Hand what has accumulated to the tracking thread."""
        batch, self.pending = self.pending, []
        tag_list = [self._RunTag(k, v) for k, v in (tags or {}).items()]
        if batch or tag_list:
            self._submit(self._send, batch, tag_list)
        self.last_flush = time.monotonic()

    # -- at the end --------------------------------------------------------
    def finish(self, history, net, dataset_metadata: dict, wall_seconds: float) -> dict:
        """Log the summary, the artifacts, and end the run FINISHED.  Returns the summary."""
        last = history.records[-1]["epoch"] if history.records else 0
        extra = {last, history.epochs_to_threshold or last} - self.steps
        for r in self.records:
            if r["epoch"] in extra:
                self._queue(r)
        summary = {
            "initial_loss": history.initial["train_loss"],
            "final_loss": history.final_loss,
            "best_loss": history.best_loss,
            "epochs_run": float(last),
            "converged": float(history.converged),
            "diverged": float(history.diverged),
            "wall_seconds": wall_seconds,
            "train_seconds": history.records[-1]["seconds"] if history.records else 0.0,
        }
        if history.epochs_to_threshold is not None:
            summary["epochs_to_threshold"] = float(history.epochs_to_threshold)
        if history.records:
            for k in ("train_accuracy", "val_loss", "val_accuracy"):
                if k in history.records[-1]:
                    summary[f"final_{k}"] = history.records[-1][k]
        ts = int(time.time() * 1000)
        self.pending.extend(
            self._Metric(k, float(v) if math.isfinite(v) else float("nan"), ts, last)
            for k, v in summary.items()
        )
        self.flush(tags={"stop_reason": history.stop_reason})
        out = artifact_dir(self.output_dir)
        # The tracking process draws the figure while this one writes the other
        # files, when those take a while (a CSV of many epochs); otherwise this
        # process draws it while the tracking process sends the last metrics.
        remote_figure = (
            isinstance(self.client, ClientProcess)
            and self._wants_figure()
            and len(self.records) > FIGURE_REMOTE_FROM
        )
        if remote_figure:
            out.mkdir(parents=True, exist_ok=True)
            self._submit(self._save_figure, out, self.client.save_loss_curve)
        self._write_artifacts(net=net, dataset_metadata=dataset_metadata, figure=not remote_figure)
        self._submit(self._log_artifacts, out)
        try:
            self.wait()
            self.client.set_terminated(self.run_id, "FINISHED")
        except Exception as exc:
            self.broken = self.broken or exc
            if not (out / "loss_curve.png").exists() and self._wants_figure():
                self._save_figure(out, save_loss_curve)  # the kept results are complete
            from bpexp.config import JobError

            info = {
                **self.sync_info,
                "run_id": self.run_id,
                "summary": summary,
                "stop_reason": history.stop_reason,
                "epochs_to_threshold": history.epochs_to_threshold,
            }
            (self.output_dir / SYNC_FILE).write_text(json.dumps(info, indent=2))
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise JobError(
                masked(
                    f"tracking to {self.uri} failed ({first}); the run's results are kept in "
                    f"{out} (history.csv, weights.npz, config.yaml); log them when the server "
                    f"is back: python -m bpexp.sync {self.output_dir}"
                )
            ) from exc
        self.close()
        return summary

    def _wants_figure(self) -> bool:
        return bool(self.cfg.tracking.log_figure) and len(self.records) > 1

    def _save_figure(self, out: Path, save) -> None:
        c = self.cfg
        title = f"{c.dataset.name}, {c.optimizer.variant}, lr={c.optimizer.lr}, seed={c.seed}"
        keys = ("epoch", "train_loss", "val_loss")
        records = [{k: r[k] for k in keys if k in r} for r in self.records]
        save(out / "loss_curve.png", records, title)

    def _write_artifacts(
        self, net=None, dataset_metadata=None, error: str | None = None, figure: bool = True
    ) -> Path:
        """Write the run's files into ``<output_dir>/artifacts`` (they stay there too)."""
        out = artifact_dir(self.output_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.yaml").write_text(
            OmegaConf.to_yaml({k: v for k, v in self.cfg.items() if k != "hydra"}, resolve=True)
        )
        write_history_csv(out / "history.csv", self.records)
        if dataset_metadata is not None:
            (out / "dataset.json").write_text(json.dumps(dataset_metadata, indent=2))
        if net is not None and self.cfg.tracking.log_weights:
            net.save(out / "weights.npz")
        if figure and self._wants_figure():
            self._save_figure(out, save_loss_curve)
        if error is not None:
            (out / "error.txt").write_text(error)
        return out

    @contextmanager
    def guard(self):
        """End the run FAILED (error in a tag) or KILLED (Ctrl-C, SIGTERM), flushing
        what was logged so far (and the weights of :attr:`net`), then re-raise.

        The cleanup is not interrupted by a second Ctrl-C or SIGTERM (see
        :func:`bpexp.signals.deferred`).
        """
        try:
            yield self
        except BaseException as exc:
            with signals.deferred():
                self._end_stopped(exc)
            raise

    def _end_stopped(self, exc: BaseException) -> None:
        """End the run FAILED or KILLED by ``exc``, with its files (see :meth:`guard`)."""
        if self.broken is not None:  # tracking itself failed: nothing more to send
            self.close()
            return
        status = "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED"
        message = signals.reason(exc) if status == "KILLED" else f"{type(exc).__name__}: {exc}"
        try:
            self.flush(tags={"error": message[:5000]})
            error = "".join(traceback.format_exception(exc))
            out = self._write_artifacts(net=self.net, error=error)
            self._submit(self._log_artifacts, out)
            self.wait()
        except BaseException as inner:  # never mask the original error
            log.warning("could not log the failure of run %s: %s", self.run_id, inner)
        finally:
            try:
                if self.run_id is not None:
                    self.client.set_terminated(self.run_id, status)
            except Exception as inner:
                log.warning("could not mark run %s %s: %s", self.run_id, status, inner)
            self.close()


# ------------------------------------------------------------------ sweeps
#: the parent run this process created for its multirun, for main() to close
ACTIVE_PARENT: dict | None = None
#: the parent record once closed, with its final ``status`` (None if it could not be)
ENDED_PARENT: dict | None = None
#: one line appended per job that ended, in the sweep directory (for the time left)
ENDED_FILE = ".bpexp-ended"
#: MLflow keeps at most this many characters of a run name
RUN_NAME_MAX = 250


def _override_key(text: str) -> str:
    """The key of an override as typed: ``+model.bias=x`` -> ``model.bias``."""
    return text.split("=", 1)[0].lstrip("+~")


def sweep_plan(config: DictConfig) -> tuple[list[str], int | None]:
    """A multirun's swept keys (those given several values, in Hydra's order) and
    its number of jobs (None when the sweeper does not say).

    The values come from ``hydra.sweeper.params`` and the command line, which
    replaces a key the file also sweeps, as the basic sweeper combines them.
    A sweep over a range (``interval(...)``, for the Optuna sweeper) is swept;
    its number of jobs is ``hydra.sweeper.n_trials``.
    """
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser

    sweeper = config.hydra.sweeper
    params = sweeper.get("params") or {}
    texts = [f"{k}={v}" for k, v in params.items()] + list(config.hydra.overrides.task)
    # the config loader expands glob(...) into the group's options
    hydra_ = GlobalHydra.instance()
    loader = hydra_.config_loader() if hydra_.is_initialized() else None
    sizes: dict[str, int | None] = {}
    for override in OverridesParser.create(config_loader=loader).parse_overrides(texts):
        if not override.is_sweep_override():
            sizes[override.key_or_group] = 1
        elif override.is_discrete_sweep():
            sizes[override.key_or_group] = len(list(override.sweep_string_iterator()))
        else:
            sizes[override.key_or_group] = None
    swept = [k for k, n in sizes.items() if n != 1]
    if "BasicSweeper" in str(sweeper.get("_target_", "")):
        return swept, math.prod(sizes.values())
    trials = sweeper.get("n_trials")
    return swept, trials if isinstance(trials, int) else None


def study_of(config: DictConfig) -> str:
    """The study a run or sweep belongs to: the ``experiment=`` config chosen,
    else the MLflow experiment's name."""
    choices = OmegaConf.select(config, "hydra.runtime.choices", default=None) or {}
    return str(choices.get("experiment") or config.tracking.experiment)


def parent_run_name(study: str, swept: list[str], jobs: int | None) -> str:
    """``xor_variants: optimizer x optimizer.lr x seed (45 jobs)``."""
    count = "" if jobs is None else f"{jobs} job{'s' if jobs != 1 else ''}"
    if not swept:
        return f"{study}: {count or 'sweep'}"
    axes = " x ".join(swept)
    return (f"{study}: {axes} ({count})" if count else f"{study}: {axes}")[:RUN_NAME_MAX]


def run_name(overrides: list[str], swept: list[str] | None = None) -> str | None:
    """A run's name from its Hydra overrides: in a sweep, the values of the
    swept keys (``optimizer=sgd optimizer.lr=0.5 seed=3``); otherwise every
    override but ``tracking.*``, which may hold a server's password.  None when
    nothing is left.
    """
    if swept:
        kept = [o for o in overrides if _override_key(o) in swept]
    else:
        kept = [o for o in overrides if not _override_key(o).startswith("tracking.")]
    return " ".join(kept)[:RUN_NAME_MAX] or None


def read_parent(sweep_dir: str | Path) -> dict:
    """The parent-run record a multirun's launching process left for its jobs."""
    path = Path(sweep_dir) / PARENT_FILE
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        raise RuntimeError(
            f"sweep tracking was not set up ({path} is missing): is the bpexp callback "
            "in hydra.callbacks?"
        ) from None
    if "error" in record:
        raise RuntimeError(f"sweep tracking could not start: {record['error']}")
    return record


def _after_fork_in_child() -> None:
    """A forked process must not use its parent's database connections (SQLite and
    SQLAlchemy both forbid it): give every MLflow engine a fresh pool."""
    module = sys.modules.get("mlflow.store.tracking.sqlalchemy_store")
    engines = getattr(getattr(module, "SqlAlchemyStore", None), "_engine_map", {})
    for engine in list(engines.values()):
        engine.dispose(close=False)


os.register_at_fork(after_in_child=_after_fork_in_child)


def fork_joblib_workers(config: DictConfig) -> bool:
    """Have the joblib launcher fork its workers from this process (Linux only).

    Its default (loky's fork + exec) starts fresh interpreters, each importing
    Hydra, MLflow and matplotlib again: ~3 s per worker here, as long as several
    XOR jobs.  Forked workers inherit those imports (and are reused for the
    sweep's jobs).  Each worker's database connections are renewed after the
    fork (:func:`_after_fork_in_child`).  ``BPEXP_JOBLIB_START=loky`` keeps loky's
    default.  Returns whether workers will be forked.
    """
    target = str(config.hydra.launcher.get("_target_", ""))
    wanted = os.environ.get("BPEXP_JOBLIB_START", "fork")
    if "joblib" not in target or sys.platform != "linux" or wanted != "fork":
        return False
    from joblib.externals.loky.backend.context import set_start_method

    import bpexp.plots  # noqa: F401 - imported once here rather than in every worker

    set_start_method("fork", force=True)
    warnings.filterwarnings("ignore", message="`fork` start method", category=UserWarning)
    return True


class SweepCallback(Callback):
    """Creates the store, the experiment and the parent run before a multirun's
    jobs start, and closes the parent when the multirun ends.

    Hydra turns exceptions in callbacks into warnings; so failures are recorded
    in the parent file, where every job finds them and fails with the reason.
    """

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        global ACTIVE_PARENT
        sweep_dir = Path(config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        from bpexp.config import ConfigError, check_keys

        try:
            swept, jobs = sweep_plan(config)
            unchecked = tuple(swept)
        except Exception as exc:  # a sweeper's own syntax: its jobs check their keys
            log.warning("bpexp: could not tell what the sweep sweeps: %s", exc)
            swept, jobs, unchecked = [], None, tuple(config.keys())
        try:  # a typo fails the sweep before its parent run exists
            check_keys(config, skip=unchecked)
        except ConfigError as exc:
            raise SystemExit(str(exc)) from None
        uri = resolve_tracking_uri(config.tracking.uri)
        try:
            check_server(uri)
        except TrackingUnavailable as exc:
            # Hydra swallows exceptions raised in callbacks, not SystemExit:
            # stop the sweep here, before any job starts
            raise SystemExit(f"bpexp: error: {exc}") from None
        try:
            client = client_for(uri)
            experiment_id = ensure_experiment(client, config.tracking.experiment, uri)
            overrides = " ".join(config.hydra.overrides.task)
            study = study_of(config)
            name = parent_run_name(study, swept, jobs)
            tags = {
                "bpexp.role": "sweep",
                "bpexp.sweep_dir": str(sweep_dir.resolve()),
                "bpexp.overrides": masked(overrides)[:5000],
                "bpexp.study": study,
                "bpexp.swept": ",".join(swept),
                "mlflow.source.name": "bpexp",
            }
            if commit := git_commit():
                tags["mlflow.source.git.commit"] = commit
            run = client.create_run(experiment_id, run_name=name, tags=tags)
            record = {
                "tracking_uri": uri,
                "experiment_id": experiment_id,
                "run_id": run.info.run_id,
                "run_name": name,
                "sweep_dir": str(sweep_dir.resolve()),
                "swept": swept,
                "jobs": jobs,
            }
            ACTIVE_PARENT = record
        except Exception as exc:
            record = {"error": f"{type(exc).__name__}: {exc}"}
            log.error("bpexp: sweep tracking could not start: %s", record["error"])
        (sweep_dir / PARENT_FILE).write_text(json.dumps(record))
        fork_joblib_workers(config)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        # Hydra calls this only when every job succeeded
        close_parent("FINISHED")


def close_parent(status: str) -> None:
    """End this process's parent run with ``status`` (idempotent); see :func:`end_parent`.

    The record, with the status set, is kept in :data:`ENDED_PARENT` for
    :func:`sweep_summary`.
    """
    global ACTIVE_PARENT, ENDED_PARENT
    if ACTIVE_PARENT is None:
        return
    record, ACTIVE_PARENT = ACTIVE_PARENT, None
    ENDED_PARENT = {**record, "status": None}
    try:
        ENDED_PARENT["status"] = end_parent(record, status)
    except Exception as exc:
        log.error(
            "bpexp: could not close the sweep's parent run %s (%s); when the tracking store "
            "answers again, python -m bpexp.sync %s closes it",
            record["run_id"],
            exc,
            record.get("sweep_dir", "SWEEP_DIR"),
        )


def end_parent(record: dict, status: str, tracking_uri: str | None = None) -> str:
    """End a sweep's parent run; FINISHED becomes FAILED if any child did not finish.

    Returns the status set.
    """
    client = client_for(tracking_uri or record["tracking_uri"])
    if status == "FINISHED":
        children = client.search_runs(
            [record["experiment_id"]],
            filter_string=f"tags.mlflow.parentRunId = '{record['run_id']}'",
            max_results=50000,
        )
        if any(c.info.status != "FINISHED" for c in children):
            status = "FAILED"
    client.set_terminated(record["run_id"], status)
    return status


def report_command(record: dict) -> str:
    """The command that reports on the sweep of parent ``record``, as a user types it.

    ``--tracking-uri`` only when the sweep's store is not the one the report
    finds by default (run from the same directory); its password masked.
    """
    command = f"python -m bpexp.report --parent {record['run_id']}"
    uri = record["tracking_uri"]
    if uri != resolve_tracking_uri(None):
        command += f" --tracking-uri {shlex.quote(masked(uri))}"
    return command


def sweep_summary(record: dict, seconds: float | None = None) -> list[str]:
    """What a sweep's launching process says at its end: the parent run's id, name
    and final status, where its runs are in the MLflow UI, and its report command."""
    status = record.get("status") or "not closed (see the error above)"
    took = "" if seconds is None else f" in {duration(seconds)}"
    uri = record["tracking_uri"]
    route = f"experiments/{record['experiment_id']}/runs"
    lines = [
        f'sweep "{record.get("run_name", "")}" {status}{took}',
        f"parent run: {record['run_id']}",
    ]
    ui = ui_lines(uri, route)
    if len(ui) == 1:
        lines.append(f"its runs in the MLflow UI: {ui[0]}")
    elif ui:
        lines += [f"browse its runs: {ui[0]}", f"  {ui[1]}"]
    lines.append(f"its report: {report_command(record)}")
    if masked(uri) != uri:
        lines.append("  (*** stands for the password in tracking.uri)")
    return lines


def duration(seconds: float) -> str:
    """``0.4 s``, ``18 s``, ``2 min 05 s``, ``1 h 02 min``: a time span for a person to read."""
    if seconds < 9.95:
        return f"{max(seconds, 0):.1f} s"
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def note_job_ended(sweep_dir: str | Path, started: float) -> None:
    """Record that a job of the sweep, started at ``started`` (``time.time()``), has
    ended (finished or not), for :func:`jobs_ended`.

    A line appended in one ``write`` per job: jobs in parallel workers, or on
    other nodes of a shared file system, each add theirs.
    """
    try:
        with open(Path(sweep_dir) / ENDED_FILE, "a") as fh:
            fh.write(f"{started:.3f} {time.time():.3f}\n")
    except OSError as exc:  # only the estimate of the time left needs it
        log.warning("could not note the job's end in %s: %s", sweep_dir, exc)


def jobs_ended(sweep_dir: str | Path) -> tuple[int, float | None]:
    """How many jobs of the sweep have ended so far, and when the first of them
    started (None before any ended)."""
    try:
        lines = (Path(sweep_dir) / ENDED_FILE).read_text().splitlines()
    except OSError:
        return 0, None
    starts = []
    for line in lines:  # a line half-written by a job on another node is skipped
        try:
            starts.append(float(line.split()[0]))
        except (IndexError, ValueError):
            pass
    return len(starts), min(starts, default=None)
