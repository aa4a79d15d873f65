"""Helpers for the app tests: real Hydra composition, real SQLite MLflow stores."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import open_dict

from bpexp.app import CONF_DIR, run_job


def compose_cfg(*overrides: str, output_dir: Path | None = None):
    """The composed config (with its hydra node), as a single run would see it."""
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=list(overrides), return_hydra_config=True)
    if output_dir is not None:
        with open_dict(cfg):
            cfg.hydra.runtime.output_dir = str(output_dir)
            cfg.hydra.job.override_dirname = ",".join(overrides)
    return cfg


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> str:
    """A real SQLite tracking store shared by a module's tests (creating one takes ~2 s)."""
    path = tmp_path_factory.mktemp("store") / "mlflow.db"
    return f"sqlite:///{path}"


@pytest.fixture
def run_in_process(tmp_path, store, monkeypatch):
    """Run one job in this process, as ``python -m bpexp`` would, against ``store``."""
    monkeypatch.setenv("BPEXP_LAUNCH_DIR", str(tmp_path))

    def run(*overrides: str):
        cfg = compose_cfg(
            f"tracking.uri={store}",
            *overrides,
            output_dir=tmp_path / f"job{len(list(tmp_path.iterdir()))}",
        )
        HydraConfig.instance().set_config(cfg)
        with open_dict(cfg):
            del cfg["hydra"]
        return run_job(cfg)

    return run


def command_env() -> dict[str, str]:
    """This environment without what would redirect the command's store or its errors."""
    env = dict(os.environ)
    env.pop("MLFLOW_TRACKING_URI", None)
    env.pop("HYDRA_FULL_ERROR", None)
    return env


def bpexp(*args: str, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run the real command, ``python -m bpexp ARGS``, in ``cwd``, to its end."""
    return subprocess.run(
        [sys.executable, "-m", "bpexp", *args],
        cwd=cwd,
        env=command_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def start_bpexp(
    *args: str, cwd: Path, env: dict[str, str] | None = None, **popen
) -> subprocess.Popen:
    """Start the real command, ``python -m bpexp ARGS``, in ``cwd``, in the background
    (``env``: variables added to :func:`command_env`)."""
    return subprocess.Popen(
        [sys.executable, "-m", "bpexp", *args],
        cwd=cwd,
        env={**command_env(), **(env or {})},
        **popen,
    )


def runs(uri: str, experiment: str = "bpexp"):
    """All runs of an experiment, oldest first (an empty list if it does not exist)."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        return []
    return client.search_runs([exp.experiment_id], order_by=["attributes.start_time ASC"])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``python -m bpexp.server`` on 127.0.0.1, stopped by its process id."""

    def __init__(self, backend: str, tmp: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bpexp.server", "--backend-store-uri", backend,
             "--artifacts-destination", str(tmp / "server-artifacts"),
             "--port", str(self.port), "--workers", "1"],
            cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError(
                        f"server exited: {self.proc.stderr.read()[-2000:]}"
                    ) from None
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("server did not answer /health in 120 s") from None
                time.sleep(0.5)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
