"""The tracking store: where runs go, whether it answers, and its passwords kept out of sight.

- The store: ``tracking.uri``, else ``MLFLOW_TRACKING_URI``, else
  ``sqlite:///mlflow.db``; a relative SQLite path resolves against the directory
  the command ran in.  Artifacts of a SQLite store go to ``mlartifacts/`` beside
  the database.
- Every store is checked once, before the first job trains (:func:`check_store`),
  and a store that cannot be used is one line naming it.
- Credentials never leave the process: :func:`masked` replaces a URI's password
  by ``***`` wherever bpexp writes or prints the URI.
"""

from __future__ import annotations

import fcntl
import functools
import logging
import os
import re
import shlex
import subprocess
import sys
import traceback
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger(__name__)


class TrackingError(RuntimeError):
    """The tracking store cannot be used, or a run cannot be published to it; the
    message is one line for the user (the app prints it as it is)."""


# ------------------------------------------------------------------ passwords
#: ``scheme://user:PASSWORD@``: the password part of a URI's user information,
#: also as Hydra shows overrides (``http\://user\:PASSWORD@``, doubled in reprs)
_PASSWORD = re.compile(r"(\b[A-Za-z][A-Za-z0-9+.-]*\\*://[^\s/:@\\]+\\*:)[^\s/@]+@")
#: ``scheme://user[:password]@``: all of a URI's user information
_USERINFO = re.compile(r"(\b[A-Za-z][A-Za-z0-9+.-]*://)[^\s/@]+@")
#: what :func:`masked` puts in place of a password
HIDDEN = "***"


def masked(text: str) -> str:
    """``text`` with the password of every URI in it replaced by ``***``.

    ``http://user:secret@host:5000`` becomes ``http://user:***@host:5000``; a
    URI without a password is returned as it is.
    """
    return _PASSWORD.sub(rf"\1{HIDDEN}@", text)


def without_userinfo(uri: str) -> str:
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


def mask_files(paths: list[Path]) -> None:
    """Rewrite each file of ``paths`` that exists with its URI passwords masked
    (Hydra's record of a run's overrides, ``.hydra/*.yaml`` and ``multirun.yaml``)."""
    from bpexp.tracking.files import write_atomic

    for path in paths:
        try:
            text = path.read_text()
        except OSError:
            continue
        if masked(text) != text:
            write_atomic(path, masked(text))


# ---------------------------------------------------------------- the store
#: the port ``mlflow ui`` is told to use in the commands bpexp prints
UI_PORT = 5000
#: the schemes MLflow's tracking client takes that bpexp can check up front
_DATABASES = ("sqlite", "postgresql", "mysql", "mssql")


def resolve_tracking_uri(uri: str | None, cwd: str | Path | None = None) -> str:
    """The absolute tracking URI for ``tracking.uri`` (see the module docstring);
    a relative SQLite path is taken from ``cwd`` (default: this process's)."""
    uri = uri or os.environ.get("MLFLOW_TRACKING_URI") or "sqlite:///mlflow.db"
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        path = uri[len("sqlite:///") :]
        if path != ":memory:":
            uri = f"sqlite:///{(Path(cwd or os.getcwd()) / path).resolve()}"
    return uri


def artifact_root(uri: str) -> str | None:
    """Where a new experiment's artifacts go: beside a SQLite file; else the server's choice."""
    if uri.startswith("sqlite:////"):
        return (Path(uri[len("sqlite:///") :]).parent / "mlartifacts").as_uri()
    return None


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
        return [f"{without_userinfo(uri).rstrip('/')}/#/{route}"]
    if uri.startswith("databricks"):
        return []
    return [
        f"mlflow ui --backend-store-uri {shlex.quote(masked(uri))} --port {UI_PORT}",
        f"then open http://127.0.0.1:{UI_PORT}/#/{route}",
    ]


def check_store(uri: str, timeout: float = 5.0) -> None:
    """Check, in seconds, that the store ``uri`` can be used, before anything trains.

    - ``http(s)://``: one ``/health`` request (with the URI's user and password
      as basic authentication, as MLflow's client sends them);
    - ``sqlite:///PATH``: the directory exists and can be written;
    - other databases: a connection is opened;
    - any other scheme (``file:``, a plain path, a typo) is refused: MLflow 3's
      file store is deprecated and a typo would be trained to the end.

    Raises
    ------
    TrackingError
        Naming the store (password masked) and what to do.
    """
    scheme = uri.split(":", 1)[0].split("+", 1)[0] if ":" in uri else ""
    if scheme in ("http", "https"):
        _check_server(uri, timeout)
    elif scheme == "sqlite":
        _check_sqlite(uri)
    elif scheme in _DATABASES:
        check_database(uri, timeout)
    elif scheme != "databricks":
        raise TrackingError(
            f"tracking.uri {masked(uri)!r} is not a store bpexp can use; valid: "
            "sqlite:///PATH.db, http(s)://HOST:PORT (a tracking server), "
            "postgresql://USER:PASSWORD@HOST/DB, mysql://..."
        )


def _check_server(uri: str, timeout: float) -> None:
    import base64
    import urllib.error
    import urllib.request
    from urllib.parse import unquote, urlsplit

    # urllib takes no user:password in a URL (MLflow's client sends it as basic auth)
    parts = urlsplit(uri)
    request = urllib.request.Request(f"{without_userinfo(uri).rstrip('/')}/health")
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
    raise TrackingError(
        f"tracking server {masked(uri)} is unreachable ({masked(reason)}); start it "
        "(python -m bpexp.server ...) or choose another tracking.uri"
    )


def _sqlite_path(uri: str) -> Path | None:
    path = uri[len("sqlite:///") :].split("?", 1)[0]
    return None if path in ("", ":memory:") else Path(path)


def _check_sqlite(uri: str) -> None:
    path = _sqlite_path(uri)
    if path is None:
        return
    where = path.parent
    if path.exists():
        ok = os.access(path, os.R_OK | os.W_OK) and os.access(where, os.W_OK | os.X_OK)
        problem = "cannot be written (SQLite also needs its directory writable)"
    else:
        ok = where.is_dir() and os.access(where, os.W_OK | os.X_OK)
        problem = "cannot be created: " + (
            f"{where} is not writable" if where.is_dir() else f"{where} does not exist"
        )
    if not ok:
        raise TrackingError(f"tracking.uri {uri}: the SQLite store {path} {problem}")


def check_database(uri: str, timeout: float = 5.0) -> None:
    """Open one connection to the database ``uri`` (PostgreSQL, MySQL...)."""
    import sqlalchemy

    try:
        engine = sqlalchemy.create_engine(uri, connect_args={"connect_timeout": int(timeout)})
        with engine.connect():
            pass
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TrackingError(f"cannot reach the database {masked(uri)}: {masked(first)}") from None


@contextmanager
def store_lock(uri: str):
    """Hold an exclusive lock while a SQLite store may be created: two commands
    started together on a new store would otherwise both create its schema, and
    one of them fail.  Other stores create their schema on their server's side."""
    path = _sqlite_path(uri) if uri.startswith("sqlite:") else None
    if path is None:
        yield
        return
    with open(path.with_name(path.name + ".lock"), "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def client_for(uri: str):
    """An ``MlflowClient`` for the store ``uri``."""
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri)


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


def open_store(uri: str):
    """A client of the store ``uri``, the store's schema created if it is new (once,
    under :func:`store_lock`, whoever else opens it at the same time)."""
    with store_lock(uri):
        client = client_for(uri)
        client.search_experiments(max_results=1)
        return client


def open_experiment(uri: str, name: str):
    """A client of the store ``uri`` (see :func:`open_store`) and the id of
    experiment ``name`` in it, created if needed."""
    client = open_store(uri)
    return client, ensure_experiment(client, name, uri)


@functools.cache
def git_commit(cwd: str | None = None) -> str | None:
    """The commit of the git checkout at ``cwd`` (default: here), if there is one."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=cwd or os.getcwd(),
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def first_line(exc: BaseException) -> str:
    """An exception's message as one line (its type when it has none), passwords masked."""
    text = str(exc).strip()
    return masked(text.splitlines()[0] if text else type(exc).__name__)


# -------------------------------------------------- reading runs back
def find_run(client, run_id: str):
    """The run ``run_id`` of the store, or None when it has none by that id."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_run(run_id)
    except MlflowException:
        return None


def download_artifact(client, run_id: str, path: str) -> Path | None:
    """A local copy of a run's artifact ``path`` (the file itself for a local
    store), or None when the run has no such artifact."""
    from mlflow.exceptions import MlflowException

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    try:
        return Path(client.download_artifacts(run_id, path))
    except (OSError, MlflowException):
        return None
