"""Speed of the bpexp core against its peers, measured in one process.

    python benchmarks/bench_core.py [--repeats 5]

Workloads (issue 2): a 784-128-10 ReLU network, softmax + cross-entropy, plain
updates at lr 0.1, on 8,000 MNIST images: mini-batch 64 for 10 epochs, full batch
(bgd) for 50 epochs, and pure SGD (batch 1) for one epoch; and pure SGD on XOR
with a 2-4-1 sigmoid network.  Peers: scikit-learn's MLPClassifier, PyTorch on the
CPU when it is installed (never a dependency), a bare NumPy loop, and the matrix
products alone (the GEMM floor).  Ratios are speed-ups (> 1 means bpexp is
faster), from medians and from minimums of interleaved repeats.

bpexp runs with ``train_eval="running"`` on MNIST: the loss of each batch as it
is trained, which is the work scikit-learn and PyTorch do.  The default
``"full"`` (one extra forward pass over the training set per epoch) is reported
too.

A last section times the few kernels whose choice the core's docstrings explain
(the one-sample weight gradient, row maxima and row sums), so that those
explanations carry no figures that go stale.
"""

from __future__ import annotations

import argparse
import sys
import time
import timeit
import warnings

import numpy as np
from _common import blas_info, measure, med, mnist_8000, ratio_line, row

from bpexp.core import MLP, fit
from bpexp.core.activations import row_max, row_sum
from bpexp.core.network import outer_sum

SIZES = [784, 128, 10]


def bpexp_run(X, Y, dtype, variant, epochs, batch=64, train_eval="running"):
    def run():
        net = MLP(SIZES, activation="relu", output="softmax", init="xavier_uniform", dtype=dtype)
        t0 = time.perf_counter()
        fit(
            net,
            X,
            Y,
            variant=variant,
            lr=0.1,
            batch_size=batch,
            epochs=epochs,
            loss="cross_entropy",
            train_eval=train_eval,
        )
        return time.perf_counter() - t0

    return run


def gemm_floor(X, dtype, batch, epochs):
    """The matrix products of training alone, into preallocated buffers."""
    rng = np.random.default_rng(0)
    W1, W2 = (rng.standard_normal(s).astype(dtype) * 0.01 for s in [(784, 128), (128, 10)])
    n = X.shape[0]

    def run():
        bufs = {}
        t0 = time.perf_counter()
        for _ in range(epochs):
            for i in range(0, n, batch):
                xb = X[i : i + batch]
                m = xb.shape[0]
                if m not in bufs:
                    bufs[m] = [
                        np.empty(s, dtype)
                        for s in [(m, 128), (m, 10), (128, 10), (m, 128), (784, 128)]
                    ]
                a1, z2, gW2, d1, gW1 = bufs[m]
                np.dot(xb, W1, out=a1)
                np.dot(a1, W2, out=z2)
                np.dot(a1.T, z2, out=gW2)
                np.dot(z2, W2.T, out=d1)
                np.dot(xb.T, d1, out=gW1)
        return time.perf_counter() - t0

    return run


def plain_loop(X, Y, dtype, batch, epochs):
    """A plain NumPy loop, written the obvious way (allocating temporaries)."""
    n = X.shape[0]

    def run():
        rng = np.random.default_rng(0)
        W1 = (rng.standard_normal((784, 128)) * 0.05).astype(dtype)
        W2 = (rng.standard_normal((128, 10)) * 0.1).astype(dtype)
        b1, b2 = np.zeros(128, dtype), np.zeros(10, dtype)
        t0 = time.perf_counter()
        for _ in range(epochs):
            perm = rng.permutation(n)
            Xs, Ys = X[perm], Y[perm]
            for i in range(0, n, batch):
                xb, yb = Xs[i : i + batch], Ys[i : i + batch]
                a1 = np.maximum(xb @ W1 + b1, 0)
                z = a1 @ W2 + b2
                e = np.exp(z - z.max(axis=1, keepdims=True))
                d2 = (e / e.sum(axis=1, keepdims=True) - yb) / len(xb)
                d1 = (d2 @ W2.T) * (a1 > 0)
                W2 -= 0.1 * (a1.T @ d2)
                b2 -= 0.1 * d2.sum(axis=0)
                W1 -= 0.1 * (xb.T @ d1)
                b1 -= 0.1 * d1.sum(axis=0)
        return time.perf_counter() - t0

    return run


def sklearn_run(X, labels, batch, epochs):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    def run():
        clf = MLPClassifier(
            hidden_layer_sizes=(128,),
            activation="relu",
            solver="sgd",
            learning_rate_init=0.1,
            momentum=0.0,
            nesterovs_momentum=False,
            alpha=0.0,
            batch_size=batch,
            max_iter=epochs,
            shuffle=True,
            tol=0.0,
            n_iter_no_change=10**9,
            random_state=0,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            t0 = time.perf_counter()
            clf.fit(X, labels)
            return time.perf_counter() - t0

    return run


def torch_run(X, labels, dtype, batch, epochs):
    import torch

    torch.set_num_threads(2)
    tdtype = torch.float32 if dtype == "float32" else torch.float64
    Xt, yt = torch.tensor(X, dtype=tdtype), torch.tensor(labels)
    n = Xt.shape[0]

    def run():
        torch.manual_seed(0)
        model = torch.nn.Sequential(
            torch.nn.Linear(784, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10)
        ).to(tdtype)
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        t0 = time.perf_counter()
        for _ in range(epochs):
            perm = torch.randperm(n)
            for i in range(0, n, batch):
                idx = perm[i : i + batch]
                opt.zero_grad(set_to_none=True)
                loss = torch.nn.functional.cross_entropy(model(Xt[idx]), yt[idx])
                loss.backward()
                opt.step()
        return time.perf_counter() - t0

    return run


def xor_bare(epochs, with_loss):
    """A bare NumPy loop: SGD on XOR, 2-4-1 sigmoid, mse, reshuffled each epoch,
    optionally with the per-epoch training loss that bpexp records."""
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], float)
    Y = np.array([[0], [1], [1], [0]], float)

    def sig(z):
        return 1.0 / (1.0 + np.exp(-z))

    def run():
        rng = np.random.default_rng(0)
        W1, b1 = rng.uniform(-1, 1, (2, 4)), np.zeros(4)
        W2, b2 = rng.uniform(-1, 1, (4, 1)), np.zeros(1)
        lr = 0.5
        t0 = time.perf_counter()
        for _ in range(epochs):
            for i in rng.permutation(4):
                x, y = X[i : i + 1], Y[i : i + 1]
                a1 = sig(x @ W1 + b1)
                a2 = sig(a1 @ W2 + b2)
                d2 = (a2 - y) * a2 * (1 - a2)
                d1 = (d2 @ W2.T) * a1 * (1 - a1)
                W2 -= lr * (a1.T @ d2)
                b2 -= lr * d2[0]
                W1 -= lr * (x.T @ d1)
                b1 -= lr * d1[0]
            if with_loss:
                out = sig(sig(X @ W1 + b1) @ W2 + b2)
                _ = 0.5 * float(np.sum((out - Y) ** 2)) / 4
        return time.perf_counter() - t0

    return run


def xor_bpexp(epochs):
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], float)
    Y = np.array([[0], [1], [1], [0]], float)

    def run():
        net = MLP([2, 4, 1], activation="sigmoid", output="sigmoid", init="uniform")
        t0 = time.perf_counter()
        fit(net, X, Y, variant="sgd", lr=0.5, epochs=epochs, loss="mse")
        return time.perf_counter() - t0

    return run


def kernels(repeats: int) -> None:
    """Microseconds per call of the kernels the core chose, against the obvious call."""
    rng = np.random.default_rng(0)
    a, d = rng.random((1, 784)).astype(np.float32), rng.random((1, 128)).astype(np.float32)
    tall = rng.random((8000, 10))
    cases = [
        ("one-sample weight gradient 784 x 128 f32: a.T @ delta", lambda: a.T @ d),
        ("  outer_sum (np.dot for one sample)", lambda: outer_sum(a, d)),
        ("row maxima of 8000 x 10: max(axis=1)", lambda: tall.max(axis=1, keepdims=True)),
        ("  row_max (a loop over the 10 columns)", lambda: row_max(tall)),
        ("row sums of 8000 x 10: sum(axis=1)", lambda: tall.sum(axis=1, keepdims=True)),
        ("  row_sum (a BLAS product with ones)", lambda: row_sum(tall)),
    ]
    print("\n## Kernels the core's docstrings cite (microseconds a call, best of repeats)\n")
    print("| call | us |\n|---|---|")
    for name, fn in cases:
        best = min(timeit.repeat(fn, number=200, repeat=max(repeats, 3))) / 200
        print(f"| {name} | {best * 1e6:.1f} |")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=10, help="mini-batch epochs")
    ap.add_argument("--bgd-epochs", type=int, default=50)
    ap.add_argument("--xor-epochs", type=int, default=5000)
    args = ap.parse_args(argv)
    R = args.repeats

    X64, Y, source = mnist_8000()
    labels = Y.argmax(axis=1)
    n = X64.shape[0]
    Xs = {"float32": X64.astype(np.float32), "float64": X64}
    Ys = {"float32": Y.astype(np.float32), "float64": Y}
    try:
        import torch  # noqa: F401

        have_torch = True
    except ImportError:
        have_torch = False

    print(f"# bpexp core benchmark\n\nPython {sys.version.split()[0]}, numpy {np.__version__}")
    print(f"BLAS: {blas_info()}\nData: {n} samples of {source}\nRepeats: {R} (interleaved)\n")

    # -- mini-batch 64 ----------------------------------------------------
    ep = args.epochs
    fns = {}
    for dt in ("float32", "float64"):
        fns[f"bpexp {dt}"] = bpexp_run(Xs[dt], Ys[dt], dt, "mbgd", ep)
        fns[f"bpexp {dt} (train_eval=full)"] = bpexp_run(
            Xs[dt], Ys[dt], dt, "mbgd", ep, train_eval="full"
        )
        fns[f"scikit-learn {dt}"] = sklearn_run(Xs[dt], labels, 64, ep)
        fns[f"GEMM floor {dt}"] = gemm_floor(Xs[dt], dt, 64, ep)
        fns[f"plain NumPy loop {dt}"] = plain_loop(Xs[dt], Ys[dt], dt, 64, ep)
        if have_torch:
            fns[f"PyTorch {dt}"] = torch_run(Xs[dt], labels, dt, 64, ep)
    t = measure(fns, R)
    print(f"## Mini-batch 64, {ep} epochs ({ep * n:,} samples)\n")
    print("| implementation | median s | min s | throughput |\n|---|---|---|---|")
    for k, ts in t.items():
        print(row(k, ts, ep * n, "samples/s"))
    print()
    for dt in ("float32", "float64"):
        b = t[f"bpexp {dt}"]
        print(
            ratio_line(
                f"bpexp / scikit-learn, {dt}",
                b,
                t[f"scikit-learn {dt}"],
                2.0 if dt == "float32" else None,
            )
        )
        print(
            ratio_line(
                f"GEMM floor / bpexp time, {dt}",
                b,
                t[f"GEMM floor {dt}"],
                0.75 if dt == "float32" else None,
            )
        )
        print(
            ratio_line(
                f"GEMM floor / plain NumPy loop time, {dt} (reference)",
                t[f"plain NumPy loop {dt}"],
                t[f"GEMM floor {dt}"],
                None,
            )
        )
        print(ratio_line(f"bpexp / plain NumPy loop, {dt}", b, t[f"plain NumPy loop {dt}"], None))
        if have_torch:
            print(
                ratio_line(
                    f"bpexp / PyTorch, {dt}",
                    b,
                    t[f"PyTorch {dt}"],
                    1.6 if dt == "float32" else None,
                )
            )
    if not have_torch:
        print("- PyTorch not installed: `pip install torch==2.13.0` to compare")

    # -- full batch ----------------------------------------------------------
    ep = args.bgd_epochs
    fns = {
        "bpexp float32 bgd": bpexp_run(Xs["float32"], Ys["float32"], "float32", "bgd", ep),
        "GEMM floor float32 bgd": gemm_floor(Xs["float32"], "float32", n, ep),
    }
    t = measure(fns, R)
    print(f"\n## Full batch (bgd) of {n}, {ep} epochs\n")
    print("| implementation | median s | min s | throughput |\n|---|---|---|---|")
    for k, ts in t.items():
        print(row(k, ts, ep * n, "samples/s"))
    print()
    print(
        ratio_line(
            "GEMM floor / bpexp time, bgd float32",
            t["bpexp float32 bgd"],
            t["GEMM floor float32 bgd"],
            0.9,
        )
    )

    # -- pure SGD on MNIST ------------------------------------------------
    fns = {"bpexp float32 sgd": bpexp_run(Xs["float32"], Ys["float32"], "float32", "sgd", 1)}
    if have_torch:
        fns["PyTorch float32 sgd"] = torch_run(Xs["float32"], labels, "float32", 1, 1)
    t = measure(fns, R)
    print(f"\n## Pure SGD (batch 1) on MNIST 784-128-10, one epoch ({n:,} updates)\n")
    print("| implementation | median s | min s | throughput |\n|---|---|---|---|")
    for k, ts in t.items():
        print(row(k, ts, n, "updates/s"))
    print()
    if have_torch:
        print(
            ratio_line(
                "bpexp / PyTorch, sgd float32",
                t["bpexp float32 sgd"],
                t["PyTorch float32 sgd"],
                2.0,
            )
        )

    # -- pure SGD on XOR --------------------------------------------------
    ep = args.xor_epochs
    fns = {
        "bpexp": xor_bpexp(ep),
        "bare loop + per-epoch loss": xor_bare(ep, True),
        "bare loop, updates only": xor_bare(ep, False),
    }
    t = measure(fns, R)
    print(f"\n## Pure SGD on XOR 2-4-1 sigmoid, {ep} epochs ({4 * ep:,} updates)\n")
    print("| implementation | median s | min s | throughput |\n|---|---|---|---|")
    for k, ts in t.items():
        print(row(k, ts, 4 * ep, "updates/s"))
    print()
    print(
        ratio_line(
            "bpexp / bare loop with the per-epoch loss bpexp records",
            t["bpexp"],
            t["bare loop + per-epoch loss"],
            0.8,
        )
    )
    print(
        ratio_line(
            "bpexp / bare loop doing updates only", t["bpexp"], t["bare loop, updates only"], None
        )
    )
    print(f"\nmedians of {R}: {', '.join(f'{k} {med(v):.3f}s' for k, v in t.items())}")
    kernels(R)


if __name__ == "__main__":
    main()
