"""Update rules and learning-rate schedules, applied on top of any variant.

An update rule owns the state it needs (velocities, moments) and changes the
parameters in place from their gradients; it never modifies the gradients.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from bpexp.core.constraints import Interval, Table, check_options


class Update:
    """Base class. ``params`` and ``grads`` are parallel lists of arrays."""

    name = ""

    def __init__(self, params: list[np.ndarray]) -> None:
        self.params = params

    def step(self, grads: list[np.ndarray], lr: float) -> None:
        raise NotImplementedError

    def state(self) -> dict[str, np.ndarray]:
        """What the rule carries from one step to the next (velocities, moments, the
        step count), as arrays by name; the arrays are the rule's own, not copies."""
        return {}

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        """Take ``state`` (from :meth:`state`) as the rule's own: it goes on as if it
        had made the steps that led to it."""
        for name, array in self.state().items():
            array[...] = state[name]


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

    def state(self) -> dict[str, np.ndarray]:
        return {f"velocity{i}": v for i, v in enumerate(self.velocity)}


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

    def state(self) -> dict[str, np.ndarray]:
        # t as an array: the bias corrections at step t + 1 depend on it
        return {
            **{f"m{i}": m for i, m in enumerate(self.m)},
            **{f"v{i}": v for i, v in enumerate(self.v)},
            "t": np.array(self.t),
        }

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        for i, (m, v) in enumerate(zip(self.m, self.v)):
            m[...], v[...] = state[f"m{i}"], state[f"v{i}"]
        self.t = int(state["t"])


#: each update rule and its own options: the rules' one vocabulary and ranges
UPDATE_OPTIONS: dict[str, Table] = {
    "plain": {},
    "momentum": {"momentum": [Interval(float, 0, 1, "left")]},
    "nesterov": {"momentum": [Interval(float, 0, 1, "left")]},
    "adam": {
        "beta1": [Interval(float, 0, 1, "left")],
        "beta2": [Interval(float, 0, 1, "left")],
        "epsilon": [Interval(float, 0, None, "neither")],
    },
}
UPDATES = tuple(UPDATE_OPTIONS)


def make_update(name: str, params: list[np.ndarray], **options: float) -> Update:
    """Build the update rule ``name`` over ``params``.

    Options (:data:`UPDATE_OPTIONS`): ``momentum`` (momentum, nesterov), ``beta1``,
    ``beta2``, ``epsilon`` (adam).  Options the rule does not take are ignored.
    """
    if name not in UPDATE_OPTIONS:
        raise ValueError(f"unknown update rule {name!r}; valid: {', '.join(UPDATES)}")
    kw = {k: v for k, v in options.items() if k in UPDATE_OPTIONS[name]}
    check_options(UPDATE_OPTIONS[name], kw)
    if name == "plain":
        return Plain(params)
    if name in ("momentum", "nesterov"):
        return Momentum(params, kw.get("momentum", 0.9), nesterov=name == "nesterov")
    return Adam(params, **kw)


#: each learning-rate schedule and its own options
SCHEDULE_OPTIONS: dict[str, Table] = {
    "constant": {},
    "step": {"gamma": [Interval(float, 0, 1, "right")], "step_size": [Interval(int, 1)]},
    "exponential": {"gamma": [Interval(float, 0, 1, "right")]},
    "inverse_time": {"decay": [Interval(float, 0, None, "left")]},
}
SCHEDULES = tuple(SCHEDULE_OPTIONS)


def make_schedule(
    name: str, lr: float, gamma: float = 0.5, step_size: int = 10, decay: float = 0.01
) -> Callable[[int], float]:
    """The learning rate as a function of the 0-based epoch index.

    - ``constant``: ``lr``
    - ``step``: ``lr * gamma ** (epoch // step_size)``
    - ``exponential``: ``lr * gamma ** epoch``
    - ``inverse_time``: ``lr / (1 + decay * epoch)``
    """
    if name not in SCHEDULE_OPTIONS:
        raise ValueError(f"unknown learning-rate schedule {name!r}; valid: {', '.join(SCHEDULES)}")
    given = {"gamma": gamma, "step_size": step_size, "decay": decay}
    check_options(SCHEDULE_OPTIONS[name], {k: given[k] for k in SCHEDULE_OPTIONS[name]})
    if name == "constant":
        return lambda epoch: lr
    if name == "step":
        return lambda epoch: lr * gamma ** (epoch // step_size)
    if name == "exponential":
        return lambda epoch: lr * gamma**epoch
    return lambda epoch: lr / (1.0 + decay * epoch)
