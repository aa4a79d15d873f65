"""Helpers for the app tests: real Hydra composition, real SQLite MLflow stores."""

from __future__ import annotations

import os
import subprocess
import sys
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


def bpexp(
    *args: str, cwd: Path, env: dict | None = None, timeout: float = 600
) -> subprocess.CompletedProcess:
    """Run the real command, ``python -m bpexp ARGS``, in ``cwd``."""
    full_env = {**os.environ, **(env or {})}
    full_env.pop("MLFLOW_TRACKING_URI", None)
    full_env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.run(
        [sys.executable, "-m", "bpexp", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def runs(uri: str, experiment: str = "bpexp"):
    """All runs of an experiment, oldest first (an empty list if it does not exist)."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        return []
    return client.search_runs([exp.experiment_id], order_by=["attributes.start_time ASC"])
