"""Beyond one process: submitit launchers, tracking servers (PostgreSQL in CI),
and what happens when a server is unreachable or goes away."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import numpy as np
import pytest
from mlflow import MlflowClient

from bpexp.core import MLP
from bpexp.data import load_dataset
from bpexp.tracking import publish
from bpexp.tracking.files import artifact_dir, write_record, write_summary
from tests.helpers import Server, bpexp, free_port, runs, start_bpexp

pytestmark = pytest.mark.slow


def run_while_server_dies(
    tmp_path: Path, work: Path, args: list[str], runs_before_stop: int
) -> tuple[int, str]:
    """Run ``python -m bpexp ARGS`` in ``work`` against a server on ``tmp_path/server.db``,
    and stop the server once it holds ``runs_before_stop`` runs; the job's exit code
    and output.  (The store stays: a later Server on it sees what was logged.)"""
    server = Server(f"sqlite:///{tmp_path}/server.db", tmp_path)
    work.mkdir()
    job = start_bpexp(
        *args, f"tracking.uri={server.url}", cwd=work,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        client = MlflowClient(tracking_uri=server.url)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            exp = client.get_experiment_by_name("bpexp")
            if exp and len(client.search_runs([exp.experiment_id])) >= runs_before_stop:
                break
            time.sleep(0.5)
    finally:
        server.stop()
    out, _ = job.communicate(timeout=300)
    return job.returncode, out


def bpexp_sync(target: Path, url: str) -> subprocess.CompletedProcess:
    """``python -m bpexp.sync TARGET --tracking-uri URL``."""
    return subprocess.run(
        [sys.executable, "-m", "bpexp.sync", str(target), "--tracking-uri", url],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def rest(url: str, body: dict | None = None) -> dict:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def check_runs_through_rest(url: str, experiment: str, n_jobs: int, epochs: int) -> None:
    """Every job's run is on the server, attached to one FINISHED parent, with its
    complete history and weights that rebuild its final loss."""
    exp_id = rest(f"{url}/api/2.0/mlflow/experiments/get-by-name?experiment_name={experiment}")[
        "experiment"
    ]["experiment_id"]
    found = rest(f"{url}/api/2.0/mlflow/runs/search", {"experiment_ids": [exp_id]})["runs"]
    tags = [{t["key"]: t["value"] for t in r["data"].get("tags", [])} for r in found]
    parents = [r for r, t in zip(found, tags, strict=True) if t.get("bpexp.role") == "sweep"]
    children = [r for r, t in zip(found, tags, strict=True) if "mlflow.parentRunId" in t]
    assert len(parents) == 1 and len(children) == n_jobs
    assert parents[0]["info"]["status"] == "FINISHED"
    parent_id = parents[0]["info"]["run_id"]
    client = MlflowClient(tracking_uri=url)
    xor = load_dataset("xor")
    for child, t in ((r, t) for r, t in zip(found, tags, strict=True) if r in children):
        run_id = child["info"]["run_id"]
        assert child["info"]["status"] == "FINISHED" and t["mlflow.parentRunId"] == parent_id
        history = rest(
            f"{url}/api/2.0/mlflow/metrics/get-history?run_id={run_id}&metric_key=train_loss"
        )["metrics"]
        assert sorted(int(m["step"]) for m in history) == list(range(epochs + 1))
        listing = rest(f"{url}/api/2.0/mlflow/artifacts/list?run_id={run_id}")["files"]
        assert {"weights.npz", "history.csv"} <= {f["path"] for f in listing}
        with np.load(client.download_artifacts(run_id, "weights.npz"), allow_pickle=False) as a:
            net = MLP.from_arrays(a)
        final = {m["key"]: m["value"] for m in child["data"]["metrics"]}["final_loss"]
        assert net.loss(xor.X_train, xor.y_train, "mse") == pytest.approx(final, rel=1e-9)


# ------------------------------------------------------------ launchers
def test_a_submitit_local_sweep(tmp_path):
    result = bpexp(
        "-m", "seed=0,1,2", "trainer.epochs=20", "hydra/launcher=submitit_local", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-3000:]
    found = runs(f"sqlite:///{tmp_path}/mlflow.db")
    parents = [r for r in found if r.data.tags.get("bpexp.role") == "sweep"]
    children = [r for r in found if "mlflow.parentRunId" in r.data.tags]
    assert len(parents) == 1 and len(children) == 3
    assert all(r.info.status == "FINISHED" for r in found)
    assert {r.data.tags["mlflow.parentRunId"] for r in children} == {parents[0].info.run_id}
    # the launching process says where the sweep is, as with the other launchers
    assert f"bpexp: parent run: {parents[0].info.run_id}\n" in result.stderr


# ------------------------------------------------------- failure rules
@pytest.mark.parametrize("sweep", [True, False])
def test_an_unreachable_server_fails_at_once(tmp_path, sweep):
    url = f"http://127.0.0.1:{free_port()}"
    args = ["-m", "seed=0,1,2,3"] if sweep else []
    t0 = time.monotonic()
    result = bpexp(*args, f"tracking.uri={url}", cwd=tmp_path)
    assert result.returncode == 1
    assert time.monotonic() - t0 < 60  # no minutes of retries
    said = result.stdout + result.stderr
    assert f"tracking server {url} is unreachable" in said and "Traceback" not in said
    if sweep:  # no job was started
        assert not any(p.name == "0" for p in (tmp_path / "multirun").glob("*/*/*"))


def test_a_server_that_goes_away_loses_no_result(tmp_path):
    work = tmp_path / "work"
    returncode, out = run_while_server_dies(
        tmp_path, work, ["trainer.epochs=60000", "trainer.loss_threshold=null"], runs_before_stop=1
    )
    assert returncode == 1, out[-3000:]
    assert "the run's results are kept in" in out, out[-3000:]
    (kept,) = work.glob("outputs/*/*/artifacts")
    assert str(kept) in out
    history = (kept / "history.csv").read_text().splitlines()
    assert len(history) == 60002  # header, epoch 0 and every epoch: training went on
    with np.load(kept / "weights.npz", allow_pickle=False) as a:
        assert MLP.from_arrays(a).sizes == [2, 4, 1]
    job_dir = kept.parent
    assert f"python -m bpexp.sync {job_dir}" in out

    # the server is back (same store): bpexp.sync logs the kept run
    again = Server(f"sqlite:///{tmp_path}/server.db", tmp_path)
    try:
        result = bpexp_sync(job_dir, again.url)
        assert result.returncode == 0, result.stderr[-3000:]
        client = MlflowClient(tracking_uri=again.url)
        (run,) = client.search_runs([client.get_experiment_by_name("bpexp").experiment_id])
        assert run.info.run_id in result.stdout  # the same run, resumed
        assert run.info.status == "FINISHED" and run.data.metrics["epochs_run"] == 60000
        steps = [m.step for m in client.get_metric_history(run.info.run_id, "train_loss")]
        assert len(steps) == len(set(steps)) and {0, 60000} <= set(steps)  # no duplicates
        names = {f.path for f in client.list_artifacts(run.info.run_id)}
        assert {"weights.npz", "history.csv", "loss_curve.png"} <= names
        # a second sync has nothing to do, and says so
        twice = bpexp_sync(job_dir, again.url)
        assert twice.returncode == 1 and "nothing to sync" in twice.stderr
    finally:
        again.stop()


# ------------------------------------------------- the team server on PostgreSQL
@pytest.fixture(scope="module")
def postgres_uri() -> str:
    uri = os.environ.get("BPEXP_TEST_POSTGRES_URI")
    if not uri:
        if os.environ.get("CI"):
            pytest.fail("CI must provide BPEXP_TEST_POSTGRES_URI (.ci/run starts PostgreSQL)")
        pytest.skip("no PostgreSQL: set BPEXP_TEST_POSTGRES_URI (see .ci/postgres.sh)")
    return uri


@pytest.fixture(scope="module")
def team_server(postgres_uri, tmp_path_factory):
    server = Server(postgres_uri, tmp_path_factory.mktemp("team"))
    yield server.url
    server.stop()


@pytest.mark.postgres
@pytest.mark.parametrize(
    "launcher,n_jobs,epochs",
    [
        (["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"], 6, 25),
        (["hydra/launcher=submitit_local"], 3, 15),
    ],
    ids=["joblib-2-workers", "submitit-local"],
)
def test_sweeps_through_a_postgres_backed_server(team_server, tmp_path, launcher, n_jobs, epochs):
    experiment = f"pg-{uuid.uuid4().hex[:8]}"
    result = bpexp(
        "-m", f"seed=range(0,{n_jobs})", f"trainer.epochs={epochs}",
        f"tracking.uri={team_server}", f"tracking.experiment={experiment}", *launcher, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    # nothing went to a local store: runs, metrics and artifacts went through the server
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "mlartifacts").exists()
    check_runs_through_rest(team_server, experiment, n_jobs=n_jobs, epochs=epochs)


def test_the_server_command_names_a_missing_database(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "bpexp.server", "--backend-store-uri",
         f"postgresql://nobody@127.0.0.1:{free_port()}/none"],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.startswith(
        "bpexp.server: error: backend store: cannot reach the database postgresql://"
    )
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_sweep_whose_server_goes_away_is_completed_by_sync(tmp_path):
    work = tmp_path / "work"
    returncode, out = run_while_server_dies(
        tmp_path,
        work,
        ["-m", "seed=0,1", "trainer.epochs=40000", "trainer.loss_threshold=null"],
        runs_before_stop=2,
    )  # the parent and the first job's run
    assert returncode == 1, out[-3000:]
    (sweep,) = (p for p in work.glob("multirun/*/*") if p.is_dir())
    assert f"python -m bpexp.sync {sweep.resolve()}" in out  # how to close the parent later
    kept = [json.loads(p.read_text()) for p in sweep.glob("*/run.json")]
    assert [r["state"] for r in kept] == ["ended", "ended"]  # both jobs kept their results

    again = Server(f"sqlite:///{tmp_path}/server.db", tmp_path)
    try:
        result = bpexp_sync(sweep, again.url)
        assert result.returncode == 0, result.stderr[-3000:]
        assert "2 job(s) logged; the sweep's parent run ended FINISHED" in result.stdout
        client = MlflowClient(tracking_uri=again.url)
        found = client.search_runs([client.get_experiment_by_name("bpexp").experiment_id])
        parents = [r for r in found if r.data.tags.get("bpexp.role") == "sweep"]
        children = [r for r in found if "mlflow.parentRunId" in r.data.tags]
        assert len(parents) == 1 and len(children) == 2
        assert all(r.info.status == "FINISHED" for r in found)
        assert {r.data.tags["mlflow.parentRunId"] for r in children} == {parents[0].info.run_id}
        assert {r.data.params["seed"] for r in children} == {"0", "1"}
    finally:
        again.stop()


def test_sync_sends_the_params_a_run_lost_with_its_server(tmp_path):
    """The server went away between the run's creation and its params: the run is in
    the store without them, and sync must send them with the rest."""
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    client = MlflowClient(tracking_uri=uri)
    experiment_id = client.create_experiment("lost", artifact_location=str(tmp_path / "art"))
    run = client.create_run(experiment_id, run_name="seed=3", tags={"dataset": "xor"})
    job = tmp_path / "job"
    artifact_dir(job).mkdir(parents=True)
    artifact_dir(job).joinpath("history.csv").write_text(
        "epoch,train_loss\n0,0.25\n1,0.2\n2,0.125\n"
    )
    record = {
        "tracking_uri": uri, "experiment": "lost", "experiment_id": experiment_id,
        "run_name": "seed=3", "run_id": run.info.run_id, "tags": {"dataset": "xor"},
        "params": {"seed": "3", "optimizer.lr": "0.5"}, "metric_keys": ["train_loss"],
        "epochs": 2, "max_points": 100, "state": "ended", "status": "FINISHED",
    }  # fmt: skip
    write_record(job, record)
    write_summary(artifact_dir(job), {"metrics": {"final_loss": 0.125}, "stop_reason": "epochs"})
    assert publish(job) == run.info.run_id
    synced = client.get_run(run.info.run_id)
    assert synced.data.params == {"seed": "3", "optimizer.lr": "0.5"}
    assert synced.info.status == "FINISHED" and synced.data.metrics["final_loss"] == 0.125
    steps = [m.step for m in client.get_metric_history(run.info.run_id, "train_loss")]
    assert sorted(steps) == [0, 1, 2]
