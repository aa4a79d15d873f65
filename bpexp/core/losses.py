"""Loss functions: a value and an output-layer delta, Nielsen-style cost objects.

All losses are averaged over the samples of the batch and summed over output
units.  With ``n`` samples, targets ``Y`` and outputs ``A = g(Z)`` (shape
``(n, n_out)``):

- ``mse``:           ``1/(2n) * sum ||a - y||^2``            (any output activation)
- ``bce``:           ``-1/n * sum [y log a + (1 - y) log(1 - a)]``  (sigmoid output)
- ``cross_entropy``: ``-1/n * sum y log a``                  (softmax output)

``value(Z, A, Y)`` returns the loss.  The two log losses are computed from the
logits ``Z`` (``softplus(z) - y z`` and ``logsumexp(z) - y . z``), so they never
take ``log 0`` however saturated the output.

``delta(output)`` returns ``fn(A, Y, out=None, scratch=None)`` that returns the
per-sample gradient ``dl/dz`` of the output layer (the caller divides it by
``n``), written into ``out`` when given, else into a new array; ``scratch``, shaped
like ``A``, saves a temporary.  Sigmoid + bce and softmax + cross_entropy use
the fused ``a - y``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from bpexp.core.activations import OUTPUT_ACTIVATIONS, row_max, row_sum

DeltaFn = Callable[..., np.ndarray]
Buffer = np.ndarray | None


def _fused_delta(
    A: np.ndarray, Y: np.ndarray, out: Buffer = None, scratch: Buffer = None
) -> np.ndarray:
    # dl/dz = a - y: the output activation's derivative cancels against the loss's
    return np.subtract(A, Y, out=out)


def _mse_sigmoid_delta(
    A: np.ndarray, Y: np.ndarray, out: Buffer = None, scratch: Buffer = None
) -> np.ndarray:
    # dl/dz = (a - y) * sigmoid'(z), with sigmoid'(z) = a (1 - a)
    out = np.subtract(A, Y, out=out)
    out *= A
    out *= np.subtract(1.0, A, out=scratch)
    return out


def _mse_softmax_delta(
    A: np.ndarray, Y: np.ndarray, out: Buffer = None, scratch: Buffer = None
) -> np.ndarray:
    # dl/dz_j = a_j * ((a_j - y_j) - sum_i (a_i - y_i) a_i): the softmax Jacobian.
    out = np.subtract(A, Y, out=out)
    out -= row_sum(np.multiply(out, A, out=scratch))
    out *= A
    return out


class Loss:
    """A loss: its name, the output activations it fits, its value and its delta."""

    name: str = ""
    outputs: tuple[str, ...] = ()

    def value(
        self, Z: np.ndarray, A: np.ndarray, Y: np.ndarray, lse: np.ndarray | None = None
    ) -> float:
        """Mean loss over the ``n`` rows of ``Z``, ``A`` and ``Y`` (all ``(n, n_out)``).

        ``lse``, the rows' log-sum-exp of ``Z`` (n, 1) when the softmax that made
        ``A`` returned it, saves the cross-entropy recomputing it.
        """
        raise NotImplementedError

    def delta(self, output: str) -> DeltaFn:
        """The output-layer delta function for the output activation ``output``."""
        raise NotImplementedError


class MSE(Loss):
    """Nielsen's quadratic cost, ``1/(2n) * sum ||a - y||^2``."""

    name = "mse"
    outputs = OUTPUT_ACTIVATIONS

    def value(self, Z: np.ndarray, A: np.ndarray, Y: np.ndarray, lse=None) -> float:
        diff = A - Y
        return 0.5 * float(np.vdot(diff, diff)) / A.shape[0]

    def delta(self, output: str) -> DeltaFn:
        return {"sigmoid": _mse_sigmoid_delta, "softmax": _mse_softmax_delta}.get(
            output, _fused_delta
        )


class BinaryCrossEntropy(Loss):
    """``-1/n * sum [y log a + (1 - y) log(1 - a)]`` for sigmoid outputs."""

    name = "bce"
    outputs = ("sigmoid",)

    def value(self, Z: np.ndarray, A: np.ndarray, Y: np.ndarray, lse=None) -> float:
        # -[y log s(z) + (1 - y) log(1 - s(z))] = softplus(z) - y z
        return float(np.logaddexp(0.0, Z).sum() - np.vdot(Y, Z)) / Z.shape[0]

    def delta(self, output: str) -> DeltaFn:
        return _fused_delta


class CrossEntropy(Loss):
    """``-1/n * sum y log a`` for softmax outputs (rows of ``Y`` sum to 1)."""

    name = "cross_entropy"
    outputs = ("softmax",)

    def value(self, Z: np.ndarray, A: np.ndarray, Y: np.ndarray, lse=None) -> float:
        # -sum_j y_j log softmax(z)_j = sum(y) * logsumexp(z) - y . z
        if lse is None:
            m = row_max(Z)
            lse = np.log(row_sum(np.exp(Z - m))) + m
        return float(np.vdot(row_sum(Y), lse) - np.vdot(Y, Z)) / Z.shape[0]

    def delta(self, output: str) -> DeltaFn:
        return _fused_delta


LOSSES: dict[str, Loss] = {
    loss.name: loss for loss in (MSE(), BinaryCrossEntropy(), CrossEntropy())
}


def get_loss(name: str, output: str) -> Loss:
    """Look up a loss by name and check that it fits the output activation.

    Raises
    ------
    ValueError
        For an unknown name, or a loss that does not fit ``output``.
    """
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; valid: {', '.join(LOSSES)}")
    loss = LOSSES[name]
    if output not in loss.outputs:
        raise ValueError(
            f"loss {name!r} does not fit the {output!r} output activation; "
            f"it needs output {' or '.join(repr(o) for o in loss.outputs)}"
        )
    return loss


def check_targets(loss: Loss, Y: np.ndarray, what: str = "Y") -> None:
    """Check that targets are in the loss's domain (one line, naming the problem).

    ``bce`` needs targets in [0, 1]; ``cross_entropy`` needs non-negative rows
    that sum to 1 (one-hot or probabilities), which is what makes the fused
    delta ``a - y`` exact.
    """
    if loss.name == "bce" and (Y.min() < 0 or Y.max() > 1):
        raise ValueError(f"{what}: the 'bce' loss needs targets in [0, 1]")
    if loss.name == "cross_entropy" and (
        Y.min() < 0 or not np.allclose(Y.sum(axis=1), 1.0, atol=1e-4)
    ):
        raise ValueError(
            f"{what}: the 'cross_entropy' loss needs one-hot (or probability) rows that sum to 1"
        )
