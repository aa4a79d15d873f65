"""Speed of the stacked engine, ``fit_many``, against separate ``fit`` calls, in one process.

    python benchmarks/bench_stacked.py [--repeats 3] [--parts xor,mnist,single,memory]
                                       [--blas-threads 1]

Workloads (issue 12):

- ``xor``: K = 128 XOR 2-4-1 sigmoid networks (seeds 0..127), bgd, 10,000 epochs,
  against 128 ``fit`` calls (target: at most 1/40 of their time); K = 32 with
  mbgd (batch 2) and with sgd, each network with its own order, 2,000 epochs
  (target: at most 1/10).  Also the time to build the runs' History records
  alone (one dict per network and epoch), which both sides pay.
- ``mnist``: K = 8 MNIST 784-32-10 ReLU/softmax networks, mbgd batch 32, each
  with its own order, against 8 ``fit`` calls (target: not slower), and the
  time spent gathering each network's batches (``np.take`` of its rows).
- ``single``: K = 1, 784-128-10 mbgd-64 float32, against scikit-learn's
  MLPClassifier with the same settings (target: at least 1.5x), and against
  ``fit``.
- ``memory``: what a 784-128-10 stack of K = 32 holds for mbgd-64 (parameters,
  gradients, update state, a batch's buffers), per dtype and update rule.

Ratios are speed-ups (> 1: the stack is faster), from medians and from minimums
of interleaved repeats.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
from _common import blas_info, measure, med, mnist_8000, ratio_line, row
from bench_core import sklearn_run

from bpexp.core import MLP, fit, fit_many
from bpexp.core.stacked import _Stack

XOR_X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
XOR_Y = np.array([[0], [1], [1], [0]], dtype=float)


def stacked_and_separate(make_nets, X, Y, opts: dict):
    """(stacked, separate) callables over fresh networks, each returning its
    training seconds; network k is seeded k, its order too."""

    def stacked():
        nets = make_nets()
        t0 = time.perf_counter()
        fit_many(nets, X, Y, seed=list(range(len(nets))), **opts)
        return time.perf_counter() - t0

    def separate():
        nets = make_nets()
        t0 = time.perf_counter()
        for s, net in enumerate(nets):
            fit(net, X, Y, seed=s, **opts)
        return time.perf_counter() - t0

    return stacked, separate


def xor_runs(K: int, variant: str, epochs: int):
    opts = dict(variant=variant, lr=0.5, batch_size=2, epochs=epochs, loss="mse")
    return stacked_and_separate(
        lambda: [MLP([2, 4, 1], init="uniform", seed=s) for s in range(K)], XOR_X, XOR_Y, opts
    )


def records_alone(K: int, epochs: int):
    """Building K x epochs History records (dicts of 8 measures) from arrays."""

    def run():
        cols = np.random.default_rng(0).random((3, K, epochs))
        t0 = time.perf_counter()
        out = []
        for k in range(K):
            out.append(
                [
                    {
                        "epoch": e,
                        "train_loss": a,
                        "train_accuracy": b,
                        "grad_norm": g,
                        "updates": e,
                        "samples": 4 * e,
                        "seconds": 0.0,
                        "lr": 0.5,
                    }
                    for e, a, b, g in zip(range(1, epochs + 1), *cols[:, k].tolist(), strict=True)
                ]
            )
        return time.perf_counter() - t0

    return run


MNIST_OPTS = dict(variant="mbgd", lr=0.1, loss="cross_entropy", train_eval="running", batch_size=32)


def mnist_runs(X, Y, K: int, sizes, dtype: str, batch: int, epochs: int):
    opts = {**MNIST_OPTS, "batch_size": batch, "epochs": epochs}
    return stacked_and_separate(
        lambda: [
            MLP(sizes, activation="relu", output="softmax", dtype=dtype, seed=s) for s in range(K)
        ],
        X,
        Y,
        opts,
    )


def gather_alone(X, Y, K: int, batch: int, epochs: int):
    """The stack's gathering alone: each network's batch rows, by its own order."""
    n, rngs = X.shape[0], [np.random.default_rng(s) for s in range(K)]
    Xb = np.empty((K, batch, X.shape[1]), X.dtype)
    Yb = np.empty((K, batch, Y.shape[1]), Y.dtype)
    last = n - n % batch

    def run():
        perm = np.stack([r.permutation(n) for r in rngs for _ in range(epochs)])
        t0 = time.perf_counter()
        for e in range(epochs):
            p = perm[e * K : (e + 1) * K]
            for i in range(0, last, batch):
                np.take(X, p[:, i : i + batch], axis=0, out=Xb, mode="clip")
                np.take(Y, p[:, i : i + batch], axis=0, out=Yb, mode="clip")
        return time.perf_counter() - t0

    return run


def single_run(X, Y, dtype: str, batch: int, epochs: int, stacked: bool):
    def run():
        net = MLP([784, 128, 10], activation="relu", output="softmax", dtype=dtype)
        opts = {**MNIST_OPTS, "batch_size": batch, "epochs": epochs}
        t0 = time.perf_counter()
        if stacked:
            fit_many([net], X, Y, **opts)
        else:
            fit(net, X, Y, **opts)
        return time.perf_counter() - t0

    return run


def memory(K: int, batch: int, n: int) -> None:
    print(f"\n## Memory of a 784-128-10 stack of K = {K}, mbgd batch {batch}, {n} samples\n")
    print("| dtype | update | parameters | gradients + scratch | update state | buffers | total |")
    print("|---|---|---|---|---|---|---|")
    X, Y = np.zeros((n, 784)), np.eye(10)[np.arange(n) % 10]
    for dtype in ("float32", "float64"):
        nets = [MLP([784, 128, 10], output="softmax", dtype=dtype, seed=s) for s in range(K)]
        Xd, Yd = X.astype(dtype), Y.astype(dtype)
        for update in ("plain", "momentum", "adam"):
            consts = {
                "plain": {},
                "momentum": {"momentum": [0.9] * K},
                "adam": {
                    key: [v] * K
                    for key, v in (
                        ("beta1", 0.9),
                        ("beta2", 0.999),
                        ("one_minus_beta1", 0.1),
                        ("one_minus_beta2", 0.001),
                        ("epsilon", 1e-8),
                    )
                },
            }[update]
            lossfn = nets[0].get_loss("cross_entropy")
            rngs = [np.random.default_rng(s) for s in range(K)]
            stack = _Stack(nets, Xd, Yd, batch, lossfn, update, consts, rngs, "full")
            stack.evaluate(Xd, Yd, stack.labels)  # makes the evaluation chunks
            b = stack.nbytes()
            mib = {k: v / 2**20 for k, v in b.items()}
            print(
                f"| {dtype} | {update} | {mib['parameters']:.1f} MiB | "
                f"{mib['gradients_and_scratch']:.1f} MiB | {mib['update_state']:.1f} MiB | "
                f"{mib['buffers']:.1f} MiB | {sum(mib.values()):.1f} MiB |"
            )
    print(
        "\nParameters: K x P values, P = 784*128 + 128 + 128*10 + 10 = 101,770; gradients"
        " and the update's scratch: 2 K P more; momentum keeps K P, adam 2 K P.  Buffers:"
        " a batch's Z, delta and scratch per layer (3 K m (128 + 10)), its output and"
        " gathered inputs and targets (K m (10 + 784 + 10)), the orders (K n int64), and"
        f" the evaluation chunks (about {2**21 * 8 / 2**20:.0f} MiB a layer in float64)."
    )


def table(title: str, t: dict, work: float, unit: str) -> None:
    print(f"\n## {title}\n")
    print("| run | median s | min s | throughput |\n|---|---|---|---|")
    for k, ts in t.items():
        print(row(k, ts, work, unit))
    print()


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--parts", default="xor,mnist,single,memory")
    ap.add_argument("--xor-epochs", type=int, default=10_000, help="bgd, K = 128")
    ap.add_argument("--xor-sgd-epochs", type=int, default=2_000, help="sgd and mbgd, K = 32")
    ap.add_argument("--mnist-epochs", type=int, default=2)
    ap.add_argument("--single-epochs", type=int, default=10)
    ap.add_argument(
        "--blas-threads",
        type=int,
        default=None,
        help="limit BLAS threads (on a loaded machine two threads on small GEMMs can stall)",
    )
    args = ap.parse_args(argv)
    R, parts = args.repeats, args.parts.split(",")
    if args.blas_threads is not None:
        from threadpoolctl import threadpool_limits

        threadpool_limits(args.blas_threads, user_api="blas")

    print("# bpexp stacked engine benchmark\n")
    print(f"Python {sys.version.split()[0]}, numpy {np.__version__}")
    print(f"BLAS: {blas_info()}\nRepeats: {R} (interleaved)")

    if "xor" in parts:
        E = args.xor_epochs
        fns = dict(zip(["stacked K=128 bgd", "128 fits bgd"], xor_runs(128, "bgd", E), strict=True))
        fns["records alone (128 x epochs dicts)"] = records_alone(128, E)
        Es = args.xor_sgd_epochs
        for v in ("mbgd", "sgd"):
            s, a = xor_runs(32, v, Es)
            fns[f"stacked K=32 {v}"], fns[f"32 fits {v}"] = s, a
        t = measure(fns, R)
        table(f"XOR 2-4-1: bgd {E} epochs, mbgd (batch 2) and sgd {Es} epochs", t, 1, "runs/s")
        print(ratio_line("128 fits / stacked, bgd", t["stacked K=128 bgd"], t["128 fits bgd"], 40))
        share = med(t["records alone (128 x epochs dicts)"]) / med(t["stacked K=128 bgd"])
        print(f"- the History records alone are {share:.0%} of the stacked bgd time")
        for v in ("mbgd", "sgd"):
            print(
                ratio_line(f"32 fits / stacked, {v}", t[f"stacked K=32 {v}"], t[f"32 fits {v}"], 10)
            )

    if "mnist" in parts or "single" in parts:
        X64, Y64, source = mnist_8000()
        print(f"\nData: {X64.shape[0]} samples of {source}")

    if "mnist" in parts:
        E, K = args.mnist_epochs, 8
        s, a = mnist_runs(X64, Y64, K, [784, 32, 10], "float64", 32, E)
        fns = {"stacked K=8": s, "8 fits": a, "gathering alone": gather_alone(X64, Y64, K, 32, E)}
        t = measure(fns, R)
        table(f"MNIST 784-32-10, mbgd batch 32, own orders, {E} epochs, float64", t, 1, "runs/s")
        print(ratio_line("8 fits / stacked", t["stacked K=8"], t["8 fits"], 1.0))
        share = med(t["gathering alone"]) / med(t["stacked K=8"])
        print(f"- gathering each network's batches is {share:.0%} of the stacked time")

    if "single" in parts:
        E = args.single_epochs
        X32, Y32 = X64.astype(np.float32), Y64.astype(np.float32)
        fns = {
            "fit_many K=1 float32": single_run(X32, Y32, "float32", 64, E, stacked=True),
            "fit float32": single_run(X32, Y32, "float32", 64, E, stacked=False),
            "scikit-learn float32": sklearn_run(X32, Y64.argmax(axis=1), 64, E),
        }
        try:
            import torch  # noqa: F401
            from bench_core import torch_run

            fns["PyTorch float32"] = torch_run(X32, Y64.argmax(axis=1), "float32", 64, E)
        except ImportError:
            pass
        t = measure(fns, R)
        n = X32.shape[0]
        table(f"One network 784-128-10, mbgd 64, {E} epochs, float32", t, E * n, "samples/s")
        k1 = t["fit_many K=1 float32"]
        print(ratio_line("scikit-learn / fit_many K=1", k1, t["scikit-learn float32"], 1.5))
        print(ratio_line("fit / fit_many K=1", k1, t["fit float32"], None))
        if "PyTorch float32" in t:
            print(ratio_line("PyTorch / fit_many K=1", k1, t["PyTorch float32"], 1.5))
        else:
            print("- PyTorch not installed: not compared")

    if "memory" in parts:
        memory(32, 64, 8000)


if __name__ == "__main__":
    main()
