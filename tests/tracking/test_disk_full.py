"""A full disk under the job's output directory, the store on another one: the job stops,
publishes what it trained from memory, and ends its run FAILED with the reason; the user
reads one line naming the directory and the run; ``bpexp.sync`` then has nothing to add."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from mlflow import MlflowClient

from bpexp.core import MLP
from bpexp.data import load_dataset
from tests.helpers import command_env, runs

pytestmark = pytest.mark.slow

EPOCHS = 20000


def on_a_full_disk(tmp_path: Path, commands: str) -> subprocess.CompletedProcess:
    """Run ``commands`` (shell; ``{out}``, ``{uri}``, ``{python}`` and ``{tmp}`` filled
    in) in ``tmp_path/out``, a 200 KB tmpfs mounted for them; the store is in
    ``tmp_path/store``, on another disk."""
    if shutil.which("unshare") is None:
        pytest.skip("needs unshare(1) to mount a small tmpfs without privileges")
    out = tmp_path / "out"
    out.mkdir()
    (tmp_path / "store").mkdir()
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", f"mount -t tmpfs tmpfs {out}"],
                           capture_output=True)  # fmt: skip
    if probe.returncode:
        pytest.skip(f"this system forbids a private mount: {probe.stderr.decode()[:200]}")
    # the tmpfs lives as long as its mount namespace: bpexp.sync runs in it too, its disk
    # still full, and the directory is copied out for the checks after
    script = f"mount -t tmpfs -o size=200k tmpfs {out} && cd {out} || exit 99\n" + commands.format(
        out=out, uri=store_uri(tmp_path), python=sys.executable, tmp=tmp_path
    )
    result = subprocess.run(["unshare", "-rm", "sh", "-c", script], capture_output=True,
                            text=True, env=command_env(), timeout=600)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def store_uri(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/store/mlflow.db"


def test_a_full_output_disk_logs_the_results_from_memory_and_fails_the_run(tmp_path):
    out, kept, uri = tmp_path / "out", tmp_path / "kept", store_uri(tmp_path)
    result = on_a_full_disk(
        tmp_path,
        f"{{python}} -m bpexp trainer.epochs={EPOCHS} trainer.loss_threshold=null "
        "tracking.uri={uri}\n"
        "echo $? > {tmp}/job.rc\n"
        "{python} -m bpexp.sync {out}/outputs/*/* > {tmp}/sync.out 2> {tmp}/sync.err\n"
        "echo $? > {tmp}/sync.rc\n"
        "cp -a {out}/outputs {tmp}/kept\n",
    )
    assert (tmp_path / "job.rc").read_text().strip() == "1"
    (run,) = runs(uri)
    (job_dir,) = kept.glob("*/*")
    output_dir = out / "outputs" / job_dir.relative_to(kept)
    said = [line for line in result.stderr.splitlines() if "INFO" not in line and line.strip()]
    assert said == [
        f"bpexp: error: cannot write the job's files in {output_dir}: No space left on device; "
        f"its results were logged to the store as run {run.info.run_id} (FAILED)"
    ], result.stderr[-3000:]

    # the run: FAILED, saying why, with everything the job trained
    client = MlflowClient(tracking_uri=uri)
    assert run.info.status == "FAILED"
    assert run.data.tags["error"] == (
        f"cannot write the job's files in {output_dir}: No space left on device"
    )
    assert run.data.tags["bpexp.published"] == "memory"
    assert run.data.tags["stop_reason"] == "callback"  # the tracker stopped it at the full disk
    metrics = run.data.metrics
    epochs = int(metrics["epochs_run"])
    assert 0 < epochs < EPOCHS  # the disk filled while it trained
    points = client.get_metric_history(run.info.run_id, "train_loss")
    steps = [p.step for p in points]
    assert min(steps) == 0 and max(steps) == epochs
    assert metrics["final_loss"] == next(p.value for p in points if p.step == epochs)
    assert metrics["initial_loss"] == next(p.value for p in points if p.step == 0)

    stored = Path(client.download_artifacts(run.info.run_id, ""))
    assert {"config.yaml", "dataset.json", "summary.json", "error.txt"} <= {
        p.name for p in stored.iterdir()
    }
    with open(stored / "history.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["epoch"]) for r in rows] == list(range(epochs + 1))
    assert float(rows[-1]["train_loss"]) == metrics["final_loss"]
    # the weights are the network that reached that loss
    net = MLP.load(stored / "weights.npz")
    data = load_dataset("xor")
    assert np.isclose(net.loss(data.X_train, data.y_train), metrics["final_loss"], rtol=1e-9)
    summary = json.loads((stored / "summary.json").read_text())
    assert summary["metrics"]["epochs_run"] == epochs

    # bpexp.sync, the disk still full: nothing to sync, the run left as it is
    assert (tmp_path / "sync.rc").read_text().strip() == "1"
    sync_said = (tmp_path / "sync.err").read_text()
    assert "nothing to sync" in sync_said and run.info.run_id in sync_said, sync_said
    after = client.get_run(run.info.run_id)
    assert after.info.status == "FAILED" and after.info.end_time == run.info.end_time
    again = [p.step for p in client.get_metric_history(run.info.run_id, "train_loss")]
    assert sorted(again) == sorted(steps)
    # and once the directory is on a disk with room: run.json is marked published
    synced = subprocess.run([sys.executable, "-m", "bpexp.sync", str(job_dir)],
                            capture_output=True, text=True, env=command_env())  # fmt: skip
    assert "nothing to sync" in synced.stderr, synced.stderr
    record = json.loads((job_dir / "run.json").read_text())
    assert (record["state"], record["status"]) == ("published", "FAILED")
    assert client.get_run(run.info.run_id).info.status == "FAILED"
    assert len(client.get_metric_history(run.info.run_id, "train_loss")) == len(steps)


def test_a_sweep_whose_job_was_logged_from_memory_is_synced_without_it(tmp_path):
    uri = store_uri(tmp_path)
    # the first job fills the disk; the second cannot even start (Hydra's own files)
    result = on_a_full_disk(
        tmp_path,
        f"{{python}} -m bpexp -m seed=0,1 trainer.epochs={EPOCHS} trainer.loss_threshold=null "
        "tracking.uri={uri}\n"
        "{python} -m bpexp.sync {out}/multirun/*/* > {tmp}/sync.out 2> {tmp}/sync.err\n"
        "echo $? > {tmp}/sync.rc\n",
    )
    said = result.stdout + result.stderr  # a sweep's job logs its line
    assert "its results were logged to the store as run" in said, said[-3000:]
    ended = {r.info.run_id: r for r in runs(uri)}
    (parent,) = [r for r in ended.values() if r.data.tags.get("bpexp.role") == "sweep"]
    (job,) = [r for r in ended.values() if r.data.tags.get("bpexp.role") == "job"]
    assert job.data.tags["bpexp.published"] == "memory"
    sync_said = (tmp_path / "sync.out").read_text() + (tmp_path / "sync.err").read_text()
    assert (tmp_path / "sync.rc").read_text().strip() == "0", sync_said
    assert "0 job(s) logged; the sweep's parent run ended FAILED" in sync_said
    client = MlflowClient(tracking_uri=uri)
    after = client.get_run(job.info.run_id)
    assert (after.info.status, after.info.end_time) == ("FAILED", job.info.end_time)
    assert client.get_run(parent.info.run_id).info.status == "FAILED"
    assert len(runs(uri)) == 2  # no run made for the job by the sync
