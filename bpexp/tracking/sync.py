"""``python -m bpexp.sync DIR...``: publish runs a job could not publish itself.

A job writes its results into its output directory first, and publishes them
to the store at its end (:func:`bpexp.tracking.publish`).  When the store was
away then, or the job was killed (``kill -9``, a power cut) before it could,
its results wait in the directory; this command is the same publish:

- a job's output directory: its run gets what it lacks and ends with the job's
  status (KILLED for a job whose process is gone);
- a sweep's directory: every job of it not yet published, then the sweep's
  parent run ends (FINISHED when every child finished, else FAILED; a sweep
  stopped by Ctrl-C stays KILLED).  With ``--tracking-uri`` naming another
  store, the parent run is created there too.

    python -m bpexp.sync multirun/2026-11-23/10-00-00-ab12cd/3 [--tracking-uri URI]
    python -m bpexp.sync multirun/2026-11-23/10-00-00-ab12cd
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from bpexp.tracking.names import PARENT_FILE, RUN_FILE
from bpexp.tracking.publisher import PUBLISHED, NothingToPublish, PublishedFromMemory, publish
from bpexp.tracking.store import (
    HIDDEN,
    TrackingError,
    check_store,
    first_line,
    masked,
    open_experiment,
    open_store,
)
from bpexp.tracking.sweep import end_parent


def _parent_in(record: dict, uri: str) -> dict:
    """The sweep's parent run in the store ``uri``: the recorded one, or a new one
    with its name and tags when that store does not have it."""
    from mlflow.exceptions import MlflowException

    try:
        open_store(uri).get_run(record["run_id"])
        return {**record, "tracking_uri": uri}
    except MlflowException:
        client, experiment_id = open_experiment(uri, record["experiment"])
        run = client.create_run(experiment_id, run_name=record["run_name"], tags=record["tags"])
        return {**record, "tracking_uri": uri, "experiment_id": experiment_id,
                "run_id": run.info.run_id}  # fmt: skip


def sync_sweep(sweep_dir: str | Path, tracking_uri: str | None = None) -> tuple[list[str], str]:
    """Publish every job of a sweep not yet published, then end its parent run.

    Returns the published run ids and the parent's final status.
    """
    sweep_dir = Path(sweep_dir)
    record = json.loads((sweep_dir / PARENT_FILE).read_text())
    if "error" in record:
        raise NothingToPublish(f"{sweep_dir}: the sweep never had a parent run ({record['error']})")
    uri = tracking_uri or record["tracking_uri"]
    if HIDDEN in uri and not tracking_uri:
        raise TrackingError(f"{sweep_dir}: its store {uri} needs a password: give --tracking-uri")
    check_store(uri)
    parent = _parent_in(record, uri)
    jobs = sorted((p.parent for p in sweep_dir.glob(f"*/{RUN_FILE}")), key=_job_order)
    published = []
    for job in jobs:
        if json.loads((job / RUN_FILE).read_text())["state"] != PUBLISHED:
            try:
                published.append(publish(job, uri, parent_run_id=parent["run_id"]))
            except PublishedFromMemory:
                continue  # its job published it, its run.json left stale by a full disk
    return published, end_parent(parent, "FINISHED")


def _job_order(path: Path) -> tuple:
    return (0, int(path.name)) if path.name.isdigit() else (1, path.name)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bpexp.sync", description=__doc__.splitlines()[0])
    ap.add_argument("dirs", nargs="+", help="job output directories or sweep directories")
    ap.add_argument("--tracking-uri", help="default: the store the job tracked to")
    args = ap.parse_args(argv)
    failed = 0
    for d in args.dirs:
        try:
            if (Path(d) / PARENT_FILE).is_file():
                synced, status = sync_sweep(d, args.tracking_uri)
                print(f"{d}: {len(synced)} job(s) logged; the sweep's parent run ended {status}")
            else:
                print(f"{d}: logged as run {publish(d, args.tracking_uri)}")
        except (NothingToPublish, TrackingError) as exc:
            print(f"bpexp.sync: error: {masked(str(exc))}", file=sys.stderr)
            failed += 1
        except Exception as exc:
            print(f"bpexp.sync: error: {d}: {first_line(exc)}", file=sys.stderr)
            failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
