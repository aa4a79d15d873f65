"""Gradient checking by central finite differences.

The independent oracle for backpropagation: every analytic gradient of
:meth:`MLP.loss_and_gradients` is compared with
``(C(w + eps) - C(w - eps)) / (2 eps)``, computed in float64 on a copy of the
network, entry by entry.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bpexp.core.network import MLP


@dataclass
class GradientCheck:
    """Result of :func:`check_gradients`.

    ``errors`` maps parameter names (``W0``, ``b0``, ...) to the relative error
    ``||analytic - numeric|| / (||analytic|| + ||numeric||)`` over the checked
    entries; ``max_error`` is the largest of them.
    """

    errors: dict[str, float]
    analytic: dict[str, np.ndarray]
    numeric: dict[str, np.ndarray]

    @property
    def max_error(self) -> float:
        return max(self.errors.values())

    def ok(self, tol: float = 1e-6) -> bool:
        return self.max_error < tol


def check_gradients(
    net: MLP,
    X: np.ndarray,
    Y: np.ndarray,
    loss: str = "mse",
    eps: float = 1e-6,
    max_entries: int | None = None,
    seed: int = 0,
) -> GradientCheck:
    """Compare backpropagated gradients with central finite differences.

    Parameters
    ----------
    net : MLP
        Not modified: the check runs on a float64 copy.
    X : ndarray of shape (n_samples, net.sizes[0])
    Y : ndarray of shape (n_samples, net.sizes[-1])
    loss : str
        Name of the loss.
    eps : float
        The finite-difference step.
    max_entries : int, optional
        Check at most this many entries per parameter array (drawn at random
        with ``seed``), for large networks.

    Returns
    -------
    GradientCheck
    """
    net64 = net.astype("float64")
    _, w_grads, b_grads = net64.loss_and_gradients(X, Y, loss)
    rng = np.random.default_rng(seed)
    params = {f"W{i}": (W, g) for i, (W, g) in enumerate(zip(net64.weights, w_grads))}
    params.update({f"b{i}": (b, g) for i, (b, g) in enumerate(zip(net64.biases, b_grads))})
    errors, analytic, numeric = {}, {}, {}
    for name, (p, g) in params.items():
        flat = p.reshape(-1)  # a view: perturbing it perturbs the network
        idx = np.arange(flat.size)
        if max_entries is not None and flat.size > max_entries:
            idx = rng.choice(flat.size, size=max_entries, replace=False)
        num = np.empty(idx.size)
        for k, i in enumerate(idx):
            orig = flat[i]
            flat[i] = orig + eps
            plus = net64.loss(X, Y, loss)
            flat[i] = orig - eps
            minus = net64.loss(X, Y, loss)
            flat[i] = orig
            num[k] = (plus - minus) / (2 * eps)
        ana = g.reshape(-1)[idx]
        denom = np.linalg.norm(ana) + np.linalg.norm(num)
        errors[name] = float(np.linalg.norm(ana - num) / denom) if denom > 0 else 0.0
        analytic[name], numeric[name] = ana, num
    return GradientCheck(errors, analytic, numeric)
