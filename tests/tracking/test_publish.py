"""Publishing a job's output directory: at the job's end, by ``bpexp.sync`` after a
kill, twice at once, into another store; with no password written to disk."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow import MlflowClient

from bpexp.analysis import load_histories, load_runs
from bpexp.analysis.measures import parse_target, with_measures
from bpexp.tracking.files import write_record
from bpexp.tracking.publisher import start_run
from tests.helpers import bpexp, bpexp_sync, command_env, runs, start_bpexp


def wait_for(predicate, timeout: float = 120.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def test_a_finished_runs_points_are_its_thinned_epochs_at_training_times(tmp_path):
    result = bpexp(
        "trainer.epochs=3000", "trainer.loss_threshold=null", "tracking.max_points=50",
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    store = f"sqlite:///{tmp_path}/mlflow.db"
    (run,) = runs(store)
    (job,) = tmp_path.glob("outputs/*/*")
    record = json.loads((job / "run.json").read_text())
    assert record["state"] == "published" and record["run_id"] == run.info.run_id
    points = MlflowClient(store).get_metric_history(run.info.run_id, "train_loss")
    steps = sorted(p.step for p in points)
    assert len(steps) == 50 and steps[0] == 0 and steps[-1] == 3000
    # each point's time is the run's start plus the epoch's training seconds
    history = (job / "artifacts" / "history.csv").read_text().splitlines()
    header = history[0].split(",")
    seconds = {int(r.split(",")[0]): float(r.split(",")[header.index("seconds")])
               for r in history[1:]}  # fmt: skip
    for p in points:
        expected = run.info.start_time + int(1000 * seconds[p.step])
        assert p.timestamp == expected
    # published once: a second publish has nothing to do
    again = bpexp_sync(str(job))
    assert again.returncode == 1 and "nothing to sync" in again.stderr


@pytest.mark.slow
def test_a_killed_jobs_run_is_closed_by_sync_and_counted_unfinished(tmp_path):
    out_dir = killed_job(tmp_path)
    store = f"sqlite:///{tmp_path}/mlflow.db"
    (run,) = runs(store)
    assert run.info.status == "RUNNING"  # what a power cut leaves
    result = bpexp_sync(str(out_dir))
    assert result.returncode == 0, result.stderr[-2000:]
    (run,) = runs(store)
    assert run.info.status == "KILLED"
    assert "ended without ending its run" in run.data.tags["error"]
    files = {a.path for a in MlflowClient(store).list_artifacts(run.info.run_id)}
    assert {"history.csv", "config.yaml"} <= files and "history.csv.part" not in files
    rows = (out_dir / "artifacts" / "history.csv").read_text().splitlines()
    assert len(rows) > 100 and rows[-1].count(",") == rows[0].count(",")  # no cut line
    # the report's reading of it: unfinished, never a result
    found = load_runs(tracking_uri=store)
    histories = load_histories(found, tracking_uri=store)
    table = with_measures(found, histories, [parse_target("train_loss=0.01")])
    assert table["outcome"].tolist() == ["unfinished"]


def killed_job(tmp_path: Path) -> Path:
    """The output directory of a real job killed (SIGKILL) mid-training."""
    job = start_bpexp(
        "trainer.epochs=2000000", "trainer.loss_threshold=null", cwd=tmp_path,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_for(lambda: any(tmp_path.glob("outputs/*/*/artifacts/history.csv.part")),
                 what="the job's history")  # fmt: skip
        (part,) = tmp_path.glob("outputs/*/*/artifacts/history.csv.part")
        wait_for(lambda: part.stat().st_size > 20_000, what="some epochs on disk")
    finally:
        job.send_signal(signal.SIGKILL)  # no chance to clean up: a power cut
        job.wait()
    return part.parent.parent


@pytest.mark.slow
def test_two_syncs_at_once_into_a_new_store_publish_the_run_once(tmp_path):
    out_dir = killed_job(tmp_path)
    other = f"sqlite:///{tmp_path}/other.db"  # a new store: both create its schema at once
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "bpexp.sync", str(out_dir), "--tracking-uri", other],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=command_env(),
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    codes = sorted(p.returncode for p in procs)
    assert codes == [0, 1], outs  # one published it; the other found nothing to do
    assert any("nothing to sync" in err for _, err in outs), outs
    (run,) = runs(other)
    assert run.info.status == "KILLED"
    steps = [m.step for m in MlflowClient(other).get_metric_history(run.info.run_id, "train_loss")]
    assert steps and len(steps) == len(set(steps))  # no point twice


def test_a_password_in_the_store_uri_is_never_written(tmp_path):
    secret = "s3cr3t-pw"
    uri = f"http://user:{secret}@127.0.0.1:9/"  # nothing listens: the run is kept locally
    record = start_run(
        tmp_path, uri=uri, experiment="e", run_name="r", tags={}, params={"seed": "0"},
        metric_keys=["train_loss"], epochs=1, max_points=None,
    )  # fmt: skip
    assert record["run_id"] is None
    write_record(tmp_path, {**record, "state": "ended", "status": "FINISHED"})  # as a job ends
    text = (tmp_path / "run.json").read_text()
    assert secret not in text and "user:***@127.0.0.1" in text
    # and bpexp.sync says the password is needed, without printing one
    result = bpexp_sync(str(tmp_path))
    assert result.returncode == 1 and "--tracking-uri" in result.stderr
    assert secret not in result.stderr + result.stdout
