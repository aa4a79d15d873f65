"""Training by gradient descent: the three variants, epochs and the history.

An epoch is one pass over the training set whatever the variant:

- ``bgd``: one update per epoch, from the gradient over all ``n`` samples;
- ``sgd``: ``n`` updates per epoch, one sample each, in a fresh random order;
- ``mbgd``: ``ceil(n / batch_size)`` updates per epoch over a fresh random
  order, the last (short) batch kept.

Every update is :func:`update_mini_batch`: :meth:`MLP.forward`,
:meth:`MLP.backward` and the update rule's ``step``, as they are written.

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

import itertools
import json
import math
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bpexp.core.constraints import Interval, Options, Table, check_options
from bpexp.core.losses import LOSSES, Loss, check_targets
from bpexp.core.network import MLP, match_labels, n_correct, save_npz
from bpexp.core.optim import SCHEDULES, UPDATES, Update, make_schedule, make_update

VARIANTS = ("bgd", "sgd", "mbgd")
TRAIN_EVAL = ("full", "running")
#: :func:`fit`'s options and their valid values (the update rules' and the
#: schedules' own options: ``optim.UPDATE_OPTIONS``, ``optim.SCHEDULE_OPTIONS``)
FIT_OPTIONS: Table = {
    "variant": [Options(VARIANTS)],
    "lr": [Interval(float, 0, None, "neither")],
    "batch_size": [Interval(int, 1)],
    "epochs": [Interval(int, 1)],
    "loss": [Options(LOSSES)],
    "update": [Options(UPDATES)],
    "schedule": [Options(SCHEDULES)],
    "loss_threshold": [Interval(float, 0, None, "neither"), None],
    "divergence_factor": [Interval(float, 1, None, "neither"), None],
    "train_eval": [Options(TRAIN_EVAL)],
    "max_records": [Interval(int, 2), None],
    "checkpoint_every": [Interval(float, 0, None, "left")],
}
#: the default ``divergence_factor``: healthy runs measured stay below 2x their
#: initial loss (XOR's sgd at lr 10 peaks at 1.6x), diverging ones pass 1e5x
#: (MNIST and digits at lr 1e6) within a few epochs
DIVERGENCE_FACTOR = 1e3
#: arrays of the parameters' shape an update rule keeps between steps (velocity;
#: adam's two moments)
N_STATE = {"plain": 0, "momentum": 1, "nesterov": 1, "adam": 2}
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
        excluded) and ``lr`` (the epoch's learning rate); with
        ``fit(record_order=True)``, ``order`` too (see :func:`fit`).
    initial : dict
        The same measures before the first update, as epoch 0.
    converged : bool
        The training loss reached ``loss_threshold`` (False without a threshold).
    diverged : bool
        The training loss became NaN or infinite, or rose above
        ``divergence_factor`` times its initial value; training stopped there.
    stop_reason : str
        ``"epochs"`` (budget used up), ``"threshold"``, ``"diverged"`` or
        ``"callback"``.
    max_records : int or None
        Keep at most this many records in memory (None: every epoch's): evenly
        spaced epochs, every other one dropped each time one more would pass it,
        and the last epoch;  :attr:`best_loss` and :attr:`epochs_to_threshold` still
        count every epoch.  (A run's complete history is the callback's to keep:
        ``bpexp`` streams it to ``history.csv``.)
    """

    records: list[dict] = field(default_factory=list)
    initial: dict = field(default_factory=dict)
    converged: bool = False
    diverged: bool = False
    stop_reason: str = "epochs"
    loss_threshold: float | None = None
    train_eval: str = "full"
    max_records: int | None = None
    #: the lowest finite loss and the first epoch at the threshold among dropped records
    _dropped_best: float = field(default=math.inf, repr=False)
    _dropped_reached: int | None = field(default=None, repr=False)
    _stride: int = field(default=1, repr=False)

    def add(self, record: dict) -> None:
        """Append an epoch's record, thinning the records kept (see ``max_records``).

        The records kept are the epochs that are multiples of a stride, which
        doubles each time they would pass ``max_records``, and the newest epoch.
        """
        if self.records and self.records[-1]["epoch"] % self._stride:
            self._drop([self.records.pop()])  # kept only while it was the newest
        self.records.append(record)
        if self.max_records is not None and len(self.records) > self.max_records:
            self._stride *= 2
            keep = [r["epoch"] % self._stride == 0 for r in self.records[:-1]]
            self._drop([r for r, k in zip(self.records, keep) if not k])
            self.records = [*(r for r, k in zip(self.records, keep) if k), record]

    def _drop(self, records: list[dict]) -> None:
        for r in records:
            if math.isfinite(r["train_loss"]):
                self._dropped_best = min(self._dropped_best, r["train_loss"])
        reached = [e for e in (self._dropped_reached, self._first_reached(records)) if e]
        self._dropped_reached = min(reached, default=None)

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
        best = min(float(finite.min()) if finite.size else math.inf, self._dropped_best)
        return best if math.isfinite(best) else math.nan

    @property
    def epochs_to_threshold(self) -> int | None:
        """The first epoch whose training loss is at or below the threshold."""
        reached = [e for e in (self._dropped_reached, self._first_reached(self.records)) if e]
        return min(reached, default=None)

    def _first_reached(self, records: list[dict]) -> int | None:
        if self.loss_threshold is None:
            return None
        for r in records:
            if r["train_loss"] <= self.loss_threshold:
                return r["epoch"]
        return None


@dataclass
class Checkpoint:
    """Where training stood at the end of an epoch: all :func:`fit` needs to go on
    from there as if it had never stopped, bit for bit (``fit(resume=...)``).

    Attributes
    ----------
    epoch : int
        The last epoch trained.
    params : list of ndarray
        Copies of ``net.weights + net.biases`` at its end.
    update : dict of str to ndarray
        A copy of the update rule's state (:meth:`bpexp.core.optim.Update.state`).
    rng : dict
        The run generator's ``bit_generator.state``: the next epoch's permutation
        is drawn from it.
    seconds : float
        The training seconds up to its end (the records' ``seconds``).
    """

    epoch: int
    params: list[np.ndarray]
    update: dict[str, np.ndarray]
    rng: dict
    seconds: float

    @classmethod
    def take(
        cls, epoch: int, net: MLP, update: Update, rng: np.random.Generator, seconds: float
    ) -> Checkpoint:
        """A checkpoint of ``net``, its update rule and the generator after ``epoch``."""
        params = [p.copy() for p in net.weights + net.biases]
        state = {k: v.copy() for k, v in update.state().items()}
        return cls(epoch, params, state, rng.bit_generator.state, seconds)

    def save(self, path: str | os.PathLike) -> Path:
        """Write it to ``path`` (``.npz``, atomically, no pickle)."""
        arrays = {f"param{i}": p for i, p in enumerate(self.params)}
        arrays.update({f"update.{k}": v for k, v in self.update.items()})
        # the generator's state holds 128-bit integers: JSON keeps them exactly
        arrays.update(epoch=np.array(self.epoch), seconds=np.array(self.seconds),
                      rng=np.array(json.dumps(self.rng)))  # fmt: skip
        return save_npz(path, arrays)

    @classmethod
    def load(cls, path: str | os.PathLike) -> Checkpoint:
        """Read a checkpoint written by :meth:`save`."""
        with np.load(path, allow_pickle=False) as f:
            n = sum(1 for k in f.files if k.startswith("param"))
            state = [k for k in f.files if k.startswith("update.")]
            return cls(
                epoch=int(f["epoch"]),
                params=[f[f"param{i}"] for i in range(n)],
                update={k.removeprefix("update."): f[k] for k in state},
                rng=json.loads(str(f["rng"])),
                seconds=float(f["seconds"]),
            )


def divergence_limit(initial_loss: float, factor: float | None) -> float:
    """The training loss above which a run counts as diverged: ``factor`` times its
    initial loss (infinite without a factor or a positive finite initial loss, so
    that only a NaN or infinite loss counts then)."""
    if factor is None or not (0 < initial_loss < math.inf):
        return math.inf
    return factor * initial_loss


def training_bytes(
    sizes: list[int], dtype: str, n: int, variant: str, batch_size: int, update: str
) -> int:
    """An estimate of the memory :func:`fit` takes for a network of layer widths
    ``sizes`` on ``n`` samples, from the shapes alone (nothing is allocated).

    The parameters ``P = sum(s_l * s_{l+1} + s_{l+1})`` are held with their
    gradients and the update rule's state (``N_STATE``); passes over ``r`` rows
    hold ``Z``, ``A``, the deltas and the activation functions' temporaries, and
    bgd's next forward pass is made while its last is still held: about
    ``6 r sum(sizes[1:])`` numbers (within a factor 2 of what NumPy allocates),
    where ``r`` is ``n`` for bgd, else the larger of a batch and an evaluation
    chunk (``EVAL_CHUNK`` rows, at most ``n``).
    """
    params = sum(a * b + b for a, b in itertools.pairwise(sizes))
    batch = 1 if variant == "sgd" else batch_size
    rows = n if variant == "bgd" else max(min(batch, n), min(EVAL_CHUNK, n))
    numbers = params * (2 + N_STATE[update]) + 6 * rows * sum(sizes[1:])
    return numbers * np.dtype(dtype).itemsize


def _require(cond: bool, message: str) -> None:
    if not cond:
        raise ValueError(message)


def _is_int(x) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, bool)


def _is_number(x) -> bool:
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool)


def checked_data(
    net: MLP,
    loss: str,
    X: np.ndarray,
    Y: np.ndarray,
    X_val: np.ndarray | None = None,
    Y_val: np.ndarray | None = None,
) -> tuple:
    """The loss object for ``net``'s output and the training (and validation) arrays
    checked against ``net``'s shape and dtype and the loss's targets.

    Returns
    -------
    tuple
        ``(loss, X, Y, X_val, Y_val)``; the validation pair stays None when not given.
    """
    _require((X_val is None) == (Y_val is None), "X_val and Y_val: give both or neither")
    lossfn = net.get_loss(loss)
    X, Y = net.check_inputs(X, Y)
    check_targets(lossfn, Y)
    if X_val is not None:
        X_val, Y_val = net.check_inputs(X_val, Y_val, what="X_val")
        check_targets(lossfn, Y_val, "Y_val")
    return lossfn, X, Y, X_val, Y_val


def update_mini_batch(
    net: MLP, X: np.ndarray, Y: np.ndarray, loss: Loss, update: Update, lr: float
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """One step of gradient descent on the batch ``(X, Y)``, as in Nielsen's network.py.

    Parameters
    ----------
    net : MLP
        Updated in place.
    X : ndarray of shape (m, net.sizes[0])
    Y : ndarray of shape (m, net.sizes[-1])
    loss : Loss
    update : Update
        The update rule over ``net.weights + net.biases``.
    lr : float

    Returns
    -------
    zs : list of ndarray
        The forward pass's weighted inputs, made with the weights before the step.
    grads : list of ndarray
        The gradients the step used, ``nabla_w + nabla_b``.
    """
    zs, activations = net.forward(X)
    nabla_w, nabla_b = net.backward(activations, Y, loss)
    update.step(nabla_w + nabla_b, lr)
    return zs, nabla_w + nabla_b


def _measures(
    loss: Loss, z_out: np.ndarray, out: np.ndarray, Y: np.ndarray, labels: np.ndarray
) -> tuple[float, float]:
    """Loss and accuracy of outputs ``out = g(z_out)`` against targets ``Y`` (and their labels)."""
    return loss.value(z_out, out, Y), n_correct(out, labels) / Y.shape[0]


def evaluate(
    net: MLP, X: np.ndarray, Y: np.ndarray, loss: Loss, labels: np.ndarray | None = None
) -> tuple[float, float]:
    """Loss and accuracy of ``net`` on ``(X, Y)``, in chunks of EVAL_CHUNK rows
    (to bound the memory a large set's forward pass takes)."""
    if labels is None:
        labels = match_labels(Y)
    n = X.shape[0]
    total = correct = 0.0
    for i in range(0, n, EVAL_CHUNK):
        rows = slice(i, i + EVAL_CHUNK)
        zs, activations = net.forward(X[rows])
        chunk_loss, chunk_accuracy = _measures(loss, zs[-1], activations[-1], Y[rows], labels[rows])
        size = activations[-1].shape[0]
        total += chunk_loss * size
        correct += chunk_accuracy * size
    return total / n, correct / n


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
    divergence_factor: float | None = DIVERGENCE_FACTOR,
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
    record_order: bool = False,
    max_records: int | None = None,
    checkpoint: Callable[[Checkpoint], None] | None = None,
    checkpoint_every: float = 1.0,
    resume: Checkpoint | None = None,
    resume_records: Iterable[dict] = (),
) -> History:
    """Train ``net`` in place by gradient descent and return its :class:`History`.

    Reproducibility: the only randomness in training is the order of the
    samples.  sgd and mbgd draw exactly one ``rng.permutation(n)`` per epoch,
    from the generator made from ``seed`` (or the ``rng`` given), and take their
    batches from it in turn: batch ``k`` is the samples ``order[k*m:(k+1)*m]``.
    bgd draws nothing.  Nothing else draws from the generator, and the global
    ``np.random`` state is never used; with the network's own initialisation
    (``MLP(seed=...)``, or the same ``rng`` passed to both, which then draws the
    initial parameters first) that is all the randomness of a run, so the
    same seeds give bit-identical weights and histories.

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
    divergence_factor : float, optional
        Stop, diverged, once the training loss exceeds ``divergence_factor``
        times the initial (epoch-0) training loss (> 1; None: only a NaN or
        infinite loss counts as divergence).
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
    record_order : bool
        Put the epoch's permutation in each record as ``order`` (an int array
        of the sample indices in the order they were used; None for bgd), so the
        run can be replayed without reading this code.
    max_records : int, optional
        Keep at most this many records in the history (see :class:`History`);
        the callback still sees every one.
    checkpoint : callable, optional
        ``checkpoint(Checkpoint)`` is called at the end of the first epoch and
        then of the first epoch ending at least ``checkpoint_every`` seconds after
        the last checkpoint (a run stopped between two can go on from the last).
    resume : Checkpoint, optional
        Go on from this checkpoint of a run of the same network, data, options
        and generator seed, stopped after ``resume.epoch``: its parameters,
        update state and generator are taken, training continues at the next
        epoch, and the result is the uninterrupted run's.  ``net`` must have the
        checkpoint's shapes (its own parameters are replaced).
    resume_records : iterable of dict
        With ``resume``: that run's records of epochs ``0`` to ``resume.epoch``, in
        order (read back from its history), taken into the returned History as
        they were.  The callback sees only the epochs trained now.

    Returns
    -------
    History
        A non-finite loss, or one above ``divergence_factor`` times the
        initial loss, stops training and sets ``diverged``: it is a result,
        not an error.

    Raises
    ------
    ValueError
        For invalid names, values or data, before any training.
    """
    check_options(
        FIT_OPTIONS,
        {
            "variant": variant,
            "lr": lr,
            "batch_size": batch_size,
            "epochs": epochs,
            "loss_threshold": loss_threshold,
            "divergence_factor": divergence_factor,
            "train_eval": train_eval,
            "max_records": max_records,
            "checkpoint_every": checkpoint_every,
        },
    )
    lossfn, X, Y, X_val, Y_val = checked_data(net, loss, X, Y, X_val, Y_val)
    if X_val is not None:
        labels_val = match_labels(Y_val)
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
    labels = match_labels(Y)
    running = train_eval == "running"
    history = History(loss_threshold=loss_threshold, train_eval=train_eval, max_records=max_records)
    if resume is not None:
        _restore(resume, net, updater, rng)

    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        if variant == "bgd":
            # bgd's forward pass of the current weights, kept: it measures them
            # and is the one the next epoch learns from.
            zs, activations = net.forward(X)
            measured = _measures(lossfn, zs[-1], activations[-1], Y, labels)
        if resume is None:
            initial: dict = {"epoch": 0}
            if variant != "bgd":
                measured = evaluate(net, X, Y, lossfn, labels)
            initial["train_loss"], initial["train_accuracy"] = measured
            if X_val is not None:
                initial["val_loss"], initial["val_accuracy"] = evaluate(
                    net, X_val, Y_val, lossfn, labels_val
                )
            initial.update(updates=0, samples=0, seconds=0.0)
            history.initial = initial
            if callback is not None and callback(initial):
                history.stop_reason = "callback"
                return history
            first, seconds = 1, 0.0
        else:
            _take_records(history, resume_records, resume.epoch)
            first, seconds = resume.epoch + 1, resume.seconds
        loss_limit = divergence_limit(history.initial["train_loss"], divergence_factor)

        due = -math.inf  # the next checkpoint's time: the first epoch's end
        for epoch in range(first, epochs + 1):
            lr_e = float(lr_at(epoch - 1))
            order = None
            if variant == "bgd":
                t0 = time.perf_counter()
                nabla_w, nabla_b = net.backward(activations, Y, lossfn)
                grads = nabla_w + nabla_b
                updater.step(grads, lr_e)
                zs, activations = net.forward(X)
                seconds += time.perf_counter() - t0
                before = measured  # the loss before this epoch's update
                measured = _measures(lossfn, zs[-1], activations[-1], Y, labels)
                train = before if running else measured
            else:
                t0 = time.perf_counter()
                order = rng.permutation(n)
                # running: each batch's output logits, before its update
                z_seen = np.empty((n, net.sizes[-1]), net.dtype) if running else None
                for i in range(0, n, m):
                    batch = order[i : i + m]
                    zs, grads = update_mini_batch(net, X[batch], Y[batch], lossfn, updater, lr_e)
                    if z_seen is not None:
                        z_seen[i : i + m] = zs[-1]
                seconds += time.perf_counter() - t0
                if z_seen is not None:
                    out = net._activations[net.output](z_seen)
                    train = _measures(lossfn, z_seen, out, Y[order], labels[order])
                else:
                    train = evaluate(net, X, Y, lossfn, labels)
            train_loss = train[0]
            record = {"epoch": epoch, "train_loss": train_loss, "train_accuracy": train[1]}
            if X_val is not None:
                record["val_loss"], record["val_accuracy"] = evaluate(
                    net, X_val, Y_val, lossfn, labels_val
                )
            record.update(
                grad_norm=math.sqrt(sum([float(np.vdot(g, g)) for g in grads])),
                updates=epoch * -(-n // m),
                samples=epoch * n,
                seconds=seconds,
                lr=lr_e,
            )
            if record_order:
                record["order"] = order
            history.add(record)
            if not math.isfinite(train_loss) or train_loss > loss_limit:
                history.diverged, history.stop_reason = True, "diverged"
            elif loss_threshold is not None and train_loss <= loss_threshold:
                history.converged, history.stop_reason = True, "threshold"
            if callback is not None and callback(record) and history.stop_reason == "epochs":
                history.stop_reason = "callback"
            if history.stop_reason != "epochs":
                break
            if checkpoint is not None and time.monotonic() >= due:
                checkpoint(Checkpoint.take(epoch, net, updater, rng, seconds))
                due = time.monotonic() + checkpoint_every
    return history


def _restore(resume: Checkpoint, net: MLP, update: Update, rng: np.random.Generator) -> None:
    """Put ``net``, its update rule and the generator where ``resume`` left them."""
    params = net.weights + net.biases
    shapes = [p.shape for p in resume.params]
    _require(
        shapes == [p.shape for p in params],
        f"resume: the checkpoint's parameters have shapes {shapes}, "
        f"the network's {[p.shape for p in params]}",
    )
    for p, saved in zip(params, resume.params):
        p[...] = saved
    update.set_state(resume.update)
    rng.bit_generator.state = resume.rng


def _take_records(history: History, records: Iterable[dict], last: int) -> None:
    """Take a resumed run's records of epochs 0 to ``last`` into ``history``, as
    :func:`fit` took them when it trained those epochs."""
    epoch = -1
    for record in records:
        if record["epoch"] != epoch + 1:
            break
        epoch += 1
        if epoch == 0:
            history.initial = record
        else:
            history.add(record)
        if epoch == last:
            return
    raise ValueError(
        f"resume_records: the records of epochs 0 to {last} are needed in order, "
        f"{'none were' if epoch < 0 else f'they stop at epoch {epoch}'} given"
    )
