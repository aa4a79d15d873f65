"""Weight initialisations: ``INITIALISERS[name](rng, fan_in, fan_out, dtype) -> W``.

``W`` has shape ``(fan_in, fan_out)`` so that ``Z = X @ W + b``.  Biases always
start at zero.  The generator is passed in: nothing here touches ``np.random``.
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
