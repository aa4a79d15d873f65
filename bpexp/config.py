"""Validation of a composed run configuration, before anything is tracked.

Every check names the dotted key, what is allowed and what was given, in one
line.  ``ConfigError`` is a Hydra ``CompactHydraException``, so Hydra prints the
message alone instead of a traceback.
"""

from __future__ import annotations

import difflib
from typing import Any

from hydra.errors import CompactHydraException
from omegaconf import DictConfig, ListConfig, OmegaConf

from bpexp.core.constraints import Interval, Options, Table, problem
from bpexp.core.losses import LOSSES, get_loss
from bpexp.core.network import MLP_OPTIONS, OUTPUT_ACTIVATIONS
from bpexp.core.optim import SCHEDULE_OPTIONS, SCHEDULES, UPDATE_OPTIONS, UPDATES
from bpexp.core.training import FIT_OPTIONS
from bpexp.data import DATASET_OPTIONS, DATASETS, SHAPES


class ConfigError(CompactHydraException, ValueError):
    """A configuration value that is not allowed (printed by Hydra as one line)."""


class JobError(CompactHydraException, ValueError):
    """A user-facing failure of a job (bad data set options, missing files...)."""


def hidden_sizes(cfg: DictConfig) -> list[int]:
    """The hidden layer widths: ``model.hidden_sizes``, else ``hidden_size`` x ``depth``."""
    sizes = cfg.model.hidden_sizes
    if sizes is None:
        return [cfg.model.hidden_size] * cfg.model.depth
    return list(sizes)


def resolve_auto(cfg: DictConfig) -> None:
    """Replace ``auto`` output activation and loss by what the data set calls for:
    one output unit (two classes) -> sigmoid + mse (the tutorials'); several ->
    softmax + cross_entropy."""
    _, n_classes = SHAPES[cfg.dataset.name]
    if cfg.model.output == "auto":
        cfg.model.output = "sigmoid" if n_classes == 2 else "softmax"
    if cfg.trainer.loss == "auto":
        cfg.trainer.loss = "cross_entropy" if cfg.model.output == "softmax" else "mse"


def options_of(cfg: DictConfig, group: str) -> dict[str, Any]:
    """A group's own options (``dataset.*``, ``update.*``, ``schedule.*``): every key
    but the ``name`` that chose them."""
    node = OmegaConf.to_container(cfg[group], resolve=True)
    return {k: v for k, v in node.items() if k != "name"}


#: the options bpexp itself adds around the core's (the network's widths, the run's
#: seed, how training reports progress, where runs are tracked)
SEED: Table = {"seed": [Interval(int, 0)]}
MODEL_OPTIONS: Table = {
    "hidden_size": [Interval(int, 1)],
    "depth": [Interval(int, 0)],
    "hidden_sizes": [],  # a list: checked in validate
    **MLP_OPTIONS,
    "output": [Options((*OUTPUT_ACTIVATIONS, "auto"))],
}
TRAINER_OPTIONS: Table = {
    "epochs": FIT_OPTIONS["epochs"],
    "loss": [Options((*LOSSES, "auto"))],
    "loss_threshold": FIT_OPTIONS["loss_threshold"],
    "divergence_factor": FIT_OPTIONS["divergence_factor"],
    "train_eval": FIT_OPTIONS["train_eval"],
    "progress": [],  # true, false or auto: checked in validate
    "progress_every": [Interval(float, 0, None, "neither")],
    "continue_from": [str, None],  # a stopped run's directory: checked by bpexp.continuing
}
TRACKING_OPTIONS: Table = {
    "uri": [str, None],
    "experiment": [str],
    "max_points": [Interval(int, 2), None],
    "log_weights": [bool],
    "log_figure": [],  # true, false or auto: checked in validate
}
#: a study's ``report:`` node, read by ``python -m bpexp.report`` (values checked there)
REPORT_KEYS = ("title", "target", "x", "group_by")


_CHOICES = {"dataset": DATASET_OPTIONS, "update": UPDATE_OPTIONS, "schedule": SCHEDULE_OPTIONS}


def group_tables(cfg: DictConfig) -> dict[str, Table]:
    """Each bpexp group's keys and their valid values, for the choices ``cfg`` made
    (a data set's, an update rule's, a schedule's own options)."""
    dataset = OmegaConf.select(cfg, "dataset.name")
    update = OmegaConf.select(cfg, "update.name")
    schedule = OmegaConf.select(cfg, "schedule.name")
    return {
        "dataset": {"name": [Options(DATASETS)], **DATASET_OPTIONS.get(dataset, {})},
        "optimizer": {k: FIT_OPTIONS[k] for k in ("variant", "lr", "batch_size")},
        "update": {"name": [Options(UPDATES)], **UPDATE_OPTIONS.get(update, {})},
        "schedule": {"name": [Options(SCHEDULES)], **SCHEDULE_OPTIONS.get(schedule, {})},
        "model": MODEL_OPTIONS,
        "trainer": TRAINER_OPTIONS,
        "tracking": TRACKING_OPTIONS,
        "report": {k: [] for k in REPORT_KEYS},
    }


def _unknown(key: str, valid: list[str], whose: str = "") -> ConfigError:
    close = difflib.get_close_matches(key.rsplit(".", 1)[-1], valid, n=1)
    prefix = key.rsplit(".", 1)[0] + "." if "." in key else ""
    hint = f"did you mean {prefix}{close[0]}?" if close else f"valid: {', '.join(valid)}"
    return ConfigError(f"config error: {key}: unknown key{whose}; {hint}")


def check_keys(cfg: DictConfig, skip: tuple[str, ...] = ()) -> None:
    """Raise :class:`ConfigError` naming the closest valid key for the first key of
    ``cfg`` that no bpexp group has (``+optimizer.lrr=0.1``): a typo would otherwise
    be logged and ignored, the run trained at the default.  Groups in ``skip``
    (a sweep's swept groups, whose options its jobs choose) are not looked into."""
    tables = group_tables(cfg)
    top = [*SEED, *tables]
    for key in cfg:
        if key == "hydra":
            continue
        if key not in top:
            raise _unknown(str(key), top)
        node = cfg[key]
        if key not in tables or key in skip or not OmegaConf.is_dict(node):
            continue
        valid = list(tables[key])
        for sub in node:
            if sub not in valid:
                whose = ""
                if key in ("dataset", "update", "schedule"):
                    whose = f" of {key} {node.get('name')!r}"
                    owners = [n for n, t in _CHOICES[key].items() if sub in t]
                    if owners:  # a knob of another choice: say which takes it
                        raise ConfigError(
                            f"config error: {key}.{sub}: unknown key{whose}; "
                            f"{key}={' or '.join(owners)} takes it"
                        )
                raise _unknown(f"{key}.{sub}", valid, whose)


def validate(cfg: DictConfig) -> None:
    """Check every key and value a run uses; raise :class:`ConfigError` on the first
    bad one, in one line naming the dotted key (the ranges and vocabularies are the
    core's and the data loaders' tables: :mod:`bpexp.core.constraints`).

    Also resolves ``auto`` values (see :func:`resolve_auto`), so that what is
    logged is what is run.
    """
    for key in ("seed", "dataset.name", "update.name", "schedule.name"):
        if OmegaConf.select(cfg, key, default=_MISSING) is _MISSING:
            raise ConfigError(f"config error: {key}: missing")
    tables = {"": SEED, **group_tables(cfg)}
    # the names that choose the other keys first: their options depend on them
    for group in ("dataset", "update", "schedule"):
        _check(cfg, f"{group}.name", tables[group]["name"])
    check_keys(cfg)
    for group, table in tables.items():
        for name, constraints in table.items():
            if group == "dataset" and name not in cfg.dataset:
                continue  # the loader's default
            if constraints:
                _check(cfg, f"{group}.{name}" if group else name, constraints)

    sizes = _get(cfg, "model.hidden_sizes")
    if sizes is not None:
        if not isinstance(sizes, (list, ListConfig)) or not all(
            isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in sizes
        ):
            _fail(
                "model.hidden_sizes",
                "must be a list of integers >= 1, e.g. [10,20,30], or null",
                sizes,
            )
    for key in ("trainer.progress", "tracking.log_figure"):
        value = _get(cfg, key)
        if value not in (True, False, "auto") or (value in (0, 1) and not isinstance(value, bool)):
            _fail(key, "must be true, false or auto", value)

    resolve_auto(cfg)
    try:
        get_loss(cfg.trainer.loss, cfg.model.output)
    except ValueError as exc:
        raise ConfigError(f"config error: trainer.loss / model.output: {exc}") from None


_MISSING = object()


def _get(cfg: DictConfig, key: str) -> Any:
    value = OmegaConf.select(cfg, key, default=_MISSING)
    if value is _MISSING:
        raise ConfigError(f"config error: {key}: missing")
    return value


def _fail(key: str, what: str, value: Any) -> None:
    raise ConfigError(f"config error: {key}: {what}, got {value!r}")


def _check(cfg: DictConfig, key: str, constraints) -> None:
    message = problem(constraints, _get(cfg, key))
    if message is not None:
        raise ConfigError(f"config error: {key}: {message}")
