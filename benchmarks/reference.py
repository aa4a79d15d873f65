"""What a user writes instead of bpexp: a plain NumPy + MLflow script for an XOR sweep.

    python benchmarks/reference.py [--jobs 3|48|128] [--no-figure] [--tracking-uri URI]

It loops over the same configurations as ``python -m bpexp -m ...`` (``_common.SWEEPS``:
``3`` is ``optimizer=bgd,sgd,mbgd``) on bpexp's XOR defaults, trains each with a
hand-written loop (a 2-4-1 sigmoid network, MSE, Xavier-uniform weights drawn
from the seed's generator, sgd and mbgd shuffled each epoch, stop at loss 0.01),
and logs to an MLflow SQLite store what a bpexp job logs: one parent run, a child
run per job with the same flattened config keys as params, up to ``max_points``
evenly spaced points per metric (first and last epoch included), the summary
metrics, a loss-curve PNG and the files (history.csv, weights.npz, config.yaml,
dataset.json) as artifacts.  It does not import bpexp.

Its last line says where its time went (``time: imports=... training=...``;
``points``: logging the metric points during training, ``mlflow``: the rest of
MLflow's work), which ``bench_study.py`` reads.
"""

from __future__ import annotations

import time

START = time.perf_counter()

import argparse  # the imports are timed, from START
import copy
import csv
import itertools
import json
import math
import os
import sys
from collections import Counter
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import mlflow
import numpy as np
import yaml
from _common import SWEEPS

X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
Y = np.array([[0], [1], [1], [0]], dtype=float)

#: bpexp's XOR defaults, as its runs' config.yaml holds them resolved
CONFIG = {
    "optimizer": {"lr": 1.0, "batch_size": 2, "variant": "bgd"},
    "update": {"name": "plain"},
    "schedule": {"name": "constant"},
    "model": {
        "hidden_size": 4, "depth": 1, "hidden_sizes": None, "activation": "sigmoid",
        "output": "sigmoid", "init": "xavier_uniform", "bias_init": "zeros", "bias": True,
        "leaky_slope": 0.01, "dtype": "float64",
    },
    "trainer": {
        "epochs": 5000, "loss": "mse", "loss_threshold": 0.01, "divergence_factor": 1000.0,
        "train_eval": "full", "progress": "auto", "progress_every": 10, "continue_from": None,
    },
    "dataset": {"name": "xor"},
    "tracking": {
        "uri": None, "experiment": "bpexp", "max_points": 100, "log_weights": True,
        "log_figure": "auto",
    },
    "seed": 0,
}  # fmt: skip
#: the config groups chosen (bpexp logs them as params too)
CHOICES = {
    "optimizer": "bgd", "update": "plain", "schedule": "constant", "model": "mlp",
    "trainer": "default", "dataset": "xor", "tracking": "default", "hydra": "default",
}  # fmt: skip
HISTORY_KEYS = ["train_loss", "train_accuracy", "grad_norm", "updates", "samples", "seconds"]
#: the columns bpexp sends to MLflow as metrics (samples and seconds stay in the CSV)
METRIC_KEYS = ["train_loss", "train_accuracy", "grad_norm", "updates"]


class Clock(Counter):
    """Seconds spent per part: ``with clock("mlflow"): ...``."""

    def __call__(self, part: str) -> Clock:
        self.part = part
        return self

    def __enter__(self) -> None:
        self.t0 = time.perf_counter()

    def __exit__(self, *exc) -> None:
        self[self.part] += time.perf_counter() - self.t0


clock = Clock()


def job_config(overrides: dict) -> tuple[dict, dict]:
    """The config and the group choices of one job of a sweep."""
    cfg, choices = copy.deepcopy(CONFIG), dict(CHOICES)
    for key, value in overrides.items():
        if key == "optimizer":
            choices["optimizer"] = cfg["optimizer"]["variant"] = value
            continue
        *path, last = key.split(".")
        node = cfg
        for k in path:
            node = node[k]
        node[last] = value
    return cfg, choices


def flatten(cfg: dict, prefix: str = "") -> dict[str, str]:
    out = {}
    for k, v in cfg.items():
        if isinstance(v, dict):
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = "null" if v is None else str(v)
    return out


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def train(cfg: dict, log_point) -> tuple[list[dict], dict, str]:
    """Train a 2-4-1 sigmoid network on XOR, calling ``log_point(record, last=...)``
    after each epoch; returns the records, the weights and why training stopped."""
    lr, variant = cfg["optimizer"]["lr"], cfg["optimizer"]["variant"]
    epochs, threshold = cfg["trainer"]["epochs"], cfg["trainer"]["loss_threshold"]
    rng = np.random.default_rng(cfg["seed"])
    # Xavier uniform: U(-a, a) with a = sqrt(6 / (fan_in + fan_out)); biases start at 0
    W1 = rng.uniform(-math.sqrt(6 / 6), math.sqrt(6 / 6), size=(2, 4))
    W2 = rng.uniform(-math.sqrt(6 / 5), math.sqrt(6 / 5), size=(4, 1))
    b1, b2 = np.zeros(4), np.zeros(1)
    n = len(X)
    m = {"bgd": n, "sgd": 1, "mbgd": min(cfg["optimizer"]["batch_size"], n)}[variant]

    def measure():
        out = sigmoid(sigmoid(X @ W1 + b1) @ W2 + b2)
        return 0.5 * np.mean(np.sum((out - Y) ** 2, axis=1)), np.mean((out > 0.5) == Y)

    loss, acc = measure()
    records = [{"epoch": 0, "train_loss": loss, "train_accuracy": acc, "updates": 0,
                "samples": 0, "seconds": 0.0}]  # fmt: skip
    log_point(records[0])
    initial, seconds, stop = loss, 0.0, "epochs"
    for epoch in range(1, epochs + 1):
        t0 = time.perf_counter()
        order = np.arange(n) if variant == "bgd" else rng.permutation(n)
        for i in range(0, n, m):
            x, y = X[order[i : i + m]], Y[order[i : i + m]]
            a1 = sigmoid(x @ W1 + b1)
            a2 = sigmoid(a1 @ W2 + b2)
            d2 = (a2 - y) * a2 * (1 - a2) / len(x)  # dC/dz2 for C = mean of ||a - y||^2 / 2
            d1 = (d2 @ W2.T) * a1 * (1 - a1)
            grads = [x.T @ d1, a1.T @ d2, d1.sum(axis=0), d2.sum(axis=0)]
            W1 -= lr * grads[0]
            W2 -= lr * grads[1]
            b1 -= lr * grads[2]
            b2 -= lr * grads[3]
        seconds += time.perf_counter() - t0
        loss, acc = measure()
        grad_norm = math.sqrt(sum(float(np.sum(g * g)) for g in grads))
        records.append({"epoch": epoch, "train_loss": loss, "train_accuracy": acc,
                        "grad_norm": grad_norm, "updates": epoch * -(-n // m),
                        "samples": epoch * n, "seconds": seconds, "lr": lr})  # fmt: skip
        if not math.isfinite(loss) or loss > cfg["trainer"]["divergence_factor"] * initial:
            stop = "diverged"
        elif threshold is not None and loss <= threshold:
            stop = "threshold"
        log_point(records[-1], last=stop != "epochs" or epoch == epochs)
        if stop != "epochs":
            break
    return records, {"W0": W1, "W1": W2, "b0": b1, "b1": b2}, stop


def save_figure(path: Path, records: list[dict], title: str) -> None:
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.semilogy([r["epoch"] for r in records], [r["train_loss"] for r in records], label="training")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss (log scale)")
    ax.set_title(title, fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def run_job(overrides: dict, out: Path, figure: bool) -> None:
    cfg, choices = job_config(overrides)
    epochs, max_points = cfg["trainer"]["epochs"], cfg["tracking"]["max_points"]
    steps = set(np.linspace(0, epochs, max_points).round().astype(int).tolist())
    name = " ".join(f"{k}={v}" for k, v in overrides.items())
    tags = {"dataset": "xor", "variant": cfg["optimizer"]["variant"]}
    with clock("mlflow"):
        run = mlflow.start_run(run_name=name, nested=True, tags=tags)
        mlflow.log_params({**flatten(cfg), **choices})

    def log_point(record: dict, last: bool = False) -> None:
        if record["epoch"] in steps or last:
            with clock("points"):
                metrics = {k: record[k] for k in METRIC_KEYS if k in record}
                mlflow.log_metrics(metrics, step=record["epoch"])

    t0, logging = time.perf_counter(), clock["points"]
    records, weights, stop = train(cfg, log_point)
    wall = time.perf_counter() - t0
    clock["training"] += wall - (clock["points"] - logging)
    last, losses = records[-1], [r["train_loss"] for r in records]
    summary = {
        "initial_loss": losses[0], "final_loss": last["train_loss"], "best_loss": min(losses),
        "epochs_run": last["epoch"], "converged": float(stop == "threshold"),
        "diverged": float(stop == "diverged"), "wall_seconds": wall,
        "train_seconds": last["seconds"], "final_train_accuracy": last["train_accuracy"],
    }  # fmt: skip
    if stop == "threshold":
        summary["epochs_to_threshold"] = last["epoch"]
    with clock("files"):
        out.mkdir(parents=True)
        with open(out / "history.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, ["epoch", *HISTORY_KEYS, "lr"])
            writer.writeheader()
            writer.writerows(records)
        np.savez(out / "weights.npz", **weights)
        (out / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
        (out / "dataset.json").write_text(json.dumps({"n_train": 4, "n_features": 2}))
        (out / "summary.json").write_text(json.dumps({"metrics": summary, "stop_reason": stop}))
    if figure:
        with clock("figure"):
            title = f"xor, {cfg['optimizer']['variant']}, lr={cfg['optimizer']['lr']}, "
            save_figure(out / "loss_curve.png", records, title + f"seed={cfg['seed']}")
    with clock("mlflow"):
        mlflow.log_metrics(summary, step=last["epoch"])
        mlflow.set_tag("stop_reason", stop)
        mlflow.log_artifacts(str(out))
        mlflow.end_run()
    print(f"{run.info.run_id}: {name}, loss {losses[0]:.4g} -> {losses[-1]:.4g} in "
          f"{last['epoch']} epochs ({stop})")  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", choices=list(SWEEPS), default="3")
    ap.add_argument("--no-figure", action="store_true", help="skip the loss-curve PNG")
    ap.add_argument("--tracking-uri", help="default: $MLFLOW_TRACKING_URI, else ./mlflow.db")
    ap.add_argument("--experiment", default="reference")
    ap.add_argument("--epochs", type=int, help="trainer.epochs (default: bpexp's 5000)")
    ap.add_argument("--out", type=Path, default=Path("reference-outputs"))
    args = ap.parse_args(argv)
    clock["imports"] = time.perf_counter() - START

    grid = SWEEPS[args.jobs]
    jobs = [dict(zip(grid, values)) for values in itertools.product(*grid.values())]
    if args.epochs is not None:
        CONFIG["trainer"]["epochs"] = args.epochs
    default = f"sqlite:///{Path.cwd() / 'mlflow.db'}"
    with clock("mlflow"):
        mlflow.set_tracking_uri(args.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI", default))
        mlflow.set_experiment(args.experiment)
        parent = mlflow.start_run(run_name=f"reference: {' x '.join(grid)} ({len(jobs)} jobs)")
    out = args.out / parent.info.run_id
    for i, overrides in enumerate(jobs):
        run_job(overrides, out / str(i), figure=not args.no_figure)
    with clock("mlflow"):
        mlflow.end_run()
    clock["total"] = time.perf_counter() - START
    parts = ("imports", "training", "points", "mlflow", "files", "figure", "total")
    print("time: " + " ".join(f"{p}={clock[p]:.3f}" for p in parts), file=sys.stderr)


if __name__ == "__main__":
    main()
