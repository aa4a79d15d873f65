"""The fast engine: K networks of one shape trained at once, as one computation.

:func:`bpexp.core.fit` is the readable path, the backpropagation a student
follows next to the equations.  This module is the fast engine beside it, as
scikit-learn's ``_forward_pass_fast`` lives beside ``_forward_pass``: the same
arithmetic, with every network's parameters stacked on a leading axis::

    Z[l] = A[l-1] @ W[l] + b[l]     W[l]: (K, n_{l-1}, n_l), b[l]: (K, 1, n_l)
    A[l] = g(Z[l])                  A[l]: (K, m, n_l); A[0] = X (m, n_0) or (K, m, n_0)

``np.matmul`` broadcasts over the leading axis, so one call does the product of
all K networks.  For a small network every NumPy call costs about the same
whatever its size, so K networks cost little more than one: that is what a
sweep of seeds or learning rates gains.

Each network keeps what makes it itself: its initial weights, its learning rate
and update-rule constants, its loss threshold, its own generator (one
``rng.permutation(n)`` per epoch for sgd and mbgd, as :func:`fit` draws) and
its own stopping.  A network that stops (threshold reached, diverged, callback)
is written back into its :class:`~bpexp.core.network.MLP` and dropped from the
stack; the others go on.  K = 1 is the ordinary :func:`fit`.

All of a stack's parameters live in one array of shape (K, P), P the number of
parameters of one network; ``W[l]`` and ``b[l]`` are views into it, and so are
the gradients in a second (K, P) array.  The update rule is then a handful of
calls over (K, P) whatever the depth, and a network's gradient norm is one
row's norm.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence

import numpy as np

from bpexp.core.activations import activation_table
from bpexp.core.constraints import check_options, problem
from bpexp.core.network import MLP
from bpexp.core.optim import UPDATE_OPTIONS, UPDATES, make_schedule
from bpexp.core.training import (
    DIVERGENCE_FACTOR,
    FIT_OPTIONS,
    N_STATE,
    History,
    _is_int,
    _is_number,
    _require,
    checked_data,
    divergence_limit,
)

#: elements of one layer's activations for the K networks when evaluating a set
#: (rows are taken in chunks below it; 2**21 float64 is 16 MiB a layer)
EVAL_ELEMENTS = 2**21
#: a shared set's targets are repeated per network up to this many elements:
#: NumPy broadcasts over few output units at a cost per row, a repeated copy not
TILE_ELEMENTS = 2**16
#: epochs of measures held as arrays before they become History records
RECORD_BLOCK = 512
#: what the networks of a stack share: their shape (these attributes of MLP) and
#: these options of :func:`fit_many`; it takes every other option per network
STACK_SHAPE = ("sizes", "activation", "output", "dtype", "bias", "leaky_slope")
SHARED_OPTIONS = (
    "variant", "batch_size", "epochs", "loss", "update", "schedule", "train_eval", "X_val", "Y_val"
)  # fmt: skip


def _per_net(
    name: str, value, K: int, check: Callable[[object], bool] | list, valid: str = ""
) -> list:
    """``value`` (one for all, or a sequence of one per network) as a list of K values,
    each checked by ``check`` (a predicate, described by ``valid``, or the option's
    constraints from a table such as ``FIT_OPTIONS``); a bad one raises one line
    naming ``name`` (and the index)."""

    def bad(v) -> str | None:
        if isinstance(check, list):
            return problem(check, v)
        return None if check(v) else f"must be {valid}, got {v!r}"

    if isinstance(value, (list, tuple, np.ndarray)):
        values = list(np.asarray(value).tolist()) if isinstance(value, np.ndarray) else list(value)
        _require(
            len(values) == K,
            f"{name}: expected one value or a list of {K} (one per network), "
            f"got a list of {len(values)}",
        )
        for k, v in enumerate(values):
            message = bad(v)
            _require(message is None, f"{name}[{k}]: {message}")
        return values
    message = bad(value)
    _require(message is None, f"{name}: {message}")
    return [value] * K


def _check_stack(nets: Sequence[MLP]) -> None:
    _require(len(nets) >= 1, "nets: need at least one network")
    first = nets[0]
    for k, net in enumerate(nets):
        _require(isinstance(net, MLP), f"nets[{k}]: expected an MLP, got {type(net).__name__}")
        for attr in STACK_SHAPE:
            a, b = getattr(net, attr), getattr(first, attr)
            _require(
                a == b,
                f"nets[{k}]: {attr} {a!r} differs from nets[0]'s {b!r}; "
                "a stack trains networks of one shape",
            )
    seen: dict[int, int] = {}
    for k, net in enumerate(nets):
        _require(id(net) not in seen, f"nets[{k}]: the same network as nets[{seen.get(id(net))}]")
        seen[id(net)] = k


def _loss_sums(name: str, Z: np.ndarray, A: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """Each network's loss summed over its rows: shape (K,), for ``Z``, ``A`` (K, m, o)
    and targets ``Y`` (m, o) or (K, m, o).

    The formulas of :mod:`bpexp.core.losses` (there averaged over one network's
    rows), summed per network so that one call serves the whole stack: ``mse``
    ``1/2 ||a - y||^2``, ``bce`` ``softplus(z) - y z``, ``cross_entropy``
    ``sum(y) logsumexp(z) - y . z``.
    """
    K = Z.shape[0]
    flat = (K, -1)
    if name == "mse":
        diff = (A - Y).reshape(flat)
        return 0.5 * np.vecdot(diff, diff)
    Yf = np.broadcast_to(Y, Z.shape).reshape(flat)
    yz = np.vecdot(Yf, Z.reshape(flat))
    if name == "bce":
        return np.logaddexp(0.0, Z).reshape(flat).sum(axis=1) - yz
    top = Z.max(axis=2, keepdims=True)
    lse = np.log(np.exp(Z - top).sum(axis=2)) + top[..., 0]
    return np.vecdot(Y.sum(axis=-1), lse) - yz


def _carve(flats: list[np.ndarray], K: int, c: int, cols: list[int]) -> list[np.ndarray]:
    """Contiguous (K, c, w) arrays at the start of the flat buffers, for any ``c`` up
    to the rows they were made for: a short batch or chunk reuses the same memory."""
    return [f[: K * c * w].reshape(K, c, w) for f, w in zip(flats, cols, strict=True)]


def _split_flat(flat: np.ndarray, rows: int, cols: list[int]) -> list[np.ndarray]:
    """``flat`` cut into consecutive pieces of ``rows * w`` elements, one per ``w``."""
    ends = np.cumsum([rows * w for w in cols]).tolist()
    return [flat[a:b] for a, b in zip([0, *ends[:-1]], ends, strict=True)]


def _split_at(items: list, counts: list[int]) -> list[list]:
    """``items`` cut into consecutive groups of ``counts``, and the rest."""
    out, i = [], 0
    for c in counts:
        out.append(items[i : i + c])
        i += c
    return [*out, items[i:]]


def _labels(Y: np.ndarray) -> np.ndarray:
    """Targets (..., m, o) as what :func:`_n_correct` compares with: a boolean column
    for one output unit, class indices (..., m) otherwise (as ``fit`` counts)."""
    return Y > 0.5 if Y.shape[-1] == 1 else Y.argmax(axis=-1)


def _n_correct(A: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Correct predictions per network, shape (K,), for outputs ``A`` (K, m, o)."""
    pred = A > 0.5 if A.shape[2] == 1 else A.argmax(axis=2)
    # counted by a matrix-vector product over float64 hits (exact below 2**53):
    # NumPy's reduction of short boolean rows costs a call per row
    hits = np.empty(pred.shape)
    np.equal(pred, labels, out=hits)
    hits = hits.reshape(A.shape[0], -1)
    return np.dot(hits, np.ones(hits.shape[1]))


class _Stack:
    """The parameters, gradients, update state and buffers of the running networks.

    ``ids[j]`` is the index (in the caller's list) of the network in row ``j``.
    """

    def __init__(self, nets, X, Y, m, lossfn, update, consts, rngs, train_eval) -> None:
        net0 = nets[0]
        self.nets, self.sizes, self.dtype = nets, net0.sizes, net0.dtype
        self.L = len(self.sizes) - 1
        self.bias = net0.bias
        self.X, self.Y, self.n, self.m = X, Y, X.shape[0], m
        self.bgd = m == self.n
        self.n_batches = -(-self.n // m)
        self.lossname, self.loss_delta = lossfn.name, lossfn.delta(net0.output)
        acts, derivs = activation_table(net0.leaky_slope)
        self.act, self.deriv = acts[net0.activation], derivs[net0.activation]
        self.out_act = acts[net0.output]
        self.update, self.train_eval = update, train_eval
        self.rngs = rngs
        self.labels = _labels(Y)
        self.arange = np.arange(self.n)
        self._lr_seen = None
        self.t = 0  # adam's step count, the same for every network of the stack
        # (name, offset, shape) of each parameter in a row of the (K, P) arrays
        self.layout, off = [], 0
        for i, (a, b) in enumerate(zip(self.sizes[:-1], self.sizes[1:], strict=True)):
            self.layout.append(("W", i, off, (a, b)))
            off += a * b
        if self.bias:
            for i, b in enumerate(self.sizes[1:]):
                self.layout.append(("b", i, off, (1, b)))
                off += b
        self.P = off
        K = len(nets)
        self.ids = np.arange(K)
        self.params = np.empty((K, self.P), self.dtype)
        for k, net in enumerate(nets):
            for kind, i, o, _ in self.layout:
                src = net.weights[i] if kind == "W" else net.biases[i]
                self.params[k, o : o + src.size] = src.ravel()
        self.grads = np.zeros_like(self.params)
        self.scratch = np.empty_like(self.params)
        self.state = [np.zeros_like(self.params) for _ in range(N_STATE[update])]
        # per-network constants as (K, 1) columns of the network's dtype, so that
        # they multiply as fit's Python scalars do (converted to the dtype first)
        self.consts = {k: np.asarray(v, np.float64)[:, None] for k, v in consts.items()}
        # adam's betas when every network has the same (the usual case)
        self.betas = None
        if update == "adam" and len(set(zip(consts["beta1"], consts["beta2"]))) == 1:
            self.betas = (float(consts["beta1"][0]), float(consts["beta2"][0]))
        self._views()

    # ------------------------------------------------------------ the stack
    def _split(self, flat: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
        K = flat.shape[0]
        W, b = [], []
        for kind, _, o, shape in self.layout:
            v = flat[:, o : o + shape[0] * shape[1]].reshape(K, *shape)
            (W if kind == "W" else b).append(v)
        return W, b

    def _views(self) -> None:
        K, dt = self.params.shape[0], self.dtype
        self.K = K
        self.W, self.B = self._split(self.params)
        self.gW, self.gB = self._split(self.grads)
        self.WT = [w.swapaxes(1, 2) for w in self.W]
        self.col = {k: v.astype(dt) if k in _DTYPE_CONSTS else v for k, v in self.consts.items()}
        m, widths = self.m, self.sizes[1:]
        self.eval_bufs: dict[int, tuple] = {}
        self.eval_flat = np.empty(0, dt)
        self.tiles: dict = {}
        # each network's order for the epoch, one row each (see epoch)
        self.perm = np.empty((0 if self.bgd else K, self.n), np.int64)
        self.perm_rows = list(self.perm)
        # training buffers, for a batch and for the short last batch alike:
        # Z[l] (then g(Z[l]) in place for the hidden layers), the output, the
        # deltas, the scratch, and for sgd and mbgd the gathered batch
        L, o = self.L, widths[-1]
        cols = [*widths, o, *widths, *widths] + ([] if self.bgd else [self.sizes[0], o])
        self.train_flat = [np.empty(K * m * w, dt) for w in cols]
        self.Z, (self.A_out,), self.D, self.S, batch = _split_at(
            _carve(self.train_flat, K, m, cols), [L, 1, L, L]
        )
        self.ones = np.ones((1, m), dt)
        if self.bgd:
            self.Yk = np.ascontiguousarray(np.broadcast_to(self.Y, (K, *self.Y.shape)))
            self.XT = self.X.T
        else:
            self.Xb, self.Yb = batch
            if self.n % m:
                Z, (A,), D, S, (Xb, Yb) = _split_at(
                    _carve(self.train_flat, K, self.n % m, cols), [L, 1, L, L]
                )
                self.last = (Z, A, D, S, Xb, Yb)
            if self.train_eval == "running":
                self.Zs = np.empty((K, self.n, widths[-1]), dt)

    def keep(self, rows: np.ndarray) -> None:
        """Keep only the networks of ``rows`` (a boolean mask over the stack)."""
        Z, A_out = self.Z, self.A_out
        self.ids = self.ids[rows]
        self.params = self.params[rows]
        self.grads = self.grads[rows]
        self.scratch = self.scratch[rows]
        self.state = [s[rows] for s in self.state]
        self.consts = {k: v[rows] for k, v in self.consts.items()}
        self.rngs = [r for r, keep in zip(self.rngs, rows, strict=True) if keep]
        self._lr_seen = None
        self._views()
        if self.bgd:  # the forward pass of the current weights, which the next epoch uses
            for new, old in zip([*self.Z, self.A_out], [*Z, A_out], strict=True):
                new[...] = old[rows]
            self._prev = tuple(p[rows] for p in self._prev)

    def write_back(self, rows: np.ndarray) -> None:
        """Copy the parameters of the networks of ``rows`` (a mask) into their MLPs."""
        for j in np.flatnonzero(rows):
            net = self.nets[self.ids[j]]
            for w, src in zip(net.weights, self.W, strict=True):
                w[...] = src[j]
            for b, src in zip(net.biases, self.B, strict=True):
                b[...] = src[j, 0]

    def nbytes(self) -> dict[str, int]:
        """Bytes held by the stack: ``parameters``, ``gradients_and_scratch`` (the
        gradients and the update's scratch, each the size of the parameters),
        ``update_state`` (velocities, moments) and ``buffers`` (a training batch's
        activations, deltas, gathered inputs and the orders; for bgd the targets
        repeated per network; the evaluation chunks made so far)."""
        grads = self.params.nbytes * 2  # the gradients and the update's scratch
        buffers = [*self.train_flat, self.perm, self.eval_flat, *self.tiles.values()]
        if self.bgd:
            buffers.append(self.Yk)
        elif self.train_eval == "running":
            buffers.append(self.Zs)
        return {
            "parameters": self.params.nbytes,
            "gradients_and_scratch": grads,
            "update_state": sum(s.nbytes for s in self.state),
            "buffers": sum(b.nbytes for b in buffers),
        }

    # ------------------------------------------------------------- passes
    def forward(self, X: np.ndarray, Z: list[np.ndarray], A_out: np.ndarray) -> None:
        """Forward pass of ``X`` ((m, n_0) shared, or (K, m, n_0)) into ``Z`` and ``A_out``."""
        a = X
        for l, (z, w) in enumerate(zip(Z, self.W, strict=True)):
            np.matmul(a, w, out=z)
            if self.bias:
                np.add(z, self.B[l], out=z)
            if l < self.L - 1:
                self.act(z, z)
                a = z
        o = Z[-1].shape[2]
        # the output activation and the loss delta see 2-D (rows, units) arrays,
        # as in fit: the softmax works row by row
        self.out_act(Z[-1].reshape(-1, o), A_out.reshape(-1, o))

    def backward(self, XT, Y, Z, A_out, D, S) -> None:
        """Gradients of the mean loss over the batch into ``grads`` (after :meth:`forward`).

        ``XT`` is the input batch transposed ((n_0, m) shared, or (K, n_0, m)).
        """
        m, o = A_out.shape[1], A_out.shape[2]
        d = D[-1]
        self.loss_delta(
            A_out.reshape(-1, o), Y.reshape(-1, o), d.reshape(-1, o), S[-1].reshape(-1, o)
        )
        d *= 1.0 / m
        for l in range(self.L - 1, -1, -1):
            a_T = XT if l == 0 else Z[l - 1].swapaxes(1, 2)
            # a product over an inner dimension of 1 is an outer product: one
            # multiply (the same numbers), cheaper than matmul's call per network
            if m == 1:
                np.multiply(a_T, D[l], out=self.gW[l])
                if self.bias:
                    np.copyto(self.gB[l], D[l])
            else:
                np.matmul(a_T, D[l], out=self.gW[l])
                if self.bias:
                    np.matmul(self.ones[:, :m], D[l], out=self.gB[l])
            if l > 0:
                (np.multiply if self.sizes[l + 1] == 1 else np.matmul)(
                    D[l], self.WT[l], out=D[l - 1]
                )
                self.deriv(Z[l - 1], D[l - 1], S[l - 1])

    def step(self, lr: np.ndarray) -> None:
        """One update of every network from ``grads``; ``lr`` is (K, 1) in the dtype."""
        p, g, s, c = self.params, self.grads, self.scratch, self.col
        if self.update == "plain":
            np.multiply(g, lr, out=s)
            p -= s
        elif self.update in ("momentum", "nesterov"):
            (v,) = self.state
            np.multiply(g, lr, out=s)
            v *= c["momentum"]
            v -= s
            if self.update == "nesterov":
                p -= s
                np.multiply(v, c["momentum"], out=s)
                p += s
            else:
                p += v
        else:  # adam, its two bias corrections folded into the step size
            mom, vel = self.state
            self.t += 1
            # the bias corrections in Python floats, as fit makes them (NumPy's
            # power may round differently from C's pow)
            t = self.t
            if self.betas is not None:
                b1, b2 = self.betas
                root, den = math.sqrt(1.0 - b2**t), 1.0 - b1**t
            else:
                pairs = zip(
                    self.consts["beta1"][:, 0].tolist(), self.consts["beta2"][:, 0].tolist()
                )
                root = np.array([math.sqrt(1.0 - b2**t) for _, b2 in pairs])[:, None]
                den = np.array([1.0 - b1**t for b1 in self.consts["beta1"][:, 0].tolist()])[:, None]
            size = (self._lr64 * root / den).astype(self.dtype)
            mom *= c["beta1"]
            np.multiply(g, c["one_minus_beta1"], out=s)
            mom += s
            vel *= c["beta2"]
            np.square(g, out=s)
            s *= c["one_minus_beta2"]
            vel += s
            np.sqrt(vel, out=s)
            s += c["epsilon"]
            np.divide(mom, s, out=s)
            s *= size
            p -= s

    # ------------------------------------------------------------ measures
    def evaluate(self, X: np.ndarray, Y: np.ndarray, labels: np.ndarray):
        """Each network's mean loss and accuracy on a shared set ``X`` (n, n_0), in chunks."""
        n, K = X.shape[0], self.K
        rows = max(1, min(n, EVAL_ELEMENTS // (K * max(self.sizes[1:]))))
        total, correct = np.zeros(K), np.zeros(K)
        bufs, cols = self.eval_bufs, [*self.sizes[1:], self.sizes[-1]]
        for i in range(0, n, rows):
            c = min(rows, n - i)
            if c not in bufs:
                if len(self.eval_flat) < K * rows * sum(cols):  # held for the largest set
                    self.eval_flat = np.empty(K * rows * sum(cols), self.dtype)
                    bufs.clear()
                *Z, A = _carve(_split_flat(self.eval_flat, K * rows, cols), K, c, cols)
                bufs[c] = (Z, A)
            Z, A = bufs[c]
            self.forward(X[i : i + c], Z, A)
            Yc, lc = self._tiled((id(Y), i), Y[i : i + c], labels[i : i + c])
            total += _loss_sums(self.lossname, Z[-1], A, Yc)
            correct += _n_correct(A, lc)
        return total / n, correct / n

    def _tiled(self, key, Y: np.ndarray, labels: np.ndarray):
        """Targets ``Y`` (m, o) and their labels repeated for the K networks when
        small (made once per ``key``), else as they are, to be broadcast."""
        if self.K * Y.size > TILE_ELEMENTS:
            return Y, labels
        if key not in self.tiles:
            self.tiles[key] = tuple(
                np.ascontiguousarray(np.broadcast_to(a, (self.K, *a.shape))) for a in (Y, labels)
            )
        return self.tiles[key]

    def _bgd_measures(self):
        Y, labels = self._tiled("train", self.Y, self.labels)
        return (
            _loss_sums(self.lossname, self.Z[-1], self.A_out, Y) / self.n,
            _n_correct(self.A_out, labels) / self.n,
        )

    def evaluate_initial(self):
        if self.bgd:
            self.forward(self.X, self.Z, self.A_out)
            self._prev = self._bgd_measures()
            return self._prev
        return self.evaluate(self.X, self.Y, self.labels)

    def epoch(self, lr: np.ndarray):
        """One epoch of every network at learning rates ``lr`` (K,) float64; return
        each network's training loss and accuracy (K,) as ``train_eval`` defines them."""
        if lr is not self._lr_seen:  # the same array every epoch for a constant schedule
            self._lr_seen, self._lr64 = lr, lr[:, None]
            self._lr_col = self._lr64.astype(self.dtype)
        lr_col = self._lr_col
        if self.bgd:
            # the forward pass of the current weights is in the buffers already
            # (it evaluated the previous epoch)
            self.backward(self.XT, self.Yk, self.Z, self.A_out, self.D, self.S)
            self.step(lr_col)
            self.forward(self.X, self.Z, self.A_out)
            before, self._prev = self._prev, self._bgd_measures()
            return before if self.train_eval == "running" else self._prev

        n, m = self.n, self.m
        # each network's own order: one permutation from its own generator.
        # rng.permutation(n) is rng.shuffle(np.arange(n)) (the same draws, the
        # same result); shuffling each row in place saves an array a network
        perm = self.perm
        perm[...] = self.arange
        for rng, row in zip(self.rngs, self.perm_rows, strict=True):
            rng.shuffle(row)
        running = self.train_eval == "running"
        for i in range(0, n, m):
            if i + m <= n:
                Z, A, D, S, Xb, Yb = self.Z, self.A_out, self.D, self.S, self.Xb, self.Yb
            else:
                Z, A, D, S, Xb, Yb = self.last
            idx = perm[:, i : i + m]
            np.take(self.X, idx, axis=0, out=Xb, mode="clip")
            np.take(self.Y, idx, axis=0, out=Yb, mode="clip")
            self.forward(Xb, Z, A)
            if running:
                self.Zs[:, i : i + m] = Z[-1]
            self.backward(Xb.swapaxes(1, 2), Yb, Z, A, D, S)
            self.step(lr_col)
        if not running:
            return self.evaluate(self.X, self.Y, self.labels)
        As = np.empty_like(self.Zs)
        o = As.shape[2]
        self.out_act(self.Zs.reshape(-1, o), As.reshape(-1, o))
        Ys = np.take(self.Y, perm, axis=0)
        return (
            _loss_sums(self.lossname, self.Zs, As, Ys) / n,
            _n_correct(As, np.take(self.labels, perm, axis=0)) / n,
        )

    def grad_norm(self) -> np.ndarray:
        """Each network's L2 norm of its last update's gradient over all parameters (K,)."""
        return np.sqrt(np.vecdot(self.grads, self.grads))


#: constants used in the network's dtype (the others stay float64: adam's
#: step size is made in float64 then converted, as fit's Python floats are)
_DTYPE_CONSTS = ("momentum", "beta1", "beta2", "one_minus_beta1", "one_minus_beta2", "epsilon")


def fit_many(
    nets: Sequence[MLP],
    X: np.ndarray,
    Y: np.ndarray,
    *,
    variant: str = "bgd",
    lr: float | Sequence[float] = 0.1,
    batch_size: int = 32,
    epochs: int = 100,
    loss: str = "mse",
    update: str = "plain",
    seed: int | Sequence[int] = 0,
    X_val: np.ndarray | None = None,
    Y_val: np.ndarray | None = None,
    loss_threshold: float | Sequence[float | None] | None = None,
    divergence_factor: float | Sequence[float | None] | None = DIVERGENCE_FACTOR,
    callback: Callable[[dict], bool | None]
    | Sequence[Callable[[dict], bool | None] | None]
    | None = None,
    momentum: float | Sequence[float] = 0.9,
    beta1: float | Sequence[float] = 0.9,
    beta2: float | Sequence[float] = 0.999,
    epsilon: float | Sequence[float] = 1e-8,
    schedule: str = "constant",
    gamma: float | Sequence[float] = 0.5,
    step_size: int | Sequence[int] = 10,
    decay: float | Sequence[float] = 0.01,
    train_eval: str = "full",
    rng: Sequence[np.random.Generator] | None = None,
    max_records: int | None = None,
) -> list[History]:
    """Train the K networks ``nets`` in place at once; return one :class:`History` each.

    Network ``k`` ends as :func:`bpexp.core.fit` would leave it trained alone
    with the ``k``-th of each per-network setting, and ``histories[k]`` holds the
    same records, up to rounding (the products run over the stack, the sums
    per network).

    Parameters
    ----------
    nets : sequence of MLP
        Networks of one shape (sizes, activations, dtype, bias, leaky slope);
        each starts from its own weights and is trained in place.
    X, Y, variant, batch_size, epochs, loss, update, X_val, Y_val, schedule, train_eval
        Shared by all networks; as in :func:`bpexp.core.fit`.
    lr, momentum, beta1, beta2, epsilon, gamma, step_size, decay, loss_threshold, divergence_factor
        One value for all networks, or a list with one per network.
    seed : int or list of int
        Seeds each network's shuffling generator (ignored if ``rng`` is given);
        one value gives every network the same order.
    rng : list of numpy.random.Generator, optional
        One generator per network (each run's own, which may already have drawn
        its data and weights); network ``k`` draws one ``rng[k].permutation(n)``
        per epoch for sgd and mbgd, nothing else, exactly as ``fit`` does.
    callback : callable or list of callables, optional
        One for all (called with each network's records in turn) or one per
        network (None for none); returning True stops that network.
    max_records : int, optional
        Each History keeps at most this many records (see :class:`History`);
        the callbacks still see every one.

    Returns
    -------
    list of History
        ``histories[k]`` for ``nets[k]``.  A record's ``seconds`` is the time the
        whole stack has spent training up to that epoch, the same for every
        network of the stack; unlike :func:`~bpexp.core.fit`'s, it includes the
        end-of-epoch evaluation of the training set that ``train_eval="full"``
        makes for sgd and mbgd (the validation set stays excluded).

    Raises
    ------
    ValueError
        For invalid names, values, data, lists of the wrong length or networks
        of different shapes, before any training.
    """
    _check_stack(nets)
    K = len(nets)
    check_options(
        FIT_OPTIONS,
        {"variant": variant, "batch_size": batch_size, "epochs": epochs, "train_eval": train_eval,
         "max_records": max_records},
    )  # fmt: skip
    _require(update in UPDATES, f"unknown update rule {update!r}; valid: {', '.join(UPDATES)}")
    _require((X_val is None) == (Y_val is None), "X_val and Y_val: give both or neither")

    lrs = _per_net("lr", lr, K, FIT_OPTIONS["lr"])
    thresholds = _per_net("loss_threshold", loss_threshold, K, FIT_OPTIONS["loss_threshold"])
    factors = _per_net("divergence_factor", divergence_factor, K, FIT_OPTIONS["divergence_factor"])
    consts = {}
    given = {"momentum": momentum, "beta1": beta1, "beta2": beta2, "epsilon": epsilon}
    for name, constraints in UPDATE_OPTIONS[update].items():
        consts[name] = _per_net(name, given[name], K, constraints)
    for name in ("beta1", "beta2"):
        if name in consts:
            consts[f"one_minus_{name}"] = [1.0 - b for b in consts[name]]
    gammas = _per_net("gamma", gamma, K, _is_number, "a number")
    step_sizes = _per_net("step_size", step_size, K, _is_number, "a number")
    decays = _per_net("decay", decay, K, _is_number, "a number")
    lr_at = [
        make_schedule(
            schedule, float(lrs[k]), gamma=gammas[k], step_size=step_sizes[k], decay=decays[k]
        )
        for k in range(K)
    ]
    callbacks = _per_net("callback", callback, K, lambda c: c is None or callable(c), "callable")
    if rng is None:
        seeds = _per_net("seed", seed, K, _is_int, "an integer")
        rngs = [np.random.default_rng(s) for s in seeds]
    else:
        _require(
            isinstance(rng, (list, tuple)) and len(rng) == K,
            f"rng: expected a list of {K} numpy.random.Generator (one per network)",
        )
        for k, r in enumerate(rng):
            _require(
                isinstance(r, np.random.Generator), f"rng[{k}]: expected a numpy.random.Generator"
            )
        _require(
            len({id(r) for r in rng}) == K,
            "rng: one generator per network; the same generator appears twice",
        )
        rngs = list(rng)

    lossfn, X, Y, X_val, Y_val = checked_data(nets[0], loss, X, Y, X_val, Y_val)
    if X_val is not None:
        labels_val = _labels(Y_val)

    n = X.shape[0]
    m = n if variant == "bgd" else 1 if variant == "sgd" else min(int(batch_size), n)
    histories = [
        History(loss_threshold=t, train_eval=train_eval, max_records=max_records)
        for t in thresholds
    ]
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        stack = _Stack(nets, X, Y, m, lossfn, update, consts, rngs, train_eval)
        _train(
            stack,
            histories,
            epochs,
            lr_at,
            schedule,
            thresholds,
            factors,
            callbacks,
            X_val,
            Y_val,
            labels_val if X_val is not None else None,
        )
    return histories


def _train(
    stack,
    histories,
    epochs,
    lr_at,
    schedule,
    thresholds,
    factors,
    callbacks,
    X_val,
    Y_val,
    labels_val,
):
    K = stack.K
    validate = X_val is not None
    keys = ["train_loss", "train_accuracy"] + (["val_loss", "val_accuracy"] if validate else [])
    keys += ["grad_norm", "lr"]

    loss0, acc0 = stack.evaluate_initial()
    vals0 = stack.evaluate(X_val, Y_val, labels_val) if validate else None
    stopped = np.zeros(K, bool)
    for k, h in enumerate(histories):
        h.initial = {"epoch": 0, "train_loss": float(loss0[k]), "train_accuracy": float(acc0[k])}
        if validate:
            h.initial["val_loss"], h.initial["val_accuracy"] = (
                float(vals0[0][k]),
                float(vals0[1][k]),
            )
        h.initial.update(updates=0, samples=0, seconds=0.0)
        if callbacks[k] is not None and callbacks[k](h.initial):
            h.stop_reason = "callback"
            stopped[k] = True
    if stopped.any():
        stack.keep(~stopped)
    if stack.K == 0:
        return

    thr = np.array([math.nan if t is None else t for t in thresholds])
    # each network's own divergence limit, from its own initial loss
    limit = np.array(
        [divergence_limit(float(loss0[k]), f) for k, f in enumerate(factors)], dtype=np.float64
    )
    lr_const = np.array([f(0) for f in lr_at], dtype=np.float64) if schedule == "constant" else None
    thr_now, lr_now = thr[stack.ids], None if lr_const is None else lr_const[stack.ids]
    limit_now = limit[stack.ids]
    any_callback = any(c is not None for c in callbacks)
    block = 1 if any_callback else RECORD_BLOCK
    buf = {key: np.empty((block, K)) for key in keys}
    epoch_nums: list[int] = []
    secs: list[float] = []
    seconds = 0.0
    n, nb = stack.n, stack.n_batches

    def flush() -> None:
        """Turn the buffered measures into each running network's records."""
        r = len(epoch_nums)
        if not r:
            return
        cols = {key: buf[key][:r, : stack.K].T.tolist() for key in keys}
        # one record per epoch holding what every network shares, in fit's key
        # order; each network's record is a copy of it with its own measures
        # set (a dict's copy is cheaper than a new dict of all the keys)
        bases = [
            {"epoch": e, **dict.fromkeys(keys[:-2]), "grad_norm": None}
            | {"updates": e * nb, "samples": e * n, "seconds": s, "lr": None}
            for e, s in zip(epoch_nums, secs, strict=True)
        ]
        for j, k in enumerate(stack.ids.tolist()):
            history = histories[k]
            # History.add thins the records kept; without a bound, appending is that
            append = history.add if history.max_records is not None else history.records.append
            vals = [cols[key][j] for key in keys]
            if validate:
                for base, tl, ta, vl, va, g, lr in zip(bases, *vals, strict=True):
                    rec = base.copy()
                    rec["train_loss"], rec["train_accuracy"] = tl, ta
                    rec["val_loss"], rec["val_accuracy"] = vl, va
                    rec["grad_norm"], rec["lr"] = g, lr
                    append(rec)
            else:
                for base, tl, ta, g, lr in zip(bases, *vals, strict=True):
                    rec = base.copy()
                    rec["train_loss"], rec["train_accuracy"] = tl, ta
                    rec["grad_norm"], rec["lr"] = g, lr
                    append(rec)
        epoch_nums.clear()
        secs.clear()

    for epoch in range(1, epochs + 1):
        row = len(epoch_nums)
        if lr_now is not None:
            lr = lr_now
        else:
            lr = np.array([lr_at[k](epoch - 1) for k in stack.ids.tolist()], dtype=np.float64)
        t0 = time.perf_counter()
        train_loss, train_acc = stack.epoch(lr)
        seconds += time.perf_counter() - t0
        Kr = stack.K
        buf["train_loss"][row, :Kr] = train_loss
        buf["train_accuracy"][row, :Kr] = train_acc
        if validate:
            buf["val_loss"][row, :Kr], buf["val_accuracy"][row, :Kr] = stack.evaluate(
                X_val, Y_val, labels_val
            )
        buf["grad_norm"][row, :Kr] = stack.grad_norm()
        buf["lr"][row, :Kr] = lr
        epoch_nums.append(epoch)
        secs.append(seconds)
        # one cheap test for "nothing stopped", the usual case
        if (
            math.isfinite(np.add.reduce(train_loss))
            and not (train_loss <= thr_now).any()
            and not (train_loss > limit_now).any()
        ):
            diverged = converged = np.zeros(Kr, bool)  # read only
            ending = np.zeros(Kr, bool)
        else:
            diverged = ~np.isfinite(train_loss) | (train_loss > limit_now)
            converged = train_loss <= thr_now
            ending = diverged | converged
        if any_callback or ending.any() or row + 1 == block:
            flush()
        if any_callback:
            for j, k in enumerate(stack.ids.tolist()):
                cb = callbacks[k]
                if cb is not None and cb(histories[k].records[-1]) and not ending[j]:
                    histories[k].stop_reason = "callback"
                    ending[j] = True
        if ending.any():
            for j in np.flatnonzero(ending):
                h = histories[stack.ids[j]]
                if diverged[j]:
                    h.diverged, h.stop_reason = True, "diverged"
                elif converged[j]:
                    h.converged, h.stop_reason = True, "threshold"
            stack.write_back(ending)
            stack.keep(~ending)
            if stack.K == 0:
                return
            thr_now, lr_now = thr[stack.ids], None if lr_const is None else lr_const[stack.ids]
            limit_now = limit[stack.ids]
    flush()
    stack.write_back(np.ones(stack.K, bool))
