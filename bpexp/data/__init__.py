"""Data sets by name: ``load_dataset(name, seed=..., **options) -> Dataset``.

- ``xor``: the 4 XOR cases (validation = the same 4); no options.
- ``toy3``: the tutorial's 5 samples with 3 features (the third a constant 1); no options.
- ``mnist``: real MNIST from the IDX files, downloaded if missing; options
  ``root``, ``source`` (``auto``, ``train``, ``test_split``), ``train_size``,
  ``test_size``, ``download``, ``normalize``, ``mirrors``, ``timeout``.
- ``digits``: scikit-learn's 8x8 digits, offline; options ``train_size``,
  ``test_size``, ``normalize``.
"""

from __future__ import annotations

import inspect
import os

import numpy as np

from bpexp.core.constraints import Interval, Options, Table, check_options
from bpexp.data.base import NORMALIZE, Dataset
from bpexp.data.digits import load_digits
from bpexp.data.mnist import SOURCES as MNIST_SOURCES
from bpexp.data.mnist import MNISTError, load_mnist
from bpexp.data.toy import toy3, xor

#: (number of features, number of classes) of each data set, known before loading
SHAPES = {"xor": (2, 2), "toy3": (3, 2), "mnist": (784, 10), "digits": (64, 10)}

_SIZE = [Interval(int, 1), None]
#: each data set's options (as a run's ``dataset.*`` sets them) and their valid values
DATASET_OPTIONS: dict[str, Table] = {
    "xor": {},
    "toy3": {},
    "mnist": {
        "root": [str, os.PathLike, None],
        "source": [Options(tuple(MNIST_SOURCES))],
        "train_size": _SIZE,
        "test_size": _SIZE,
        "download": [bool],
        "normalize": [Options(NORMALIZE)],
        "timeout": [Interval(float, 0, None, "neither")],
    },
    "digits": {
        "train_size": _SIZE,
        "test_size": [Interval(int, 1)],
        "normalize": [Options(NORMALIZE)],
    },
}
DATASETS = tuple(DATASET_OPTIONS)
#: the data sets whose samples are the same whatever the seed (they draw nothing;
#: the others draw their subsets from the run's generator)
FIXED = ("xor", "toy3")

__all__ = [
    "DATASETS",
    "DATASET_OPTIONS",
    "FIXED",
    "MNIST_SOURCES",
    "SHAPES",
    "Dataset",
    "MNISTError",
    "load_dataset",
]


def load_dataset(
    name: str,
    *,
    seed: int = 0,
    rng: np.random.Generator | None = None,
    dtype: str = "float64",
    **options,
) -> Dataset:
    """Load the data set ``name`` (see the table above).

    Parameters
    ----------
    name : {"xor", "toy3", "mnist", "digits"}
    seed : int
        Seeds the subset draws (ignored when ``rng``, the run's generator, is given).
    dtype : {"float32", "float64"}
        Of the feature and target arrays.
    **options
        The data set's own options.

    Raises
    ------
    ValueError
        An unknown name or option, or a bad option value, in one line.
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; valid: {', '.join(DATASETS)}")
    if str(np.dtype(dtype)) not in ("float32", "float64"):
        raise ValueError(f"dtype: must be float32 or float64, got {dtype!r}")
    if name in FIXED:
        if options:
            raise ValueError(f"dataset {name!r} takes no options; got {', '.join(sorted(options))}")
        return (xor if name == "xor" else toy3)(dtype=dtype)
    loader = load_mnist if name == "mnist" else load_digits
    valid = [p for p in inspect.signature(loader).parameters if p not in ("rng", "dtype")]
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ValueError(
            f"dataset {name!r}: unknown option {', '.join(unknown)}; valid: {', '.join(valid)}"
        )
    check_options(DATASET_OPTIONS[name], options)
    if rng is None:
        rng = np.random.default_rng(seed)
    return loader(rng=rng, dtype=dtype, **options)
