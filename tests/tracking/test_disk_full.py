"""A full disk under the job's output directory: the run ends FAILED in the store with
the reason, the user reads one line naming the directory, nothing is left RUNNING."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from tests.helpers import command_env, runs

pytestmark = pytest.mark.slow


def test_a_full_output_disk_fails_the_run_in_one_line(tmp_path):
    if shutil.which("unshare") is None:
        pytest.skip("needs unshare(1) to mount a small tmpfs without privileges")
    out, store = tmp_path / "out", tmp_path / "store"
    out.mkdir()
    store.mkdir()
    uri = f"sqlite:///{store}/mlflow.db"
    job = (
        f"mount -t tmpfs -o size=200k tmpfs {out} && cd {out} && {sys.executable} -m bpexp "
        f"trainer.epochs=20000 trainer.loss_threshold=null tracking.uri={uri}"
    )
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", f"mount -t tmpfs tmpfs {out}"],
                           capture_output=True)  # fmt: skip
    if probe.returncode:
        pytest.skip(f"this system forbids a private mount: {probe.stderr.decode()[:200]}")
    result = subprocess.run(["unshare", "-rm", "sh", "-c", job], capture_output=True, text=True,
                            env=command_env(), timeout=600)  # fmt: skip
    assert result.returncode == 1
    said = [line for line in result.stderr.splitlines() if "INFO" not in line and line.strip()]
    assert said == [
        f"bpexp: error: cannot write the job's files in {out}/outputs/"
        + said[0].split("/outputs/", 1)[1].split(":", 1)[0]
        + ": No space left on device"
    ], result.stderr[-3000:]
    (run,) = runs(uri)
    assert run.info.status == "FAILED"
    assert "No space left on device" in run.data.tags["error"]
