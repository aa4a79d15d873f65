"""Continuing a stopped single run from its checkpoint: ``trainer.continue_from=DIR``
(the command ``python -m bpexp.resume DIR`` runs).

A single run stopped by Ctrl-C or SIGTERM leaves, besides its history and weights,
``checkpoint.npz``: where training stood at the end of an epoch (the parameters,
the update rule's state, the run's generator; :class:`bpexp.core.training.Checkpoint`,
taken every second or so).  Continuing it is a new run with the same configuration
that takes the stopped run's history up to that epoch as its own and trains on from
there: its weights and history are those of the run had it never stopped.  The
stopped run stays in the store, KILLED, tagged with the run that continued it; the
report counts the newest finished run of a configuration and seed, so only the
continued run.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from omegaconf import OmegaConf

from bpexp.config import ConfigError
from bpexp.core.training import Checkpoint
from bpexp.tracking import TrackingError
from bpexp.tracking.files import artifact_dir, flatten, history_records
from bpexp.tracking.names import CHECKPOINT, CONFIG, HISTORY, NOT_THE_EXPERIMENT, PARENT_RUN_ID
from bpexp.tracking.publisher import earlier_run

KEY = "trainer.continue_from"


@dataclass
class StoppedRun:
    """A stopped run to go on from: its output directory, its ``run.json`` record
    and its checkpoint."""

    output_dir: Path
    record: dict
    checkpoint: Checkpoint

    def records(self) -> Iterator[dict]:
        """Its history's records of epochs 0 to the checkpoint's, read as they come."""
        for record in history_records(artifact_dir(self.output_dir) / HISTORY):
            if record["epoch"] > self.checkpoint.epoch:
                return
            yield record


def _error(message: str) -> ConfigError:
    return ConfigError(f"config error: {KEY}: {message}")


def stopped_run(config: dict, cwd: str | Path, multirun: bool) -> StoppedRun | None:
    """The run ``config``'s ``trainer.continue_from`` names (relative to ``cwd``, the
    directory the command was started in), checked: a single run of bpexp,
    stopped with a checkpoint, of the same configuration as ``config`` (the
    resolved one, as logged; keys of :data:`NOT_THE_EXPERIMENT` aside).  None
    when it is not set.

    Raises
    ------
    ConfigError
        In one line, naming what is wrong, before anything is tracked.
    """
    where = config["trainer"].get("continue_from")
    if where is None:
        return None
    if multirun:
        raise _error("continues one run, not a sweep; a stopped sweep: "
                     "python -m bpexp.resume SWEEP_DIR")  # fmt: skip
    output_dir = (Path(cwd) / where).resolve()
    try:
        record = earlier_run(output_dir)
    except TrackingError as exc:
        raise _error(str(exc)) from None
    if record is None:
        raise _error(f"{output_dir} is not the output directory of a run of bpexp (no run.json)")
    if record["tags"].get(PARENT_RUN_ID):
        raise _error(f"{output_dir} is a job of a sweep: resume the sweep instead, "
                     f"python -m bpexp.resume {output_dir.parent}")  # fmt: skip
    path = output_dir / CHECKPOINT
    if not path.is_file():
        status = record.get("status")
        how = f"it ended {status}" if status else "its process was killed (SIGKILL?)"
        why = (
            "it finished: nothing to continue"
            if status == "FINISHED"
            else f"no {CHECKPOINT} there ({how} before it could write one): run it again"
        )
        raise _error(f"the run in {output_dir}: {why}")
    try:
        checkpoint = Checkpoint.load(path)
        old = OmegaConf.to_container(OmegaConf.load(artifact_dir(output_dir) / CONFIG))
    except (OSError, ValueError, KeyError) as exc:
        raise _error(f"{path} or its config.yaml cannot be read ({exc})") from None
    if not (artifact_dir(output_dir) / HISTORY).is_file():
        raise _error(f"the run in {output_dir} has no {HISTORY} to go on from")
    if differ := _differences(old, config):
        raise _error(
            f"the run in {output_dir} was trained with {', '.join(differ)}: continue it "
            f"with its own configuration, python -m bpexp.resume {output_dir}"
        )
    return StoppedRun(output_dir, record, checkpoint)


def _differences(old: dict, new: dict, most: int = 3) -> list[str]:
    """The keys whose values differ between two resolved configurations, as
    ``key=old (not new)``, the keys that do not say what is trained aside."""
    a, b = flatten(old), flatten(new)
    keys = sorted(k for k in a.keys() | b.keys()
                  if a.get(k) != b.get(k) and not k.startswith(NOT_THE_EXPERIMENT))  # fmt: skip
    said = [f"{k}={a.get(k, '(none)')} (not {b.get(k, '(none)')})" for k in keys[:most]]
    return said + ([f"and {len(keys) - most} more"] if len(keys) > most else [])
