"""scikit-learn's 8x8 handwritten digits: real data that works offline anywhere."""

from __future__ import annotations

import numpy as np

from bpexp.data.base import Dataset, check_size, class_counts, encode_targets, stratified_indices

NORMALIZE = ("unit", "standard")


def load_digits(
    *,
    rng: np.random.Generator,
    train_size: int | None = None,
    test_size: int = 360,
    normalize: str = "unit",
    dtype: str = "float64",
) -> Dataset:
    """The 1,797 digits (64 features, 10 classes) split by class into train and test.

    ``test_size`` samples (stratified) are held out for validation; the training
    set is ``train_size`` of the rest (stratified), or all of it.  Pixels are
    scaled from 0..16 to [0, 1] (``unit``), or standardised by the training
    set's per-pixel statistics (``standard``).
    """
    try:
        from sklearn.datasets import load_digits as sk_load_digits
    except ImportError:  # pragma: no cover - scikit-learn comes with mlflow
        raise ValueError("dataset 'digits' needs scikit-learn: pip install scikit-learn") from None
    train_size = check_size(train_size, "train_size")
    test_size = check_size(test_size, "test_size")
    if normalize not in NORMALIZE:
        raise ValueError(f"normalize: unknown {normalize!r}; valid: {', '.join(NORMALIZE)}")
    bunch = sk_load_digits()
    X_all, labels = bunch.data, bunch.target
    if test_size >= len(labels):
        raise ValueError(f"test_size: {test_size} leaves no training samples of {len(labels)}")
    test_idx = stratified_indices(labels, test_size, rng, "test_size")
    rest = np.setdiff1d(np.arange(len(labels)), test_idx)
    if train_size is None:
        train_idx = rng.permutation(rest)
    else:
        train_idx = rest[stratified_indices(labels[rest], train_size, rng, "train_size")]
    X_train = X_all[train_idx].astype(dtype) / 16.0
    X_val = X_all[test_idx].astype(dtype) / 16.0
    if normalize == "standard":
        mean, std = X_train.mean(axis=0), X_train.std(axis=0)
        std[std == 0] = 1.0
        X_train, X_val = (X_train - mean) / std, (X_val - mean) / std
    l_train, l_val = labels[train_idx], labels[test_idx]
    return Dataset(
        name="digits",
        X_train=X_train,
        y_train=encode_targets(l_train, 10, dtype),
        X_val=X_val,
        y_val=encode_targets(l_val, 10, dtype),
        n_classes=10,
        metadata={
            "n_train": len(l_train),
            "n_val": len(l_val),
            "n_features": X_train.shape[1],
            "class_counts_train": class_counts(l_train, 10),
            "class_counts_val": class_counts(l_val, 10),
            "normalize": normalize,
            "source": "sklearn.datasets.load_digits (UCI optical recognition of digits, 8x8)",
            "validation": "a stratified held-out part of the 1,797 samples",
        },
    )
