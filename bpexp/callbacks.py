"""The Hydra side of a sweep: what it sweeps, its parent run opened before the
first job and closed after the last, and the joblib launcher's workers.

``conf/hydra/default.yaml`` names :class:`SweepCallback`; the parent run itself
is :mod:`bpexp.tracking.sweep`'s, which knows nothing of Hydra.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import warnings
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from bpexp.tracking.names import GIT_COMMIT, OVERRIDES, ROLE, SOURCE_NAME, STUDY, SWEEP_DIR, SWEPT
from bpexp.tracking.store import (
    TrackingError,
    check_store,
    first_line,
    git_commit,
    masked,
    resolve_tracking_uri,
)
from bpexp.tracking.sweep import (
    end_parent,
    finished_run,
    parent_run_name,
    previous_parent,
    record_failed_start,
    reopen_parent,
    start_parent,
)

log = logging.getLogger(__name__)

#: the parent run this process opened for its multirun, for :func:`close_parent`
ACTIVE_PARENT: dict | None = None
#: the parent record once closed, with its final ``status`` (None if it could not be)
ENDED_PARENT: dict | None = None


def sweep_plan(config: DictConfig) -> tuple[list[str], int | None]:
    """A multirun's swept keys (those given several values, in Hydra's order) and
    its number of jobs (None when the sweeper does not say).

    The values come from ``hydra.sweeper.params`` and the command line, which
    replaces a key the file also sweeps, as the basic sweeper combines them.
    A sweep over a range (``interval(...)``, for the Optuna sweeper) is swept;
    its number of jobs is ``hydra.sweeper.n_trials``.
    """
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser

    sweeper = config.hydra.sweeper
    params = sweeper.get("params") or {}
    texts = [f"{k}={v}" for k, v in params.items()] + list(config.hydra.overrides.task)
    # the config loader expands glob(...) into the group's options
    hydra_ = GlobalHydra.instance()
    loader = hydra_.config_loader() if hydra_.is_initialized() else None
    sizes: dict[str, int | None] = {}
    for override in OverridesParser.create(config_loader=loader).parse_overrides(texts):
        if not override.is_sweep_override():
            sizes[override.key_or_group] = 1
        elif override.is_discrete_sweep():
            sizes[override.key_or_group] = len(list(override.sweep_string_iterator()))
        else:
            sizes[override.key_or_group] = None
    swept = [k for k, n in sizes.items() if n != 1]
    if "BasicSweeper" in str(sweeper.get("_target_", "")):
        return swept, math.prod(sizes.values())
    trials = sweeper.get("n_trials")
    return swept, trials if isinstance(trials, int) else None


def study_of(config: DictConfig) -> str:
    """The study a run or sweep belongs to: the ``experiment=`` config chosen,
    else the MLflow experiment's name."""
    choices = OmegaConf.select(config, "hydra.runtime.choices", default=None) or {}
    return str(choices.get("experiment") or config.tracking.experiment)


def _after_fork_in_child() -> None:
    """A forked process must not use its parent's database connections (SQLite and
    SQLAlchemy both forbid it): give every MLflow engine a fresh pool."""
    module = sys.modules.get("mlflow.store.tracking.sqlalchemy_store")
    engines = getattr(getattr(module, "SqlAlchemyStore", None), "_engine_map", {})
    for engine in list(engines.values()):
        engine.dispose(close=False)


def fork_joblib_workers(config: DictConfig) -> bool:
    """Have the joblib launcher fork its workers from this process (Linux only).

    Its default (loky's fork + exec) starts fresh interpreters, each importing
    Hydra, MLflow and matplotlib again: as long as several XOR jobs.  Forked
    workers inherit those imports (and are reused for the sweep's jobs); each
    renews its database connections after the fork.  ``BPEXP_JOBLIB_START=loky``
    keeps loky's default.  Returns whether workers will be forked.
    """
    target = str(config.hydra.launcher.get("_target_", ""))
    wanted = os.environ.get("BPEXP_JOBLIB_START", "fork")
    if "joblib" not in target or sys.platform != "linux" or wanted != "fork":
        return False
    from joblib.externals.loky.backend.context import set_start_method

    import bpexp.plots  # noqa: F401 - imported once here rather than in every worker

    os.register_at_fork(after_in_child=_after_fork_in_child)
    set_start_method("fork", force=True)
    warnings.filterwarnings("ignore", message="`fork` start method", category=UserWarning)
    return True


def compose_once(config: DictConfig) -> bool:
    """Under the basic launcher, have each job's config derived from a composed one
    where Hydra would compose it whole, twice (:class:`bpexp.launcher.Composer`;
    the stacked launcher installs its own).  Returns whether it was installed."""
    from hydra.core.global_hydra import GlobalHydra

    if "BasicLauncher" not in str(config.hydra.launcher.get("_target_", "")):
        return False
    if not GlobalHydra.instance().is_initialized():
        return False
    from bpexp.launcher import Composer

    Composer(GlobalHydra.instance().config_loader(), keep=False).install()
    return True


class SweepCallback(Callback):
    """Checks a multirun's keys and store, and opens its parent run, before its
    jobs start; closes the parent when the multirun ends.

    Hydra turns exceptions in callbacks into warnings: a problem that must stop
    the sweep is a ``SystemExit``, and one the jobs must know of is recorded in
    the parent file, where every job finds it and fails with the reason.
    """

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        global ACTIVE_PARENT
        sweep_dir = Path(config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        from bpexp.config import ConfigError, check_keys

        try:
            swept, jobs = sweep_plan(config)
            unchecked = tuple(swept)
        except Exception as exc:  # a sweeper's own syntax: its jobs check their keys
            log.warning("bpexp: could not tell what the sweep sweeps: %s", exc)
            swept, jobs, unchecked = [], None, tuple(config.keys())
        try:  # a typo fails the sweep before its parent run exists
            check_keys(config, skip=unchecked)
        except ConfigError as exc:
            raise SystemExit(str(exc)) from None
        uri = resolve_tracking_uri(config.tracking.uri, config.hydra.runtime.cwd)
        try:
            check_store(uri)
        except TrackingError as exc:
            raise SystemExit(f"bpexp: error: {exc}") from None
        overrides = masked(" ".join(config.hydra.overrides.task))[:5000]
        previous = previous_parent(sweep_dir)
        if previous is not None:
            ACTIVE_PARENT = _resume(previous, sweep_dir, uri, overrides, jobs)
            fork_joblib_workers(config)
            return
        study = study_of(config)
        tags = {
            ROLE: "sweep",
            SWEEP_DIR: str(sweep_dir.resolve()),
            OVERRIDES: overrides,
            STUDY: study,
            SWEPT: ",".join(swept),
            SOURCE_NAME: "bpexp",
        }
        if commit := git_commit(config.hydra.runtime.cwd):
            tags[GIT_COMMIT] = commit
        try:
            ACTIVE_PARENT = start_parent(
                uri,
                config.tracking.experiment,
                name=parent_run_name(study, swept, jobs),
                tags=tags,
                sweep_dir=sweep_dir,
                swept=swept,
                jobs=jobs,
            )
        except Exception as exc:
            error = f"{type(exc).__name__}: {first_line(exc)}"
            log.error("bpexp: sweep tracking could not start: %s", error)
            record_failed_start(sweep_dir, error)
        fork_joblib_workers(config)
        compose_once(config)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        # Hydra calls this only when every job succeeded
        close_parent("FINISHED")


def _resume(previous: dict, sweep_dir: Path, uri: str, overrides: str, jobs: int | None) -> dict:
    """Reopen the parent of the sweep in ``sweep_dir`` for the same command run again,
    after saying how many of its jobs finished (they are skipped)."""
    if previous["tags"].get(OVERRIDES) != overrides:
        raise SystemExit(
            f"bpexp: error: {sweep_dir} holds a sweep of other overrides "
            f"({previous['tags'].get(OVERRIDES)}); resume it with python -m bpexp.resume "
            f"{sweep_dir}, or choose a new hydra.sweep.dir"
        )
    done = sum(1 for p in sweep_dir.iterdir() if p.is_dir() and finished_run(p))
    left = "" if jobs is None else f", running the other {jobs - done}"
    print(
        f"bpexp: resuming sweep {previous['run_name']!r} (parent run {previous['run_id']}): "
        f"{done} job{'s' if done != 1 else ''} finished before, skipped{left}",
        file=sys.stderr,
        flush=True,
    )
    try:
        return reopen_parent(previous, uri, jobs)
    except Exception as exc:
        message = f"bpexp: error: cannot reopen the sweep's parent run: {first_line(exc)}"
        raise SystemExit(message) from None


def close_parent(status: str) -> None:
    """End this process's parent run with ``status`` (idempotent); see
    :func:`bpexp.tracking.sweep.end_parent`.  The record, with the status set,
    is kept in :data:`ENDED_PARENT` for the sweep's last lines."""
    global ACTIVE_PARENT, ENDED_PARENT
    if ACTIVE_PARENT is None:
        return
    record, ACTIVE_PARENT = ACTIVE_PARENT, None
    ENDED_PARENT = {**record, "status": None}
    try:
        ENDED_PARENT["status"] = end_parent(record, status)
    except Exception as exc:
        log.error(
            "bpexp: could not close the sweep's parent run %s (%s); when the tracking store "
            "answers again, python -m bpexp.sync %s closes it",
            record["run_id"],
            first_line(exc),
            record.get("sweep_dir", "SWEEP_DIR"),
        )
