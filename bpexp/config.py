"""Validation of a composed run configuration, before anything is tracked.

Every check names the dotted key, what is allowed and what was given, in one
line.  ``ConfigError`` is a Hydra ``CompactHydraException``, so Hydra prints the
message alone instead of a traceback.
"""

from __future__ import annotations

import math
from typing import Any

from hydra.errors import CompactHydraException
from omegaconf import DictConfig, ListConfig, OmegaConf

from bpexp.core import (
    BIAS_INITIALISERS,
    HIDDEN_ACTIVATIONS,
    INITIALISERS,
    LOSSES,
    OUTPUT_ACTIVATIONS,
    SCHEDULES,
    TRAIN_EVAL,
    UPDATES,
    VARIANTS,
)
from bpexp.core.losses import get_loss
from bpexp.data import DATASETS, MNIST_SOURCES, SHAPES


class ConfigError(CompactHydraException, ValueError):
    """A configuration value that is not allowed (printed by Hydra as one line)."""


class JobError(CompactHydraException, ValueError):
    """A user-facing failure of a job (bad data set options, missing files...)."""


_MISSING = object()


def _get(cfg: DictConfig, key: str) -> Any:
    value = OmegaConf.select(cfg, key, default=_MISSING)
    if value is _MISSING:
        raise ConfigError(f"config error: {key}: missing")
    return value


def _fail(key: str, what: str, value: Any) -> None:
    raise ConfigError(f"config error: {key}: {what}, got {value!r}")


def _number(cfg, key, lo=None, hi=None, lo_open=True, hi_open=False, optional=False):
    v = _get(cfg, key)
    if v is None and optional:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        _fail(key, "must be a number" + (" or null" if optional else ""), v)
    if lo is not None and (v <= lo if lo_open else v < lo):
        _fail(key, f"must be {'>' if lo_open else '>='} {lo}", v)
    if hi is not None and (v >= hi if hi_open else v > hi):
        _fail(key, f"must be {'<' if hi_open else '<='} {hi}", v)
    return v


def _integer(cfg, key, lo=1, optional=False):
    v = _get(cfg, key)
    if v is None and optional:
        return None
    if isinstance(v, bool) or not isinstance(v, int) or v < lo:
        _fail(key, f"must be an integer >= {lo}" + (" or null" if optional else ""), v)
    return v


def _choice(cfg, key, valid, optional=False):
    v = _get(cfg, key)
    if v is None and optional:
        return None
    if v not in valid:
        _fail(key, f"must be one of {', '.join(map(str, valid))}", v)
    return v


def _boolean(cfg, key):
    v = _get(cfg, key)
    if not isinstance(v, bool):
        _fail(key, "must be true or false", v)
    return v


def _string(cfg, key, optional=False):
    v = _get(cfg, key)
    if v is None and optional:
        return None
    if not isinstance(v, str) or not v:
        _fail(key, "must be a non-empty string" + (" or null" if optional else ""), v)
    return v


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


DATASET_OPTIONS = {
    "xor": {},
    "toy3": {},
    "mnist": {
        "root": lambda c, k: _string(c, k, optional=True),
        "source": lambda c, k: _choice(c, k, tuple(MNIST_SOURCES)),
        "train_size": lambda c, k: _integer(c, k, optional=True),
        "test_size": lambda c, k: _integer(c, k, optional=True),
        "download": _boolean,
        "normalize": lambda c, k: _choice(c, k, ("unit", "standard")),
        "timeout": lambda c, k: _number(c, k, lo=0),
    },
    "digits": {
        "train_size": lambda c, k: _integer(c, k, optional=True),
        "test_size": lambda c, k: _integer(c, k),
        "normalize": lambda c, k: _choice(c, k, ("unit", "standard")),
    },
}


def dataset_options(cfg: DictConfig) -> dict[str, Any]:
    """The data set's own options from ``dataset.*`` (everything but ``name``)."""
    return {
        k: v for k, v in OmegaConf.to_container(cfg.dataset, resolve=True).items() if k != "name"
    }


def validate(cfg: DictConfig) -> None:
    """Check every value a run uses; raise :class:`ConfigError` on the first bad one.

    Also resolves ``auto`` values (see :func:`resolve_auto`), so that what is
    logged is what is run.
    """
    _integer(cfg, "seed", lo=0)
    name = _choice(cfg, "dataset.name", DATASETS)
    checks = DATASET_OPTIONS[name]
    for key in cfg.dataset:
        if key == "name":
            continue
        if key not in checks:
            valid = ", ".join(checks) or "none"
            _fail(
                f"dataset.{key}",
                f"is not an option of dataset {name!r} (options: {valid})",
                cfg.dataset[key],
            )
        checks[key](cfg, f"dataset.{key}")

    _choice(cfg, "optimizer.variant", VARIANTS)
    _number(cfg, "optimizer.lr", lo=0)
    _integer(cfg, "optimizer.batch_size")
    update = _choice(cfg, "optimizer.update", UPDATES)
    if update in ("momentum", "nesterov"):
        _number(cfg, "optimizer.momentum", lo=0, hi=1, lo_open=False, hi_open=True)
    if update == "adam":
        _number(cfg, "optimizer.beta1", lo=0, hi=1, lo_open=False, hi_open=True)
        _number(cfg, "optimizer.beta2", lo=0, hi=1, lo_open=False, hi_open=True)
        _number(cfg, "optimizer.epsilon", lo=0)
    schedule = _choice(cfg, "optimizer.schedule", SCHEDULES)
    if schedule in ("step", "exponential"):
        _number(cfg, "optimizer.gamma", lo=0, hi=1)
    if schedule == "step":
        _integer(cfg, "optimizer.step_size")
    if schedule == "inverse_time":
        _number(cfg, "optimizer.decay", lo=0, lo_open=False)

    _integer(cfg, "model.hidden_size")
    _integer(cfg, "model.depth", lo=0)
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
    _choice(cfg, "model.activation", HIDDEN_ACTIVATIONS)
    _choice(cfg, "model.output", (*OUTPUT_ACTIVATIONS, "auto"))
    _choice(cfg, "model.init", tuple(INITIALISERS))
    _choice(cfg, "model.bias_init", tuple(BIAS_INITIALISERS))
    _boolean(cfg, "model.bias")
    _number(cfg, "model.leaky_slope", lo=0, hi=1, hi_open=True)
    _choice(cfg, "model.dtype", ("float32", "float64"))

    _integer(cfg, "trainer.epochs")
    _choice(cfg, "trainer.loss", (*LOSSES, "auto"))
    _number(cfg, "trainer.loss_threshold", lo=0, optional=True)
    _choice(cfg, "trainer.train_eval", TRAIN_EVAL)
    progress = _get(cfg, "trainer.progress")
    if progress not in (True, False, "auto"):
        _fail("trainer.progress", "must be true, false or auto", progress)
    _number(cfg, "trainer.progress_every", lo=0)

    _string(cfg, "tracking.uri", optional=True)
    _string(cfg, "tracking.experiment")
    _integer(cfg, "tracking.max_points", lo=2, optional=True)
    _boolean(cfg, "tracking.log_weights")
    _boolean(cfg, "tracking.log_figure")

    resolve_auto(cfg)
    try:
        get_loss(cfg.trainer.loss, cfg.model.output)
    except ValueError as exc:
        raise ConfigError(f"config error: trainer.loss / model.output: {exc}") from None
