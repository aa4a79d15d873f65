"""Speed of ``python -m bpexp``: start-up, tracking cost per job, and launchers.

    python benchmarks/bench_runs.py [--repeats 5] [--sweep-repeats 2] [--parts ...]

Measured (issue 4), medians of repeats:
- process start-up to the first job: a 1-epoch job's whole command, with a new
  store and with an existing one;
- a 10,000-epoch XOR job with default settings, run repeatedly in one process
  (so imports are paid once), against the same job untracked: the time spent
  inside its tracking calls (run start and end, params, metrics, artifacts,
  figure, any wait for the tracking process), and the tracked job's wall time
  minus the untracked one's; target tracking <= 0.25 s (issue 13);
- the same for a 10-epoch mbgd job on 8,000 MNIST images (784-128-10);
  target tracking <= 0.25 s (issue 13);
- the wall time of a 12-job XOR sweep with the basic launcher and with
  ``hydra/launcher=joblib`` (2 workers, forked as bpexp starts them on Linux, and
  with loky's own start for reference), for the sweep itself (its parent run's
  start to end) and the whole command; target joblib >= 1.6x faster.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import SHARED_MNIST, XOR_JOB, blas_info, med

ROOT = Path(__file__).resolve().parents[1]


def command(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> float:
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"} | (env or {})
    t0 = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", "bpexp", *args], cwd=cwd, env=env, capture_output=True, text=True
    )
    if out.returncode:
        raise SystemExit(f"bpexp {' '.join(args)} failed:\n{out.stderr[-2000:]}")
    return time.perf_counter() - t0


class TrackingClock:
    """Time spent inside the job's tracking calls: the tracker's creation (run
    start, params, config.yaml), its per-epoch callback (history.csv, live points)
    and ``finish`` (summary, weights, figure, publishing)."""

    def __init__(self) -> None:
        from bpexp import tracking

        self.seconds = 0.0
        cls = tracking.RunTracker
        self.saved = {name: getattr(cls, name) for name in ("__init__", "on_epoch", "finish")}
        for name, fn in self.saved.items():
            setattr(cls, name, self._timed(fn))

    def _timed(self, fn):
        clock = time.perf_counter

        def timed(*args, **kwargs):
            t0 = clock()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds += clock() - t0

        return timed

    def restore(self) -> None:
        from bpexp import tracking

        for name, fn in self.saved.items():
            setattr(tracking.RunTracker, name, fn)


def in_process_jobs(overrides: list[str], repeats: int, workdir: Path) -> dict[str, list[float]]:
    """Interleave, in this process, a tracked job (``run_job``, as the command runs
    it) and the same job untracked (``train``: data, network, training), after one
    warm-up of each.

    Returns lists of seconds: ``untracked`` jobs; ``inside`` the tracked job's
    tracking calls (:class:`TrackingClock`); and ``difference``, tracked minus
    untracked wall time, which also counts any slowing of training by tracking
    but carries the noise of two measurements.
    """
    from hydra import compose, initialize_config_dir
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    from bpexp.app import CONF_DIR, run_job, train
    from bpexp.config import validate
    from bpexp.tracking.store import client_for

    # Open the store in this process first, as a sweep's callback does in the
    # launching process: its schema is created once, before the jobs.
    client_for(f"sqlite:///{workdir}/mlflow.db").search_experiments(max_results=1)
    out: dict[str, list[float]] = {"untracked": [], "inside": [], "difference": []}
    for i in range(repeats + 1):
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            cfg = compose(
                "config",
                overrides=[f"tracking.uri=sqlite:///{workdir}/mlflow.db", *overrides],
                return_hydra_config=True,
            )
        with open_dict(cfg):
            cfg.hydra.runtime.output_dir = str(workdir / f"job{i}")
            cfg.hydra.runtime.cwd = str(workdir)
        HydraConfig.instance().set_config(cfg)
        with open_dict(cfg):
            del cfg["hydra"]
        plain = cfg.copy()
        t0 = time.perf_counter()
        validate(plain)
        train(plain)
        t1 = time.perf_counter()
        clock = TrackingClock()
        try:
            run_job(cfg)
        finally:
            clock.restore()
        t2 = time.perf_counter()
        if i:
            out["untracked"].append(t1 - t0)
            out["inside"].append(clock.seconds)
            out["difference"].append((t2 - t1) - (t1 - t0))
    return out


def report_job(t: dict[str, list[float]], target: str) -> float:
    """Print a job's figures; return the tracking time (median, inside) over the job."""
    inside, diff, job = med(t["inside"]), med(t["difference"]), med(t["untracked"])
    print(
        f"- untracked job (data, network, training): median {job:.3f} s\n"
        f"- tracking, time inside its calls: median {inside:.3f} s, min {min(t['inside']):.3f}"
        f" s ({inside / (job + inside):.1%} of the tracked job; target {target})\n"
        f"- tracking, tracked minus untracked wall time: median {diff:.3f} s, "
        f"min {min(t['difference']):.3f} s ({diff / (job + diff):.1%})"
    )
    return inside


def mnist_root(tmp: Path) -> Path:
    """8,000 'training' and 2,000 'test' images from the shared MNIST test split."""
    from bpexp.data.idx import read_idx, write_idx

    images = read_idx(SHARED_MNIST / "t10k-images-idx3-ubyte.gz", 3)
    labels = read_idx(SHARED_MNIST / "t10k-labels-idx1-ubyte.gz", 1)
    root = tmp / "mnist"
    root.mkdir()
    write_idx(root / "train-images-idx3-ubyte", images[:8000])
    write_idx(root / "train-labels-idx1-ubyte", labels[:8000])
    write_idx(root / "t10k-images-idx3-ubyte", images[8000:])
    write_idx(root / "t10k-labels-idx1-ubyte", labels[8000:])
    return root


def verdict(ok: bool, below: str = "ABOVE TARGET") -> str:
    return " ok" if ok else f" {below}"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--sweep-repeats", type=int, default=2)
    ap.add_argument(
        "--parts", default="startup,jobs,sweeps", help="comma-separated: startup, jobs, sweeps"
    )
    ap.add_argument(
        "--xor-overrides", nargs="*", default=[], help="overrides for the XOR job (default: none)"
    )
    args = ap.parse_args(argv)
    parts = set(args.parts.split(","))
    R = args.repeats
    print(f"# bpexp runs benchmark\n\nPython {sys.version.split()[0]}; BLAS: {blas_info()}\n")

    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        if "startup" in parts:
            # -- start-up ---------------------------------------------------------
            fresh, existing = [], []
            for i in range(R):
                fresh.append(command(["trainer.epochs=1"], cwd=_mk(tmp / f"fresh{i}")))
            for _ in range(R):
                existing.append(command(["trainer.epochs=1"], cwd=tmp / "fresh0"))
            print("## Start-up: the whole command for a 1-epoch XOR job\n")
            print(
                f"- new store (schema created): median {med(fresh):.2f} s, min {min(fresh):.2f} s"
            )
            print(f"- existing store: median {med(existing):.2f} s, min {min(existing):.2f} s\n")

        if "jobs" in parts:
            # -- per-job tracking cost -------------------------------------------------
            t = in_process_jobs([*XOR_JOB, *args.xor_overrides], R, _mk(tmp / "xor"))
            print("## A 10,000-epoch XOR job, default settings (in one process)\n")
            inside = report_job(t, "<= 0.25 s")
            print(f"- verdict (time inside):{verdict(inside <= 0.25)}\n")

            if (SHARED_MNIST / "t10k-images-idx3-ubyte.gz").exists():
                root = mnist_root(tmp)
                t = in_process_jobs(
                    ["dataset=mnist", f"dataset.root={root}", "dataset.download=false",
                     "model.hidden_size=128", "model.activation=relu", "model.init=he_normal",
                     "model.dtype=float32", "optimizer=mbgd", "optimizer.batch_size=64",
                     "optimizer.lr=0.1", "trainer.epochs=10"],
                    max(3, R // 2), _mk(tmp / "mnist-runs"),
                )  # fmt: skip
                print("## A 10-epoch mbgd job on 8,000 MNIST images, 784-128-10 (in one process)\n")
                inside = report_job(t, "<= 0.25 s")
                print(f"- verdict (time inside):{verdict(inside <= 0.25)}\n")
            else:
                print(f"(MNIST job skipped: no shared MNIST files at {SHARED_MNIST})\n")

        if "sweeps" in parts:
            # -- launchers ------------------------------------------------------------
            if not (tmp / "fresh0" / "mlflow.db").exists():  # the store every sweep starts from
                command(["trainer.epochs=1"], cwd=_mk(tmp / "fresh0"))
            sweep = ["-m", "seed=range(0,12)", *XOR_JOB]
            launchers = {
                "basic launcher": [],
                "joblib, 2 workers": ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"],
                "joblib, 2 workers, loky's own start (BPEXP_JOBLIB_START=loky)": [
                    "hydra/launcher=joblib",
                    "hydra.launcher.n_jobs=2",
                ],
            }
            whole: dict[str, list[float]] = {k: [] for k in launchers}
            swept: dict[str, list[float]] = {k: [] for k in launchers}
            for i in range(args.sweep_repeats):
                for j, (name, extra) in enumerate(launchers.items()):
                    cwd = _mk(tmp / f"sweep{i}-{j}", store_from=tmp / "fresh0")
                    env = {"BPEXP_JOBLIB_START": "loky"} if "loky" in name else {}
                    whole[name].append(command([*sweep, *extra], cwd=cwd, env=env))
                    swept[name].append(parent_run_seconds(cwd))
            print("## A 12-job XOR sweep (default 10,000-epoch jobs)\n")
            print("The sweep = its parent run's start to end (launcher, workers, jobs);")
            print("the whole command adds the process start-up that every launcher pays.\n")
            print("| launcher | sweep, median s | whole command, median s |\n|---|---|---|")
            for name in launchers:
                print(f"| {name} | {med(swept[name]):.1f} | {med(whole[name]):.1f} |")
            print()
            base = "basic launcher"
            for name in list(launchers)[1:]:
                s_sweep = med(swept[base]) / med(swept[name])
                s_whole = med(whole[base]) / med(whole[name])
                print(
                    f"- {name}: {s_sweep:.2f}x faster by the sweep, {s_whole:.2f}x by the whole "
                    f"command (target >= 1.6){verdict(s_sweep >= 1.6, 'BELOW TARGET')}"
                )


def parent_run_seconds(cwd: Path) -> float:
    """Start to end of the one sweep (parent) run in ``cwd``'s store."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{cwd}/mlflow.db")
    (parent,) = client.search_runs(
        [client.get_experiment_by_name("bpexp").experiment_id],
        filter_string="tags.`bpexp.role` = 'sweep'",
    )
    return (parent.info.end_time - parent.info.start_time) / 1000


def _mk(path: Path, store_from: Path | None = None) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    if store_from is not None:  # start from an existing store, as a user's second sweep would
        import shutil

        shutil.copy(store_from / "mlflow.db", path / "mlflow.db")
    return path


if __name__ == "__main__":
    main()
