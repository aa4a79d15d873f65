"""scikit-learn's 8x8 handwritten digits: real data that works offline anywhere."""

from __future__ import annotations

import numpy as np

from bpexp.data.base import (
    Dataset,
    check_normalize,
    check_size,
    classification_dataset,
    indices_record,
    split_stratified,
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
    train_idx, test_idx = split_stratified(
        labels, train_size, test_size, rng, of="digits (scikit-learn's 8x8 set)"
    )
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
        train_indices=indices_record(train_idx, "all"),
        val_indices=indices_record(test_idx, "all"),
    )
