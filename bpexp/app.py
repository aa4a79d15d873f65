"""``python -m bpexp``: one Hydra-configured training job, tracked in MLflow.

``python -m bpexp`` trains once; ``python -m bpexp -m KEY=A,B ...`` sweeps.  See
the README for the configuration keys.
"""

from __future__ import annotations

import logging
import math
import os
import secrets
import sys
import time
from collections.abc import Iterable
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import hydra
import numpy as np
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from bpexp import callbacks, continuing, signals
from bpexp.config import ConfigError, JobError, hidden_sizes, options_of, validate
from bpexp.core import MLP, History, fit
from bpexp.core.training import Checkpoint, training_bytes
from bpexp.data import Dataset, load_dataset
from bpexp.tracking import RunTracker, TrackingError, publish
from bpexp.tracking.files import cannot_write, read_summary, unwritable
from bpexp.tracking.names import CONTINUED_AS, CONTINUES, GIT_COMMIT, LAUNCHER, ROLE, SOURCE_NAME
from bpexp.tracking.publisher import earlier_run, tag_in_store
from bpexp.tracking.run import LoggedFromMemory
from bpexp.tracking.store import (
    check_store,
    git_commit,
    mask_files,
    mask_passwords,
    masked,
    resolve_tracking_uri,
    ui_lines,
)
from bpexp.tracking.sweep import (
    duration,
    finished_run,
    jobs_ended,
    note_job_ended,
    read_parent,
    run_name,
    supersede,
    sweep_summary,
)

log = logging.getLogger("bpexp")

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"
#: records a job's History keeps in memory: the tracker streams every epoch's to
#: history.csv, and the summary and the figure need no more (memory stays bounded
#: however many epochs run)
KEPT_RECORDS = 10_000


class _Bar:
    """A tqdm bar of the epochs, with the training loss every 50 epochs."""

    def __init__(self, cfg: DictConfig, start: int = 0) -> None:
        from tqdm.auto import tqdm

        self.epochs, self.start = cfg.trainer.epochs, start
        self.bar = tqdm(total=self.epochs, initial=start, unit="epoch", desc=cfg.dataset.name,
                        leave=True)  # fmt: skip

    def __call__(self, record: dict) -> None:
        if record["epoch"] > self.start:
            self.bar.update(1)
            if record["epoch"] % 50 == 0 or record["epoch"] == self.epochs:
                self.bar.set_postfix_str(f"loss={record['train_loss']:.4g}", refresh=False)

    def close(self) -> None:
        self.bar.close()


class _ProgressLog:
    """A log line every ``trainer.progress_every`` seconds of training: the epoch,
    the training loss, the time elapsed and left.  A shorter run logs none.

    The time left assumes the remaining epochs cost what the past ones did; with
    a ``loss_threshold`` the run may stop sooner, so it is an upper bound.
    """

    def __init__(self, cfg: DictConfig) -> None:
        self.epochs = cfg.trainer.epochs
        self.every = cfg.trainer.progress_every
        self.bound = "at most" if cfg.trainer.loss_threshold is not None else "about"
        self.start, self.first, self.due = math.inf, None, -math.inf

    def __call__(self, record: dict) -> None:
        now = time.monotonic()
        if now < self.due:  # every epoch but one in thousands: keep it cheap
            return
        epoch = record["epoch"]
        self.due = now + self.every
        if self.first is None:  # fit's first call (epoch 0, or a continued run's next)
            self.start, self.first = now, epoch
        else:
            elapsed = now - self.start
            log.info(
                "epoch %d of %d, train loss %.4g, %s elapsed, %s %s left",
                epoch,
                self.epochs,
                record["train_loss"],
                duration(elapsed),
                self.bound,
                duration(elapsed / (epoch - self.first) * (self.epochs - epoch)),
            )

    def close(self) -> None:
        pass


def _progress(cfg: DictConfig, multirun: bool, start: int = 0) -> _Bar | _ProgressLog | None:
    """How training reports its progress (``trainer.progress``): ``auto`` draws a
    bar for a single run on an interactive terminal, and logs a line every
    ``trainer.progress_every`` seconds otherwise (a sweep's jobs, a run whose
    output goes to a file); ``true`` always draws the bar; ``false``: neither.
    ``start``: the epoch training starts after (a continued run's)."""
    show = cfg.trainer.progress
    if show is False:
        return None
    if show is True or (not multirun and sys.stderr.isatty()):
        return _Bar(cfg, start)
    return _ProgressLog(cfg)


def _announce_job(parent: dict, num: int, name: str) -> None:
    """Log ``job N of M`` as a sweep's job starts, and the sweep's time left once
    a job has ended: at the rate jobs have ended since the first of them started,
    which counts parallel jobs and leaves out the sweep's set-up (Hydra composes
    every job's config before the first starts)."""
    total = parent.get("jobs")
    line = f"job {num + 1}" + (f" of {total}" if total else "") + f": {name}"
    ended, first_start = jobs_ended(parent["sweep_dir"])
    if total and ended:
        elapsed = time.time() - first_start
        left = elapsed / ended * max(total - ended, 0)
        took, left = duration(elapsed), duration(left)
        line += f" ({ended} ended in {took}, about {left} left)"
    log.info("%s", line)


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation: /proc/meminfo's MemAvailable
    (free memory plus the caches the kernel can drop), else the free pages; None
    when neither can be read."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _gib(nbytes: float) -> str:
    return f"{nbytes / 2**30:.3g} GiB"


def _check_memory(sizes: list[int], cfg: DictConfig, n: int) -> None:
    """Refuse, before anything is allocated, a network whose training would not fit
    in the memory available (it would be killed by the OOM killer, silently)."""
    o = cfg.optimizer
    need = training_bytes(sizes, cfg.model.dtype, n, o.variant, o.batch_size, cfg["update"].name)
    have = available_memory()
    if have is not None and need > have:
        raise JobError(
            f"model: a {'-'.join(map(str, sizes))} network ({cfg.model.dtype}) trained by "
            f"{o.variant} on {n} samples needs about {_gib(need)}; {_gib(have)} of memory "
            "is available (model.hidden_size / hidden_sizes / depth, optimizer.batch_size)"
        )


def build(cfg: DictConfig) -> tuple[Dataset, MLP, np.random.Generator]:
    """The data set and the untrained network a validated ``cfg`` describes.

    Returns them with the run's one generator (made from ``cfg.seed``), which
    loaded the data, drew the initial parameters and goes on to draw the
    samples' order in training.
    """
    rng = np.random.default_rng(cfg.seed)
    try:
        data = load_dataset(
            cfg.dataset.name, rng=rng, dtype=cfg.model.dtype, **options_of(cfg, "dataset")
        )
    except ValueError as exc:
        raise JobError(f"dataset {cfg.dataset.name}: {exc}") from exc
    m, o = cfg.model, cfg.optimizer
    n = data.X_train.shape[0]
    if o.variant == "mbgd" and o.batch_size >= n:
        # one batch of every sample per epoch: the same updates as bgd
        log.warning(
            "optimizer.batch_size=%d >= n=%d training samples of %s: mbgd is bgd here; "
            "set optimizer.batch_size below %d (e.g. %d) to compare mini-batches",
            o.batch_size,
            n,
            cfg.dataset.name,
            n,
            max(1, n // 2),
        )
    sizes = [data.n_features, *hidden_sizes(cfg), data.n_outputs]
    _check_memory(sizes, cfg, n)
    net = MLP(
        sizes,
        activation=m.activation,
        output=m.output,
        init=m.init,
        bias_init=m.bias_init,
        dtype=m.dtype,
        bias=m.bias,
        leaky_slope=m.leaky_slope,
        rng=rng,
    )
    return data, net, rng


def fit_options(cfg: DictConfig, data: Dataset) -> dict:
    """The keyword arguments of :func:`bpexp.core.fit` (and, per network, of
    :func:`bpexp.core.fit_many`) that a validated ``cfg`` sets for ``data``."""
    o, t = cfg.optimizer, cfg.trainer
    validation = {} if data.val_is_train else {"X_val": data.X_val, "Y_val": data.y_val}
    return dict(
        variant=o.variant,
        lr=o.lr,
        batch_size=o.batch_size,
        epochs=t.epochs,
        loss=t.loss,
        update=cfg["update"].name,  # DictConfig.update is a method
        schedule=cfg.schedule.name,
        **options_of(cfg, "update"),  # the chosen rule's and schedule's own knobs only
        **options_of(cfg, "schedule"),
        loss_threshold=t.loss_threshold,
        divergence_factor=t.divergence_factor,
        train_eval=t.train_eval,
        **validation,
    )


def train(
    cfg: DictConfig,
    callback=None,
    keep=None,
    checkpoint=None,
    resume: tuple[Checkpoint, Iterable[dict]] | None = None,
) -> tuple[Dataset, MLP, History, float]:
    """Load the data, build the network and train it as a validated ``cfg`` says.

    Returns the data set, the trained network, its history and the seconds
    :func:`bpexp.core.fit` took.  Nothing here is tracked; ``keep`` is called
    with the network before it trains (the tracker writes its weights however
    training ends), ``checkpoint`` with fit's checkpoints; with ``resume``, a
    checkpoint and the records up to it, training goes on from there (the
    network built from ``cfg.seed`` then takes the checkpoint's parameters).
    """
    data, net, rng = build(cfg)
    if keep is not None:
        keep(net)
    start, records = resume if resume is not None else (None, ())
    t0 = time.perf_counter()
    history = fit(
        net,
        data.X_train,
        data.y_train,
        rng=rng,
        callback=callback,
        max_records=KEPT_RECORDS,
        checkpoint=checkpoint,
        resume=start,
        resume_records=records,
        **fit_options(cfg, data),
    )
    return data, net, history, time.perf_counter() - t0


@dataclass
class Job:
    """One job of a run or sweep, its tracked run started (see :func:`begin_job`)."""

    cfg: DictConfig
    tracker: RunTracker
    name: str
    multirun: bool
    #: the stopped run it goes on from (``trainer.continue_from``)
    continued: continuing.StoppedRun | None = None


def begin_job(cfg: DictConfig) -> Job:
    """Validate the current Hydra job's ``cfg`` and start its tracked run.

    ``cfg`` is the job's config without its ``hydra`` node; Hydra's own
    (:class:`HydraConfig`) must be the job's.  Raises :class:`ConfigError` on a
    bad value, before anything is tracked.
    """
    hc = HydraConfig.get()
    output_dir = Path(hc.runtime.output_dir)
    typed = str(OmegaConf.select(cfg, "tracking.uri") or "")
    if masked(typed) != typed:  # Hydra wrote the overrides as typed: the password too
        mask_files([*output_dir.glob(".hydra/*.yaml"), Path(hc.sweep.dir) / "multirun.yaml"])
    validate(cfg)  # before anything is tracked: one line naming the key
    multirun = hc.mode == RunMode.MULTIRUN
    parent = read_parent(hc.sweep.dir) if multirun else None
    # every job of a sweep composes the same tracking.uri its parent was checked with
    uri = resolve_tracking_uri(cfg.tracking.uri, hc.runtime.cwd)
    if parent is None:
        check_store(uri)
    tags = {
        "dataset": cfg.dataset.name,
        "variant": cfg.optimizer.variant,
        "hydra.output_dir": str(output_dir),
        ROLE: "job",
        SOURCE_NAME: "bpexp",
        LAUNCHER: str(hc.runtime.choices.get("hydra/launcher") or "basic"),
    }
    if commit := git_commit(hc.runtime.cwd):
        tags["git_commit"] = tags[GIT_COMMIT] = commit
    choices = {
        group: str(choice)
        for group, choice in hc.runtime.choices.items()
        if choice is not None and not group.startswith("hydra/")
    }
    overrides = list(hc.overrides.task)
    swept = parent.get("swept") if multirun else None
    name = run_name(overrides, swept) or (f"job {hc.job.num}" if multirun else "run")
    if multirun:
        _announce_job(parent, hc.job.num, name)
    config = OmegaConf.to_container(cfg, resolve=True)
    config.pop("hydra", None)
    if config["tracking"]["uri"]:  # logged as a param and in config.yaml: never its password
        config["tracking"]["uri"] = masked(config["tracking"]["uri"])
    if continued := continuing.stopped_run(config, hc.runtime.cwd, multirun):
        tags[CONTINUES] = continued.record.get("run_id") or str(continued.output_dir)
    earlier = earlier_run(output_dir)  # a resumed sweep's job that did not finish
    tracker = RunTracker(
        output_dir,
        uri=uri,
        experiment=cfg.tracking.experiment,
        run_name=name,
        tags=tags,
        config=config,
        config_yaml=OmegaConf.to_yaml(config),
        extra_params=choices,
        epochs=cfg.trainer.epochs,
        max_points=cfg.tracking.max_points,
        constant_lr=cfg.schedule.name == "constant",
        log_weights=cfg.tracking.log_weights,
        # auto: a single run's figure; a sweep's runs are compared by bpexp.report,
        # and each one's curves are in the MLflow UI
        log_figure=cfg.tracking.log_figure is True
        or (cfg.tracking.log_figure == "auto" and not multirun),
        figure_title=(
            f"{cfg.dataset.name}, {cfg.optimizer.variant}, lr={cfg.optimizer.lr}, seed={cfg.seed}"
        ),
        parent=parent,
    )
    if earlier is not None:
        supersede(uri, earlier, tracker.run_id)
    if continued is not None and tracker.run_id is not None:
        tag_in_store(uri, continued.record.get("run_id"), CONTINUED_AS, tracker.run_id)
        log.info("continuing run %s (%s) from its epoch %d", continued.record.get("run_id"),
                 continued.output_dir, continued.checkpoint.epoch)  # fmt: skip
    return Job(cfg, tracker, name, multirun, continued)


def end_job(job: Job, data: Dataset, net: MLP, history: History, wall: float) -> float:
    """Log a trained job's results, end its run FINISHED and say so; returns its
    final training loss (infinite when it diverged)."""
    tracker = job.tracker
    summary = tracker.finish(history, net, data.metadata, wall)
    log.info(
        "run %s: %s, loss %.4g -> %.4g in %d epochs (%s), training %.2f s",
        tracker.run_id,
        job.name,
        summary["initial_loss"],
        summary["final_loss"],
        summary["epochs_run"],
        history.stop_reason,
        wall,
    )
    if not job.multirun:  # a sweep's jobs are found from its parent (see main)
        route = f"experiments/{tracker.experiment_id}/runs/{tracker.run_id}"
        ui = ui_lines(tracker.uri, route)
        if len(ui) == 1:
            log.info("the run in the MLflow UI: %s", ui[0])
        elif ui:
            log.info("browse the run: %s, %s", *ui)
    final = history.final_loss
    return final if math.isfinite(final) else math.inf


def finished_before(cfg: DictConfig) -> float | None:
    """In a resumed sweep, the final training loss of the current job when it had
    finished (and was published) before: it is not run again.  None otherwise."""
    hc = HydraConfig.get()
    if hc.mode != RunMode.MULTIRUN:
        return None
    output_dir = Path(hc.runtime.output_dir)
    record = finished_run(output_dir) or _publish_ended(output_dir, cfg, hc)
    if record is None:
        return None
    log.info("job %d finished before, as run %s: skipped", hc.job.num, record["run_id"])
    summary = read_summary(output_dir)
    final = (summary or {}).get("metrics", {}).get("final_loss")
    return math.inf if final is None else final


def _publish_ended(output_dir: Path, cfg: DictConfig, hc) -> dict | None:
    """A job that finished but could not publish (its store was away): published now."""
    try:
        record = earlier_run(output_dir)
    except TrackingError:
        return None
    if record is None or record.get("state") != "ended" or record.get("status") != "FINISHED":
        return None
    publish(output_dir, resolve_tracking_uri(cfg.tracking.uri, hc.runtime.cwd))
    return finished_run(output_dir)


def run_job(cfg: DictConfig) -> float:
    """Train one network as ``cfg`` says and track it; returns the final training loss.

    Stopped (Ctrl-C, SIGTERM), the run ends KILLED with its files written, and one
    line says where they are.
    """
    if (final := finished_before(cfg)) is not None:
        return final
    job = None
    try:
        with ExitStack() as stack:
            # a signal while the run is being created is held until its guard can
            # end it KILLED (else the new run would be left RUNNING)
            with signals.deferred():
                job = begin_job(cfg)
                stack.enter_context(job.tracker.guard())
            resume, start = None, 0
            if (continued := job.continued) is not None:
                # the stopped run's epochs are the new run's first: its history file too
                resume = (continued.checkpoint, _through(continued.records(), job.tracker.on_epoch))
                start = continued.checkpoint.epoch
            progress = _progress(cfg, job.multirun, start)
            callback = job.tracker.on_epoch
            if progress is not None:

                def callback(record: dict) -> bool:
                    stop = job.tracker.on_epoch(record)  # True: its disk is full
                    progress(record)
                    return stop

            try:
                # a single run's checkpoints: a stopped sweep is resumed job by job
                checkpoint = None if job.multirun else job.tracker.keep_checkpoint
                data, net, history, wall = train(
                    cfg, callback, keep=job.tracker.keep, checkpoint=checkpoint, resume=resume
                )
            finally:
                if progress is not None:
                    progress.close()
            return end_job(job, data, net, history, wall)
    except KeyboardInterrupt as exc:
        if job is None:  # stopped before its run existed
            raise
        _RUNS_STOPPED.append(job.tracker.run_id)
        then = ""
        if job.tracker.checkpoint is not None and job.tracker.checkpoint_path.is_file():
            epoch, where = job.tracker.checkpoint.epoch, job.tracker.output_dir
            then = f"; to train on from epoch {epoch}: python -m bpexp.resume {where}"
        log.warning(
            "run %s (%s) KILLED, %s; its history and weights are in %s%s",
            job.tracker.run_id,
            job.name,
            signals.reason(exc),
            job.tracker.files,
            then,
        )
        raise


def _through(records: Iterable[dict], see) -> Iterable[dict]:
    """``records``, each passed to ``see`` as it goes by."""
    for record in records:
        see(record)
        yield record


#: the runs this process saw stopped (Ctrl-C, SIGTERM): each said so in its own line
_RUNS_STOPPED: list[str | None] = []


def say_failure(exc: Exception) -> None:
    """Say why the current job failed, once, as it happens: a user-facing error
    (a bad value, a data set's, the tracking's, a full or read-only disk) in one
    line, anything else with its traceback.  A single run's one line becomes
    ``SystemExit``."""
    if unwritable(exc):
        # a full or read-only disk: one line naming the file, not a traceback
        message = f"bpexp: error: {cannot_write(exc, HydraConfig.get().runtime.output_dir)}"
        if isinstance(exc, LoggedFromMemory):
            message += f"; its results were logged to the store as run {exc.run_id} (FAILED)"
    elif isinstance(exc, (ConfigError, JobError, TrackingError)):
        message = str(exc)
    else:
        log.error("job failed", exc_info=exc)
        return
    if HydraConfig.get().mode != RunMode.MULTIRUN:
        # one line, once: Hydra would repeat it after "Error executing job with
        # overrides" and a hint about HYDRA_FULL_ERROR (SystemExit passes through it)
        raise SystemExit(message) from None
    # Hydra reports only a sweep's first failure at its end: say each one as it happens
    log.error("%s", message)


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
def _hydra_main(cfg: DictConfig) -> float:
    started = time.time()
    # a no-op but in a worker process started by fork + exec (loky's own start), whose
    # first job installs the handlers that main() installed in the launcher
    signals.install()
    stopped = None
    try:
        with signals.job():
            return run_job(cfg)
    except KeyboardInterrupt as exc:
        stopped = exc
        raise
    except Exception as exc:
        say_failure(exc)
        raise
    finally:
        hc = HydraConfig.get()
        if hc.mode == RunMode.MULTIRUN:
            note_job_ended(hc.sweep.dir, started)
        if stopped is not None and signals.is_worker():
            # never back to the pool, which would start the next job: the launcher,
            # stopped too, ends this process once every worker's run is saved
            signals.linger(signals.signal_of(stopped))


def main() -> None:
    """Entry point: prepares what every job shares, runs Hydra, closes the sweep's parent run.

    Hydra does not call ``on_multirun_end`` when a job failed, so the parent run
    a multirun created is closed here whatever happened: FINISHED only when every
    job finished, FAILED otherwise, KILLED on Ctrl-C or SIGTERM, after which the
    process dies of that signal (see :mod:`bpexp.signals`).
    """
    signals.install(launcher=True)
    _refuse_old_forms(sys.argv[1:])
    _refuse_unknown_choices(sys.argv[1:])
    # One stamp per invocation, inherited by worker processes: sweep and run
    # directories never collide, even for two commands started in the same second.
    now = datetime.now()
    os.environ["BPEXP_STAMP"] = f"{now:%Y-%m-%d}/{now:%H-%M-%S}-{secrets.token_hex(3)}"
    mask_passwords()  # Hydra prints each job's overrides: tracking.uri too
    # a log file on a full disk: its handler's error is not another traceback
    logging.raiseExceptions = False
    # MLflow's HTTP client retries 7 times with exponential back-off by default
    # (minutes); bpexp checks the server up front, so keep in-run retries short
    for key, value in (
        ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "3"),
        ("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1"),
        ("MLFLOW_HTTP_REQUEST_TIMEOUT", "30"),
        # MLflow's own "View run/experiment at" lines, two per run, link the
        # experiment to its Traces page: bpexp says where the runs are instead
        ("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true"),
    ):
        os.environ.setdefault(key, value)
    status, said = "FAILED", False
    started = time.monotonic()
    try:
        try:
            _hydra_main()
            status = "FINISHED"
        except KeyboardInterrupt:
            status = "KILLED"
            raise
        except SystemExit as exc:
            status = "FINISHED" if exc.code in (0, None) else "FAILED"
            raise
        finally:
            with signals.deferred():
                callbacks.close_parent(status)
                said = _say_where_the_sweep_is(time.monotonic() - started)
    except KeyboardInterrupt as exc:  # Ctrl-C or SIGTERM: a line, not a traceback
        if not (said or _RUNS_STOPPED):
            print(f"bpexp: {signals.reason(exc)}", file=sys.stderr)
        signals.exit_by(exc)


def _refuse_old_forms(args: list[str]) -> None:
    """Exit with one line naming the new form of a command that changed.

    ``experiment`` is declared in the defaults list (``experiment: null``), so a
    study is chosen as ``experiment=NAME``; Hydra refuses the former
    ``+experiment=NAME`` with a message about its defaults list instead."""
    for arg in args:
        if arg.startswith("+experiment="):
            new = arg[1:]
            raise SystemExit(
                f"bpexp: error: {arg} is now {new}, without the +: python -m bpexp -m {new}"
            )


def group_choices() -> dict[str, list[str]]:
    """Each config group the defaults list of ``conf/config.yaml`` chooses from (but
    Hydra's own), and its options: the names of the files of ``conf/GROUP/``."""
    defaults = OmegaConf.load(CONF_DIR / "config.yaml").defaults
    groups = [
        g
        for entry in defaults
        if isinstance(entry, DictConfig)
        for g in entry
        if not g.startswith("override ")  # Hydra's own groups (hydra/sweeper)
    ]
    return {
        g: sorted(p.stem for p in (CONF_DIR / g).glob("*.yaml")) for g in groups if g != "hydra"
    }


def _refuse_unknown_choices(args: list[str]) -> None:
    """Exit with one line naming the group and its options when a group is set to
    a value that is none of them (``optimizer=null``, ``optimizer=nope``, or one
    such value of a sweep's list); Hydra says it in 10 to 30 lines, a traceback
    for null.  Sweep functions (``glob(...)``, ``choice(...)``) are left to Hydra."""
    choices = group_choices()
    for arg in args:
        key, eq, value = arg.lstrip("+").partition("=")
        if not eq or key not in choices or any(c in value for c in "()[]{}"):
            continue
        for v in value.split(","):
            if v.strip().strip("'\"") not in choices[key]:
                raise SystemExit(
                    f"bpexp: error: {arg}: {key} must be one of {', '.join(choices[key])} "
                    f"(the files of conf/{key}/), got {v.strip() or 'nothing'}"
                )


def _say_where_the_sweep_is(seconds: float) -> bool:
    """Print, once a sweep has ended, its parent run, UI link and report command on
    stderr, and keep them in ``SWEEP_DIR/sweep.log``.

    Not through logging: after the basic launcher's jobs, the logging handlers
    are the last job's (its log file).
    """
    record, callbacks.ENDED_PARENT = callbacks.ENDED_PARENT, None
    if record is None:
        return False
    lines = [f"bpexp: {line}" for line in sweep_summary(record, seconds)]
    print("\n".join(lines), file=sys.stderr, flush=True)
    try:
        with open(Path(record["sweep_dir"]) / "sweep.log", "a") as fh:
            fh.write(f"{datetime.now():%Y-%m-%d %H:%M:%S}\n" + "\n".join(lines) + "\n")
    except OSError as exc:
        print(f"bpexp: could not write sweep.log: {exc}", file=sys.stderr)
    return True
