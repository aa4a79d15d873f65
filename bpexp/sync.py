"""``python -m bpexp.sync OUTPUT_DIR``: log a run whose tracking failed, once the store is back.

When the tracking server goes away during a job, the job keeps its results in
its output directory (``artifacts/``) and leaves ``sync.json`` beside them.
This command sends them: to the same run if the store still has it (only the
metric points it lacks), else to a new run with the same name, tags, params and
parent; then the artifacts and summary, and the run ends FINISHED.

Given a sweep directory, it syncs every job in it that kept its results, then
closes the sweep's parent run (FINISHED when every child finished, else FAILED),
which the sweep could not do while the store was away.

    python -m bpexp.sync multirun/2026-11-23/10-00-00-ab12cd/3 [--tracking-uri URI]
    python -m bpexp.sync multirun/2026-11-23/10-00-00-ab12cd
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import time
from pathlib import Path

from bpexp.tracking import (
    BATCH,
    PARENT_FILE,
    SYNC_FILE,
    TrackingUnavailable,
    artifact_dir,
    check_server,
    client_for,
    end_parent,
    ensure_experiment,
    resolve_tracking_uri,
)


def sync(output_dir: str | Path, tracking_uri: str | None = None) -> str:
    """Log the kept run of ``output_dir``; return its run id.

    Raises
    ------
    FileNotFoundError
        When ``output_dir`` has no ``sync.json`` (nothing to sync).
    TrackingUnavailable
        When the store still does not answer.
    """
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.exceptions import MlflowException

    output_dir = Path(output_dir)
    info_path = output_dir / SYNC_FILE
    if not info_path.is_file():
        raise FileNotFoundError(f"{info_path} not found: nothing to sync in {output_dir}")
    info = json.loads(info_path.read_text())
    uri = resolve_tracking_uri(tracking_uri or info["tracking_uri"])
    check_server(uri)
    client = client_for(uri)

    run_id = info.get("run_id")
    try:
        run = client.get_run(run_id) if run_id else None
    except MlflowException:
        run = None
    if run is None:  # the store never got (or lost) the run: make it again
        experiment_id = ensure_experiment(client, info["experiment"], uri)
        run = client.create_run(experiment_id, run_name=info["run_name"], tags=info["tags"])
    run_id = run.info.run_id
    # the store may have gone away between the run's creation and its params
    params = [Param(k, v) for k, v in info["params"].items() if k not in run.data.params]
    for i in range(0, len(params), 100):
        client.log_batch(run_id, params=params[i : i + 100])

    artifacts = artifact_dir(output_dir)
    with open(artifacts / "history.csv") as fh:
        records = list(csv.DictReader(fh))
    last = int(records[-1]["epoch"])
    steps = set(info["steps"]) | {last, info.get("epochs_to_threshold") or last}
    have = {m.step for m in client.get_metric_history(run_id, "train_loss")}
    ts = int(time.time() * 1000)
    metrics = [
        Metric(k, float(r[k]), ts, int(r["epoch"]))
        for r in records
        if int(r["epoch"]) in steps and int(r["epoch"]) not in have
        for k in info["keys"]
        if r.get(k) not in (None, "")
    ]
    if "final_loss" not in client.get_run(run_id).data.metrics:
        metrics += [
            Metric(k, float(v) if math.isfinite(v) else float("nan"), ts, last)
            for k, v in info["summary"].items()
        ]
    for i in range(0, len(metrics), BATCH):
        client.log_batch(run_id, metrics=metrics[i : i + BATCH])
    client.log_batch(run_id, tags=[RunTag("stop_reason", info["stop_reason"])])
    client.log_artifacts(run_id, str(artifacts))
    client.set_terminated(run_id, "FINISHED")
    info_path.rename(output_dir / "sync.done.json")  # a second sync finds nothing to do
    return run_id


def sync_sweep(sweep_dir: str | Path, tracking_uri: str | None = None) -> tuple[list[str], str]:
    """Sync every job of a sweep that kept its results, then close the parent run.

    Returns the synced run ids and the parent's final status.
    """
    sweep_dir = Path(sweep_dir)
    record = json.loads((sweep_dir / PARENT_FILE).read_text())
    if "error" in record:
        raise FileNotFoundError(
            f"{sweep_dir}: the sweep never had a parent run ({record['error']})"
        )
    check_server(resolve_tracking_uri(tracking_uri or record["tracking_uri"]))
    jobs = sorted(p.parent for p in sweep_dir.glob(f"*/{SYNC_FILE}"))
    synced = [sync(job, tracking_uri) for job in jobs]
    return synced, end_parent(record, "FINISHED", tracking_uri)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bpexp.sync", description=__doc__.splitlines()[0])
    ap.add_argument(
        "dirs", nargs="+", help="job output directories (sync.json) or sweep directories"
    )
    ap.add_argument("--tracking-uri", help="default: the store the job tracked to")
    args = ap.parse_args(argv)
    failed = 0
    for d in args.dirs:
        try:
            if (Path(d) / PARENT_FILE).is_file():
                synced, status = sync_sweep(d, args.tracking_uri)
                print(f"{d}: {len(synced)} job(s) logged; the sweep's parent run ended {status}")
            else:
                print(f"{d}: logged as run {sync(d, args.tracking_uri)}")
        except (FileNotFoundError, TrackingUnavailable) as exc:
            print(f"bpexp.sync: error: {exc}", file=sys.stderr)
            failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
