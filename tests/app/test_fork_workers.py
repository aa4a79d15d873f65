"""Forked joblib workers: when they are used, and that they get their own database
connections."""

from __future__ import annotations

import multiprocessing
import sys

import pytest
from joblib.externals.loky.backend.context import get_start_method, set_start_method
from mlflow import MlflowClient
from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

from bpexp import callbacks
from tests.helpers import compose_cfg

linux_only = pytest.mark.skipif(sys.platform != "linux", reason="workers are forked on Linux only")


@pytest.fixture
def loky_default():
    yield
    set_start_method(None, force=True)


@linux_only
def test_the_joblib_launcher_forks_its_workers(loky_default, monkeypatch):
    monkeypatch.delenv("BPEXP_JOBLIB_START", raising=False)
    assert not callbacks.fork_joblib_workers(compose_cfg())  # the basic launcher
    assert get_start_method() is None
    assert callbacks.fork_joblib_workers(compose_cfg("hydra/launcher=joblib"))
    assert get_start_method() == "fork"


def test_the_environment_keeps_lokys_own_start(loky_default, monkeypatch):
    monkeypatch.setenv("BPEXP_JOBLIB_START", "loky")
    assert not callbacks.fork_joblib_workers(compose_cfg("hydra/launcher=joblib"))
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
def test_a_forked_process_logs_through_fresh_connections(tmp_path, loky_default):
    assert callbacks.fork_joblib_workers(compose_cfg("hydra/launcher=joblib"))
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
