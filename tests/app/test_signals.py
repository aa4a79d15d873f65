"""Ctrl-C, SIGTERM and SIGKILL against the real command: runs end KILLED with their
history and weights written, the command says so in a line and dies of its signal, and
no process of it is left behind.  Real processes, real signals, a real SQLite store.

A command is started in a session of its own: a signal sent to its process group is
what a terminal's Ctrl-C, ``timeout`` and SLURM send; one sent to its pid is ``kill PID``.
Every process it starts inherits a marker in its environment, by which ``/proc`` finds
whatever survives it.
"""

from __future__ import annotations

import csv
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest

from bpexp.core import MLP
from tests.helpers import runs, start_bpexp

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(sys.platform != "linux", reason="reads /proc; workers fork on Linux"),
]

#: an XOR run that is still training when it is signalled, logging a line every 0.2 s
LONG = ("trainer.epochs=100000000", "trainer.loss_threshold=null", "trainer.progress_every=0.2")
#: three jobs on two joblib workers: two in flight, one waiting, when signalled
JOBLIB = ("-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "seed=0,1,2")
MARK = "BPEXP_TEST_SIGNALS"


class Command:
    """``python -m bpexp ARGS`` in a session of its own, its output in files."""

    def __init__(self, tmp: Path, mark: str, *args: str) -> None:
        self.tmp, self.mark = tmp, mark
        self.uri = f"sqlite:///{tmp}/mlflow.db"
        self.out, self.err = tmp / "stdout.txt", tmp / "stderr.txt"
        with open(self.out, "w") as out, open(self.err, "w") as err:
            self.proc = start_bpexp(
                *args, f"tracking.uri={self.uri}", cwd=tmp, env={MARK: self.mark},
                stdout=out, stderr=err, start_new_session=True,
            )  # fmt: skip

    def training(self, jobs: int = 1, timeout: float = 180) -> int:
        """Wait until ``jobs`` jobs have logged a progress line (they are training);
        returns the highest epoch such a line has reported."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            logs = [p.read_text() for p in self.tmp.glob("*/**/bpexp.log")]
            epochs = [re.findall(r"epoch (\d+) of", text) for text in logs]
            if sum(bool(found) for found in epochs) >= jobs:
                return max(int(e) for found in epochs for e in found)
            assert self.proc.poll() is None, self.output()
            time.sleep(0.2)
        self.kill_all()
        pytest.fail(f"{jobs} job(s) not training after {timeout} s: {self.output()}")

    def signal(self, signum: int, group: bool) -> None:
        if group:
            os.killpg(self.proc.pid, signum)
        else:
            os.kill(self.proc.pid, signum)

    def wait(self, timeout: float = 120) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill_all()
            pytest.fail(f"still running {timeout} s after the signal: {self.output()}")

    def output(self) -> str:
        return self.out.read_text() + self.err.read_text()

    def processes(self) -> list[int]:
        """The live processes carrying this command's marker (zombies have no environment)."""
        found, needle = [], f"{MARK}={self.mark}".encode()
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    if needle in Path(f"/proc/{entry}/environ").read_bytes():
                        found.append(int(entry))
                except OSError:
                    pass
        return found

    def survivors(self, within: float = 30) -> list[int]:
        """The command's processes still alive ``within`` seconds from now (then killed)."""
        deadline = time.monotonic() + within
        while (alive := self.processes()) and time.monotonic() < deadline:
            time.sleep(0.2)
        self.kill_all()
        return alive

    def kill_all(self) -> None:
        for pid in self.processes():
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


def _check_files(directory: Path) -> int:
    """A stopped run's history is whole (every epoch from 0, every row complete) and its
    weights load; returns the number of epochs in the history."""
    text = (directory / "history.csv").read_text()
    assert text.endswith("\n")
    with open(directory / "history.csv") as fh:
        rows = list(csv.reader(fh))
    header, body = rows[0], rows[1:]
    assert len(body) > 1 and all(len(row) == len(header) for row in body)
    assert [int(row[0]) for row in body] == list(range(len(body)))
    net = MLP.load(directory / "weights.npz")
    assert all(np.isfinite(w).all() for w in net.weights)
    return len(body)


def _check_killed(run, why: str) -> int:
    """A run ended KILLED, saying why, with its history and weights in the store and in
    its output directory; returns the number of epochs in its history."""
    assert run.info.status == "KILLED", run.info
    assert run.data.tags["error"] == why
    stored = Path(urlparse(run.info.artifact_uri).path)
    kept = Path(run.data.tags["hydra.output_dir"]) / "artifacts"
    assert (stored / "history.csv").read_text() == (kept / "history.csv").read_text()
    _check_files(kept)
    return _check_files(stored)


@pytest.fixture
def command(tmp_path):
    """Start :class:`Command` s; whatever they leave running is killed after the test."""
    mark = uuid.uuid4().hex
    started: list[Command] = []

    def start(*args: str) -> Command:
        started.append(Command(tmp_path, mark, *args))
        return started[-1]

    yield start
    for cmd in started:
        cmd.kill_all()


WHY = {signal.SIGINT: "interrupted (Ctrl-C)", signal.SIGTERM: "terminated (SIGTERM)"}


@pytest.mark.parametrize(
    "signum,group",
    [(signal.SIGINT, True), (signal.SIGTERM, False)],
    ids=["ctrl-c", "kill-pid"],
)
def test_a_stopped_run_ends_killed_with_its_files_and_one_line(command, signum, group):
    cmd = command(*LONG)
    reported = cmd.training()
    cmd.signal(signum, group)
    code = cmd.wait()
    output = cmd.output()
    assert code == -signum, output[-3000:]  # died of its signal: the shell says 130 / 143
    assert "Traceback" not in output, output[-3000:]
    (run,) = runs(cmd.uri)
    # every epoch trained before the signal is in its history
    assert _check_killed(run, WHY[signum]) > reported
    out = Path(run.data.tags["hydra.output_dir"]) / "artifacts"
    (line,) = [line for line in output.splitlines() if "KILLED" in line]
    assert run.info.run_id in line and WHY[signum] in line and str(out) in line
    assert cmd.survivors() == []


def test_ctrl_c_again_during_the_cleanup_loses_nothing(command):
    cmd = command(*LONG)
    cmd.training()
    time.sleep(3)  # a longer history: its file and figure take a while to write
    cmd.signal(signal.SIGINT, group=True)
    # keep pressing Ctrl-C, as an impatient person does, until the command ends
    while cmd.proc.poll() is None:
        time.sleep(0.05)
        if cmd.proc.poll() is None:
            cmd.signal(signal.SIGINT, group=True)
    output = cmd.output()
    assert cmd.proc.returncode == -signal.SIGINT, output[-3000:]
    # Ctrl-C did land during the cleanup, and said why it did nothing
    assert output.count("bpexp: stopping: saving the runs' files first") == 1, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    (run,) = runs(cmd.uri)
    _check_killed(run, WHY[signal.SIGINT])
    assert cmd.survivors() == []


def test_a_job_killed_by_sigkill_leaves_no_process_behind(command):
    cmd = command(*LONG)
    cmd.training()
    assert len(cmd.processes()) >= 1
    cmd.signal(signal.SIGKILL, group=False)  # as the OOM killer does: the job alone
    assert cmd.wait() == -signal.SIGKILL
    assert cmd.survivors(within=10) == []


@pytest.mark.parametrize(
    "signum,group",
    [(signal.SIGINT, True), (signal.SIGTERM, False), (signal.SIGTERM, True)],
    ids=["ctrl-c", "kill-launcher", "slurm"],
)
def test_a_stopped_joblib_sweep_ends_every_run_killed_and_its_workers(command, signum, group):
    cmd = command(*JOBLIB, *LONG)
    cmd.training(jobs=2)
    cmd.signal(signum, group)
    code = cmd.wait()
    output = cmd.output()
    assert code == -signum, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    found = runs(cmd.uri)
    (parent,) = [r for r in found if r.data.tags.get("bpexp.role") == "sweep"]
    children = [r for r in found if r.data.tags.get("bpexp.role") == "job"]
    assert parent.info.status == "KILLED"
    assert len(children) == 2  # the two in flight; the third never started
    for run in children:
        _check_killed(run, WHY[signum])
        assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert 'bpexp: sweep "bpexp: seed (3 jobs)" KILLED' in output
    assert cmd.survivors() == []


def test_a_joblib_launcher_killed_by_sigkill_takes_its_workers_with_it(command):
    cmd = command(*JOBLIB, *LONG)
    cmd.training(jobs=2)
    cmd.signal(signal.SIGKILL, group=False)
    assert cmd.wait() == -signal.SIGKILL
    assert cmd.survivors() == []  # the workers got SIGTERM when it died...
    children = [r for r in runs(cmd.uri) if r.data.tags.get("bpexp.role") == "job"]
    assert len(children) == 2
    for run in children:  # ...and ended their runs as on SIGTERM
        _check_killed(run, WHY[signal.SIGTERM])


def test_sigterm_stops_a_basic_launcher_sweep_at_its_current_job(command):
    cmd = command("-m", "seed=0,1", *LONG)
    cmd.training()
    cmd.signal(signal.SIGTERM, group=True)
    assert cmd.wait() == -signal.SIGTERM, cmd.output()[-3000:]
    found = runs(cmd.uri)
    (parent,) = [r for r in found if r.data.tags.get("bpexp.role") == "sweep"]
    (child,) = [r for r in found if r.data.tags.get("bpexp.role") == "job"]
    assert parent.info.status == "KILLED"
    _check_killed(child, WHY[signal.SIGTERM])
    assert cmd.survivors() == []
