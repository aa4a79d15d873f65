"""The Dataset container and the helpers every loader shares."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Dataset:
    """A training set and its held-out evaluation set, samples as rows.

    Attributes
    ----------
    name : str
    X_train : ndarray of shape (n_train, n_features)
    y_train : ndarray of shape (n_train, n_outputs)
        One-hot rows for more than two classes; a single 0/1 column for two.
    X_val, y_val : ndarray
        The held-out evaluation set, same layout.
    n_classes : int
    metadata : dict
        JSON-able facts worth logging: sizes, class counts, sources and their
        checksums, notes.
    """

    name: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    n_classes: int
    metadata: dict = field(default_factory=dict)
    #: the validation set is the training set itself (nothing held out)
    val_is_train: bool = False

    @property
    def n_features(self) -> int:
        return self.X_train.shape[1]

    @property
    def n_outputs(self) -> int:
        return self.y_train.shape[1]


def encode_targets(labels: np.ndarray, n_classes: int, dtype) -> np.ndarray:
    """Class labels (n,) as targets: a 0/1 column for two classes, one-hot rows otherwise."""
    labels = np.asarray(labels, dtype=np.intp)
    if n_classes == 2:
        return labels.reshape(-1, 1).astype(dtype)
    return np.eye(n_classes, dtype=dtype)[labels]


def class_counts(labels: np.ndarray, n_classes: int) -> list[int]:
    return np.bincount(np.asarray(labels, dtype=np.intp), minlength=n_classes).tolist()


def stratified_indices(
    labels: np.ndarray, size: int, rng: np.random.Generator, what: str = "size"
) -> np.ndarray:
    """``size`` indices drawn without replacement, each class in proportion to its share.

    Class quotas follow the largest-remainder rule, so every class count is within
    1 of ``size * n_c / n``.  The result is shuffled (classes mixed).

    Raises
    ------
    ValueError
        If ``size`` is not an integer in ``[n_classes, len(labels)]``.
    """
    labels = np.asarray(labels)
    n = labels.shape[0]
    classes, counts = np.unique(labels, return_counts=True)
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)):
        raise ValueError(f"{what}: must be an integer, got {size!r}")
    if size > n:
        raise ValueError(f"{what}: {size} is more than the {n} samples available")
    if size < len(classes):
        raise ValueError(
            f"{what}: {size} is fewer than the {len(classes)} classes; need at least one each"
        )
    exact = size * counts / n
    quota = np.floor(exact).astype(int)
    # hand out the remaining places by largest remainder (ties: the larger class)
    order = np.lexsort((-counts, -(exact - quota)))
    quota[order[: size - quota.sum()]] += 1
    picked = [
        rng.choice(np.flatnonzero(labels == c), size=q, replace=False)
        for c, q in zip(classes, quota, strict=True)
    ]
    return rng.permutation(np.concatenate(picked))


def check_size(value, what: str) -> int | None:
    """``None`` or a positive integer, else a one-line ValueError naming ``what``."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{what}: must be a positive integer or null, got {value!r}")
    return int(value)
