"""A study's whole-command wall time: bpexp, a baseline checkout of it, and the plain script.

    python benchmarks/bench_study.py [--jobs 3,48] [--repeats 3] [--baseline 5cf4f0e]
                                     [--launchers basic,joblib,stacked] [--stores new,existing]

For each sweep of ``_common.SWEEPS`` asked for (``3``: ``optimizer=bgd,sgd,mbgd``;
``48``: 3 variants x 4 learning rates x 4 seeds; ``128``: ``seed=range(0,128)``), times
side by side, interleaved, each run in a fresh temporary directory:

- ``python -m bpexp -m ...`` of this checkout, with each launcher asked for
  (``joblib``: 2 workers);
- the same with the basic launcher from a git worktree of ``--baseline`` (issue 13:
  today's main before the redesign), its ``PYTHONPATH`` pointing there;
- ``benchmarks/reference.py`` with the same jobs, with and without its figure.

Each in a new SQLite store (``new``: the tables created by the command) and, with
``--stores new,existing``, in a copy of an empty store made beforehand.  Prints medians
and minimums, the ratios against this checkout's basic launcher, each command's CPU
seconds (steadier than its wall time on a loaded machine), the issues' targets (13 and
14) with PASS or FAIL by medians, and where the reference script's time goes.
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, SWEEPS, blas_info, measure, med, row

REFERENCE = ROOT / "benchmarks" / "reference.py"
#: the launchers' overrides (issue 14 compares joblib with 2 workers)
LAUNCHERS = {"basic": [], "joblib": ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]}
#: (sweep, faster, slower, at least): "faster" at least this many times faster than "slower"
TARGETS = [
    ("48", "bpexp", "baseline", 1.5, "issue 13"),
    ("3", "bpexp", "reference", 1.5, "issue 13"),
    ("48", "bpexp", "reference", 1.5, "issue 13"),
    ("128", "bpexp stacked", "bpexp", 10.0, "issue 14"),
    ("128", "bpexp stacked", "bpexp joblib", 5.0, "issue 14"),
]
#: the reference's own timers (``points``: MLflow calls logging the metric points
#: during training; ``mlflow``: its other MLflow calls: store, runs, params, summary, artifacts)
REFERENCE_PARTS = ("imports", "training", "points", "mlflow", "files", "figure")


def sweep_overrides(grid: dict[str, list]) -> list[str]:
    """``key=v1,v2,...`` per swept key; a run of integers from 0 as ``range(0,n)``."""
    out = []
    for key, values in grid.items():
        if len(values) > 4 and values == list(range(len(values))):
            out.append(f"{key}=range(0,{len(values)})")
        else:
            out.append(f"{key}={','.join(map(str, values))}")
    return out


def commands(jobs: str, launchers: list[str], baseline: Path | None) -> dict[str, tuple]:
    """``label: (argv, PYTHONPATH)`` for one sweep."""
    bpexp = [sys.executable, "-m", "bpexp", "-m", *sweep_overrides(SWEEPS[jobs])]
    out = {}
    for name in launchers:
        label = "bpexp" if name == "basic" else f"bpexp {name}"
        out[label] = ([*bpexp, *LAUNCHERS.get(name, [f"hydra/launcher={name}"])], ROOT)
    if baseline is not None:
        out["baseline"] = (bpexp, baseline)
    reference = [sys.executable, str(REFERENCE), "--jobs", jobs]
    out["reference"] = (reference, ROOT)
    out["reference --no-figure"] = ([*reference, "--no-figure"], ROOT)
    return out


def runs_by_status(db: Path) -> dict[str, int]:
    with sqlite3.connect(db) as con:
        return dict(con.execute("SELECT status, COUNT(*) FROM runs GROUP BY status").fetchall())


def timed_command(argv, pythonpath: Path, tmp: Path, store: Path | None, n_jobs: int, parts):
    """A function running ``argv`` in a new directory under ``tmp`` and returning its
    wall seconds, after checking it logged ``n_jobs`` child runs and their parent
    FINISHED.  It appends to ``parts`` the command's CPU seconds (``cpu``: on a loaded
    machine they move less than the wall time) and the reference's own split of its time."""
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env["PYTHONPATH"] = str(pythonpath)

    def run() -> float:
        cwd = Path(tempfile.mkdtemp(dir=tmp))
        if store is not None:
            shutil.copy(store, cwd / "mlflow.db")
        cpu0, t0 = cpu_of_children(), time.perf_counter()
        out = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True)
        seconds, cpu = time.perf_counter() - t0, cpu_of_children() - cpu0
        if out.returncode:
            raise SystemExit(f"{' '.join(argv)} failed:\n{out.stderr[-2000:]}")
        status = runs_by_status(cwd / "mlflow.db")
        if status != {"FINISHED": n_jobs + 1}:
            raise SystemExit(f"{' '.join(argv)} logged {status}, not {n_jobs + 1} FINISHED runs")
        line = out.stderr.strip().splitlines()[-1]
        split = line[6:].split() if line.startswith("time: ") else []
        parts.append({"cpu": cpu} | {k: float(v) for k, v in (p.split("=") for p in split)})
        shutil.rmtree(cwd, ignore_errors=True)
        return seconds

    return run


def cpu_of_children() -> float:
    """User and system seconds of the ended child processes (and theirs)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def empty_store(tmp: Path) -> Path:
    """An MLflow SQLite store with its tables and no runs, made once, to copy."""
    db = tmp / "empty.db"
    code = f"from mlflow import MlflowClient; MlflowClient('sqlite:///{db}').search_experiments()"
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    return db


def baseline_worktree(ref: str, tmp: Path) -> Path:
    path = tmp / f"baseline-{ref}"
    git = ["git", "-C", str(ROOT), "worktree"]
    out = subprocess.run([*git, "add", "--detach", str(path), ref], capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"--baseline {ref}: git worktree add failed: {out.stderr.strip()}")
    return path


def report(jobs: str, store: str, times: dict[str, list[float]], parts: dict) -> None:
    n = len(next(iter(times.values())))
    print(f"\n## {jobs} jobs, {store} store ({n} repeats)\n")
    print("| command | median s | min s | jobs/min at the median | median / bpexp's | CPU s |")
    print("|---|---|---|---|---|---|")
    base = times.get("bpexp")
    for label, ts in times.items():
        ratio = f"{med(ts) / med(base):.2f}" if base else ""
        cpu = med([p["cpu"] for p in parts[label]])
        print(f"{row(label, ts, 60 * int(jobs), 'jobs/min')} {ratio} | {cpu:.2f} |")
    for label, split in parts.items():
        if "total" in split[0]:  # the reference's own timers, repeat by repeat
            for wall, s in zip(times[label], split):
                s["rest of the script"] = s["total"] - sum(s[p] for p in REFERENCE_PARTS)
                s["interpreter start-up and teardown"] = wall - s["total"]
            keys = [*REFERENCE_PARTS, "rest of the script", "interpreter start-up and teardown"]
            wall = med(times[label])
            share = {k: statistics.median(s[k] for s in split) for k in keys}
            print(
                f"- {label}, where its {wall:.2f} s go (medians): "
                + ", ".join(f"{k} {v:.2f} s ({v / wall:.0%})" for k, v in share.items())
            )


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", default="3", help=f"sweeps, comma-separated, of {list(SWEEPS)}")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--baseline", default="5cf4f0e", help="a git ref; 'none' to skip it")
    ap.add_argument(
        "--launchers", "--launcher", "--variants", default="basic",
        help="hydra/launcher= choices for this checkout, e.g. basic,joblib,stacked",
    )  # fmt: skip
    ap.add_argument("--stores", default="new", help="new, existing, or new,existing")
    args = ap.parse_args(argv)
    sweeps, launchers = args.jobs.split(","), args.launchers.split(",")
    stores = args.stores.split(",")
    for value, valid, what in (
        (sweeps, SWEEPS, "--jobs"),
        (stores, ("new", "existing"), "--stores"),
    ):
        if bad := set(value) - set(valid):
            raise SystemExit(f"{what}: {', '.join(sorted(bad))} is not one of {', '.join(valid)}")
    print(f"# A study's whole command\n\nPython {sys.version.split()[0]}; BLAS: {blas_info()}")
    results: dict[tuple[str, str], tuple[dict, dict]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-study-") as d:
        tmp = Path(d)
        baseline = None if args.baseline == "none" else baseline_worktree(args.baseline, tmp)
        try:
            empty = empty_store(tmp) if "existing" in stores else None
            for jobs in sweeps:
                cmds = commands(jobs, launchers, baseline)
                print(f"\n{jobs} jobs:")
                for label, (cmd, path) in cmds.items():
                    print(f"- {label}: PYTHONPATH={path} {' '.join(cmd[1:])}")
                for store in stores:
                    parts = {label: [] for label in cmds}
                    fns = {
                        label: timed_command(
                            cmd, path, tmp, empty if store == "existing" else None,
                            math.prod(map(len, SWEEPS[jobs].values())), parts[label],
                        )
                        for label, (cmd, path) in cmds.items()
                    }  # fmt: skip
                    times = measure(fns, args.repeats)
                    results[jobs, store] = times, parts
                    report(jobs, store, times, parts)
        finally:
            if baseline is not None:
                subprocess.run(
                    ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(baseline)],
                    check=False,
                )
    print("\n## Targets (medians; a new store)\n")
    print("| sweep | target | ratio by medians | by minimums | paired | CPU | verdict |")
    print("|---|---|---|---|---|---|---|")
    for jobs, fast, slow, least, issue in TARGETS:
        times, parts = results.get((jobs, "new"), ({}, {}))
        if fast in times and slow in times:
            f, s = times[fast], times[slow]
            r = med(s) / med(f)
            paired = med([a / b for a, b in zip(s, f)])  # neighbours in time share the load
            cpu = med([p["cpu"] for p in parts[slow]]) / med([p["cpu"] for p in parts[fast]])
            print(
                f"| {jobs} jobs | {fast} >= {least}x faster than {slow} ({issue}) "
                f"| {r:.2f} | {min(s) / min(f):.2f} | {paired:.2f} | {cpu:.2f} "
                f"| {'PASS' if r >= least else 'FAIL'} |"
            )


if __name__ == "__main__":
    main()
