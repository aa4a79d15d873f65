"""A sweep in MLflow: one parent run, one child run per job.

The parent run is created by the launching process before any job starts
(:func:`start_parent`) and recorded in the sweep directory
(``.bpexp-parent.json``, its store's password masked), where every job finds it,
whatever launcher runs the jobs.  It ends FINISHED only when every child
finished (:func:`end_parent`).  Nothing here knows Hydra: :mod:`bpexp.callbacks`
calls it with plain values.
"""

from __future__ import annotations

import json
import logging
import shlex
import time
from pathlib import Path

from bpexp.tracking.files import write_json
from bpexp.tracking.names import (
    ENDED_FILE,
    NOT_THE_EXPERIMENT,
    PARENT_FILE,
    PARENT_RUN_ID,
    RUN_FILE,
)
from bpexp.tracking.store import (
    TrackingError,
    client_for,
    masked,
    open_experiment,
    resolve_tracking_uri,
    ui_lines,
)

log = logging.getLogger(__name__)

#: MLflow keeps at most this many characters of a run name
RUN_NAME_MAX = 250


def _override_key(text: str) -> str:
    """The key of an override as typed: ``+model.bias=x`` -> ``model.bias``."""
    return text.split("=", 1)[0].lstrip("+~")


def parent_run_name(study: str, swept: list[str], jobs: int | None) -> str:
    """``xor_variants: optimizer x optimizer.lr x seed (45 jobs)``."""
    count = "" if jobs is None else f"{jobs} job{'s' if jobs != 1 else ''}"
    if not swept:
        return f"{study}: {count or 'sweep'}"
    axes = " x ".join(swept)
    return (f"{study}: {axes} ({count})" if count else f"{study}: {axes}")[:RUN_NAME_MAX]


def run_name(overrides: list[str], swept: list[str] | None = None) -> str | None:
    """A run's name from its Hydra overrides: in a sweep, the values of the
    swept keys (``optimizer=sgd optimizer.lr=0.5 seed=3``); otherwise every
    override but those of :data:`NOT_THE_EXPERIMENT` (``tracking.*``, which may
    hold a server's password, ``trainer.continue_from``...).  None when nothing
    is left.
    """
    if swept:
        kept = [o for o in overrides if _override_key(o) in swept]
    else:
        kept = [o for o in overrides if not _override_key(o).startswith(NOT_THE_EXPERIMENT)]
    return " ".join(kept)[:RUN_NAME_MAX] or None


def start_parent(
    uri: str,
    experiment: str,
    *,
    name: str,
    tags: dict[str, str],
    sweep_dir: Path,
    swept: list[str],
    jobs: int | None,
) -> dict:
    """Create a sweep's parent run and record it in ``sweep_dir`` for its jobs.

    Returns the record, with ``tracking_uri`` unmasked (the file has it masked).
    """
    client, experiment_id = open_experiment(uri, experiment)
    run = client.create_run(experiment_id, run_name=name, tags=tags)
    record = {
        "tracking_uri": uri,
        "experiment": experiment,
        "experiment_id": experiment_id,
        "run_id": run.info.run_id,
        "run_name": name,
        "tags": tags,
        "sweep_dir": str(sweep_dir.resolve()),
        "swept": swept,
        "jobs": jobs,
    }
    write_json(sweep_dir / PARENT_FILE, {**record, "tracking_uri": masked(uri)})
    return record


def record_failed_start(sweep_dir: Path, error: str) -> None:
    """Leave the reason a sweep's parent could not start where its jobs look."""
    write_json(sweep_dir / PARENT_FILE, {"error": masked(error)})


def read_parent(sweep_dir: str | Path) -> dict:
    """The parent-run record a multirun's launching process left for its jobs."""
    path = Path(sweep_dir) / PARENT_FILE
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        raise TrackingError(
            f"sweep tracking was not set up ({path} is missing): is the bpexp callback "
            "in hydra.callbacks?"
        ) from None
    if "error" in record:
        raise TrackingError(f"sweep tracking could not start: {record['error']}")
    return record


def end_parent(record: dict, status: str, tracking_uri: str | None = None) -> str:
    """End a sweep's parent run; FINISHED becomes FAILED if any child did not finish.

    A parent already ended KILLED stays KILLED.  Returns the status set.
    """
    client = client_for(tracking_uri or record["tracking_uri"])
    current = client.get_run(record["run_id"]).info.status
    if current == "KILLED":
        return current
    if status == "FINISHED":
        children = client.search_runs(
            [record["experiment_id"]],
            filter_string=f"tags.`{PARENT_RUN_ID}` = '{record['run_id']}'",
            max_results=50000,
        )
        if any(c.info.status != "FINISHED" for c in children):
            status = "FAILED"
    client.set_terminated(record["run_id"], status)
    return status


def report_command(record: dict) -> str:
    """The command that reports on the sweep of parent ``record``, as a user types it.

    ``--tracking-uri`` only when the sweep's store is not the one the report
    finds by default (run from the same directory); its password masked.
    """
    command = f"python -m bpexp.report --parent {record['run_id']}"
    uri = record["tracking_uri"]
    if uri != resolve_tracking_uri(None):
        command += f" --tracking-uri {shlex.quote(masked(uri))}"
    return command


def sweep_summary(record: dict, seconds: float | None = None) -> list[str]:
    """What a sweep's launching process says at its end: the parent run's id, name
    and final status, where its runs are in the MLflow UI, and its report command."""
    status = record.get("status") or "not closed (see the error above)"
    took = "" if seconds is None else f" in {duration(seconds)}"
    uri = record["tracking_uri"]
    route = f"experiments/{record['experiment_id']}/runs"
    lines = [
        f'sweep "{record.get("run_name", "")}" {status}{took}',
        f"parent run: {record['run_id']}",
    ]
    ui = ui_lines(uri, route)
    if len(ui) == 1:
        lines.append(f"its runs in the MLflow UI: {ui[0]}")
    elif ui:
        lines += [f"browse its runs: {ui[0]}", f"  {ui[1]}"]
    lines.append(f"its report: {report_command(record)}")
    if masked(uri) != uri:
        lines.append("  (*** stands for the password in tracking.uri)")
    return lines


def duration(seconds: float) -> str:
    """``0.4 s``, ``18 s``, ``2 min 05 s``, ``1 h 02 min``: a time span for a person to read."""
    if seconds < 9.95:
        return f"{max(seconds, 0):.1f} s"
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def note_job_ended(sweep_dir: str | Path, started: float) -> None:
    """Record that a job of the sweep, started at ``started`` (``time.time()``), has
    ended (finished or not), for :func:`jobs_ended`.

    A line appended in one ``write`` per job: jobs in parallel workers, or on
    other nodes of a shared file system, each add theirs.
    """
    try:
        with open(Path(sweep_dir) / ENDED_FILE, "a") as fh:
            fh.write(f"{started:.3f} {time.time():.3f}\n")
    except OSError as exc:  # only the estimate of the time left needs it
        log.warning("could not note the job's end in %s: %s", sweep_dir, exc)


def jobs_ended(sweep_dir: str | Path) -> tuple[int, float | None]:
    """How many jobs of the sweep have ended so far, and when the first of them
    started (None before any ended)."""
    try:
        lines = (Path(sweep_dir) / ENDED_FILE).read_text().splitlines()
    except OSError:
        return 0, None
    starts = []
    for line in lines:  # a line half-written by a job on another node is skipped
        try:
            starts.append(float(line.split()[0]))
        except (IndexError, ValueError):
            pass
    return len(starts), min(starts, default=None)


# ------------------------------------------------------------------ resuming
def previous_parent(sweep_dir: Path) -> dict | None:
    """The parent record a sweep directory already holds (a sweep being resumed),
    or None for a new sweep directory."""
    path = Path(sweep_dir) / PARENT_FILE
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
    except ValueError:
        return None
    return None if "error" in record else record


def finished_run(output_dir: Path) -> dict | None:
    """The record of a job's run that finished and was published, or None (no run
    yet, or one that failed, was killed or is not published)."""
    path = Path(output_dir) / RUN_FILE
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    done = record.get("state") == "published" and record.get("status") == "FINISHED"
    return record if done else None


def reopen_parent(record: dict, uri: str, jobs: int | None) -> dict:
    """A resumed sweep's parent run, RUNNING again; returns its record (``tracking_uri``
    unmasked, ``jobs`` the sweep's)."""
    client = client_for(uri)
    client.update_run(record["run_id"], status="RUNNING")
    return {**record, "tracking_uri": uri, "jobs": jobs}


def supersede(uri: str, old: dict, new_run_id: str | None) -> None:
    """Detach a job's earlier run (failed, killed or unpublished) from the sweep it is
    run again in: it keeps its results, no longer counts among the sweep's children,
    and names the run that replaced it."""
    if not old.get("run_id") or new_run_id is None or old["run_id"] == new_run_id:
        return
    from mlflow.exceptions import MlflowException

    client = client_for(uri)
    try:
        client.delete_tag(old["run_id"], PARENT_RUN_ID)
        client.set_tag(old["run_id"], "bpexp.resumed_as", new_run_id)
    except MlflowException as exc:  # not in this store: nothing to detach
        log.debug("run %s not detached: %s", old["run_id"], exc)
