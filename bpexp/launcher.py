"""``hydra/launcher=stacked``: a sweep's jobs trained together, each still its own run.

The launcher (the Hydra plugin in ``hydra_plugins/bpexp_stacked_launcher``)
receives the sweep's jobs as Hydra's basic launcher does and composes each
job's config the same way, once.  Jobs whose configs differ only in what
:func:`bpexp.core.fit_many` takes per network (:data:`PER_JOB_KEYS`: the seed,
learning rate, initialisation, update and schedule constants, thresholds)
form a group of at most ``hydra.launcher.max_group`` jobs; a group's networks
are trained as one computation, and each job then ends as its own tracked run,
with what the basic launcher would have given it.  A job alone in its group
runs as the basic launcher runs it.

A group runs its jobs through Hydra's own ``run_job``, nested: job ``i``'s task
starts its run (:func:`bpexp.app.begin_job`) and builds its network, then runs
job ``i + 1`` inside it; the innermost trains the group; on the way back out
each job ends its run (:func:`bpexp.app.end_job`) inside its own ``run_job``:
its output directory, ``.hydra/`` files, log file, ``HydraConfig`` and Hydra's
callbacks are the basic launcher's, and each job's ``guard`` encloses the
group's training, so Ctrl-C there marks every unfinished job KILLED with what
it logged.  The jobs therefore end in the reverse of their order (Hydra gets
their results in the sweep's order).  A job that fails (a bad value, its data,
its tracking) fails alone; the others of its group train without it.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import json
import logging
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobReturn, configure_log, filter_overrides, run_job, setup_globals
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf, open_dict

from bpexp.app import (
    KEPT_RECORDS,
    begin_job,
    build,
    end_job,
    finished_before,
    fit_options,
    say_failure,
)
from bpexp.core import fit_many
from bpexp.core.constraints import Interval, problem
from bpexp.core.stacked import SHARED_OPTIONS, STACK_SHAPE
from bpexp.data import FIXED
from bpexp.tracking.sweep import duration, note_job_ended

log = logging.getLogger("bpexp.launcher")

#: the config keys whose values may differ between the jobs of one group: what
#: fit_many takes per network, what draws each network's initial parameters, and
#: what training does not read.  The seed only for the data sets in ``FIXED``:
#: the others draw their subsets from it, so each seed has its own data.
PER_JOB_KEYS = (
    "seed",
    "optimizer.lr",
    "model.init",
    "model.bias_init",
    "trainer.loss_threshold",
    "trainer.divergence_factor",
    "trainer.progress",
    "trainer.progress_every",
    "tracking",
    "report",
)
#: the groups whose own constants (every key but the ``name``) may differ too
PER_JOB_GROUPS = ("update", "schedule")
#: ``hydra.launcher.max_group``'s valid values
MAX_GROUP = [Interval(int, 1)]
#: Python frames each nested job adds (run_job, its task, the job's phases)
FRAMES_PER_JOB = 12


def check_max_group(value: int) -> int:
    """``value`` if it is a valid ``hydra.launcher.max_group``; else SystemExit in one line."""
    message = problem(MAX_GROUP, value)
    if message is not None:
        raise SystemExit(f"bpexp: error: hydra.launcher.max_group: {message}")
    return value


def group_key(cfg: DictConfig) -> str | None:
    """What the jobs of one group share: the job's config but its ``hydra`` node
    and the :data:`PER_JOB_KEYS`, as text; None when it does not resolve (the job
    then runs alone, and says why)."""
    try:
        node = {
            k: OmegaConf.to_container(v, resolve=True) if OmegaConf.is_config(v) else v
            for k, v in cfg.items()
            if k != "hydra"
        }
    except Exception:
        return None
    for key in PER_JOB_KEYS:
        if key == "seed" and OmegaConf.select(cfg, "dataset.name") not in FIXED:
            continue
        *path, last = key.split(".")
        parent = node
        for part in path:
            parent = parent.get(part) if isinstance(parent, dict) else None
        if isinstance(parent, dict):
            parent.pop(last, None)
    for group in PER_JOB_GROUPS:
        if isinstance(node.get(group), dict):
            node[group] = {"name": node[group].get("name")}
    return json.dumps(node, sort_keys=True, default=str)


def plan(configs: Sequence[DictConfig], max_group: int) -> list[list[int]]:
    """The jobs (indexes into ``configs``) in groups of at most ``max_group``, each
    group in the sweep's order and the groups in the order of their first job."""
    open_groups: dict[str, list[int]] = {}
    groups: list[list[int]] = []
    for i, cfg in enumerate(configs):
        key = group_key(cfg)
        group = open_groups.get(key) if key is not None else None
        if group is None or len(group) == max_group:
            group = []
            groups.append(group)
            if key is not None:
                open_groups[key] = group
        group.append(i)
    return groups


class Composer:
    """A sweep's job configs, each composed once, the most by copying another's.

    Hydra composes every job's config twice (the sweeper checks that each
    composes, then the launcher composes it again to run it), each time its
    whole defaults list.  Installed as the loader's ``load_sweep_config``
    (:meth:`install`), this keeps what the sweeper's check composed for the
    launcher (:meth:`take`); and a job whose overrides differ from an earlier
    job's only in plain values (``key=value``, the same keys in the same order,
    none choosing a config group, each value a number, string, boolean or
    null) gets a copy of that job's config with its own values set as Hydra
    sets command-line values (``_apply_overrides_to_config``, after the
    defaults are composed, so the result is the same), and its own
    ``hydra.overrides.task`` and ``hydra.job.override_dirname``.  Any other
    job is composed by Hydra.
    """

    def __init__(self, loader, keep: bool = True) -> None:
        from hydra.core.override_parser.overrides_parser import OverridesParser

        self.loader = loader
        #: keep what the sweeper's check composed, for :meth:`take` (the stacked
        #: launcher); the basic launcher composes again, through this, by a copy
        self.keep = keep
        self.compose = loader.load_sweep_config
        self.parser = OverridesParser.create()
        #: the first composed config of each form of overrides (keys, fixed parts)
        self.templates: dict[tuple, tuple[DictConfig, list]] = {}
        self.kept: dict[tuple[str, ...], DictConfig] = {}

    def install(self) -> None:
        """Compose through this for the rest of the process (the sweeper's check too)."""
        self.loader.load_sweep_config = self.load_sweep_config

    def take(self, master_config: DictConfig, overrides: Sequence[str]) -> DictConfig:
        """The job's config: the one composed for the sweeper's check, else a new one."""
        kept = self.kept.pop(tuple(overrides), None)
        return kept if kept is not None else self.load_sweep_config(master_config, overrides)

    def load_sweep_config(self, master_config: DictConfig, sweep_overrides) -> DictConfig:
        """What ``ConfigLoaderImpl.load_sweep_config`` returns, the most by a copy."""
        overrides = list(sweep_overrides)
        form, parsed = self._form(master_config, overrides)
        template = self.templates.get(form) if form is not None else None
        if template is None:
            cfg = self.compose(master_config, overrides)
            if form is not None:
                self.templates[form] = (copy.deepcopy(cfg), parsed)
        else:
            cfg = self._derive(master_config, *template, parsed)
        if self.keep:
            self.kept[tuple(overrides)] = cfg
        return cfg

    def _form(self, master_config: DictConfig, overrides: list[str]):
        """The overrides' form (each key, and the whole override where it is more
        than a plain value), and the overrides parsed; (None, None) if they do
        not parse (Hydra then says why)."""
        from hydra.core.override_parser.types import OverrideType, ValueType

        try:
            parsed = self.parser.parse_overrides(overrides)
        except Exception:
            return None, None
        groups = master_config.hydra.runtime.choices
        form, keys = [], set()
        for o in parsed:
            key = o.key_or_group
            value = o.value() if o.value_type == ValueType.ELEMENT else None
            plain = (
                o.type == OverrideType.CHANGE
                and o.value_type == ValueType.ELEMENT
                and o.package is None
                and not o.is_hydra_override()
                and key not in groups
                and not self.loader.repository.group_exists(key)
                and (value is None or isinstance(value, (str, int, float, bool)))
                and key not in keys
            )
            keys.add(key)
            form.append((key,) if plain else (key, o.input_line))
        return tuple(form), parsed

    def _derive(self, master_config, template: DictConfig, template_parsed, parsed) -> DictConfig:
        from hydra._internal.config_loader_impl import ConfigLoaderImpl, get_overrides_dirname

        cfg = copy.deepcopy(template)
        changed = [
            o for o, t in zip(parsed, template_parsed, strict=True) if o.input_line != t.input_line
        ]
        ConfigLoaderImpl._apply_overrides_to_config(changed, cfg)
        task = [o for o in parsed if not o.is_hydra_override()]
        cfg.hydra.overrides.task = [o.input_line for o in task]
        names = cfg.hydra.job.config.override_dirname
        cfg.hydra.job.override_dirname = get_overrides_dirname(
            overrides=task,
            kv_sep=names.kv_sep,
            item_sep=names.item_sep,
            exclude_keys=names.exclude_keys,
        )
        OmegaConf.copy_cache(from_config=master_config, to_config=cfg)
        return cfg


def launch(
    *,
    config: DictConfig,
    hydra_context: HydraContext,
    task_function: TaskFunction,
    job_overrides: Sequence[Sequence[str]],
    initial_job_idx: int,
    max_group: int,
    composer: Composer,
) -> list[JobReturn]:
    """Run a sweep's jobs, grouped (see the module docstring); one
    :class:`JobReturn` per job, in the sweep's order."""
    setup_globals()
    configure_log(config.hydra.hydra_logging, config.hydra.verbose)
    Path(str(config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
    configs = []
    for idx, overrides in enumerate(job_overrides, start=initial_job_idx):
        job_config = composer.take(config, overrides)
        with open_dict(job_config):  # as the basic launcher numbers them
            job_config.hydra.job.id = idx
            job_config.hydra.job.num = idx
        configs.append(job_config)
    groups = plan(configs, max_group)
    stacked = sum(len(g) for g in groups if len(g) > 1)
    log.info(
        "Launching %d jobs locally, stacked: %d in groups of up to %d, %d alone",
        len(configs),
        stacked,
        max_group,
        len(configs) - stacked,
    )
    returns: dict[int, JobReturn] = {}
    for number, members in enumerate(groups, start=1):
        if len(members) == 1:
            (i,) = members
            _say_job(configs[i])
            returns[i] = run_job(
                hydra_context=hydra_context,
                task_function=task_function,
                config=configs[i],
                job_dir_key="hydra.sweep.dir",
                job_subdir_key="hydra.sweep.subdir",
            )
        else:
            group = _Group(
                [configs[i] for i in members], hydra_context, f"group {number} of {len(groups)}"
            )
            for i, ret in zip(members, group.run(), strict=True):
                returns[i] = ret
        configure_log(config.hydra.hydra_logging, config.hydra.verbose)
    return [returns[i] for i in range(len(configs))]


def _say_job(config: DictConfig) -> None:
    """The line the basic launcher logs as it starts a job: its number and overrides."""
    overrides = " ".join(filter_overrides(list(config.hydra.overrides.task)))
    log.info("\t#%d : %s", config.hydra.job.num, overrides)


@dataclasses.dataclass
class _Member:
    """One job of a group, as it goes through its phases."""

    config: DictConfig
    job: object = None
    data: object = None
    net: object = None
    rng: np.random.Generator | None = None
    options: dict | None = None
    history: object = None
    wall: float = 0.0
    #: an error met while the group trained (its callback, its computation)
    error: BaseException | None = None
    ret: JobReturn | None = None


class _Group:
    """The jobs of one group (configs in the sweep's order), run nested."""

    def __init__(self, configs: list[DictConfig], hydra_context: HydraContext, label: str):
        self.members = [_Member(c) for c in configs]
        self.hydra_context = hydra_context
        self.label = label
        self.launcher_logging = (configs[0].hydra.hydra_logging, configs[0].hydra.verbose)

    def run(self) -> list[JobReturn]:
        first, last = self.members[0].config.hydra.job, self.members[-1].config.hydra.job
        log.info("%s: %d jobs, #%d to #%d", self.label, len(self.members), first.num, last.num)
        for m in self.members:  # here, in the launcher's logging: in no job's log file
            _say_job(m.config)
        limit = sys.getrecursionlimit()
        sys.setrecursionlimit(max(limit, 1000 + FRAMES_PER_JOB * len(self.members)))
        try:
            self._enter(0)
        finally:
            sys.setrecursionlimit(limit)
        return [m.ret for m in self.members]

    # ------------------------------------------------------- the nesting
    def _enter(self, i: int) -> None:
        """Run job ``i`` (and, inside it, the ones after it); past the last, train."""
        if i == len(self.members):
            self._train()
            return
        m = self.members[i]
        m.ret = run_job(
            hydra_context=self.hydra_context,
            task_function=functools.partial(self._task, i),
            config=m.config,
            job_dir_key="hydra.sweep.dir",
            job_subdir_key="hydra.sweep.subdir",
        )

    def _task(self, i: int, cfg: DictConfig) -> float:
        """Job ``i``'s task function, which Hydra's ``run_job`` calls with its config."""
        started = time.time()
        try:
            return self._job(i, cfg)
        finally:
            note_job_ended(HydraConfig.get().sweep.dir, started)

    def _job(self, i: int, cfg: DictConfig) -> float:
        m = self.members[i]
        try:
            final = finished_before(cfg)  # a resumed sweep's job that finished
            if final is not None:
                self._enter(i + 1)
                return final
            m.job = begin_job(cfg)
            with m.job.tracker.guard():
                m.data, m.net, m.rng = build(cfg)
                m.job.tracker.keep(m.net)  # its weights written however the run ends
                m.options = fit_options(cfg, m.data)
        except Exception as exc:  # this job fails alone; the group goes on without it
            m.net = None
            say_failure(exc)
            self._enter(i + 1)
            raise
        with m.job.tracker.guard():
            self._enter(i + 1)
            # back to this job's log file (the inner jobs configured theirs)
            configure_log(m.config.hydra.job_logging, m.config.hydra.verbose)
            try:
                if m.error is not None:
                    raise m.error
                return end_job(m.job, m.data, m.net, m.history, m.wall)
            except Exception as exc:
                say_failure(exc)
                raise

    # ------------------------------------------------------- the training
    def _train(self) -> None:
        """Train the group's built networks, stack by stack (one stack unless their
        data or shapes turn out to differ), in the launcher's logging."""
        configure_log(*self.launcher_logging)
        stacks = _stacks([m for m in self.members if m.net is not None])
        for n, stack in enumerate(stacks, start=1):
            label = self.label if len(stacks) == 1 else f"{self.label}, stack {n}"
            self._fit(stack, label)

    def _fit(self, stack: list[_Member], label: str) -> None:
        data = stack[0].data
        cfg = stack[0].job.cfg
        shape = "-".join(map(str, stack[0].net.sizes))
        progress = _Progress(label, len(stack), cfg, f"{shape} {cfg.optimizer.variant}")
        options: dict = {}
        for key in stack[0].options:
            values = [m.options[key] for m in stack]
            options[key] = values[0] if key in SHARED_OPTIONS else values
        callbacks = [self._callback(m, progress) for m in stack]
        t0 = time.perf_counter()
        try:
            histories = fit_many(
                [m.net for m in stack],
                data.X_train,
                data.y_train,
                rng=[m.rng for m in stack],
                callback=callbacks,
                max_records=KEPT_RECORDS,
                **options,
            )
        except Exception as exc:  # the computation itself failed: every job of it
            for m in stack:
                m.error = exc
            return
        wall = time.perf_counter() - t0
        for m, history in zip(stack, histories, strict=True):
            m.history, m.wall = history, wall
        progress.close(stack)

    @staticmethod
    def _callback(m: _Member, progress: _Progress):
        """The job's epoch callback (its tracker's), an error in it kept as the
        job's own: its network stops, the others train on."""
        on_epoch = m.job.tracker.on_epoch

        def callback(record: dict) -> bool | None:
            progress(record["epoch"])
            try:
                return on_epoch(record)  # True: its output disk is full (see RunTracker)
            except Exception as exc:
                m.error = exc
                return True

        return callback


def _stacks(members: list[_Member]) -> list[list[_Member]]:
    """``members`` split into the stacks :func:`fit_many` can train: the same network
    shape, shared options and data (the config's grouping promises it; this makes
    sure).  Equal data sets are then shared, each job's one freed."""
    stacks: list[list[_Member]] = []
    for m in members:
        for stack in stacks:
            if _same_stack(stack[0], m):
                first = stack[0].data
                m.data = dataclasses.replace(
                    m.data,
                    X_train=first.X_train,
                    y_train=first.y_train,
                    X_val=first.X_val,
                    y_val=first.y_val,
                )
                m.options = fit_options(m.job.cfg, m.data)
                stack.append(m)
                break
        else:
            stacks.append([m])
    return stacks


#: fit's options that are data (compared as the data set's arrays)
_DATA = ("X_val", "Y_val")


def _same_stack(a: _Member, b: _Member) -> bool:
    if any(getattr(a.net, attr) != getattr(b.net, attr) for attr in STACK_SHAPE):
        return False
    if a.options.keys() != b.options.keys():
        return False
    shared = [k for k in SHARED_OPTIONS if k in a.options and k not in _DATA]
    if any(a.options[k] != b.options[k] for k in shared):
        return False
    da, db = a.data, b.data
    return da.val_is_train == db.val_is_train and all(
        np.array_equal(x, y)
        for x, y in [
            (da.X_train, db.X_train),
            (da.y_train, db.y_train),
            (da.X_val, db.X_val),
            (da.y_val, db.y_val),
        ]
    )


class _Progress:
    """How a stack's training reports progress: a bar of its epochs on an
    interactive terminal, else a log line every ``trainer.progress_every``
    seconds (``trainer.progress`` as for a single run: ``false`` shows neither);
    both say how many of its networks still train.  Called with the epoch of
    each network's every record."""

    def __init__(self, label: str, size: int, cfg: DictConfig, what: str) -> None:
        self.label, self.size, self.epochs = label, size, cfg.trainer.epochs
        log.info("%s: %d %s networks, %d epochs", label, size, what, self.epochs)
        show = cfg.trainer.progress
        self.bar = None
        if show is True or (show == "auto" and sys.stderr.isatty()):
            from tqdm.auto import tqdm

            self.bar = tqdm(total=self.epochs, unit="epoch", desc=label, leave=False)
        self.every = cfg.trainer.progress_every if show is not False else math.inf
        self.epoch, self.count, self.training = 0, 0, size
        self.start = time.monotonic()
        self.due = self.start + self.every

    def __call__(self, epoch: int) -> None:
        if epoch == self.epoch:
            self.count += 1
            return
        # a new epoch: every network still training has recorded the one before
        self.training, self.count, self.epoch = self.count, 1, epoch
        if self.bar is not None:
            self.bar.update(1)
            if epoch % 50 == 0:
                self.bar.set_postfix_str(f"{self.training} training", refresh=False)
        elif (now := time.monotonic()) >= self.due:
            self.due = now + self.every
            log.info(
                "%s: epoch %d of %d, %d of %d networks training, %s elapsed",
                self.label,
                epoch,
                self.epochs,
                self.training,
                self.size,
                duration(now - self.start),
            )

    def close(self, stack: list[_Member]) -> None:
        if self.bar is not None:
            self.bar.close()
        histories = [m.history for m in stack if m.history is not None]
        reasons = [h.stop_reason for h in histories]
        said = ", ".join(
            f"{reasons.count(r)} {w}"
            for r, w in (
                ("threshold", "reached the threshold"),
                ("diverged", "diverged"),
                ("epochs", "used every epoch"),
                ("callback", "stopped"),
            )
            if r in reasons
        )
        log.info(
            "%s: %d networks trained in %s, up to epoch %d: %s",
            self.label,
            self.size,
            duration(time.monotonic() - self.start),
            max((h.records[-1]["epoch"] for h in histories if h.records), default=0),
            said or "none ended",
        )
