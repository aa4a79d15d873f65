"""Training by gradient descent: the three variants, epochs and the history.

An epoch is one pass over the training set whatever the variant:

- ``bgd``: one update per epoch, from the gradient over all ``n`` samples;
- ``sgd``: ``n`` updates per epoch, one sample each, in a fresh random order;
- ``mbgd``: ``ceil(n / batch_size)`` updates per epoch over a fresh random
  order, the last (short) batch kept.

What a record's ``train_loss`` means is set by ``train_eval``:

- ``"full"`` (default): the loss over the whole training set with the weights
  at the end of the epoch.  It is the same quantity for every variant, which is
  what makes their curves comparable.  For bgd it costs nothing extra (the
  forward pass that evaluates epoch ``e`` is the one epoch ``e + 1`` learns
  from); for sgd and mbgd it costs one forward pass over the training set.
- ``"running"``: the mean over the epoch's samples of the loss each sample had
  when its batch was used, i.e. before that batch's update.  Free, and what
  scikit-learn and most frameworks report; it lags the weights.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from bpexp.core.activations import softmax_lse
from bpexp.core.losses import Loss, check_targets
from bpexp.core.network import MLP, Buffers, match_labels, n_correct
from bpexp.core.optim import make_schedule, make_update

VARIANTS = ("bgd", "sgd", "mbgd")
TRAIN_EVAL = ("full", "running")
#: rows per chunk when evaluating a large set, to bound the evaluation buffers
EVAL_CHUNK = 8192


@dataclass
class History:
    """What :func:`fit` returns.

    Attributes
    ----------
    records : list of dict
        One per epoch (``epoch`` = 1, 2, ...), with keys ``epoch``,
        ``train_loss``, ``train_accuracy``, ``val_loss`` and ``val_accuracy``
        (with validation data), ``grad_norm`` (L2 norm over all parameters of the
        gradient of the epoch's last update), ``updates`` and ``samples``
        (cumulative), ``seconds`` (cumulative time spent training, evaluation
        excluded) and ``lr`` (the epoch's learning rate).
    initial : dict
        The same measures before the first update, as epoch 0.
    converged : bool
        The training loss reached ``loss_threshold`` (False without a threshold).
    diverged : bool
        The training loss became NaN or infinite; training stopped there.
    stop_reason : str
        ``"epochs"`` (budget used up), ``"threshold"``, ``"diverged"`` or
        ``"callback"``.
    """

    records: list[dict] = field(default_factory=list)
    initial: dict = field(default_factory=dict)
    converged: bool = False
    diverged: bool = False
    stop_reason: str = "epochs"
    loss_threshold: float | None = None
    train_eval: str = "full"

    def column(self, key: str, initial: bool = False) -> np.ndarray:
        """One measure over the epochs as an array (prefixed by epoch 0 if ``initial``)."""
        recs = ([self.initial] if initial else []) + self.records
        return np.array([r.get(key, np.nan) for r in recs], dtype=float)

    @property
    def final_loss(self) -> float:
        """The training loss of the last epoch run."""
        return self.records[-1]["train_loss"] if self.records else self.initial["train_loss"]

    @property
    def best_loss(self) -> float:
        """The lowest finite training loss seen (the initial one included)."""
        losses = self.column("train_loss", initial=True)
        finite = losses[np.isfinite(losses)]
        return float(finite.min()) if finite.size else math.nan

    @property
    def epochs_to_threshold(self) -> int | None:
        """The first epoch whose training loss is at or below the threshold."""
        if self.loss_threshold is None:
            return None
        for r in self.records:
            if r["train_loss"] <= self.loss_threshold:
                return r["epoch"]
        return None


def _require(cond: bool, message: str) -> None:
    if not cond:
        raise ValueError(message)


def _is_int(x) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, bool)


def _is_number(x) -> bool:
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool)


class _Evaluator:
    """Loss and accuracy of the network on a fixed set, in bounded chunks."""

    def __init__(self, net: MLP, X: np.ndarray, Y: np.ndarray, loss: Loss) -> None:
        n = X.shape[0]
        self.loss, self.n = loss, n
        self.labels = match_labels(Y)
        size = min(n, EVAL_CHUNK)
        bufs = {size: Buffers(net, size)}
        if n % size:
            bufs[n % size] = Buffers(net, n % size)
        self.chunks = [
            (X[i : i + size], Y[i : i + size], self.labels[i : i + size], bufs[min(size, n - i)])
            for i in range(0, n, size)
        ]

    def __call__(self) -> tuple[float, float]:
        total, correct = 0.0, 0
        for X, Y, labels, buf in self.chunks:
            buf.forward(X)
            total += self.loss.value(buf.Z_out, buf.A_out, Y, buf.lse) * X.shape[0]
            correct += n_correct(buf.A_out, labels)
        return total / self.n, correct / self.n


def fit(
    net: MLP,
    X: np.ndarray,
    Y: np.ndarray,
    *,
    variant: str = "bgd",
    lr: float = 0.1,
    batch_size: int = 32,
    epochs: int = 100,
    loss: str = "mse",
    update: str = "plain",
    seed: int = 0,
    X_val: np.ndarray | None = None,
    Y_val: np.ndarray | None = None,
    loss_threshold: float | None = None,
    callback: Callable[[dict], bool | None] | None = None,
    momentum: float = 0.9,
    beta1: float = 0.9,
    beta2: float = 0.999,
    epsilon: float = 1e-8,
    schedule: str = "constant",
    gamma: float = 0.5,
    step_size: int = 10,
    decay: float = 0.01,
    train_eval: str = "full",
    rng: np.random.Generator | None = None,
) -> History:
    """Train ``net`` in place by gradient descent and return its :class:`History`.

    Parameters
    ----------
    net : MLP
        Trained in place; its dtype is the dtype of every computation.
    X : ndarray of shape (n_samples, net.sizes[0])
    Y : ndarray of shape (n_samples, net.sizes[-1])
    variant : {"bgd", "sgd", "mbgd"}
        Batch, stochastic (one sample) or mini-batch gradient descent.
    lr : float
        Learning rate (> 0); the schedule's starting value.
    batch_size : int
        Samples per update for ``mbgd`` (clamped to ``n_samples``); ignored
        by ``bgd`` and ``sgd``.
    epochs : int
        The epoch budget (>= 1).
    loss : {"mse", "bce", "cross_entropy"}
    update : {"plain", "momentum", "nesterov", "adam"}
        The update rule; ``momentum`` for momentum / nesterov, ``beta1``,
        ``beta2`` and ``epsilon`` for adam.
    seed : int
        Seeds the shuffling generator (ignored if ``rng`` is given).
    X_val, Y_val : ndarray, optional
        A validation set, evaluated after every epoch.
    loss_threshold : float, optional
        Stop, converged, once the training loss is at or below it.
    callback : callable, optional
        ``callback(record)`` is called with the initial record (epoch 0) and
        then each epoch's record as it is made; returning True stops training.
    schedule : {"constant", "step", "exponential", "inverse_time"}
        Learning-rate schedule over epochs, with ``gamma``, ``step_size``,
        ``decay`` (see :func:`bpexp.core.optim.make_schedule`).
    train_eval : {"full", "running"}
        What ``train_loss`` and ``train_accuracy`` measure (module docstring).
    rng : numpy.random.Generator, optional
        The run's generator; when given it does the shuffling instead of ``seed``.

    Returns
    -------
    History
        A non-finite loss stops training and sets ``diverged``: it is a
        result, not an error.

    Raises
    ------
    ValueError
        For invalid names, values or data, before any training.
    """
    _require(variant in VARIANTS, f"unknown variant {variant!r}; valid: {', '.join(VARIANTS)}")
    _require(
        _is_number(lr) and math.isfinite(lr) and lr > 0, f"lr: must be a number > 0, got {lr!r}"
    )
    _require(
        _is_int(batch_size) and batch_size >= 1,
        f"batch_size: must be an integer >= 1, got {batch_size!r}",
    )
    _require(_is_int(epochs) and epochs >= 1, f"epochs: must be an integer >= 1, got {epochs!r}")
    _require(
        loss_threshold is None
        or (_is_number(loss_threshold) and math.isfinite(loss_threshold) and loss_threshold > 0),
        f"loss_threshold: must be a number > 0 or None, got {loss_threshold!r}",
    )
    _require(
        train_eval in TRAIN_EVAL,
        f"unknown train_eval {train_eval!r}; valid: {', '.join(TRAIN_EVAL)}",
    )
    _require((X_val is None) == (Y_val is None), "X_val and Y_val: give both or neither")
    lossfn = net.get_loss(loss)
    X, Y = net.check_inputs(X, Y)
    check_targets(lossfn, Y)
    validate = None
    if X_val is not None:
        X_val, Y_val = net.check_inputs(X_val, Y_val, what="X_val")
        check_targets(lossfn, Y_val, "Y_val")
        validate = _Evaluator(net, X_val, Y_val, lossfn)
    updater = make_update(
        update,
        net.weights + net.biases,
        momentum=momentum,
        beta1=beta1,
        beta2=beta2,
        epsilon=epsilon,
    )
    lr_at = make_schedule(schedule, float(lr), gamma=gamma, step_size=step_size, decay=decay)
    if rng is None:
        rng = np.random.default_rng(seed)

    n = X.shape[0]
    m = n if variant == "bgd" else 1 if variant == "sgd" else min(int(batch_size), n)
    trainer = _BatchTrainer(net, X, Y, m, lossfn, updater, rng, train_eval)
    history = History(loss_threshold=loss_threshold, train_eval=train_eval)

    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        initial = {"epoch": 0}
        initial["train_loss"], initial["train_accuracy"] = trainer.evaluate_initial()
        if validate is not None:
            initial["val_loss"], initial["val_accuracy"] = validate()
        initial.update(updates=0, samples=0, seconds=0.0)
        history.initial = initial
        if callback is not None and callback(initial):
            history.stop_reason = "callback"
            return history

        seconds = 0.0
        for epoch in range(1, epochs + 1):
            lr_e = float(lr_at(epoch - 1))
            t0 = time.perf_counter()
            train_loss, train_acc = trainer.epoch(lr_e)
            seconds += time.perf_counter() - t0
            record = {"epoch": epoch, "train_loss": train_loss, "train_accuracy": train_acc}
            if validate is not None:
                record["val_loss"], record["val_accuracy"] = validate()
            record.update(
                grad_norm=trainer.grad_norm(lr_e),
                updates=epoch * trainer.n_batches,
                samples=epoch * n,
                seconds=seconds,
                lr=lr_e,
            )
            history.records.append(record)
            if not math.isfinite(train_loss):
                history.diverged, history.stop_reason = True, "diverged"
            elif loss_threshold is not None and train_loss <= loss_threshold:
                history.converged, history.stop_reason = True, "threshold"
            if callback is not None and callback(record) and history.stop_reason == "epochs":
                history.stop_reason = "callback"
            if history.stop_reason != "epochs":
                break
    return history


class _BatchTrainer:
    """The epoch loop of one variant, over preallocated batches and buffers.

    bgd learns from ``X`` itself.  sgd and mbgd copy a fresh permutation of
    the training set into ``Xs``/``Ys`` once per epoch (one ``np.take`` each),
    so every batch is a fixed, contiguous view made once: the inner loop only
    runs the forward pass, the backward pass and the update.
    """

    def __init__(self, net, X, Y, m, lossfn, updater, rng, train_eval) -> None:
        n = X.shape[0]
        self.net, self.X, self.Y, self.n, self.m = net, X, Y, n, m
        self.loss, self.loss_delta = lossfn, lossfn.delta(net.output)
        self.updater, self.rng, self.train_eval = updater, rng, train_eval
        self.n_batches = -(-n // m)
        self.labels = match_labels(Y)
        self.bgd = m == n
        self.last_buf: Buffers
        if self.bgd:
            self.buf = self.last_buf = Buffers(net, n)
            self.XT = X.T
            self._prev = (math.nan, math.nan)
            return
        self.Xs, self.Ys = np.empty_like(X), np.empty_like(Y)
        bufs = {m: Buffers(net, m)}
        if n % m:
            bufs[n % m] = Buffers(net, n % m)
        self.running = train_eval == "running"
        self.Zs = np.empty((n, net.sizes[-1]), net.dtype) if self.running else None
        # The plain rule steps inside the backward pass (Buffers.backward_step),
        # except on the epoch's last batch, whose gradient grad_norm reports.
        fused = updater.folds_lr and all(b.fused for b in bufs.values())
        self.batches = []
        for i in range(0, n, m):
            xb, buf = self.Xs[i : i + m], bufs[min(m, n - i)]
            last = i + m >= n
            input_step = buf.bind_input(xb) if fused and not last else None
            zb = self.Zs[i : i + m] if self.running else None
            self.batches.append((xb, xb.T, self.Ys[i : i + m], zb, buf, input_step))
        self.last_buf = buf
        self.evaluate = _Evaluator(net, X, Y, lossfn)

    def _bgd_measures(self) -> tuple[float, float]:
        buf = self.buf
        return (
            self.loss.value(buf.Z_out, buf.A_out, self.Y, buf.lse),
            n_correct(buf.A_out, self.labels) / self.n,
        )

    def evaluate_initial(self) -> tuple[float, float]:
        if self.bgd:
            self.buf.forward(self.X)
            self._prev = self._bgd_measures()
            return self._prev
        return self.evaluate()

    def epoch(self, lr: float) -> tuple[float, float]:
        """Run one epoch at learning rate ``lr``; return its training loss and accuracy."""
        fold = lr if self.updater.folds_lr else 1.0
        step = self.updater.step
        if self.bgd:
            # The forward pass of the current weights is already in the buffers
            # (it evaluated the previous epoch).
            buf = self.buf
            buf.backward(self.XT, self.Y, self.loss_delta, fold / self.n)
            step(buf.grads, lr)
            buf.forward(self.X)
            before, self._prev = self._prev, self._bgd_measures()
            return before if self.train_eval == "running" else self._prev

        perm = self.rng.permutation(self.n)
        # mode="clip" (the indices are valid anyway) avoids the buffered copy
        # that np.take makes with out= in its default mode.
        np.take(self.X, perm, axis=0, out=self.Xs, mode="clip")
        np.take(self.Y, perm, axis=0, out=self.Ys, mode="clip")
        loss_delta = self.loss_delta
        for xb, xbT, yb, zb, buf, input_step in self.batches:
            buf.forward(xb)
            if zb is not None:
                np.copyto(zb, buf.Z_out)
            if input_step is not None:
                buf.backward_step(input_step, yb, loss_delta, lr / buf.m)
            else:
                buf.backward(xbT, yb, loss_delta, fold / buf.m)
                step(buf.grads, lr)
        if not self.running:
            return self.evaluate()
        As, lse = np.empty_like(self.Zs), None
        if self.net.output == "softmax":  # its log-sum-exp, so the loss does not redo it
            lse = softmax_lse(self.Zs, As)
        else:
            self.net._activations[self.net.output](self.Zs, As)
        return (
            self.loss.value(self.Zs, As, self.Ys, lse),
            n_correct(As, np.take(self.labels, perm, axis=0)) / self.n,
        )

    def grad_norm(self, lr: float) -> float:
        """L2 norm of the last update's gradient over all parameters."""
        sq = sum([np.vdot(g, g) for g in self.last_buf.grads])
        return math.sqrt(sq) / (lr if self.updater.folds_lr else 1.0)
