"""scikit-learn's 8x8 handwritten digits: real data that works offline anywhere."""

from __future__ import annotations

import numpy as np

from bpexp.data.base import (
    Dataset,
    check_normalize,
    check_size,
    classification_dataset,
    stratified_indices,
)


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
    check_normalize(normalize)
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
    return classification_dataset(
        "digits",
        X_train,
        labels[train_idx],
        X_val,
        labels[test_idx],
        n_classes=10,
        dtype=dtype,
        normalize=normalize,
        source="sklearn.datasets.load_digits (UCI optical recognition of digits, 8x8)",
        validation="a stratified held-out part of the 1,797 samples",
    )
