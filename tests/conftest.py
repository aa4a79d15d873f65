"""Shared fixtures and helpers for the test suite."""

from __future__ import annotations

import http.server
import os
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
from hydra.core.hydra_config import HydraConfig
from omegaconf import open_dict

from bpexp.app import run_job
from tests.helpers import compose_cfg

ROOT = Path(__file__).resolve().parents[1]
SHARED_MNIST = ROOT.parent / "shared" / "data" / "mnist"
#: the official test split's files, as the shared folder holds them
T10K = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")

XOR_X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
XOR_Y = np.array([[0], [1], [1], [0]], dtype=float)


@pytest.fixture(scope="session")
def shared_mnist() -> Path:
    """The real MNIST test split in ../shared/data/mnist.

    Skipped on a developer machine without it; under CI (``CI=true``) its absence
    is a failure, never a silent skip.
    """
    if not (SHARED_MNIST / "t10k-images-idx3-ubyte.gz").exists():
        if os.environ.get("CI"):
            pytest.fail(f"CI needs the shared MNIST files in {SHARED_MNIST}")
        pytest.skip(f"shared MNIST files not found in {SHARED_MNIST}")
    return SHARED_MNIST


@pytest.fixture
def t10k_only(tmp_path, shared_mnist) -> Path:
    """A writable data root holding the two official t10k files and nothing else."""
    root = tmp_path / "t10k"
    root.mkdir()
    for name in T10K:
        shutil.copy(shared_mnist / name, root)
    return root


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> str:
    """A real SQLite tracking store shared by a module's tests (creating one takes ~2 s)."""
    path = tmp_path_factory.mktemp("store") / "mlflow.db"
    return f"sqlite:///{path}"


@pytest.fixture
def run_in_process(tmp_path, store):
    """Run one job in this process, as ``python -m bpexp`` would, against ``store``,
    launched from ``tmp_path``."""

    def run(*overrides: str):
        cfg = compose_cfg(
            f"tracking.uri={store}",
            *overrides,
            output_dir=tmp_path / f"job{len(list(tmp_path.iterdir()))}",
        )
        with open_dict(cfg):
            cfg.hydra.runtime.cwd = str(tmp_path)
        HydraConfig.instance().set_config(cfg)
        with open_dict(cfg):
            del cfg["hydra"]
        return run_job(cfg)

    return run


class LocalHTTPServer:
    """A real threaded HTTP server on 127.0.0.1 (a free port) running ``handler``.

    A context manager: serving inside the ``with``, shut down and closed after it.
    """

    def __init__(self, handler: type[http.server.BaseHTTPRequestHandler]):
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.host = f"127.0.0.1:{self.httpd.server_address[1]}"
        self.url = f"http://{self.host}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
