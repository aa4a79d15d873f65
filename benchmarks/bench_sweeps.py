"""Sweep throughput: jobs per minute by launcher and tracking store.

    python benchmarks/bench_sweeps.py [--repeats 2] [--postgres postgresql://...]

A 12-job XOR sweep (default 10,000-epoch jobs), the whole command, with the
joblib launcher at 1 and 2 workers, against the local SQLite store and against
a tracking server (``python -m bpexp.server``; SQLite-backed, or PostgreSQL with
``--postgres``).  Also the share of a job's time that goes to tracking there:
the job's wall time minus its training time (from the run's own metrics).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from _common import XOR_JOB, blas_info, med


def sweep(cwd: Path, *extra: str) -> float:
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    t0 = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", "bpexp", "-m", "seed=range(0,12)", *XOR_JOB,
         "hydra/launcher=joblib", *extra],
        cwd=cwd, env=env, capture_output=True, text=True,
    )  # fmt: skip
    if out.returncode:
        raise SystemExit(f"sweep failed:\n{out.stderr[-2000:]}")
    return time.perf_counter() - t0


def start_server(backend: str, tmp: Path, port: int = 5099) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "bpexp.server", "--backend-store-uri", backend,
         "--artifacts-destination", str(tmp / "server-artifacts"), "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    for _ in range(240):
        try:
            urllib.request.urlopen(f"{url}/health", timeout=2).close()
            return proc, url
        except OSError:
            time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGTERM)
    raise SystemExit("server did not start")


def tracking_share(uri: str, experiment: str) -> float:
    """Median over the experiment's jobs of (wall - training) / wall, from the
    runs' start and end times and their train_seconds metric."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name(experiment)
    shares = []
    for r in client.search_runs([exp.experiment_id], filter_string="tags.`bpexp.role` = 'job'"):
        wall = (r.info.end_time - r.info.start_time) / 1000
        train = r.data.metrics.get("wall_seconds", 0.0)
        if wall > 0:
            shares.append((wall - train) / wall)
    return med(shares)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--postgres", help="a PostgreSQL URI for the server's backend store")
    args = ap.parse_args(argv)
    print(f"# bpexp sweep throughput\n\nPython {sys.version.split()[0]}; BLAS: {blas_info()}\n")
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        backend = args.postgres or f"sqlite:///{tmp}/server.db"
        proc, url = start_server(backend, tmp)
        try:
            rows = []
            for store, extra in (
                ("SQLite file", []),
                (f"server ({backend.split(':')[0]})", [f"tracking.uri={url}"]),
            ):
                for workers in (1, 2):
                    times = []
                    for i in range(args.repeats):
                        cwd = tmp / f"{len(rows)}-{i}"
                        cwd.mkdir()
                        exp = f"bench-{len(rows)}-{i}"
                        times.append(
                            sweep(
                                cwd,
                                f"hydra.launcher.n_jobs={workers}",
                                f"tracking.experiment={exp}",
                                *extra,
                            )
                        )
                    uri = f"sqlite:///{cwd}/mlflow.db" if not extra else url
                    rows.append(
                        (store, workers, med(times), 12 * 60 / med(times), tracking_share(uri, exp))
                    )
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
    print("| store | joblib workers | sweep s (median) | jobs/min | tracking share of a job |")
    print("|---|---|---|---|---|")
    for store, w, t, jpm, share in rows:
        print(f"| {store} | {w} | {t:.1f} | {jpm:.1f} | {share:.0%} |")
    for store in dict.fromkeys(r[0] for r in rows):
        one, two = (r[2] for r in rows if r[0] == store)
        print(f"- {store}: 2 workers are {one / two:.2f}x faster than 1")


if __name__ == "__main__":
    main()
