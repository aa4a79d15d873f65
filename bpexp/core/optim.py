"""Update rules and learning-rate schedules, applied on top of any variant.

An update rule owns the state it needs (velocities, moments) and changes the
parameters in place from their gradients; it never modifies the gradients.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np


class Update:
    """Base class. ``params`` and ``grads`` are parallel lists of arrays."""

    name = ""

    def __init__(self, params: list[np.ndarray]) -> None:
        self.params = params

    def step(self, grads: list[np.ndarray], lr: float) -> None:
        raise NotImplementedError


class Plain(Update):
    """Gradient descent: ``w -= lr * g`` for every parameter."""

    name = "plain"

    def step(self, grads: list[np.ndarray], lr: float) -> None:
        for w, g in zip(self.params, grads):
            w -= lr * g


class Momentum(Update):
    """Heavy ball: ``v = mu v - lr g``, ``w += v``; with ``nesterov`` the look-ahead
    form ``w += mu v - lr g`` (Sutskever et al. 2013, as in scikit-learn).

    The learning rate is inside the velocity: under a schedule, ``v`` keeps the
    past steps at the rates they were taken with (as scikit-learn does; PyTorch
    keeps ``v = mu v + g`` and multiplies by the current rate, which rescales them).
    """

    name = "momentum"

    def __init__(self, params: list[np.ndarray], momentum: float = 0.9, nesterov: bool = False):
        super().__init__(params)
        self.mu = float(momentum)
        self.nesterov = nesterov
        self.velocity = [np.zeros_like(p) for p in params]
        self.scratch = [np.empty_like(p) for p in params]

    def step(self, grads: list[np.ndarray], lr: float) -> None:
        for p, g, v, s in zip(self.params, grads, self.velocity, self.scratch):
            np.multiply(g, lr, out=s)
            v *= self.mu
            v -= s
            if self.nesterov:
                p -= s
                np.multiply(v, self.mu, out=s)
                p += s
            else:
                p += v


class Adam(Update):
    """Adam (Kingma & Ba 2015) with bias-corrected moment estimates.

    Both bias corrections are folded into the step size, as in the paper's
    section 2 and scikit-learn:
    ``w -= lr * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps)``.  PyTorch puts
    ``eps`` inside the correction, ``lr * m_hat / (sqrt(v_hat) + eps)``: the folded
    form is that one with ``eps / sqrt(1 - b2^t)`` for ``eps``, a larger epsilon
    over the first steps.
    """

    name = "adam"

    def __init__(
        self,
        params: list[np.ndarray],
        beta1: float = 0.9,
        beta2: float = 0.999,
        epsilon: float = 1e-8,
    ) -> None:
        super().__init__(params)
        self.beta1, self.beta2, self.epsilon = float(beta1), float(beta2), float(epsilon)
        self.t = 0
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]
        self.scratch = [np.empty_like(p) for p in params]

    def step(self, grads: list[np.ndarray], lr: float) -> None:
        self.t += 1
        b1, b2 = self.beta1, self.beta2
        # fold both bias corrections into the step size
        step = lr * math.sqrt(1.0 - b2**self.t) / (1.0 - b1**self.t)
        for p, g, m, v, s in zip(self.params, grads, self.m, self.v, self.scratch):
            m *= b1
            m += (1.0 - b1) * g
            v *= b2
            np.square(g, out=s)
            s *= 1.0 - b2
            v += s
            np.sqrt(v, out=s)
            s += self.epsilon
            np.divide(m, s, out=s)
            s *= step
            p -= s


UPDATES = ("plain", "momentum", "nesterov", "adam")


def make_update(name: str, params: list[np.ndarray], **options: float) -> Update:
    """Build the update rule ``name`` over ``params``.

    Options: ``momentum`` (momentum, nesterov), ``beta1``, ``beta2``,
    ``epsilon`` (adam).  Unused options are ignored.
    """
    if name == "plain":
        return Plain(params)
    if name in ("momentum", "nesterov"):
        mu = options.get("momentum", 0.9)
        if not 0.0 <= mu < 1.0:
            raise ValueError(f"momentum: must be in [0, 1), got {mu}")
        return Momentum(params, mu, nesterov=name == "nesterov")
    if name == "adam":
        kw = {k: options[k] for k in ("beta1", "beta2", "epsilon") if k in options}
        for k in ("beta1", "beta2"):
            if k in kw and not 0.0 <= kw[k] < 1.0:
                raise ValueError(f"{k}: must be in [0, 1), got {kw[k]}")
        return Adam(params, **kw)
    raise ValueError(f"unknown update rule {name!r}; valid: {', '.join(UPDATES)}")


SCHEDULES = ("constant", "step", "exponential", "inverse_time")


def make_schedule(
    name: str, lr: float, gamma: float = 0.5, step_size: int = 10, decay: float = 0.01
) -> Callable[[int], float]:
    """The learning rate as a function of the 0-based epoch index.

    - ``constant``: ``lr``
    - ``step``: ``lr * gamma ** (epoch // step_size)``
    - ``exponential``: ``lr * gamma ** epoch``
    - ``inverse_time``: ``lr / (1 + decay * epoch)``
    """
    if name == "constant":
        return lambda epoch: lr
    if name in ("step", "exponential") and not 0.0 < gamma <= 1.0:
        raise ValueError(f"gamma: must be in (0, 1], got {gamma}")
    if name == "step":
        if step_size < 1:
            raise ValueError(f"step_size: must be >= 1, got {step_size}")
        return lambda epoch: lr * gamma ** (epoch // step_size)
    if name == "exponential":
        return lambda epoch: lr * gamma**epoch
    if name == "inverse_time":
        if decay < 0:
            raise ValueError(f"decay: must be >= 0, got {decay}")
        return lambda epoch: lr / (1.0 + decay * epoch)
    raise ValueError(f"unknown learning-rate schedule {name!r}; valid: {', '.join(SCHEDULES)}")
