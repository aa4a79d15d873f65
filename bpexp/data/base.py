"""The Dataset container and the helpers every loader shares."""

from __future__ import annotations

import hashlib
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


def split_stratified(
    labels: np.ndarray,
    train_size: int | None,
    test_size: int,
    rng: np.random.Generator,
    of: str = "samples",
) -> tuple[np.ndarray, np.ndarray]:
    """Disjoint stratified training and held-out indices into ``labels``.

    The ``test_size`` held-out indices are drawn first, then ``train_size`` of
    the rest (all of the rest, shuffled, when ``train_size`` is None); both
    keep each class's share to within one sample.

    Raises
    ------
    ValueError
        In one line, when the two sizes do not fit in the ``len(labels)``
        samples (``of`` says which samples, for the message).
    """
    n = len(labels)
    if test_size >= n:
        raise ValueError(f"test_size: {test_size} leaves no training samples of the {n} {of}")
    if train_size is not None and train_size + test_size > n:
        raise ValueError(
            f"train_size: {train_size} is more than the {n - test_size} samples available "
            f"(the {n} {of} less test_size {test_size}); lower train_size or test_size"
        )
    test_idx = stratified_indices(labels, test_size, rng, "test_size")
    rest = np.setdiff1d(np.arange(n), test_idx)
    if train_size is None:
        return rng.permutation(rest), test_idx
    return rest[stratified_indices(labels[rest], train_size, rng, "train_size")], test_idx


#: how ``indices_record`` checksums an index set (stored beside it, so a reader can redo it)
INDEX_CHECKSUM = "sha256 of the indices as little-endian int64, in row order"


def indices_record(indices: np.ndarray, split: str) -> dict:
    """What to log about the rows drawn from ``split``: how many, and their checksum.

    Two runs with the same checksum trained (or validated) on the same rows in
    the same order; :data:`INDEX_CHECKSUM` says how to recompute it.
    """
    idx = np.asarray(indices, dtype="<i8")
    return {
        "split": split,
        "n": int(idx.size),
        "sha256": hashlib.sha256(idx.tobytes()).hexdigest(),
        "checksum": INDEX_CHECKSUM,
    }


def check_size(value, what: str) -> int | None:
    """``None`` or a positive integer, else a one-line ValueError naming ``what``."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{what}: must be a positive integer or null, got {value!r}")
    return int(value)


NORMALIZE = ("unit", "standard")


def classification_dataset(
    name: str,
    X_train: np.ndarray,
    l_train: np.ndarray,
    X_val: np.ndarray,
    l_val: np.ndarray,
    *,
    n_classes: int,
    dtype,
    normalize: str,
    **metadata,
) -> Dataset:
    """A Dataset from features scaled to [0, 1] and class labels.

    ``normalize="standard"`` centres and scales each feature by the training
    set's mean and standard deviation (constant features stay at 0).  The
    metadata records sizes and class counts next to ``metadata``.
    """
    if normalize == "standard":
        mean, std = X_train.mean(axis=0), X_train.std(axis=0)
        std[std == 0] = 1.0
        for X in (X_train, X_val):
            X -= mean
            X /= std
    return Dataset(
        name=name,
        X_train=X_train,
        y_train=encode_targets(l_train, n_classes, dtype),
        X_val=X_val,
        y_val=encode_targets(l_val, n_classes, dtype),
        n_classes=n_classes,
        metadata={
            "n_train": len(l_train),
            "n_val": len(l_val),
            "n_features": X_train.shape[1],
            "class_counts_train": class_counts(l_train, n_classes),
            "class_counts_val": class_counts(l_val, n_classes),
            "normalize": normalize,
            **metadata,
        },
    )


def check_normalize(normalize: str) -> None:
    if normalize not in NORMALIZE:
        raise ValueError(f"normalize: unknown {normalize!r}; valid: {', '.join(NORMALIZE)}")
