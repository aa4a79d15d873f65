"""Initialisations of the weights and of the biases.

``INITIALISERS[name](rng, fan_in, fan_out, dtype) -> W`` draws a weight matrix of
shape ``(fan_in, fan_out)``, so that ``Z = X @ W + b``;
``BIAS_INITIALISERS[name](rng, n, dtype) -> b`` a bias vector of shape ``(n,)``.
The generator is passed in: nothing here touches ``np.random``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Initialiser = Callable[[np.random.Generator, int, int, np.dtype], np.ndarray]


def _uniform(limit: Callable[[int, int], float]) -> Initialiser:
    def init(rng: np.random.Generator, fan_in: int, fan_out: int, dtype: np.dtype) -> np.ndarray:
        a = limit(fan_in, fan_out)
        return rng.uniform(-a, a, size=(fan_in, fan_out)).astype(dtype, copy=False)

    return init


def _normal(std: Callable[[int, int], float]) -> Initialiser:
    def init(rng: np.random.Generator, fan_in: int, fan_out: int, dtype: np.dtype) -> np.ndarray:
        s = std(fan_in, fan_out)
        return (s * rng.standard_normal(size=(fan_in, fan_out))).astype(dtype, copy=False)

    return init


INITIALISERS: dict[str, Initialiser] = {
    # U(-1, 1): the tutorials' choice (``2 * rand - 1``).
    "uniform": _uniform(lambda fi, fo: 1.0),
    # N(0, 1).
    "normal": _normal(lambda fi, fo: 1.0),
    # Glorot & Bengio (2010): variance 2 / (fan_in + fan_out).
    "xavier_uniform": _uniform(lambda fi, fo: np.sqrt(6.0 / (fi + fo))),
    "xavier_normal": _normal(lambda fi, fo: np.sqrt(2.0 / (fi + fo))),
    # He et al. (2015): variance 2 / fan_in, for ReLU layers.
    "he_uniform": _uniform(lambda fi, fo: np.sqrt(6.0 / fi)),
    "he_normal": _normal(lambda fi, fo: np.sqrt(2.0 / fi)),
    # LeCun: variance 1 / fan_in, Nielsen's "improved" initialisation.
    "lecun_normal": _normal(lambda fi, fo: np.sqrt(1.0 / fi)),
}


BiasInitialiser = Callable[[np.random.Generator, int, np.dtype], np.ndarray]

BIAS_INITIALISERS: dict[str, BiasInitialiser] = {
    # The default: every unit starts from the same offset, and no draw is made.
    "zeros": lambda rng, n, dtype: np.zeros(n, dtype=dtype),
    # N(0, 1), as Nielsen's network.py and network2.py draw their biases.
    "normal": lambda rng, n, dtype: rng.standard_normal(n).astype(dtype, copy=False),
}
