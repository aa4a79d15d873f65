"""The tutorials' toy data sets: XOR and the 3-feature set (../shared/SOURCES.md)."""

from __future__ import annotations

import numpy as np

from bpexp.data.base import Dataset, class_counts


def _toy(name: str, X: list, y: list, dtype: str, note: str) -> Dataset:
    X = np.array(X, dtype=dtype)
    labels = np.array(y)
    Y = labels.reshape(-1, 1).astype(dtype)
    return Dataset(
        name=name,
        X_train=X,
        y_train=Y,
        X_val=X.copy(),
        y_val=Y.copy(),
        n_classes=2,
        val_is_train=True,
        metadata={
            "n_train": len(X),
            "n_val": len(X),
            "n_features": X.shape[1],
            "class_counts_train": class_counts(labels, 2),
            "validation": "the training samples themselves (there is nothing to hold out)",
            "note": note,
        },
    )


def xor(dtype: str = "float64") -> Dataset:
    """XOR: 4 samples, 2 features, target 1 where exactly one input is 1."""
    return _toy(
        "xor",
        [[0, 0], [0, 1], [1, 0], [1, 1]],
        [0, 1, 1, 0],
        dtype,
        "the four XOR cases; not linearly separable",
    )


def toy3(dtype: str = "float64") -> Dataset:
    """The 3-feature tutorial set: 5 samples, the third feature a constant 1
    (it plays the role of a bias input), targets [0, 1, 1, 0, 0]."""
    return _toy(
        "toy3",
        [[0, 0, 1], [0, 1, 1], [1, 0, 1], [1, 1, 1], [0, 0, 1]],
        [0, 1, 1, 0, 0],
        dtype,
        "XOR of the first two features; the third is a constant 1 (a bias input); "
        "the first sample appears twice",
    )
