"""A job's files: written into its output directory as it trains and ends, with
no MLflow involved, each one whole or not at all (a temporary name, then a
rename).  :func:`bpexp.tracking.publish` sends them; the names are
:mod:`bpexp.tracking.names`'.
"""

from __future__ import annotations

import csv
import errno
import json
import math
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from bpexp.tracking.names import (
    ARTIFACTS,
    COUNTS,
    FIGURE,
    HISTORY,
    HISTORY_KEYS,
    PARTIAL,
    RUN_FILE,
    SUMMARY_FILE,
)

#: the errors of a directory that cannot be written: a full disk, a quota used up, a
#: read-only file system
UNWRITABLE = (errno.ENOSPC, errno.EDQUOT, errno.EROFS)


def unwritable(exc: BaseException) -> bool:
    """Whether ``exc`` says its directory cannot be written (:data:`UNWRITABLE`)."""
    return isinstance(exc, OSError) and exc.errno in UNWRITABLE


def cannot_write(exc: OSError, output_dir: str | Path) -> str:
    """What an :func:`unwritable` error stops: ``cannot write FILE: REASON`` (the job's
    files in ``output_dir`` when the error names no file)."""
    where = exc.filename or f"the job's files in {output_dir}"
    return f"cannot write {where}: {exc.strerror}"


def artifact_dir(output_dir: str | Path) -> Path:
    """Where a job keeps the files published as its run's artifacts."""
    return Path(output_dir) / ARTIFACTS


def write_atomic(path: Path, data: str | bytes) -> None:
    """Write ``data`` to ``path`` whole or not at all: a reader (or a job killed
    mid-write, or a full disk) never leaves a half file under the final name."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data.encode() if isinstance(data, str) else data)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def write_json(path: Path, value: Any) -> None:
    write_atomic(path, json.dumps(value, indent=2) + "\n")


def read_record(output_dir: str | Path) -> dict:
    """A job's ``run.json`` (see :func:`bpexp.tracking.start_run`)."""
    return json.loads((Path(output_dir) / RUN_FILE).read_text())


def write_record(output_dir: str | Path, record: dict) -> None:
    write_json(Path(output_dir) / RUN_FILE, record)


def flatten(config: dict) -> dict[str, str]:
    """A nested config as ``{"optimizer.lr": "0.1", ...}`` (MLflow params are strings)."""
    out: dict[str, str] = {}

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, dict) and node:
            for k, v in node.items():
                walk(v, f"{prefix}.{k}" if prefix else str(k))
        else:
            out[prefix] = "null" if node is None else str(node)

    walk(config, "")
    return out


def logged_epochs(epochs: int, max_points: int | None) -> set[int]:
    """The epochs (0 = before training) whose measures go to MLflow as points.

    All of them when ``epochs + 1 <= max_points`` (or ``max_points`` is None);
    else ``max_points`` evenly spaced ones that include the first and the last.
    The epoch the threshold is reached and the last one actually run are added
    when the run is published.
    """
    if max_points is None or epochs + 1 <= max_points:
        return set(range(epochs + 1))
    return set(np.unique(np.linspace(0, epochs, max_points).round().astype(int)).tolist())


class HistoryWriter:
    """Streams a run's records to ``history.csv`` as they come: the file exists
    while the run trains (as ``history.csv.part``, complete rows flushed every
    second) and takes its final name when :meth:`close` is called, so a killed
    job leaves every epoch but the last second's, and memory does not grow
    with the epochs.

    The columns are ``epoch`` and the :data:`HISTORY_KEYS` that epoch 0 or 1
    has; a measure a record lacks is left empty.  Floats are written with
    ``repr``, which round-trips them exactly.
    """

    #: seconds between flushes of the rows to the file
    FLUSH_EVERY = 1.0

    def __init__(self, directory: Path) -> None:
        self.path = Path(directory) / HISTORY
        self.partial = self.path.with_name(HISTORY + PARTIAL)
        self.keys: list[str] | None = None
        self.waiting: list[dict] = []
        self.fh = None
        self.flushed = time.monotonic()

    def write(self, record: dict) -> None:
        if self.fh is None:
            self.waiting.append(record)
            if record["epoch"] >= 1:
                self._open()
            return
        self._row(record)
        if time.monotonic() - self.flushed > self.FLUSH_EVERY:
            self.fh.flush()
            self.flushed = time.monotonic()

    def _open(self) -> None:
        have = {k for r in self.waiting for k in r}
        self.keys = ["epoch", *[k for k in HISTORY_KEYS if k in have]]
        self.partial.parent.mkdir(parents=True, exist_ok=True)
        self.fh = open(self.partial, "w")
        self.fh.write(",".join(self.keys) + "\n")
        for r in self.waiting:
            self._row(r)
        self.waiting = []

    def _row(self, record: dict) -> None:
        self.fh.write(",".join([repr(record[k]) if k in record else "" for k in self.keys]) + "\n")

    def close(self) -> None:
        """Write what is left and give the file its final name (idempotent)."""
        if self.fh is None and self.waiting:
            self._open()
        if self.fh is not None:
            self.fh.close()
            self.fh = None
            os.replace(self.partial, self.path)

    def abandon(self) -> None:
        """Stop writing, leaving ``history.csv.part`` as it is (its disk is full: what
        the buffer held is lost, the rows already written stay)."""
        if self.fh is not None:
            try:
                self.fh.close()  # closes the file even when its last flush fails
            except OSError:
                pass
            self.fh = None
        self.waiting = []


def recover_history(directory: Path) -> bool:
    """Give a killed job's ``history.csv.part`` its final name, without a last row
    cut mid-line.  Returns whether there was one."""
    partial = Path(directory) / (HISTORY + PARTIAL)
    if not partial.is_file():
        return False
    text = partial.read_text()
    if text and not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
    write_atomic(Path(directory) / HISTORY, text)
    partial.unlink()
    return True


def _record(row: dict[str, str]) -> dict[str, Any]:
    """A ``history.csv`` row as :func:`bpexp.core.fit` made it: the :data:`COUNTS`
    as ints, the measures as floats (an empty cell is left out)."""
    return {k: int(v) if k in COUNTS else float(v) for k, v in row.items() if v not in (None, "")}


def read_history(path: Path, epochs: set[int] | None = None) -> list[dict[str, Any]]:
    """The records of a ``history.csv`` (:func:`_record`): all of them, or those of
    ``epochs`` and the last (only their lines are parsed)."""
    with open(path, newline="") as fh:
        header = fh.readline().rstrip("\n").split(",")
        lines = fh.read().splitlines()
    if epochs is not None:
        lines = [
            line for i, line in enumerate(lines)
            if i == len(lines) - 1 or int(line[: line.find(",")]) in epochs
        ]  # fmt: skip
    return [_record(row) for row in csv.DictReader(lines, fieldnames=header)]


def history_records(path: Path) -> Iterator[dict[str, Any]]:
    """The records of a ``history.csv`` (:func:`_record`) one at a time: memory does
    not grow with the epochs."""
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh):
            yield _record(row)


def summary_of(history, wall_seconds: float) -> dict[str, Any]:
    """A trained run's summary metrics (:data:`bpexp.tracking.names.SUMMARY`) and
    its stop reason, from its :class:`bpexp.core.History`."""
    records = history.records
    last = records[-1] if records else history.initial
    metrics = {
        "initial_loss": history.initial["train_loss"],
        "final_loss": history.final_loss,
        "best_loss": history.best_loss,
        "epochs_run": float(last["epoch"] if records else 0),
        "converged": float(history.converged),
        "diverged": float(history.diverged),
        "wall_seconds": wall_seconds,
        "train_seconds": last.get("seconds", 0.0),
    }
    if history.epochs_to_threshold is not None:
        metrics["epochs_to_threshold"] = float(history.epochs_to_threshold)
    for k in ("train_accuracy", "val_loss", "val_accuracy"):
        if records and k in last:
            metrics[f"final_{k}"] = last[k]
    return {"metrics": metrics, "stop_reason": history.stop_reason}


def write_summary(directory: Path, summary: dict) -> None:
    """``summary.json``; a non-finite value (a diverged loss) as null."""
    clean = {k: v if math.isfinite(v) else None for k, v in summary["metrics"].items()}
    write_json(Path(directory) / SUMMARY_FILE, {**summary, "metrics": clean})


def read_summary(output_dir: str | Path) -> dict | None:
    """A job's ``summary.json``, or None when it has none (it never ended)."""
    try:
        return json.loads((artifact_dir(output_dir) / SUMMARY_FILE).read_text())
    except (OSError, ValueError):
        return None


def save_loss_curve(directory: Path, records: list[dict], title: str) -> None:
    """The run's loss-curve figure as ``loss_curve.png`` (``records``: epoch 0 first)."""
    from bpexp.plots import loss_curve_figure

    keys = ("epoch", "train_loss", "val_loss")
    figure = loss_curve_figure([{k: r[k] for k in keys if k in r} for r in records], title=title)
    path = Path(directory) / FIGURE
    tmp = path.with_name(f".{FIGURE}.tmp")
    # compress_level=1: a third less time than PNG's default, same pixels
    figure.savefig(tmp, dpi=100, format="png", pil_kwargs={"compress_level": 1})
    os.replace(tmp, path)
