"""The accumulating GEMM and the fused plain step built on it."""

from __future__ import annotations

import numpy as np
import pytest

from bpexp.core import MLP, blas, fit
from bpexp.core.network import Buffers


@pytest.fixture
def blas_mode(monkeypatch):
    """``blas_mode(off)``: force (True) or allow (False) the matmul-and-subtract path."""

    def set_mode(off: bool) -> None:
        if off:
            monkeypatch.setenv("BPEXP_BLAS", "numpy")
        else:
            monkeypatch.delenv("BPEXP_BLAS", raising=False)
        blas.gemm_accumulate.cache_clear()

    yield set_mode
    monkeypatch.undo()
    blas.gemm_accumulate.cache_clear()


def test_numpy_wheels_bundled_openblas_is_found():
    """With NumPy's own OpenBLAS (every PyPI wheel) the fast path must load, or the
    benchmarks silently measure the slow one."""
    name = np.show_config(mode="dicts")["Build Dependencies"]["blas"]["name"]
    assert (blas.gemm_accumulate("float32") is not None) == (name == "scipy-openblas")
    assert (blas.gemm_accumulate("float64") is not None) == (name == "scipy-openblas")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_accumulates_alpha_a_transposed_b_into_c(dtype):
    bind = blas.gemm_accumulate(dtype)
    if bind is None:
        pytest.fail("NumPy's bundled OpenBLAS is not available here")
    rng = np.random.default_rng(3)
    A, B, C = (rng.standard_normal(s).astype(dtype) for s in [(64, 30), (64, 7), (30, 7)])
    expected = C - 0.25 * (A.T @ B)
    step = bind(A, B, C)
    step(-0.25)
    np.testing.assert_allclose(C, expected, rtol=1e-5 if dtype == "float32" else 1e-12)
    step(0.25)  # the binding stays valid: the same arrays, new values
    np.testing.assert_allclose(C, expected + 0.25 * (A.T @ B), rtol=1e-4, atol=1e-5)


def test_binding_rejects_what_blas_would_misread():
    bind = blas.gemm_accumulate("float64")
    A, B, C = np.ones((4, 3)), np.ones((4, 2)), np.ones((3, 2))
    with pytest.raises(ValueError, match="shapes"):
        bind(A, B, np.ones((2, 3)))
    with pytest.raises(ValueError, match="C-contiguous"):
        bind(np.ones((3, 4)).T, B, C)
    with pytest.raises(ValueError, match="float64"):
        bind(A.astype(np.float32), B, C)


def test_environment_switch_turns_the_fast_path_off(blas_mode):
    blas_mode(off=True)
    assert blas.gemm_accumulate("float64") is None
    assert not Buffers(MLP([3, 4, 2]), 8).fused


def train(seed=0, dtype="float64"):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((100, 6))
    Y = np.eye(3)[rng.integers(0, 3, 100)]
    net = MLP([6, 8, 5, 3], activation="tanh", output="softmax", seed=seed, dtype=dtype)
    h = fit(net, X, Y, variant="mbgd", batch_size=16, lr=0.2, epochs=15, loss="cross_entropy")
    return net, h


def test_fused_step_trains_like_gradient_then_subtract(blas_mode):
    blas_mode(off=True)
    slow_net, slow_h = train()
    blas_mode(off=False)
    assert Buffers(slow_net, 16).fused
    fast_net, fast_h = train()
    for a, b in zip(slow_net.weights + slow_net.biases, fast_net.weights + fast_net.biases):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    for key in ("train_loss", "grad_norm", "train_accuracy"):
        np.testing.assert_allclose(slow_h.column(key), fast_h.column(key), rtol=1e-9)


def test_fused_step_keeps_float32():
    net, h = train(dtype="float32")
    assert all(p.dtype == np.float32 for p in net.weights + net.biases)
    assert np.isfinite(h.final_loss) and h.final_loss < h.initial["train_loss"]
