"""A job's tracked run: its files written as it trains, published when it ends.

:class:`RunTracker` is what a job holds: it starts the run (RUNNING in the
store, ``run.json`` and ``config.yaml`` on disk), streams every epoch's record
to ``history.csv`` (and a long run's thinned points to the store, live), and at
the end writes the summary, weights and figure and publishes them; a failure or
an interruption ends the run FAILED or KILLED the same way, with what was
trained kept.

When the output directory cannot be written (a full disk, a quota used up), the
run stops training there and its results are published from memory instead (see
:meth:`RunTracker.finish`): they reach the store, and the run ends FAILED.
"""

from __future__ import annotations

import logging
import tempfile
import traceback
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

from bpexp.signals import deferred, reason
from bpexp.tracking.files import (
    HistoryWriter,
    artifact_dir,
    cannot_write,
    flatten,
    save_loss_curve,
    summary_of,
    unwritable,
    write_atomic,
    write_json,
    write_record,
    write_summary,
)
from bpexp.tracking.names import (
    CHECKPOINT,
    CONFIG,
    DATASET,
    ERROR,
    METRIC_KEYS,
    PARENT_RUN_ID,
    WEIGHTS,
)
from bpexp.tracking.publisher import (
    ENDED,
    PUBLISHED,
    LivePoints,
    end_in_store,
    publish,
    start_run,
)
from bpexp.tracking.store import TrackingError, first_line, masked

log = logging.getLogger(__name__)


class LoggedFromMemory(OSError):
    """The job's output directory could not be written (``errno`` and ``filename``
    are the write's), but its results reached the store from memory: its run
    ``run_id`` has ended FAILED."""

    def __init__(self, cause: OSError, run_id: str) -> None:
        super().__init__(cause.errno, cause.strerror, cause.filename)
        self.run_id = run_id


class RunTracker:
    """One job's run.

    Parameters
    ----------
    output_dir
        The job's output directory (its files go to ``output_dir/artifacts``).
    uri, experiment
        The store (absolute URI) and the experiment's name.
    run_name, tags
        The run's name and tags; with ``parent``, the parent run's id is added.
    config
        The job's resolved configuration: logged flattened as params, and as
        ``config.yaml`` (``config_yaml``, its text as the user reads it).
    extra_params
        More params (the config groups' choices).
    epochs, max_points
        The epoch budget, and how many points of each metric go to the store
        (``history.csv`` has every epoch).
    constant_lr
        The learning rate never changes (its column is then no metric).
    log_weights, log_figure, figure_title
        Whether ``weights.npz`` and ``loss_curve.png`` are written, and the
        figure's title.
    parent
        A sweep's parent-run record (its ``run_id`` and ``experiment_id``).
    """

    def __init__(
        self,
        output_dir: Path,
        *,
        uri: str,
        experiment: str,
        run_name: str,
        tags: dict[str, str],
        config: dict,
        config_yaml: str,
        extra_params: dict[str, str] | None = None,
        epochs: int,
        max_points: int | None,
        constant_lr: bool = True,
        log_weights: bool = True,
        log_figure: bool = True,
        figure_title: str = "",
        parent: dict | None = None,
    ) -> None:
        self.output_dir = Path(output_dir)
        self.files = artifact_dir(self.output_dir)
        self.files.mkdir(parents=True, exist_ok=True)
        write_atomic(self.files / CONFIG, config_yaml)
        self.config_yaml = config_yaml
        self.uri = uri
        self.log_weights, self.log_figure = log_weights, log_figure
        self.figure_title = figure_title
        self.history = HistoryWriter(self.files)
        #: the error that made the output directory unwritable during training
        self.unwritten: OSError | None = None
        self.net = None
        self.checkpoint = None
        if parent is not None:
            tags = {**tags, PARENT_RUN_ID: parent["run_id"]}
        keys = [k for k in METRIC_KEYS if not (k == "lr" and constant_lr)]
        self.record = start_run(
            self.output_dir,
            uri=uri,
            experiment=experiment,
            run_name=run_name,
            tags=tags,
            params={**flatten(config), **(extra_params or {})},
            metric_keys=keys,
            epochs=epochs,
            max_points=max_points,
            experiment_id=parent["experiment_id"] if parent is not None else None,
        )
        self.live = LivePoints(uri, self.record)

    @property
    def run_id(self) -> str | None:
        return self.record["run_id"]

    @property
    def experiment_id(self) -> str | None:
        return self.record["experiment_id"]

    def keep(self, net) -> None:
        """The network being trained: its weights are written however the run ends."""
        self.net = net

    def keep_checkpoint(self, checkpoint) -> None:
        """The :func:`bpexp.core.fit` checkpoint callback: the newest one is written
        as ``checkpoint.npz`` if the run is stopped, for ``trainer.continue_from``."""
        self.checkpoint = checkpoint

    @property
    def checkpoint_path(self) -> Path:
        return self.output_dir / CHECKPOINT

    def on_epoch(self, record: dict) -> bool:
        """The :func:`bpexp.core.fit` callback: every record to ``history.csv``, a
        long run's thinned points to the store.  Returns True (stop training) once
        ``history.csv`` cannot be written: :meth:`finish` then publishes the run
        from memory."""
        if self.unwritten is not None:
            return True
        try:
            self.history.write(record)
        except OSError as exc:
            if not unwritable(exc):
                raise
            self.unwritten = exc
            self.history.abandon()
            return True
        self.live.add(record)
        return False

    def finish(self, history, net, dataset_metadata: dict, wall_seconds: float) -> dict:
        """Write the results, publish the run and end it FINISHED.  Returns the summary
        metrics.

        Raises
        ------
        TrackingError
            When the store cannot take the run: its files are kept, and the
            message says how to publish them later.
        LoggedFromMemory
            When the output directory could not be written (during training, which
            then stopped, or now): the results held in memory were published
            through a temporary directory and the run ended FAILED.  When the store
            cannot take them either, the write's own ``OSError`` is raised.
        """
        self.net = net
        summary = summary_of(history, wall_seconds)
        unwritten = self.unwritten
        if unwritten is None:
            try:
                write_json(self.files / DATASET, dataset_metadata)
                self._write_results(history.records if history.records else [history.initial])
                write_summary(self.files, summary)
                self._end("FINISHED")
            except OSError as exc:
                if not unwritable(exc):
                    raise
                unwritten = exc
        if unwritten is not None:
            self._publish_from_memory(unwritten, history, summary, dataset_metadata)
        self._publish()
        return summary["metrics"]

    def _write_results(self, records: list[dict] | None, files: Path | None = None) -> None:
        """``history.csv`` closed; the weights and the figure (of ``records``) written
        into ``files`` (default: the job's)."""
        files = files or self.files
        self.history.close()
        if self.net is not None and self.log_weights:
            self.net.save(files / WEIGHTS)
        if records is not None and self.log_figure and len(records) > 1:
            save_loss_curve(files, records, self.figure_title)

    def _publish_from_memory(
        self, cause: OSError, history, summary: dict, dataset: dict
    ) -> NoReturn:
        """Publish the run from memory, its output directory unwritable (``cause``),
        and raise :class:`LoggedFromMemory`; ``cause`` itself when the store (or the
        temporary directory) cannot take it.

        The files the job would have written are rebuilt from memory in a temporary
        directory (``$TMPDIR``, removed afterwards), laid out as an output directory,
        and published from there by :func:`publish`, the one publisher: the history
        is the in-memory one (every epoch up to ``bpexp.app.KEPT_RECORDS``, then
        thinned).
        The run ends FAILED, its ``error`` tag naming the directory, and is tagged
        ``bpexp.published`` (:data:`~bpexp.tracking.names.PUBLISHED_FROM`), by
        which ``bpexp.sync`` knows it needs nothing more.
        The job's ``run.json`` is marked published when the disk takes it; else it
        is left as it was (stale: ``bpexp.sync`` asks the store).
        """
        self.history.abandon()  # the rows written stay in history.csv.part
        error = masked(cannot_write(cause, self.output_dir))
        record = {**self.record, "state": ENDED, "status": "FAILED", "error": error,
                  "published_from": "memory"}  # fmt: skip
        try:
            with tempfile.TemporaryDirectory(prefix="bpexp-unwritten-") as tmp:
                files = artifact_dir(tmp)
                files.mkdir()
                write_atomic(files / CONFIG, self.config_yaml)
                write_json(files / DATASET, dataset)
                rebuilt = HistoryWriter(files)
                for r in [history.initial, *history.records]:
                    rebuilt.write(r)
                rebuilt.close()
                self._write_results(history.records or [history.initial], files)
                write_summary(files, summary)
                write_atomic(files / ERROR, masked("".join(traceback.format_exception(cause))))
                write_record(tmp, record)
                run_id = publish(tmp, self.uri, logged_steps=self.live.wait())
        except Exception as exc:
            log.debug("publishing from memory failed: %s", first_line(exc))
            raise cause from exc
        self.record.update(record, state=PUBLISHED, run_id=run_id)
        try:
            write_record(self.output_dir, self.record)
        except OSError:
            pass  # the disk is still full: run.json stays stale (see bpexp.sync)
        raise LoggedFromMemory(cause, run_id) from cause

    def _save_checkpoint(self) -> None:
        """``checkpoint.npz``, when training took one: what a continuation needs, not
        what the run's results need, so a file that cannot be written ends nothing."""
        if self.checkpoint is None:
            return
        try:
            self.checkpoint.save(self.checkpoint_path)
        except OSError as exc:
            log.warning("could not write %s: %s", self.checkpoint_path, exc.strerror)

    def _end(self, status: str, error: str | None = None) -> None:
        self.record.update(state=ENDED, status=status, error=error)
        write_record(self.output_dir, self.record)

    def _publish(self) -> None:
        try:
            publish(self.output_dir, self.uri, logged_steps=self.live.wait())
        except TrackingError as exc:
            raise TrackingError(
                f"{exc}; the run's results are kept in {self.files} ({', '.join(self._kept())}); "
                f"log them when the store answers: python -m bpexp.sync {self.output_dir}"
            ) from exc

    def _kept(self) -> list[str]:
        return sorted(p.name for p in self.files.iterdir() if not p.name.startswith("."))

    @contextmanager
    def guard(self):
        """End the run FAILED (its error as a tag and ``error.txt``) or KILLED
        (Ctrl-C), with what was trained written and published, then re-raise."""
        try:
            yield self
        except (TrackingError, LoggedFromMemory):
            raise  # the run's end was written; publishing it is what failed, or its files
        except BaseException as exc:
            with deferred():  # a second Ctrl-C or SIGTERM waits for the files
                self._end_stopped(exc)
            raise

    def _end_stopped(self, exc: BaseException) -> None:
        """End the run FAILED or KILLED by ``exc``, with its files (see :meth:`guard`)."""
        killed = isinstance(exc, KeyboardInterrupt)
        status = "KILLED" if killed else "FAILED"
        # Ctrl-C, or SIGTERM handled as it is (bpexp.signals.Terminated)
        message = reason(exc) if killed else f"{type(exc).__name__}: {exc}"
        try:
            write_atomic(self.files / ERROR, masked("".join(traceback.format_exception(exc))))
            self._write_results(None)
            self._save_checkpoint()
            self._end(status, masked(message))
            self._publish()
        except BaseException as inner:  # never mask the original error
            # its files could not be written (a full disk): the store still learns
            # how the run ended, rather than showing it RUNNING for ever
            if not end_in_store(self.uri, self.run_id, status, masked(message)):
                log.warning("could not end run %s %s: %s", self.run_id, status,
                            first_line(inner))  # fmt: skip
