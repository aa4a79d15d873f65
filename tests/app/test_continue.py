"""A single run stopped by SIGTERM (or Ctrl-C) goes on from its checkpoint when the user
asks (``python -m bpexp.resume RUN_DIR``), and ends as if it had never stopped."""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

from bpexp.config import ConfigError
from bpexp.continuing import stopped_run
from bpexp.core import MLP
from bpexp.tracking.files import read_history
from bpexp.tracking.names import CONTINUED_AS, CONTINUES
from tests.helpers import bpexp, command, runs, start_bpexp

pytestmark = pytest.mark.slow

ARGS = ["optimizer=mbgd", "update=adam", "optimizer.lr=0.05", "trainer.epochs=40000",
        "trainer.loss_threshold=null"]  # fmt: skip


def _only_dir(root: Path) -> Path:
    (d,) = (p for p in root.glob("outputs/*/*") if p.is_dir())
    return d


@pytest.fixture(scope="module")
def stopped(tmp_path_factory):
    """The same run twice, side by side: once to its end, once stopped by SIGTERM."""
    whole, cut = tmp_path_factory.mktemp("whole"), tmp_path_factory.mktemp("cut")
    ref = start_bpexp(*ARGS, cwd=whole, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    # Hydra's log lines go to stdout, bpexp's own to stderr: the user sees both
    proc = start_bpexp(*ARGS, cwd=cut, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True)  # fmt: skip
    deadline = time.monotonic() + 300
    parts = []
    while not parts or parts[0].read_text().count("\n") < 5000:  # flushed after a second
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.1)
        parts = list(cut.glob("outputs/*/*/artifacts/history.csv.part"))
    proc.send_signal(signal.SIGTERM)
    said, _ = proc.communicate(timeout=120)
    assert ref.wait(timeout=600) == 0, ref.stderr.read()[-3000:]
    return whole, cut, _only_dir(cut), proc.returncode, said


def test_a_stopped_run_says_how_to_go_on(stopped):
    _, _, run_dir, returncode, said = stopped
    assert returncode == -signal.SIGTERM
    assert (run_dir / "checkpoint.npz").is_file()
    (line,) = [x for x in said.splitlines() if "KILLED" in x]
    assert line.endswith(f"python -m bpexp.resume {run_dir}"), line
    assert "to train on from epoch " in line


def test_the_continued_run_is_the_run_never_stopped(stopped):
    whole, cut, run_dir, _, _ = stopped
    resumed = command("bpexp.resume", str(run_dir), cwd=Path("/"))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"trainer.continue_from={run_dir}" in resumed.stderr  # the command it ran

    (new_dir,) = (p for p in cut.glob("outputs/*/*") if p.is_dir() and p != run_dir)
    ref_dir = _only_dir(whole)
    # every epoch's measures (seconds aside) and the weights, bit for bit
    ref, got = (read_history(d / "artifacts" / "history.csv") for d in (ref_dir, new_dir))
    assert len(got) == len(ref) == 40001
    assert [{k: v for k, v in r.items() if k != "seconds"} for r in got] == [
        {k: v for k, v in r.items() if k != "seconds"} for r in ref
    ]
    a, b = MLP.load(ref_dir / "artifacts/weights.npz"), MLP.load(new_dir / "artifacts/weights.npz")
    for x, y in zip(a.weights + a.biases, b.weights + b.biases):
        np.testing.assert_array_equal(x, y)

    # the store: the stopped run KILLED, naming its continuation; the continuation
    # FINISHED, with the uninterrupted run's points and summary
    (reference,) = runs(f"sqlite:///{whole}/mlflow.db")
    found = runs(f"sqlite:///{cut}/mlflow.db")
    assert [r.info.status for r in found] == ["KILLED", "FINISHED"]
    killed, continued = found
    assert killed.data.tags[CONTINUED_AS] == continued.info.run_id
    assert continued.data.tags[CONTINUES] == killed.info.run_id
    assert continued.info.run_name == reference.info.run_name  # not named after the key
    timing = ("wall_seconds", "train_seconds")
    assert {k: v for k, v in continued.data.metrics.items() if k not in timing} == {
        k: v for k, v in reference.data.metrics.items() if k not in timing
    }
    from mlflow import MlflowClient

    def points(uri, run):
        history = MlflowClient(uri).get_metric_history(run.info.run_id, "train_loss")
        return sorted((m.step, m.value) for m in history)

    assert points(f"sqlite:///{cut}/mlflow.db", continued) == points(
        f"sqlite:///{whole}/mlflow.db", reference
    )

    # the report's view: one run of this configuration and seed, the continued one
    from bpexp.analysis.runs import deduplicate, load_runs

    kept, dropped = deduplicate(load_runs("bpexp", tracking_uri=f"sqlite:///{cut}/mlflow.db"))
    assert dropped == 1 and list(kept["run_id"]) == [continued.info.run_id]


def test_a_continuation_of_another_configuration_is_refused_in_one_line(stopped):
    _, cut, run_dir, _, _ = stopped
    before = len(runs(f"sqlite:///{cut}/mlflow.db"))
    other = bpexp(*ARGS, "optimizer.lr=0.1", f"trainer.continue_from={run_dir}", cwd=cut)
    assert other.returncode == 1
    said = [x for x in other.stderr.splitlines() if x.strip() and "mlflow" not in x]
    assert said == [
        f"config error: trainer.continue_from: the run in {run_dir} was trained with "
        f"optimizer.lr=0.05 (not 0.1): continue it with its own configuration, "
        f"python -m bpexp.resume {run_dir}"
    ], other.stderr[-2000:]
    assert len(runs(f"sqlite:///{cut}/mlflow.db")) == before  # no run made


def test_what_cannot_be_continued_is_named(stopped, tmp_path):
    whole, _, run_dir, _, _ = stopped
    config = OmegaConf.to_container(OmegaConf.load(run_dir / "artifacts/config.yaml"))
    config["trainer"]["continue_from"] = str(run_dir)
    assert stopped_run(config, "/", multirun=False).checkpoint.epoch > 0
    # keys that do not change what is trained may differ
    config["trainer"]["progress"] = False
    config["tracking"]["experiment"] = "elsewhere"
    assert stopped_run(config, "/", multirun=False) is not None

    bare = tmp_path / "bare"
    shutil.copytree(run_dir, bare)
    (bare / "checkpoint.npz").unlink()
    cases = {
        r"no checkpoint.npz there \(it ended KILLED before it could write one\)": (bare, False),
        "continues one run, not a sweep": (str(run_dir), True),
        "it finished: nothing to continue": (str(_only_dir(whole)), False),
        "is not the output directory of a run of bpexp": (str(tmp_path / "none"), False),
    }
    for message, (where, multirun) in cases.items():
        config["trainer"]["continue_from"] = str(where)
        with pytest.raises(ConfigError, match=message):
            stopped_run(config, "/", multirun=multirun)
    config["trainer"]["continue_from"] = str(run_dir)
    config["model"]["hidden_size"] = 9
    with pytest.raises(ConfigError, match=r"model.hidden_size=4 \(not 9\)"):
        stopped_run(config, "/", multirun=False)
    assert stopped_run({"trainer": {"continue_from": None}}, "/", multirun=False) is None


def test_resume_names_what_it_cannot_resume(tmp_path):
    result = command("bpexp.resume", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"bpexp.resume: error: {tmp_path} is neither a sweep's directory of bpexp "
        "(no multirun.yaml) nor a run's output directory (no .hydra/hydra.yaml)"
    )
