"""``python -m bpexp -m ... hydra/launcher=stacked``, the real command, against real stores:
each job ends as the basic launcher would have ended it."""

from __future__ import annotations

import csv
import json
import math
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from mlflow import MlflowClient

from bpexp.tracking.store import ensure_experiment
from tests.helpers import bpexp, command_env, runs, start_bpexp

pytestmark = pytest.mark.slow

#: two shapes x two variants x two seeds x three learning rates: 0.5 learns, 60
#: diverges (an identity output is unbounded), -1 is a bad value
MIXED = (
    "-m",
    "model.hidden_size=3,5",
    "optimizer=bgd,sgd",
    "seed=0,1",
    "optimizer.lr=0.5,60,-1",
    "model.output=identity",
    "trainer.epochs=300",
)
#: what differs between two runs of the same job by design: times, and where
TIMES = ("seconds", "wall_seconds", "train_seconds")
#: tags that say where, or by which launcher, a run was run
WHERE = ("mlflow.parentRunId", "hydra.output_dir", "bpexp.launcher")
RTOL = 1e-12


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    """The mixed sweep run by the basic and by the stacked launcher, each in its own
    directory and store."""
    done = {}
    for launcher in ("basic", "stacked"):
        cwd = tmp_path_factory.mktemp(launcher)
        done[launcher] = cwd, bpexp(*MIXED, f"hydra/launcher={launcher}", cwd=cwd)
    return done


def store_of(cwd: Path) -> str:
    return f"sqlite:///{cwd}/mlflow.db"


def sweep_runs(cwd: Path):
    found = runs(store_of(cwd))
    parents = [r for r in found if r.data.tags.get("bpexp.role") == "sweep"]
    children = {r.info.run_name: r for r in found if "mlflow.parentRunId" in r.data.tags}
    return parents, children


def close(a, b) -> bool:
    return bool(np.allclose(a, b, rtol=RTOL, atol=0, equal_nan=True))


def read_csv(path: Path) -> dict[str, np.ndarray]:
    with open(path) as fh:
        rows = list(csv.DictReader(fh))
    return {k: np.array([float(r[k] or "nan") for r in rows]) for k in rows[0]}


def compare_artifacts(a: Path, b: Path) -> None:
    files = sorted(p.name for p in a.iterdir())
    assert files == sorted(p.name for p in b.iterdir())
    for name in files:
        if name.endswith(".png"):  # drawn from the same history; its bytes may differ
            continue
        if name.endswith(".csv"):
            x, y = read_csv(a / name), read_csv(b / name)
            assert x.keys() == y.keys()
            for key in set(x) - {"seconds"}:
                assert close(x[key], y[key]), (name, key)
        elif name.endswith(".npz"):
            with np.load(a / name) as x, np.load(b / name) as y:
                assert sorted(x.files) == sorted(y.files)
                for key in x.files:
                    if x[key].dtype.kind in "fc":
                        assert close(x[key], y[key]), (name, key)
                    else:  # the network's names and sizes
                        assert np.array_equal(x[key], y[key]), (name, key)
        elif name == "summary.json":
            x, y = (json.loads((d / name).read_text()) for d in (a, b))
            times = {k: x["metrics"].pop(k) - y["metrics"].pop(k) for k in TIMES[1:]}
            assert times.keys() == set(TIMES[1:])
            assert x.keys() == y.keys() and x["metrics"].keys() == y["metrics"].keys()
            for key, value in x["metrics"].items():
                assert close(value, y["metrics"][key]), (name, key)
            assert {k: v for k, v in x.items() if k != "metrics"} == {
                k: v for k, v in y.items() if k != "metrics"
            }
        else:
            assert (a / name).read_text() == (b / name).read_text(), name


def job_dirs(cwd: Path) -> dict[int, Path]:
    (sweep,) = (cwd / "multirun").glob("*/*")
    return {int(p.name): p for p in sweep.iterdir() if p.is_dir()}


def hydra_yaml(job_dir: Path) -> dict:
    """The job's .hydra/hydra.yaml without what names the launcher or the sweep's directory."""
    node = yaml.safe_load((job_dir / ".hydra" / "hydra.yaml").read_text())["hydra"]
    sweep_dir = str(job_dir.parent)
    for key in ("launcher", "sweep", "run"):
        node.pop(key)
    node["overrides"]["hydra"] = [o for o in node["overrides"]["hydra"] if "launcher" not in o]
    node["runtime"]["choices"].pop("hydra/launcher")
    node["runtime"]["output_dir"] = node["runtime"]["output_dir"].replace(sweep_dir, "SWEEP")
    node["runtime"].pop("cwd")
    return node


def log_lines(job_dir: Path) -> list[str]:
    """The job's log file's messages, without times, run ids and the time left."""
    text = (job_dir / "bpexp.log").read_text()
    text = re.sub(r"^\[[^]]*\]", "", text, flags=re.M)
    text = re.sub(r"[0-9a-f]{32}", "RUN", text)
    text = re.sub(r" \(\d+ ended in .*left\)| training [0-9.]+ s", "", text)
    return text.splitlines()


def test_stacked_jobs_end_as_the_basic_launchers(mixed):
    (basic_dir, basic), (stacked_dir, stacked) = mixed["basic"], mixed["stacked"]
    # the sweep was stacked: four groups of six (the bad values among them)
    for shape, variant in (("2-3-1", "bgd"), ("2-3-1", "sgd"), ("2-5-1", "bgd"), ("2-5-1", "sgd")):
        assert f": 4 {shape} {variant} networks, 300 epochs" in stacked.stdout, stacked.stdout
    assert "alone" in stacked.stdout and "24 in groups of up to 32, 0 alone" in stacked.stdout

    for result in (basic, stacked):  # the bad values failed their jobs, and so the sweep
        assert result.returncode == 1
        said = result.stdout + result.stderr
        assert said.count("config error: optimizer.lr: must be > 0, got -1") >= 8
    (basic_parent,), basic_runs = sweep_runs(basic_dir)
    (stacked_parent,), stacked_runs = sweep_runs(stacked_dir)
    assert basic_parent.info.status == stacked_parent.info.status == "FAILED"
    assert sorted(basic_runs) == sorted(stacked_runs)
    assert len(basic_runs) == 16  # the 8 bad values made no run
    diverged = [r for r in stacked_runs.values() if r.data.metrics["diverged"] == 1]
    assert len(diverged) == 8 and {r.data.params["optimizer.lr"] for r in diverged} == {"60"}

    client_a = MlflowClient(tracking_uri=store_of(basic_dir))
    client_b = MlflowClient(tracking_uri=store_of(stacked_dir))
    for name, a in basic_runs.items():
        b = stacked_runs[name]
        assert a.info.status == b.info.status == "FINISHED", name
        assert a.data.params == b.data.params, name
        tags = {k: v for k, v in a.data.tags.items() if k not in WHERE}
        assert tags == {k: v for k, v in b.data.tags.items() if k not in WHERE}, name
        launchers = (a.data.tags["bpexp.launcher"], b.data.tags["bpexp.launcher"])
        assert launchers == ("basic", "stacked"), name
        job_a, job_b = (Path(r.data.tags["hydra.output_dir"]).name for r in (a, b))
        assert job_a == job_b, name
        assert a.data.metrics.keys() == b.data.metrics.keys(), name
        for key in set(a.data.metrics) - set(TIMES):
            assert close(a.data.metrics[key], b.data.metrics[key]), (name, key)
            ha = client_a.get_metric_history(a.info.run_id, key)
            hb = client_b.get_metric_history(b.info.run_id, key)
            assert [m.step for m in ha] == [m.step for m in hb], (name, key)
            assert close([m.value for m in ha], [m.value for m in hb]), (name, key)
        files_a = Path(client_a.download_artifacts(a.info.run_id, ""))
        files_b = Path(client_b.download_artifacts(b.info.run_id, ""))
        compare_artifacts(files_a, files_b)

    # every job, a bad value's too, has its own output directory as the basic launcher gives it
    dirs_a, dirs_b = job_dirs(basic_dir), job_dirs(stacked_dir)
    assert sorted(dirs_a) == sorted(dirs_b) == list(range(24))
    for num, a in dirs_a.items():
        b = dirs_b[num]
        for name in ("config.yaml", "overrides.yaml"):
            assert (a / ".hydra" / name).read_text() == (b / ".hydra" / name).read_text()
        assert hydra_yaml(a) == hydra_yaml(b)
        assert hydra_yaml(b)["job"]["num"] == num
        assert log_lines(a) == log_lines(b), num


def test_a_stacked_study_closes_its_parent_and_reports(tmp_path):
    result = bpexp(
        "-m", "experiment=xor_variants", "optimizer.lr=0.5,2.0", "seed=0,1",
        "trainer.epochs=200", "hydra/launcher=stacked", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("networks trained in") == 3  # bgd, sgd and mbgd: 4 jobs each
    found = runs(store_of(tmp_path), "xor-variants")
    (parent,) = [r for r in found if r.data.tags.get("bpexp.role") == "sweep"]
    children = [r for r in found if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert parent.info.status == "FINISHED"
    assert len(children) == 12 and all(c.info.status == "FINISHED" for c in children)
    assert parent.info.run_name == "xor_variants: optimizer x optimizer.lr x seed (12 jobs)"

    (line,) = re.findall(r"bpexp: its report: (.*)", result.stderr)
    assert line == f"python -m bpexp.report --parent {parent.info.run_id}"
    report = subprocess.run(
        [sys.executable, *shlex.split(line)[1:]], cwd=tmp_path, env=command_env(),
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert report.returncode == 0, report.stderr[-3000:]
    (written,) = re.findall(r": (reports/\S+/index.md)$", report.stdout.strip())
    index = (tmp_path / written).read_text()
    assert "12 runs (12 FINISHED), 2 seeds" in index
    assert "count their group's training time" in index  # the seconds axis, said
    for variant in ("bgd", "sgd", "mbgd"):  # a row of each variant at each learning rate
        for lr in ("0.5", "2  "):
            assert re.search(rf"\| {variant} +\| +{lr} \| +2 \| +2 \|", index), (variant, lr)


def test_ctrl_c_kills_the_unfinished_jobs_of_the_group_with_what_they_logged(tmp_path):
    """Two groups: a short one that ends, then one that never would."""
    uri = store_of(tmp_path)
    # create the store first, so that polling it below never races its creation
    ensure_experiment(MlflowClient(tracking_uri=uri), "bpexp", uri)
    proc = start_bpexp(
        "-m", "trainer.epochs=50,100000000", "seed=0,1,2",
        "trainer.loss_threshold=null",  # XOR's target would end the long jobs first
        "trainer.progress_every=1", "hydra/launcher=stacked", cwd=tmp_path,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    client = MlflowClient(tracking_uri=uri)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:  # until each long job has flushed points once
        time.sleep(1)
        long = [r for r in runs(uri) if r.data.params.get("trainer.epochs") == "100000000"]
        if len(long) == 3 and all(
            client.get_metric_history(r.info.run_id, "train_loss") for r in long
        ):
            break
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode != 0
    # the group's progress, without a terminal: a line a second
    assert re.search(r"group 2 of 2: epoch \d+ of 100000000, 3 of 3 networks training", stdout)
    assert "group 1 of 2: 3 networks trained in " in stdout
    assert re.search(r'bpexp: sweep ".*" KILLED in ', stderr), stderr[-3000:]
    (parent,), children = sweep_runs(tmp_path)
    assert parent.info.status == "KILLED"
    assert len(children) == 6
    for run in children.values():
        if run.data.params["trainer.epochs"] == "50":
            assert run.info.status == "FINISHED"
            continue
        assert run.info.status == "KILLED", run.info.run_name
        assert run.data.tags["error"] == "interrupted (Ctrl-C)"
        logged = client.get_metric_history(run.info.run_id, "train_loss")
        files = Path(client.download_artifacts(run.info.run_id, ""))
        history = read_csv(files / "history.csv")
        assert len(history["epoch"]) >= len(logged) > 0
        assert all(math.isfinite(v) for v in history["train_loss"])
