"""The multi-layer perceptron: parameters, forward pass and backpropagation.

Convention (used everywhere in bpexp): samples are rows.  For a network with
layer sizes ``sizes = [n_0, n_1, ..., n_L]`` and a batch ``X`` of shape
``(m, n_0)``::

    Z[l] = A[l-1] @ W[l] + b[l]      W[l]: (n_{l-1}, n_l), b[l]: (n_l,)
    A[l] = g(Z[l])                   A[0] = X, A[L] = the output

and, going back with the loss ``C`` averaged over the ``m`` samples::

    delta[L] = dC/dZ[L]                         (the loss's output delta)
    delta[l] = (delta[l+1] @ W[l+1].T) * g'(Z[l])  (g' written from A[l])
    nabla_w[l] = A[l-1].T @ delta[l]
    nabla_b[l] = sum of delta[l] over the samples

Python lists are 0-based, so ``weights[i]`` maps layer ``i`` to layer ``i + 1``:
``weights[i].shape == (sizes[i], sizes[i+1])``.
"""

from __future__ import annotations

import functools
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from bpexp.core.activations import (
    HIDDEN_ACTIVATIONS,
    LEAKY_RELU_SLOPE,
    OUTPUT_ACTIVATIONS,
    activation_table,
    relu,
    softmax_parts,
)
from bpexp.core.blas import gemm_accumulate
from bpexp.core.init import INITIALISERS
from bpexp.core.losses import Loss, check_targets, get_loss

DTYPES = ("float32", "float64")
#: rows per block of the forward pass's elementwise work (512 x 128 float32: 256 KiB)
ROW_BLOCK = 512


def _choice(kind: str, value: str, valid: Sequence[str]) -> str:
    if value not in valid:
        raise ValueError(f"unknown {kind} {value!r}; valid: {', '.join(valid)}")
    return value


class MLP:
    """A fully connected feed-forward network trained by backpropagation.

    Parameters
    ----------
    sizes : sequence of int
        Layer widths, input first and output last, e.g. ``[2, 4, 1]``.
    activation : str
        Hidden activation: sigmoid, tanh, relu, leaky_relu or identity.
    output : str
        Output activation: sigmoid, softmax or identity.
    init : str
        Weight initialisation, a key of :data:`bpexp.core.init.INITIALISERS`.
        Biases start at zero.
    seed : int
        Seed of the generator that draws the initial weights (ignored if ``rng``
        is given).
    dtype : {"float32", "float64"}
        The dtype of every parameter and of every computation on them.
    bias : bool
        ``False`` builds a network without bias vectors (``biases == []``).
    leaky_slope : float
        Slope of the leaky ReLU for ``z < 0``, in (0, 1).
    rng : numpy.random.Generator, optional
        The run's generator; when given it draws the weights instead of ``seed``.

    Attributes
    ----------
    weights : list of ndarray
        ``weights[i].shape == (sizes[i], sizes[i+1])``.
    biases : list of ndarray
        ``biases[i].shape == (sizes[i+1],)``; empty when ``bias=False``.
    """

    def __init__(
        self,
        sizes: Sequence[int],
        activation: str = "sigmoid",
        output: str = "sigmoid",
        init: str = "xavier_uniform",
        seed: int = 0,
        dtype: str = "float64",
        bias: bool = True,
        leaky_slope: float = LEAKY_RELU_SLOPE,
        rng: np.random.Generator | None = None,
    ) -> None:
        sizes = list(sizes)
        if len(sizes) < 2:
            raise ValueError(f"sizes: need at least an input and an output layer, got {sizes}")
        for i, s in enumerate(sizes):
            if isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 1:
                raise ValueError(f"sizes[{i}]: layer sizes must be integers >= 1, got {s!r}")
        self.sizes = [int(s) for s in sizes]
        self.activation = _choice("activation", activation, HIDDEN_ACTIVATIONS)
        self.output = _choice("output activation", output, OUTPUT_ACTIVATIONS)
        self.init = _choice("initialisation", init, tuple(INITIALISERS))
        self.dtype = np.dtype(_choice("dtype", str(np.dtype(dtype)), DTYPES))
        self.bias = bool(bias)
        if not 0.0 < leaky_slope < 1.0:
            raise ValueError(f"leaky_slope: must be in (0, 1), got {leaky_slope}")
        self.leaky_slope = float(leaky_slope)
        self._activations, self._derivatives = activation_table(self.leaky_slope)
        if rng is None:
            rng = np.random.default_rng(seed)
        draw = INITIALISERS[self.init]
        self.weights = [
            draw(rng, n_in, n_out, self.dtype)
            for n_in, n_out in zip(self.sizes[:-1], self.sizes[1:], strict=True)
        ]
        self.biases = (
            [np.zeros(n_out, dtype=self.dtype) for n_out in self.sizes[1:]] if self.bias else []
        )

    # ------------------------------------------------------------------ inputs
    def check_inputs(self, X: np.ndarray, Y: np.ndarray | None = None, what: str = "X") -> tuple:
        """Return ``X`` (and ``Y``) as C-contiguous arrays of the network's dtype.

        ``Y`` of shape ``(n,)`` is accepted for a single output unit.

        Raises
        ------
        ValueError
            For shapes that do not fit the network, or NaN / infinite values.
        """
        X = np.ascontiguousarray(X, dtype=self.dtype)
        if X.ndim != 2 or X.shape[1] != self.sizes[0]:
            raise ValueError(f"{what}: expected shape (n_samples, {self.sizes[0]}), got {X.shape}")
        if X.shape[0] == 0:
            raise ValueError(f"{what}: no samples")
        if not np.isfinite(X).all():
            raise ValueError(f"{what}: contains NaN or infinite values")
        if Y is None:
            return (X,)
        ywhat = "Y" if what == "X" else what.replace("X", "Y")
        Y = np.ascontiguousarray(Y, dtype=self.dtype)
        if Y.ndim == 1 and self.sizes[-1] == 1:
            Y = Y.reshape(-1, 1)
        if Y.ndim != 2 or Y.shape != (X.shape[0], self.sizes[-1]):
            raise ValueError(
                f"{ywhat}: expected shape ({X.shape[0]}, {self.sizes[-1]}) to match {what} "
                f"and the {self.sizes[-1]} output units, got {Y.shape}"
            )
        if not np.isfinite(Y).all():
            raise ValueError(f"{ywhat}: contains NaN or infinite values")
        return X, Y

    def get_loss(self, loss: str) -> Loss:
        """The loss object ``loss``, checked against this network's output activation."""
        return get_loss(loss, self.output)

    # ----------------------------------------------------------------- compute
    def forward(self, X: np.ndarray) -> np.ndarray:
        """The network's output for ``X``.

        Parameters
        ----------
        X : ndarray of shape (n_samples, sizes[0])

        Returns
        -------
        ndarray of shape (n_samples, sizes[-1])
        """
        (X,) = self.check_inputs(X)
        buf = Buffers(self, X.shape[0])
        buf.forward(X)
        return buf.A_out

    def loss(self, X: np.ndarray, Y: np.ndarray, loss: str = "mse") -> float:
        """The loss of the network on ``(X, Y)``, averaged over the samples."""
        lossfn = self.get_loss(loss)
        X, Y = self.check_inputs(X, Y)
        check_targets(lossfn, Y)
        buf = Buffers(self, X.shape[0])
        buf.forward(X)
        return lossfn.value(buf.Z_out, buf.A_out, Y, buf.lse)

    def loss_and_gradients(
        self, X: np.ndarray, Y: np.ndarray, loss: str = "mse"
    ) -> tuple[float, list[np.ndarray], list[np.ndarray]]:
        """Loss and its gradients by backpropagation.

        Parameters
        ----------
        X : ndarray of shape (n_samples, sizes[0])
        Y : ndarray of shape (n_samples, sizes[-1])
        loss : {"mse", "bce", "cross_entropy"}

        Returns
        -------
        loss : float
            Averaged over the samples.
        w_grads : list of ndarray
            ``w_grads[i].shape == weights[i].shape``.
        b_grads : list of ndarray
            ``b_grads[i].shape == biases[i].shape``; empty when ``bias=False``.
        """
        lossfn = self.get_loss(loss)
        X, Y = self.check_inputs(X, Y)
        check_targets(lossfn, Y)
        buf = Buffers(self, X.shape[0])
        buf.forward(X)
        value = lossfn.value(buf.Z_out, buf.A_out, Y, buf.lse)
        buf.backward(X.T, Y, lossfn.delta(self.output), 1.0 / X.shape[0])
        return value, list(buf.nabla_w), [g.copy() for g in buf.nabla_b]

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Class labels: the arg-max output unit, or ``output > 0.5`` for one unit.

        Returns
        -------
        ndarray of int, shape (n_samples,)
        """
        out = self.forward(X)
        return (out[:, 0] > 0.5).astype(int) if out.shape[1] == 1 else out.argmax(axis=1)

    def accuracy(self, X: np.ndarray, Y: np.ndarray) -> float:
        """Share of samples whose predicted class matches the target's."""
        X, Y = self.check_inputs(X, Y)
        return n_correct(self.forward(X), match_labels(Y)) / X.shape[0]

    # ---------------------------------------------------------- persistence
    def copy(self) -> MLP:
        """A deep copy (same architecture, copied parameters)."""
        return self.astype(self.dtype)

    def astype(self, dtype: str | np.dtype) -> MLP:
        """A copy of the network whose parameters and computations use ``dtype``."""
        return MLP.from_arrays({**self.to_arrays(), "dtype": np.array(str(np.dtype(dtype)))})

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The architecture and parameters as plain arrays (no pickled objects).

        Keys: ``W0, W1, ...``, ``b0, b1, ...`` (when ``bias``), and ``sizes``,
        ``activation``, ``output``, ``init``, ``dtype``, ``bias``, ``leaky_slope``.
        """
        arrays = {f"W{i}": W for i, W in enumerate(self.weights)}
        arrays.update({f"b{i}": b for i, b in enumerate(self.biases)})
        arrays.update(
            sizes=np.array(self.sizes),
            activation=np.array(self.activation),
            output=np.array(self.output),
            init=np.array(self.init),
            dtype=np.array(str(self.dtype)),
            bias=np.array(self.bias),
            leaky_slope=np.array(self.leaky_slope),
        )
        return arrays

    @classmethod
    def from_arrays(cls, arrays) -> MLP:
        """Rebuild a network from :meth:`to_arrays` output (or a loaded ``.npz``)."""
        net = cls(
            [int(s) for s in arrays["sizes"]],
            activation=str(arrays["activation"]),
            output=str(arrays["output"]),
            init=str(arrays["init"]),
            dtype=str(arrays["dtype"]),
            bias=bool(arrays["bias"]),
            leaky_slope=float(arrays["leaky_slope"]),
        )
        for i, W in enumerate(net.weights):
            W[...] = arrays[f"W{i}"]
        for i, b in enumerate(net.biases):
            b[...] = arrays[f"b{i}"]
        return net

    def save(self, path: str | os.PathLike) -> Path:
        """Write :meth:`to_arrays` to ``path`` (``.npz``), atomically.

        The file is written under a temporary name and renamed into place, so a
        crash never leaves a half-written file behind.
        """
        path = Path(path)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                np.savez(fh, **self.to_arrays())
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> MLP:
        """Load a network written by :meth:`save` (no pickle involved)."""
        with np.load(path, allow_pickle=False) as arrays:
            return cls.from_arrays(arrays)

    def __repr__(self) -> str:
        return (
            f"MLP({self.sizes}, activation={self.activation!r}, output={self.output!r}, "
            f"init={self.init!r}, dtype={str(self.dtype)!r}, bias={self.bias})"
        )


def match_labels(Y: np.ndarray) -> np.ndarray:
    """Targets ``Y`` (m, k) in the form :func:`n_correct` compares against:
    class indices (m,) for k > 1, a boolean column (m, 1) for k == 1."""
    return Y > 0.5 if Y.shape[1] == 1 else Y.argmax(axis=1)


def n_correct(A: np.ndarray, labels: np.ndarray) -> int:
    """How many rows of outputs ``A`` (m, k) predict ``labels`` (see :func:`match_labels`)."""
    if A.shape[1] == 1:
        return int(np.count_nonzero((A > 0.5) == labels))
    return int(np.count_nonzero(A.argmax(axis=1) == labels))


class Buffers:
    """Preallocated arrays for a forward and backward pass over ``m`` samples.

    The training loop keeps one per batch size, so the hot path allocates
    nothing: every product and activation is written with ``out=``.  The
    transposed views of the weights stay valid because the parameters are only
    ever updated in place.

    Products go through ``np.matmul``, which hands a transposed operand to BLAS
    as a flag (``np.dot`` with ``out=`` copies it first: ~30% slower for the
    weight gradient of a batch of 64).  For ``m == 1`` (pure SGD) the weight
    gradient ``a.T @ delta`` is an outer product, which ``np.dot`` hands to BLAS
    and ``np.matmul`` does not; and the bias gradient is simply a view of ``delta``.

    For batches (``m > 1``) :meth:`backward_step` fuses the backward pass with the
    plain step, through the accumulating GEMM of :mod:`bpexp.core.blas`:
    ``W -= (lr / m) * A.T @ delta`` is one product into ``W``, and the bias step
    is a product with a column of ones.  ``fused`` says whether it is available.
    """

    def __init__(self, net: MLP, m: int) -> None:
        sizes, dt = net.sizes, net.dtype
        L = len(sizes) - 1
        self.m = m
        self.mm = np.dot if m == 1 else np.matmul
        self.weights = net.weights
        self.biases = net.biases
        self.WT = [W.T for W in net.weights]
        # A[l] holds layer l+1's activation (Z, then g(Z) in place), l < L - 1.
        self.A = [np.empty((m, s), dt) for s in sizes[1:-1]]
        self.AT = [a.T for a in self.A]
        # The bias and the activation run over blocks of ROW_BLOCK rows: the
        # activation then reads what the bias just wrote from cache, not memory.
        rows = [slice(i, i + ROW_BLOCK) for i in range(0, m, ROW_BLOCK)]
        act = net._activations[net.activation]
        self.blocks = []  # per hidden layer: (block of A, its activation)
        for a in self.A:
            if net.activation == "relu":  # see relu: a zeros array is its fast path
                zeros = np.zeros(a[rows[0]].shape, dt)
                self.blocks.append(
                    [(a[r], functools.partial(relu, zeros=zeros[: len(a[r])])) for r in rows]
                )
            else:
                self.blocks.append([(a[r], act) for r in rows])
        self.deriv = [net._derivatives[net.activation]] * (L - 1)
        self.out_act = net._activations[net.output]
        self.softmax = net.output == "softmax"
        self._softmax_parts: tuple[np.ndarray, np.ndarray] | None = None
        self.Z_out = np.empty((m, sizes[-1]), dt)
        self.A_out = self.Z_out if net.output == "identity" else np.empty_like(self.Z_out)
        self.delta = [np.empty((m, s), dt) for s in sizes[1:]]
        self.scratch = [np.empty((m, s), dt) for s in sizes[1:]]
        self.nabla_w = [np.empty_like(W) for W in net.weights]
        if not net.bias:
            self.nabla_b = []
        elif m == 1:
            self.nabla_b = [d[0] for d in self.delta]
        else:
            self.nabla_b = [np.empty_like(b) for b in net.biases]
        self.grads = self.nabla_w + self.nabla_b
        self._sum_bias = net.bias and m > 1
        # Bias gradients as ones @ delta: BLAS sums a batch's rows 2-4x faster
        # than np.add.reduce(delta, axis=0).
        self._ones = np.ones(m, dt)
        bind = gemm_accumulate(dt) if m > 1 else None
        self.fused = bind is not None and all(p.flags.c_contiguous for p in net.weights)
        if self.fused:
            self._bind = bind
            ones = self._ones.reshape(m, 1)
            # _w_steps[0] depends on the input batch: see bind_input
            self._w_steps = [None] + [
                bind(self.A[l - 1], self.delta[l], net.weights[l]) for l in range(1, L)
            ]
            self._b_steps = [
                bind(ones, d, b.reshape(1, -1)) for d, b in zip(self.delta, net.biases)
            ]

    def forward(self, X: np.ndarray) -> None:
        """Forward pass of ``X`` (m, n_0) into ``A``, ``Z_out`` and ``A_out``."""
        a = X
        biases, mm = self.biases, self.mm
        for l, (W, z) in enumerate(zip(self.weights, self.A)):
            mm(a, W, out=z)
            for block, act in self.blocks[l]:
                if biases:
                    np.add(block, biases[l], out=block)
                act(block, block)
            a = z
        mm(a, self.weights[-1], out=self.Z_out)
        if biases:
            np.add(self.Z_out, biases[-1], out=self.Z_out)
        if self.softmax:
            self._softmax_parts = softmax_parts(self.Z_out, self.A_out)
        else:
            self.out_act(self.Z_out, self.A_out)

    @property
    def lse(self) -> np.ndarray | None:
        """The output rows' log-sum-exp (m, 1) after a softmax forward pass, else None
        (see :meth:`Loss.value`); made on demand, since training steps never need it."""
        if not self.softmax or self._softmax_parts is None:
            return None
        top, total = self._softmax_parts
        return np.log(total) + top

    def backward(self, XT: np.ndarray, Y: np.ndarray, loss_delta, scale: float) -> None:
        """Backward pass after :meth:`forward`: fills ``nabla_w`` and ``nabla_b``.

        ``XT`` is the transposed input batch (n_0, m); ``scale`` multiplies the
        output delta (``1/m`` for the mean, ``lr/m`` to fold in a plain step).
        """
        delta, nabla_w, mm = self.delta, self.nabla_w, self.mm
        d = delta[-1]
        loss_delta(self.A_out, Y, d, self.scratch[-1])
        d *= scale
        for l in range(len(nabla_w) - 1, 0, -1):
            mm(self.AT[l - 1], delta[l], out=nabla_w[l])
            if self._sum_bias:
                np.dot(self._ones, delta[l], out=self.nabla_b[l])
            mm(delta[l], self.WT[l], out=delta[l - 1])
            self.deriv[l - 1](self.A[l - 1], delta[l - 1], self.scratch[l - 1])
        # the bias first, while delta[0] is still in cache (the product streams all of X)
        if self._sum_bias:
            np.dot(self._ones, delta[0], out=self.nabla_b[0])
        mm(XT, delta[0], out=nabla_w[0])

    def bind_input(self, X: np.ndarray):
        """The fused step of the first layer's weights for the input batch ``X``
        (m, n_0), C-contiguous: pass it to :meth:`backward_step`."""
        return self._bind(X, self.delta[0], self.weights[0])

    def backward_step(self, input_step, Y: np.ndarray, loss_delta, scale: float) -> None:
        """Backward pass fused with the plain step ``p -= scale * gradient``.

        Needs ``fused``; ``input_step`` comes from :meth:`bind_input` for the batch
        just passed :meth:`forward`.  Each layer's delta is propagated through its
        weights before they take their step, so the result is that of
        :meth:`backward` followed by the plain update, up to rounding.  No
        gradient buffer is written (``nabla_w`` and ``nabla_b`` are left as they were).
        """
        delta = self.delta
        loss_delta(self.A_out, Y, delta[-1], self.scratch[-1])
        b_steps = self._b_steps
        for l in range(len(delta) - 1, 0, -1):
            self.mm(delta[l], self.WT[l], out=delta[l - 1])
            self._w_steps[l](-scale)
            if b_steps:
                b_steps[l](-scale)
            self.deriv[l - 1](self.A[l - 1], delta[l - 1], self.scratch[l - 1])
        if b_steps:  # the bias first, while delta[0] is still in cache
            b_steps[0](-scale)
        input_step(-scale)
