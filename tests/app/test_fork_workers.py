"""Forked processes: joblib workers (when they are used, and that they get their own
database connections) and the tracking process of a job."""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys

import pytest
from joblib.externals.loky.backend.context import get_start_method, set_start_method
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

from bpexp import tracking
from tests.app.conftest import compose_cfg

linux_only = pytest.mark.skipif(sys.platform != "linux", reason="workers are forked on Linux only")


@pytest.fixture
def loky_default():
    yield
    set_start_method(None, force=True)


@linux_only
def test_the_joblib_launcher_forks_its_workers(loky_default, monkeypatch):
    monkeypatch.delenv("BPEXP_JOBLIB_START", raising=False)
    assert not tracking.fork_joblib_workers(compose_cfg())  # the basic launcher
    assert get_start_method() is None
    assert tracking.fork_joblib_workers(compose_cfg("hydra/launcher=joblib"))
    assert get_start_method() == "fork"


def test_the_environment_keeps_lokys_own_start(loky_default, monkeypatch):
    monkeypatch.setenv("BPEXP_JOBLIB_START", "loky")
    assert not tracking.fork_joblib_workers(compose_cfg("hydra/launcher=joblib"))
    assert get_start_method() is None


def _pool_ids() -> set[int]:
    return {id(engine.pool) for engine in SqlAlchemyStore._engine_map.values()}


def _log_a_run(uri: str, experiment_id: str, queue) -> None:
    try:
        pools = _pool_ids()  # as renewed by the at-fork handler
        client = MlflowClient(tracking_uri=uri)  # the store (and engine) cached before the fork
        run = client.create_run(experiment_id, run_name="child")
        client.log_metric(run.info.run_id, "x", 1.0)
        client.set_terminated(run.info.run_id)
        queue.put((run.info.run_id, pools))
    except BaseException as exc:
        queue.put((f"error: {exc!r}", set()))


@linux_only
def test_a_forked_process_logs_through_fresh_connections(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    client = MlflowClient(tracking_uri=uri)
    experiment_id = client.create_experiment("forked", artifact_location=str(tmp_path / "art"))
    before = client.create_run(experiment_id, run_name="parent")  # a pooled connection in use
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    workers = [ctx.Process(target=_log_a_run, args=(uri, experiment_id, queue)) for _ in range(2)]
    for w in workers:
        w.start()
    answers = [queue.get(timeout=60) for _ in workers]
    for w in workers:
        w.join(timeout=60)
    ids = [run_id for run_id, _ in answers]
    assert all(not run_id.startswith("error") for run_id in ids), ids
    # no connection pool of the parent is used in a child
    parent_pools = _pool_ids()
    assert parent_pools and all(pools and not pools & parent_pools for _, pools in answers)
    client.set_terminated(before.info.run_id)  # the parent's own connections still work
    runs = client.search_runs([experiment_id])
    assert {r.info.run_id for r in runs} == {*ids, before.info.run_id}
    assert all(r.info.status == "FINISHED" for r in runs)
    assert {r.data.metrics.get("x") for r in runs if r.info.run_id in ids} == {1.0}


@linux_only
def test_the_client_process_answers_raises_and_ignores_ctrl_c(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    client = tracking.ClientProcess(uri)
    try:
        experiment_id = client.create_experiment("remote", artifact_location=str(tmp_path))
        os.kill(client._proc.pid, signal.SIGINT)  # Ctrl-C reaches the whole process group
        run = client.create_run(experiment_id, run_name="r")
        assert run.info.run_name == "r" and client._proc.is_alive()
        with pytest.raises(MlflowException, match="already exists"):
            client.create_experiment("remote")
        with pytest.raises(RuntimeError, match=r"^TypeError: "):
            client.create_run()  # missing argument
        client.set_terminated(run.info.run_id)
    finally:
        client.close()
    assert not client._proc.is_alive() and client._proc.exitcode == 0
    assert MlflowClient(tracking_uri=uri).get_run(run.info.run_id).info.status == "FINISHED"


@linux_only
def test_a_call_interrupted_by_ctrl_c_does_not_shift_the_replies(tmp_path):
    """Ctrl-C in the middle of a call may leave half a request or an unread reply
    in the pipe: the process is ended and the next calls (the job marks its run
    KILLED through this client) are made in this process, each with its own answer."""
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    client = tracking.ClientProcess(uri)

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, interrupt)
    try:
        experiment_id = client.create_experiment("ctrl-c", artifact_location=str(tmp_path))
        run = client.create_run(experiment_id, run_name="r")
        records = [{"epoch": i, "train_loss": 1 / (i + 1)} for i in range(200_000)]
        signal.setitimer(signal.ITIMER_REAL, 0.05)
        with pytest.raises(KeyboardInterrupt):  # a slow call: the figure of a long run
            client.save_loss_curve(tmp_path / "curve.png", records, "slow")
        signal.setitimer(signal.ITIMER_REAL, 0)
        assert not client._proc.is_alive()
        assert client.get_experiment(experiment_id).name == "ctrl-c"
        client.set_terminated(run.info.run_id, "KILLED")
        client.close()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert MlflowClient(tracking_uri=uri).get_run(run.info.run_id).info.status == "KILLED"


@linux_only
@pytest.mark.parametrize(
    "mode,launcher,expected",
    [
        ("auto", "self", True),  # a single run, the basic launcher's jobs
        ("auto", "other", False),  # a worker of a parallel launcher
        ("auto", None, True),  # a job run outside the command (the API, the tests)
        ("1", "other", True),
        ("0", "self", False),
    ],
)
def test_which_jobs_track_from_a_forked_process(monkeypatch, mode, launcher, expected):
    monkeypatch.setenv("BPEXP_TRACKING_PROCESS", mode)
    if launcher is None:
        monkeypatch.delenv("BPEXP_LAUNCH_PID", raising=False)
    else:
        pid = os.getpid() if launcher == "self" else os.getppid()
        monkeypatch.setenv("BPEXP_LAUNCH_PID", str(pid))
    assert tracking.tracking_process_enabled() is expected
