"""Activation functions and their derivatives, as small lookup tables.

Every function works on a 2-D array of shape ``(n_samples, n_units)`` (samples
are rows).  Derivatives are written from the activation's *output* ``A = g(Z)``,
never from ``Z``: that is the quantity the backward pass keeps, and it is the
mistake one of the tutorials makes (``s * (1 - s)`` applied to ``z``).

``ACTIVATIONS[name](Z, out=None)`` returns ``g(Z)``, written into ``out`` when it
is given (``out`` may be ``Z`` itself), else into a new array.
``DERIVATIVES[name](A, delta, scratch=None)`` multiplies ``delta`` in place by
``g'(Z)`` expressed through ``A`` and returns it; ``scratch``, a buffer shaped
like ``A``, saves a temporary when given.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

LEAKY_RELU_SLOPE = 0.01


def sigmoid(Z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Logistic sigmoid, ``1 / (1 + exp(-z))``, accurate in relative terms everywhere.

    With ``e = exp(-|z|)``, which never overflows, ``sigmoid(z) = 1 / (1 + e)`` for
    ``z >= 0`` and ``e / (1 + e)`` for ``z < 0``.  The second form keeps the tiny
    values of very negative ``z`` to full relative precision (``sigmoid(-700)`` is
    about ``1e-304``, not 0), which ``1 - sigmoid(-z)`` or ``(1 + tanh(z/2)) / 2``
    would round away; no ``z`` gives an overflow warning.
    """
    e = np.exp(-np.abs(Z))
    return np.divide(np.where(Z < 0, e, 1.0), 1.0 + e, out=out)


def tanh(Z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Hyperbolic tangent."""
    return np.tanh(Z, out=out)


def relu(Z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Rectified linear unit, ``max(z, 0)`` (NaN stays NaN, so divergence is seen)."""
    return np.maximum(Z, 0.0, out=out)


def make_leaky_relu(slope: float = LEAKY_RELU_SLOPE) -> Callable[..., np.ndarray]:
    """Leaky ReLU ``z if z > 0 else slope * z`` for ``0 < slope < 1``."""

    def leaky_relu(Z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        return np.maximum(Z, slope * Z, out=out)

    return leaky_relu


def identity(Z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Identity, ``g(z) = z``: ``Z`` itself when ``out`` is not given."""
    if out is None:
        return Z
    if out is not Z:
        np.copyto(out, Z)
    return out


def row_max(Z: np.ndarray) -> np.ndarray:
    """Row maxima of ``Z`` (m, k), shape (m, 1).

    NumPy's axis-1 reduction runs a short inner loop per row, which is slow for
    a tall set with few output units; there a loop over the ``k`` columns, each a
    long vectorised ``maximum``, is several times faster.
    """
    m, k = Z.shape
    if m < 256 or k > 32:
        return np.maximum.reduce(Z, axis=1, keepdims=True)
    out = Z[:, :1].copy()
    col = out[:, 0]
    for j in range(1, k):
        np.maximum(col, Z[:, j], out=col)
    return out


def row_sum(Z: np.ndarray) -> np.ndarray:
    """Row sums of ``Z`` (m, k), shape (m, 1), as a BLAS matrix-vector product
    (faster than ``Z.sum(axis=1)``, a short inner loop per row, for few columns)."""
    return np.dot(Z, np.ones(Z.shape[1], Z.dtype))[:, None]


def softmax(Z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Row-wise softmax; subtracts each row's maximum first, so it never overflows."""
    if out is None:
        out = np.empty_like(Z)
    softmax_parts(Z, out)
    return out


def softmax_parts(Z: np.ndarray, out: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`softmax` into ``out``, returning each row's maximum and its sum of
    ``exp(z - max)`` (both (m, 1)): the log-sum-exp is ``log(sum) + max``.

    The training loop needs only the softmax; the log-sum-exp, which the
    cross-entropy needs (``lse(z) - y . z``), is made from these parts when a
    loss is evaluated (see :func:`softmax_lse`).
    """
    top = row_max(Z)
    np.subtract(Z, top, out=out)
    np.exp(out, out=out)
    total = row_sum(out)
    out /= total
    return top, total


def softmax_lse(Z: np.ndarray, out: np.ndarray) -> np.ndarray:
    """:func:`softmax` into ``out``, returning each row's log-sum-exp (m, 1)."""
    top, total = softmax_parts(Z, out)
    return np.log(total, out=total) + top


def sigmoid_derivative(
    A: np.ndarray, delta: np.ndarray, scratch: np.ndarray | None = None
) -> np.ndarray:
    """``delta *= a * (1 - a)``."""
    delta *= A
    delta *= np.subtract(1.0, A, out=scratch)
    return delta


def tanh_derivative(
    A: np.ndarray, delta: np.ndarray, scratch: np.ndarray | None = None
) -> np.ndarray:
    """``delta *= 1 - a**2``."""
    scratch = np.square(A, out=scratch)
    delta *= np.subtract(1.0, scratch, out=scratch)
    return delta


def relu_derivative(
    A: np.ndarray, delta: np.ndarray, scratch: np.ndarray | None = None
) -> np.ndarray:
    """``delta *= (a > 0)``; the subgradient at 0 is taken as 0."""
    return np.multiply(delta, A > 0, out=delta)


def make_leaky_relu_derivative(
    slope: float = LEAKY_RELU_SLOPE,
) -> Callable[..., np.ndarray]:
    """``delta *= 1 if a > 0 else slope`` (``a > 0`` exactly when ``z > 0``)."""

    def leaky_relu_derivative(
        A: np.ndarray, delta: np.ndarray, scratch: np.ndarray | None = None
    ) -> np.ndarray:
        if scratch is None:
            scratch = np.empty_like(A)
        np.greater(A, 0, out=scratch)
        scratch *= 1.0 - slope
        scratch += slope
        delta *= scratch
        return delta

    return leaky_relu_derivative


def identity_derivative(
    A: np.ndarray, delta: np.ndarray, scratch: np.ndarray | None = None
) -> np.ndarray:
    """``g'(z) = 1``: nothing to do."""
    return delta


HIDDEN_ACTIVATIONS = ("sigmoid", "tanh", "relu", "leaky_relu", "identity")
OUTPUT_ACTIVATIONS = ("sigmoid", "softmax", "identity")


def activation_table(
    slope: float = LEAKY_RELU_SLOPE,
) -> tuple[dict[str, Callable], dict[str, Callable]]:
    """Return ``(ACTIVATIONS, DERIVATIVES)`` with the leaky ReLU bound to ``slope``.

    The softmax has no entry in ``DERIVATIVES``: it is only an output activation,
    whose delta the loss computes (see :mod:`bpexp.core.losses`).
    """
    activations = {
        "sigmoid": sigmoid,
        "tanh": tanh,
        "relu": relu,
        "leaky_relu": make_leaky_relu(slope),
        "identity": identity,
        "softmax": softmax,
    }
    derivatives = {
        "sigmoid": sigmoid_derivative,
        "tanh": tanh_derivative,
        "relu": relu_derivative,
        "leaky_relu": make_leaky_relu_derivative(slope),
        "identity": identity_derivative,
    }
    return activations, derivatives


ACTIVATIONS, DERIVATIVES = activation_table()
