"""The real command, ``python -m bpexp``, in subprocesses, against real stores."""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from mlflow import MlflowClient

from bpexp.app import _refuse_unknown_choices, group_choices
from bpexp.core import MLP
from bpexp.data import load_dataset
from bpexp.tracking.store import ensure_experiment
from tests.helpers import Server, bpexp, runs, start_bpexp

pytestmark = pytest.mark.slow


def store_of(cwd: Path) -> str:
    return f"sqlite:///{cwd}/mlflow.db"


def parent_and_children(uri: str, experiment: str = "bpexp"):
    all_runs = runs(uri, experiment)
    parents = [r for r in all_runs if r.data.tags.get("bpexp.role") == "sweep"]
    children = [r for r in all_runs if "mlflow.parentRunId" in r.data.tags]
    return parents, children


def check_sweep_of_three(cwd: Path, result) -> None:
    assert result.returncode == 0, result.stderr[-3000:]
    uri = store_of(cwd)
    (parent,), children = parent_and_children(uri)
    assert parent.info.status == "FINISHED"
    assert len(children) == 3
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {parent.info.run_id}
    assert sorted(c.data.params["optimizer.variant"] for c in children) == ["bgd", "mbgd", "sgd"]
    client = MlflowClient(tracking_uri=uri)
    xor = load_dataset("xor")
    for child in children:
        assert child.info.status == "FINISHED"
        assert child.data.params["optimizer"] == child.data.params["optimizer.variant"]
        history = client.get_metric_history(child.info.run_id, "train_loss")
        assert sorted(m.step for m in history) == list(range(41))
        files = Path(client.download_artifacts(child.info.run_id, ""))
        with open(files / "history.csv") as fh:
            assert len(list(csv.DictReader(fh))) == 41
        with np.load(files / "weights.npz", allow_pickle=False) as arrays:
            net = MLP.from_arrays(arrays)
        assert net.loss(xor.X_train, xor.y_train, "mse") == pytest.approx(
            child.data.metrics["final_loss"], rel=1e-12
        )
    # every job has its own output directory under one sweep directory
    (sweep,) = [p for p in (cwd / "multirun").glob("*/*") if p.is_dir()]
    assert sorted(p.name for p in sweep.iterdir() if p.is_dir()) == ["0", "1", "2"]
    assert all((sweep / n / "bpexp.log").is_file() for n in "012")


def test_the_sweep_of_the_title(tmp_path):
    result = bpexp("-m", "optimizer=bgd,sgd,mbgd", "trainer.epochs=40", cwd=tmp_path)
    check_sweep_of_three(tmp_path, result)
    assert (tmp_path / "mlflow.db").is_file() and (tmp_path / "mlartifacts").is_dir()


def test_the_sweep_with_the_joblib_launcher(tmp_path):
    result = bpexp(
        "-m",
        "optimizer=bgd,sgd,mbgd",
        "trainer.epochs=40",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        cwd=tmp_path,
    )
    check_sweep_of_three(tmp_path, result)


def test_failing_and_invalid_jobs_do_not_stop_the_sweep(tmp_path):
    """Four jobs: fine, a diverging one, one that raises, one with a bad value."""
    result = bpexp(
        "-m",
        "dataset=digits",
        "model.hidden_size=8",
        "model.activation=relu",
        "model.output=identity",
        "model.init=normal",
        "trainer.epochs=30",
        "optimizer.lr=0.1,1e9,-1",
        "dataset.train_size=100,5000",
        cwd=tmp_path,
    )
    assert result.returncode == 1
    said = result.stdout + result.stderr
    assert "config error: optimizer.lr: must be > 0, got -1" in said
    assert "dataset digits: train_size: 5000 is more than the 1437 samples available" in said
    (parent,), children = parent_and_children(store_of(tmp_path))
    assert parent.info.status == "FAILED"
    by = {(c.data.params["optimizer.lr"], c.data.params["dataset.train_size"]): c for c in children}
    # lr=-1 jobs created no run; the 4 others did, and ran to their end
    assert set(by) == {
        ("0.1", "100"),
        ("0.1", "5000"),
        ("1000000000.0", "100"),
        ("1000000000.0", "5000"),
    }
    assert by["0.1", "100"].info.status == "FINISHED"
    assert by["0.1", "100"].data.metrics["diverged"] == 0
    assert by["1000000000.0", "100"].info.status == "FINISHED"
    assert by["1000000000.0", "100"].data.metrics["diverged"] == 1
    for key in (("0.1", "5000"), ("1000000000.0", "5000")):
        assert by[key].info.status == "FAILED"
        assert "5000 is more than" in by[key].data.tags["error"]


def test_a_bad_value_stops_the_job_with_one_line_and_no_run(tmp_path):
    result = bpexp("optimizer.batch_size=0", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "config error: optimizer.batch_size: must be an integer >= 1, got 0"
    ]
    assert "config error" not in result.stdout  # said once
    assert runs(store_of(tmp_path)) == []


def test_a_typo_stops_a_sweep_before_its_parent_run_with_one_line(tmp_path):
    # the form Hydra itself suggests after "Key 'lrr' is not in struct"
    result = bpexp("-m", "+optimizer.lrr=0.1", "seed=0,1", "trainer.epochs=5", cwd=tmp_path)
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if "config error" in line]
    assert lines == ["config error: optimizer.lrr: unknown key; did you mean optimizer.lr?"]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "mlflow.db").exists()  # nothing tracked, not even a parent


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ["optimizer=null"],
            "bpexp: error: optimizer=null: optimizer must be one of bgd, mbgd, sgd "
            "(the files of conf/optimizer/), got null",
        ),
        (
            ["-m", "update=plain,null"],
            "bpexp: error: update=plain,null: update must be one of adam, momentum, nesterov, "
            "plain (the files of conf/update/), got null",
        ),
        (
            ["schedule=cosine"],
            "bpexp: error: schedule=cosine: schedule must be one of constant, exponential, "
            "inverse_time, step (the files of conf/schedule/), got cosine",
        ),
    ],
)
def test_a_group_set_to_null_or_no_option_is_one_line_naming_its_options(tmp_path, args, line):
    result = bpexp(*args, cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [line]
    assert result.stdout == ""
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "multirun").exists()


def test_every_group_refuses_null_and_takes_each_of_its_options():
    choices = group_choices()
    assert set(choices) == {
        "optimizer",
        "update",
        "schedule",
        "model",
        "trainer",
        "dataset",
        "tracking",
        "experiment",
    }
    for group, options in choices.items():
        assert options
        with pytest.raises(SystemExit, match=f"^bpexp: error: {group}=null: .*got null$"):
            _refuse_unknown_choices([f"{group}=null"])
        _refuse_unknown_choices([f"{group}={','.join(options)}", f"+{group}={options[0]}"])


def test_a_network_too_big_for_the_memory_is_refused_in_one_line_naming_its_size(tmp_path):
    """2 x 1e11 float64 weights (1.6 TB): refused from the shapes, never allocated."""
    result = bpexp("model.hidden_size=100000000000", cwd=tmp_path, timeout=120)
    assert result.returncode == 1
    (line,) = [line for line in result.stderr.splitlines() if "model" in line]
    assert line.startswith("model: a 2-100000000000-1 network (float64) trained by bgd on 4 ")
    assert "needs about 2.38e+04 GiB;" in line and "of memory is available" in line
    assert "Traceback" not in result.stderr
    assert "MemoryError" not in result.stdout + result.stderr


def test_the_former_plus_experiment_names_the_new_form_in_one_line(tmp_path):
    result = bpexp("-m", "+experiment=xor_variants", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "bpexp: error: +experiment=xor_variants is now experiment=xor_variants, without the +: "
        "python -m bpexp -m experiment=xor_variants"
    ]
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "multirun").exists()


def test_an_experiment_config(tmp_path):
    result = bpexp(
        "-m",
        "experiment=xor_variants",
        "optimizer.lr=2.0",
        "seed=0,1",
        "trainer.epochs=300",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (parent,), children = parent_and_children(store_of(tmp_path), "xor-variants")
    assert parent.info.status == "FINISHED"
    # the file's sweep of optimizer x lr x seed, with lr and seed replaced from the command line
    assert len(children) == 6
    assert {c.data.params["optimizer.lr"] for c in children} == {"2.0"}
    assert {c.data.params["experiment"] for c in children} == {"xor_variants"}
    assert {c.data.params["model.init"] for c in children} == {"uniform"}


def test_two_sweeps_started_together_on_a_new_store_do_not_collide(tmp_path):
    # the store does not exist yet: both commands would create its schema at once
    assert not (tmp_path / "mlflow.db").exists()
    procs = [
        start_bpexp("-m", "seed=0,1", "trainer.epochs=20", cwd=tmp_path, stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    for p in procs:
        assert p.wait(timeout=300) == 0, p.stderr.read()[-2000:]
    sweeps = [p for p in (tmp_path / "multirun").glob("*/*") if p.is_dir()]
    assert len(sweeps) == 2
    assert all(sorted(q.name for q in s.iterdir() if q.is_dir()) == ["0", "1"] for s in sweeps)
    parents, children = parent_and_children(store_of(tmp_path))
    assert len(parents) == 2 and len(children) == 4
    assert all(p.info.status == "FINISHED" for p in parents)


def test_ctrl_c_marks_the_run_killed_with_what_was_logged(tmp_path):
    uri = store_of(tmp_path)
    # create the store first, so that polling it below never races its creation
    ensure_experiment(MlflowClient(tracking_uri=uri), "bpexp", uri)
    proc = start_bpexp(
        "trainer.epochs=100000000",
        "trainer.loss_threshold=null",  # XOR's target would end it first
        cwd=tmp_path,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 120
    client = MlflowClient(tracking_uri=uri)
    while time.monotonic() < deadline:  # until points have been flushed once
        time.sleep(1)
        found = runs(uri)
        if found and client.get_metric_history(found[0].info.run_id, "train_loss"):
            break
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=60)
    (run,) = runs(uri)
    assert run.info.status == "KILLED"
    assert run.data.tags["error"] == "interrupted (Ctrl-C)"
    logged = client.get_metric_history(run.info.run_id, "train_loss")
    files = Path(client.download_artifacts(run.info.run_id, ""))
    with open(files / "history.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) >= len(logged) > 0  # what was logged is there, and the history so far


@pytest.fixture
def mlflow_server(tmp_path):
    """A real MLflow tracking server on 127.0.0.1 (SQLite backend, proxied artifacts)."""
    server = Server(f"sqlite:///{tmp_path}/server.db", tmp_path)
    yield server.url
    server.stop()


def _post(url: str, body: dict) -> dict:
    req = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def test_runs_logged_to_a_tracking_server(tmp_path, mlflow_server):
    work = tmp_path / "work"
    work.mkdir()
    result = bpexp("-m", "seed=0,1", "trainer.epochs=25", f"tracking.uri={mlflow_server}", cwd=work)
    assert result.returncode == 0, result.stderr[-3000:]
    assert not (work / "mlflow.db").exists()  # nothing went to a local store
    with urllib.request.urlopen(
        f"{mlflow_server}/api/2.0/mlflow/experiments/get-by-name?experiment_name=bpexp", timeout=30
    ) as r:
        exp_id = json.loads(r.read())["experiment"]["experiment_id"]
    found = _post(f"{mlflow_server}/api/2.0/mlflow/runs/search", {"experiment_ids": [exp_id]})[
        "runs"
    ]
    assert len(found) == 3 and all(r["info"]["status"] == "FINISHED" for r in found)
    children = [
        r for r in found if any(t["key"] == "mlflow.parentRunId" for t in r["data"]["tags"])
    ]
    assert len(children) == 2
    for child in children:
        run_id = child["info"]["run_id"]
        with urllib.request.urlopen(
            f"{mlflow_server}/api/2.0/mlflow/metrics/get-history?run_id={run_id}&metric_key=train_loss",
            timeout=30,
        ) as r:
            assert len(json.loads(r.read())["metrics"]) == 26
        with urllib.request.urlopen(
            f"{mlflow_server}/api/2.0/mlflow/artifacts/list?run_id={run_id}", timeout=30
        ) as r:
            names = {f["path"] for f in json.loads(r.read())["files"]}
        assert {"weights.npz", "history.csv"} <= names
