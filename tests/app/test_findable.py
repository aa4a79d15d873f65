"""A run's or sweep's results can be found: what the command says at its end, run
names, progress lines without a terminal, and no password in what is printed."""

from __future__ import annotations

import re
import shlex
import signal
import subprocess
import sys
import time

import pytest
from mlflow import MlflowClient
from omegaconf import open_dict

from bpexp.callbacks import study_of, sweep_plan
from bpexp.config import ConfigError, validate
from bpexp.tracking.store import ensure_experiment, masked
from bpexp.tracking.sweep import parent_run_name
from tests.helpers import Server, bpexp, command_env, compose_cfg, runs, start_bpexp


def said(result: subprocess.CompletedProcess, label: str) -> str:
    """The value of the ``bpexp: LABEL: VALUE`` line the command printed on stderr."""
    found = re.findall(rf"^bpexp: {re.escape(label)}: (.*)$", result.stderr, re.M)
    assert len(found) == 1, result.stderr[-3000:]
    return found[0]


def sweep_runs(uri: str, experiment: str):
    found = runs(uri, experiment)
    parents = [r for r in found if r.data.tags.get("bpexp.role") == "sweep"]
    children = [r for r in found if "mlflow.parentRunId" in r.data.tags]
    return parents, children


# ------------------------------------------------------------------ masking
@pytest.mark.parametrize(
    "text, expected",
    [
        ("http://u:secretpw@127.0.0.1:5000", "http://u:***@127.0.0.1:5000"),
        ("postgresql+psycopg://me:p%40ss@db:5432/x", "postgresql+psycopg://me:***@db:5432/x"),
        # as Hydra prints a job's overrides, and the repr of its error line
        (r"tracking.uri=http\://u\:secretpw@h\:5000", r"tracking.uri=http\://u\:***@h\:5000"),
        (r"['tracking.uri=http\\://u\\:pw@h']", r"['tracking.uri=http\\://u\\:***@h']"),
        ("sqlite:////tmp/mlflow.db", "sqlite:////tmp/mlflow.db"),
        ("http://u@h:5000 and http://h:5000/a@b", "http://u@h:5000 and http://h:5000/a@b"),
    ],
)
def test_masked_hides_passwords_only(text, expected):
    assert masked(text) == expected


# ------------------------------------------------------------- what is swept
def plan(*overrides: str, task: list[str] | None = None):
    """The sweep plan of a composed config whose command line was ``task``."""
    cfg = compose_cfg(*overrides)
    with open_dict(cfg):
        cfg.hydra.overrides.task = list(task if task is not None else overrides)
    return cfg, sweep_plan(cfg)


def test_a_study_sweeps_its_file_keys_and_the_command_line_replaces_them():
    cfg, (swept, jobs) = plan("experiment=xor_variants")
    assert (swept, jobs) == (["optimizer", "optimizer.lr", "seed"], 45)
    assert study_of(cfg) == "xor_variants"
    assert parent_run_name(study_of(cfg), swept, jobs) == (
        "xor_variants: optimizer x optimizer.lr x seed (45 jobs)"
    )
    # a fixed value on the command line replaces the file's sweep of that key
    _, (swept, jobs) = plan("experiment=xor_variants", "seed=3")
    assert (swept, jobs) == (["optimizer", "optimizer.lr"], 9)
    _, (swept, jobs) = plan(
        "experiment=xor_variants", task=["experiment=xor_variants", "seed=0,1", "a.b=1"]
    )
    assert (swept, jobs) == (["optimizer", "optimizer.lr", "seed"], 18)


def test_without_a_study_the_experiment_names_the_sweep():
    cfg, (swept, jobs) = plan(
        "tracking.experiment=mine", task=["optimizer=bgd,sgd", "seed=range(0,3)", "x=1"]
    )
    assert study_of(cfg) == "mine"
    assert parent_run_name(study_of(cfg), swept, jobs) == "mine: optimizer x seed (6 jobs)"


@pytest.mark.parametrize("value", ["0", "-1", "soon"])
def test_progress_every_is_checked(value):
    cfg = compose_cfg(f"trainer.progress_every={value}")
    with open_dict(cfg):
        del cfg["hydra"]
    with pytest.raises(ConfigError, match=r"trainer\.progress_every: must be"):
        validate(cfg)


# --------------------------------------------------------- real commands
@pytest.mark.slow
@pytest.mark.parametrize("launcher", ["basic", "joblib"])
def test_a_sweep_says_its_parent_run_ui_and_report(tmp_path, launcher):
    parallel = ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"] if launcher == "joblib" else []
    result = bpexp(
        "-m", "experiment=xor_variants", "optimizer=bgd,sgd", "seed=0,1", "optimizer.lr=0.5",
        "trainer.epochs=30", "tracking.uri=sqlite:///mlflow.db", *parallel, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    (parent,), children = sweep_runs(uri, "xor-variants")
    parent_id, exp_id = parent.info.run_id, parent.info.experiment_id

    assert said(result, "parent run") == parent_id
    assert f'sweep "{parent.info.run_name}" FINISHED in ' in result.stderr
    assert said(result, "browse its runs") == (
        f"mlflow ui --backend-store-uri sqlite:///{tmp_path}/mlflow.db --port 5000"
    )
    assert f"  then open http://127.0.0.1:5000/#/experiments/{exp_id}/runs\n" in result.stderr
    # the same lines are kept beside the sweep's jobs
    (sweep_log,) = (tmp_path / "multirun").glob("*/*/sweep.log")
    assert f"bpexp: parent run: {parent_id}" in sweep_log.read_text()

    # names: the study and its axes; the children's differing values only
    assert parent.info.run_name == "xor_variants: optimizer x seed (4 jobs)"
    assert parent.data.tags["bpexp.swept"] == "optimizer,seed"
    assert parent.data.tags["bpexp.study"] == "xor_variants"
    assert sorted(c.info.run_name for c in children) == [
        f"optimizer={o} seed={s}" for o in ("bgd", "sgd") for s in (0, 1)
    ]

    # each job says which it is; a job that starts after another ended, the time left
    starts = re.findall(r"job (\d) of 4: .*", result.stdout)
    assert sorted(starts) == ["1", "2", "3", "4"], result.stdout[-3000:]
    assert re.search(r"job \d of 4: .* ended in .*, about .* left\)", result.stdout)

    # the report command, run as printed from the same directory (the store is the default)
    command = said(result, "its report")
    assert command == f"python -m bpexp.report --parent {parent_id}"
    argv = shlex.split(command)
    report = subprocess.run(
        [sys.executable, *argv[1:]], cwd=tmp_path, env=command_env(),
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert report.returncode == 0, report.stderr[-3000:]


@pytest.mark.slow
def test_a_failing_sweep_says_the_same_with_its_status(tmp_path):
    result = bpexp(
        "-m", "optimizer.lr=0.5,-1", "trainer.epochs=20", "tracking.uri=sqlite:///other.db",
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 1
    uri = f"sqlite:///{tmp_path}/other.db"
    (parent,), (child,) = sweep_runs(uri, "bpexp")  # the bad value made no run
    assert parent.info.status == "FAILED"
    assert said(result, "parent run") == parent.info.run_id
    assert 'sweep "bpexp: optimizer.lr (2 jobs)" FAILED in ' in result.stderr
    assert child.info.run_name == "optimizer.lr=0.5"
    assert f"#/experiments/{parent.info.experiment_id}/runs\n" in result.stderr
    # not the default store: the report is told where it is
    assert said(result, "its report") == (
        f"python -m bpexp.report --parent {parent.info.run_id} --tracking-uri {uri}"
    )


@pytest.mark.slow
def test_an_interrupted_sweep_says_it_was_killed(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    # create the store first, so that polling it below never races its creation
    ensure_experiment(MlflowClient(tracking_uri=uri), "bpexp", uri)
    proc = start_bpexp(
        "-m", "seed=0,1", "trainer.epochs=100000000",
        "trainer.loss_threshold=null",  # XOR's target would end both jobs first
        cwd=tmp_path,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(runs(uri)) < 2:  # the parent and job 1
        time.sleep(1)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    (parent,), _ = sweep_runs(uri, "bpexp")
    assert parent.info.status == "KILLED"
    result = subprocess.CompletedProcess(proc.args, proc.returncode, "", stderr)
    assert said(result, "parent run") == parent.info.run_id
    assert 'sweep "bpexp: seed (2 jobs)" KILLED in ' in stderr


@pytest.mark.slow
def test_a_run_without_a_terminal_logs_progress_and_says_where_it_is(tmp_path):
    result = bpexp(
        "trainer.epochs=30000", "trainer.progress_every=0.2", "tracking.max_points=10",
        "trainer.loss_threshold=null",  # XOR's target would end it in about 1,000 epochs
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    lines = re.findall(
        r"epoch (\d+) of 30000, train loss \S+, .* elapsed, about .* left", result.stdout
    )
    assert lines and all(0 < int(e) < 30000 for e in lines), result.stdout[-3000:]
    (run,) = runs(f"sqlite:///{tmp_path}/mlflow.db")
    # named after its overrides, those that do not change what is trained aside
    assert run.info.run_name == "trainer.epochs=30000 trainer.loss_threshold=null"
    assert (
        f"then open http://127.0.0.1:5000/#/experiments/{run.info.experiment_id}"
        f"/runs/{run.info.run_id}\n"
    ) in result.stdout
    # a run shorter than the interval (10 s by default) logs no progress
    short = bpexp("trainer.epochs=200", cwd=tmp_path)
    assert short.returncode == 0 and not re.search(r"epoch \d+ of", short.stdout + short.stderr)


@pytest.mark.slow
def test_no_password_of_the_tracking_uri_is_printed(tmp_path):
    server = Server(f"sqlite:///{tmp_path}/server.db", tmp_path)
    try:
        uri = server.url.replace("http://", "http://u:secretpw@")
        work = tmp_path / "work"
        work.mkdir()
        sweep = bpexp(
            "-m", "optimizer.lr=0.5,-1", "trainer.epochs=20", f"tracking.uri={uri}", cwd=work
        )
        single = bpexp("trainer.epochs=20", f"tracking.uri={uri}", cwd=work)
        found = runs(server.url)
    finally:
        server.stop()
    assert sweep.returncode == 1 and single.returncode == 0, single.stderr[-3000:]
    for result in (sweep, single):
        assert "secretpw" not in result.stdout + result.stderr
    (parent,) = [r for r in found if r.data.tags.get("bpexp.role") == "sweep"]
    assert "secretpw" not in parent.data.tags["bpexp.overrides"]
    assert all("secretpw" not in r.info.run_name for r in found)
    exp_id = parent.info.experiment_id
    # the UI link leaves the credentials out; the report command masks the password
    assert said(sweep, "its runs in the MLflow UI") == f"{server.url}/#/experiments/{exp_id}/runs"
    command = said(sweep, "its report")
    assert shlex.split(command)[-2:] == ["--tracking-uri", uri.replace("secretpw", "***")]
    (run,) = [r for r in found if r.info.run_name == "trainer.epochs=20"]
    assert f"{server.url}/#/experiments/{exp_id}/runs/{run.info.run_id}" in single.stdout
