"""Shared fixtures and helpers for the test suite."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_MNIST = ROOT.parent / "shared" / "data" / "mnist"

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
