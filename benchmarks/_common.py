"""Helpers shared by the benchmarks: timing, data, and what BLAS is in use."""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED_MNIST = ROOT.parent / "shared" / "data" / "mnist"
#: the benchmarks' XOR job runs its whole 10,000-epoch budget (XOR's defaults stop at
#: loss 0.01, after about a thousand epochs, which would time something else)
XOR_JOB = ("trainer.epochs=10000", "trainer.loss_threshold=null")
#: the XOR studies bench_study.py times, as ``python -m bpexp -m KEY=V1,V2 ...`` grids on
#: XOR's defaults (the first key varies slowest, as Hydra's sweeper orders the jobs);
#: reference.py runs the same jobs
SWEEPS: dict[str, dict[str, list]] = {
    "3": {"optimizer": ["bgd", "sgd", "mbgd"]},
    "48": {
        "optimizer": ["bgd", "sgd", "mbgd"],
        "optimizer.lr": [0.5, 1.0, 2.0, 4.0],
        "seed": [0, 1, 2, 3],
    },
    "128": {"seed": list(range(128))},
}


def blas_info() -> str:
    """One line naming the BLAS library, its kernel and its threads."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "threadpoolctl not installed: BLAS unknown"
    parts = [
        f"{i.get('internal_api')} {i.get('version')} kernel={i.get('architecture')} "
        f"threads={i.get('num_threads')}"
        for i in threadpool_info()
        if i.get("user_api") == "blas"
    ]
    core = os.environ.get("OPENBLAS_CORETYPE", "unset")
    return "; ".join(parts) + f" (OPENBLAS_CORETYPE={core})"


def mnist_8000(n: int = 8000) -> tuple[np.ndarray, np.ndarray, str]:
    """``n`` real MNIST images (the shared test split) scaled to [0, 1], with one-hot
    targets; random MNIST-shaped data when the shared files are absent."""
    images = SHARED_MNIST / "t10k-images-idx3-ubyte.gz"
    if images.exists():
        from bpexp.data.idx import read_idx

        X = read_idx(images, 3)[:n].reshape(n, -1).astype(np.float64) / 255.0
        labels = read_idx(SHARED_MNIST / "t10k-labels-idx1-ubyte.gz", 1)[:n]
        source = f"real MNIST ({images})"
    else:
        rng = np.random.default_rng(0)
        X = rng.random((n, 784))
        labels = rng.integers(0, 10, n)
        source = "random MNIST-shaped data (shared MNIST files not found)"
    return X, np.eye(10)[labels], source


def measure(fns: dict[str, Callable[[], float | None]], repeats: int) -> dict[str, list[float]]:
    """Run each function ``repeats`` times, interleaved, and collect seconds.

    A function may return its own timing (seconds) to exclude set-up; otherwise
    its whole call is timed.
    """
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            inner = fn()
            times[name].append(inner if inner is not None else time.perf_counter() - t0)
    return times


def med(ts: list[float]) -> float:
    return statistics.median(ts)


def row(name: str, ts: list[float], work: float, unit: str) -> str:
    """A table row: median and minimum seconds, and throughput at the median."""
    return f"| {name} | {med(ts):.4f} | {min(ts):.4f} | {work / med(ts):,.0f} {unit} |"


def ratio_line(label: str, num: list[float], den: list[float], target: float | None) -> str:
    """``label``: the ratio den/num of times (i.e. num's speed over den's), by medians
    and by minimums, with the target when there is one."""
    r_med, r_min = med(den) / med(num), min(den) / min(num)
    verdict = "" if target is None else (" ok" if r_med >= target else " BELOW TARGET")
    tgt = "" if target is None else f" (target >= {target})"
    return f"- {label}: {r_med:.2f} by medians, {r_min:.2f} by minimums{tgt}{verdict}"
