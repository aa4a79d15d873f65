"""A stopped sweep resumed: only the jobs that did not finish run again, under the
same parent run, and the sweep reads as if it had never stopped."""

from __future__ import annotations

import json
import signal
import subprocess
import time

import pytest

from tests.helpers import command, runs, start_bpexp

pytestmark = pytest.mark.slow


def test_a_sweep_stopped_by_ctrl_c_is_resumed_where_it_stopped(tmp_path):
    args = ["-m", "seed=0,1,2", "trainer.epochs=50000", "trainer.loss_threshold=null"]
    proc = start_bpexp(*args, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 180
    while not list(tmp_path.glob("multirun/*/*/1/run.json")):
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)  # job 0 finished, job 1 is running: it ends KILLED
    proc.communicate(timeout=120)
    (sweep,) = (p for p in tmp_path.glob("multirun/*/*") if p.is_dir())
    store = f"sqlite:///{tmp_path}/mlflow.db"
    (parent,) = [r for r in runs(store) if r.data.tags.get("bpexp.role") == "sweep"]
    assert parent.info.status == "KILLED"

    # a different sweep in the same directory is refused, in one line
    other = command("bpexp", "-m", "seed=7,8", f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    assert other.returncode == 1 and "holds a sweep of other overrides" in other.stderr

    first = json.loads((sweep / "1" / "run.json").read_text())
    resumed = command("bpexp.resume", str(sweep), cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "1 job finished before, skipped, running the other 2" in resumed.stderr
    found = runs(store)
    (again,) = [r for r in found if r.data.tags.get("bpexp.role") == "sweep"]
    assert again.info.run_id == parent.info.run_id and again.info.status == "FINISHED"
    children = [r for r in found if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert sorted(r.data.params["seed"] for r in children) == ["0", "1", "2"]
    assert all(r.info.status == "FINISHED" for r in children)
    # the killed attempt keeps its results, detached from the sweep, naming its successor
    (killed,) = [r for r in found if r.info.run_id == first["run_id"]]
    assert killed.info.status == "KILLED" and "mlflow.parentRunId" not in killed.data.tags
    assert killed.data.tags["bpexp.resumed_as"] in {r.info.run_id for r in children}

    # resumed once more: every job finished, nothing runs again
    twice = command("bpexp.resume", str(sweep), cwd=tmp_path)
    assert twice.returncode == 0, twice.stderr[-3000:]
    assert "3 jobs finished before, skipped, running the other 0" in twice.stderr
    assert len(runs(store)) == len(found)
