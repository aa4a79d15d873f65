"""The multi-layer perceptron: parameters, forward pass and backpropagation.

Convention (used everywhere in bpexp): samples are rows.  For a network with
layer sizes ``sizes = [n_0, n_1, ..., n_L]`` and a batch ``X`` of shape
``(m, n_0)``::

    z[l] = a[l-1] @ W[l] + b[l]      W[l]: (n_{l-1}, n_l), b[l]: (n_l,)
    a[l] = g(z[l])                   a[0] = X, a[L] = the output

and, going back with the loss ``C`` averaged over the ``m`` samples (the four
equations of Nielsen's chapter 2, one row per sample)::

    delta[L] = dC/dz[L]                             (BP1: the loss's output delta)
    delta[l] = (delta[l+1] @ W[l+1].T) * g'(z[l])   (BP2: g' written from a[l])
    nabla_b[l] = sum of delta[l] over the samples   (BP3)
    nabla_w[l] = a[l-1].T @ delta[l]                (BP4)

Python lists are 0-based, so ``weights[i]`` maps layer ``i`` to layer ``i + 1``:
``weights[i].shape == (sizes[i], sizes[i+1])``.  :meth:`MLP.forward` and
:meth:`MLP.backward` are these equations, line by line; training
(:mod:`bpexp.core.training`) runs them as they are written.
"""

from __future__ import annotations

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
)
from bpexp.core.constraints import Interval, Options, Table, check
from bpexp.core.init import BIAS_INITIALISERS, INITIALISERS
from bpexp.core.losses import Loss, check_targets, get_loss

DTYPES = ("float32", "float64")
#: :class:`MLP`'s options and their valid values
MLP_OPTIONS: Table = {
    "activation": [Options(HIDDEN_ACTIVATIONS)],
    "output": [Options(OUTPUT_ACTIVATIONS)],
    "init": [Options(tuple(INITIALISERS))],
    "bias_init": [Options(tuple(BIAS_INITIALISERS))],
    "bias": [bool],
    "leaky_slope": [Interval(float, 0, 1, "neither")],
    "dtype": [Options(DTYPES)],
}


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
    seed : int
        Seed of the generator that draws the initial parameters (ignored if
        ``rng`` is given).
    dtype : {"float32", "float64"}
        The dtype of every parameter and of every computation on them.
    bias : bool
        ``False`` builds a network without bias vectors (``biases == []``).
    leaky_slope : float
        Slope of the leaky ReLU for ``z < 0``, in (0, 1).
    rng : numpy.random.Generator, optional
        The run's generator; when given it draws the parameters instead of ``seed``.
    bias_init : str
        Bias initialisation, a key of :data:`bpexp.core.init.BIAS_INITIALISERS`:
        ``"zeros"`` (default, draws nothing) or ``"normal"``, N(0, 1) as in
        Nielsen's network.py.  Biases are drawn after all the weights, so the
        weights of a seed do not depend on it.

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
        bias_init: str = "zeros",
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
        self.bias_init = _choice("bias initialisation", bias_init, tuple(BIAS_INITIALISERS))
        self.dtype = np.dtype(_choice("dtype", str(np.dtype(dtype)), DTYPES))
        self.bias = bool(bias)
        check("leaky_slope", leaky_slope, MLP_OPTIONS["leaky_slope"])
        self.leaky_slope = float(leaky_slope)
        self._activations, self._derivatives = activation_table(self.leaky_slope)
        if rng is None:
            rng = np.random.default_rng(seed)
        draw = INITIALISERS[self.init]
        self.weights = [
            draw(rng, n_in, n_out, self.dtype)
            for n_in, n_out in zip(self.sizes[:-1], self.sizes[1:], strict=True)
        ]
        draw_bias = BIAS_INITIALISERS[self.bias_init]
        self.biases = [draw_bias(rng, n, self.dtype) for n in self.sizes[1:]] if self.bias else []

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

    def get_loss(self, loss: str | Loss) -> Loss:
        """The loss object ``loss`` (a name or a Loss), checked against this
        network's output activation."""
        return get_loss(loss if isinstance(loss, str) else loss.name, self.output)

    # --------------------------------------------------- forward and backward
    def forward(self, X: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """The forward pass, keeping every layer's values for :meth:`backward`.

        Parameters
        ----------
        X : ndarray of shape (m, sizes[0])
            Converted to the network's dtype; not checked for NaN (see
            :meth:`check_inputs`, which :func:`~bpexp.core.fit` applies once).

        Returns
        -------
        zs : list of ndarray
            The weighted inputs, ``zs[i] = activations[i] @ weights[i] + biases[i]``,
            of shape (m, sizes[i+1]); ``zs[-1]`` holds the output's logits, from
            which the log losses are computed.
        activations : list of ndarray
            ``activations[0] = X`` and ``activations[i+1] = g(zs[i])``, so
            ``activations[-1]`` is the output, (m, sizes[-1]).
        """
        X = np.asarray(X, dtype=self.dtype)
        if X.ndim != 2 or X.shape[1] != self.sizes[0]:
            raise ValueError(f"X: expected shape (n_samples, {self.sizes[0]}), got {X.shape}")
        hidden, output = self._activations[self.activation], self._activations[self.output]
        last = len(self.weights) - 1
        activation = X
        zs, activations = [], [X]
        for l, W in enumerate(self.weights):
            z = activation @ W  # (m, n_out): row k is sample k's weighted input
            if self.bias:
                z += self.biases[l]  # b broadcasts over the rows
            activation = output(z) if l == last else hidden(z)
            zs.append(z)
            activations.append(activation)
        return zs, activations

    def backward(
        self, activations: list[np.ndarray], Y: np.ndarray, loss: str | Loss = "mse"
    ) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Backpropagation: the gradient of the loss averaged over the batch.

        Parameters
        ----------
        activations : list of ndarray
            From :meth:`forward` on the batch, ``activations[0]`` being the input
            (m, sizes[0]).
        Y : ndarray of shape (m, sizes[-1])
            The batch's targets.
        loss : str or Loss
            ``"mse"``, ``"bce"`` or ``"cross_entropy"``.

        Returns
        -------
        nabla_w : list of ndarray
            ``nabla_w[i].shape == weights[i].shape``.
        nabla_b : list of ndarray
            ``nabla_b[i].shape == biases[i].shape``; empty when ``bias=False``.
        """
        g_prime = self._derivatives[self.activation]  # delta *= g'(z), from a = g(z)
        nabla_w: list = [None] * len(self.weights)  # filled from the output back
        nabla_b: list = [None] * len(self.biases)
        # BP1: the output layer's error dC/dz, one row per sample; C is the mean
        # over the m samples, hence the division.
        delta = self.get_loss(loss).delta(self.output)(activations[-1], Y) / Y.shape[0]
        nabla_w[-1] = outer_sum(activations[-2], delta)  # BP4
        if self.bias:
            nabla_b[-1] = delta.sum(axis=0)  # BP3
        # l counts layers back from the output, as in Nielsen's network.py (l = 2 is
        # the last hidden layer), with his indices.  Where this departs from the
        # book: his w is our W transposed, since he maps column vectors (w @ a) and
        # we map rows (a @ W), so his dot(w.T, delta) is delta @ W.T here and his
        # dot(delta, a.T) is a.T @ delta, which also sums over the batch's rows;
        # and his sigmoid_prime(zs[-l]) is g' read from activations[-l] = g(zs[-l]).
        for l in range(2, len(self.sizes)):
            delta = delta @ self.weights[-l + 1].T  # BP2: back through the weights,
            g_prime(activations[-l], delta)  # then delta *= g'(z), in place
            nabla_w[-l] = outer_sum(activations[-l - 1], delta)  # BP4
            if self.bias:
                nabla_b[-l] = delta.sum(axis=0)  # BP3
        return nabla_w, nabla_b

    # ---------------------------------------------------------- conveniences
    def feedforward(self, X: np.ndarray) -> np.ndarray:
        """The network's output for ``X`` (Nielsen's ``feedforward``), inputs checked.

        Parameters
        ----------
        X : ndarray of shape (n_samples, sizes[0])

        Returns
        -------
        ndarray of shape (n_samples, sizes[-1])
        """
        (X,) = self.check_inputs(X)
        return self.forward(X)[1][-1]

    def loss(self, X: np.ndarray, Y: np.ndarray, loss: str = "mse") -> float:
        """The loss of the network on ``(X, Y)``, averaged over the samples."""
        lossfn = self.get_loss(loss)
        X, Y = self.check_inputs(X, Y)
        check_targets(lossfn, Y)
        zs, activations = self.forward(X)
        return lossfn.value(zs[-1], activations[-1], Y)

    def loss_and_gradients(
        self, X: np.ndarray, Y: np.ndarray, loss: str = "mse"
    ) -> tuple[float, list[np.ndarray], list[np.ndarray]]:
        """Loss and its gradients by backpropagation, inputs checked.

        Parameters
        ----------
        X : ndarray of shape (n_samples, sizes[0])
        Y : ndarray of shape (n_samples, sizes[-1])
        loss : {"mse", "bce", "cross_entropy"}

        Returns
        -------
        loss : float
            Averaged over the samples.
        w_grads, b_grads : list of ndarray
            As :meth:`backward` returns them.
        """
        lossfn = self.get_loss(loss)
        X, Y = self.check_inputs(X, Y)
        check_targets(lossfn, Y)
        zs, activations = self.forward(X)
        return (lossfn.value(zs[-1], activations[-1], Y), *self.backward(activations, Y, lossfn))

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Class labels: the arg-max output unit, or ``output > 0.5`` for one unit.

        Returns
        -------
        ndarray of int, shape (n_samples,)
        """
        out = self.feedforward(X)
        return (out[:, 0] > 0.5).astype(int) if out.shape[1] == 1 else out.argmax(axis=1)

    def accuracy(self, X: np.ndarray, Y: np.ndarray) -> float:
        """Share of samples whose predicted class matches the target's."""
        X, Y = self.check_inputs(X, Y)
        return n_correct(self.forward(X)[1][-1], match_labels(Y)) / X.shape[0]

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
        ``activation``, ``output``, ``init``, ``bias_init``, ``dtype``, ``bias``,
        ``leaky_slope``.
        """
        arrays = {f"W{i}": W for i, W in enumerate(self.weights)}
        arrays.update({f"b{i}": b for i, b in enumerate(self.biases)})
        arrays.update(
            sizes=np.array(self.sizes),
            activation=np.array(self.activation),
            output=np.array(self.output),
            init=np.array(self.init),
            bias_init=np.array(self.bias_init),
            dtype=np.array(str(self.dtype)),
            bias=np.array(self.bias),
            leaky_slope=np.array(self.leaky_slope),
        )
        return arrays

    @classmethod
    def from_arrays(cls, arrays) -> MLP:
        """Rebuild a network from :meth:`to_arrays` output (or a loaded ``.npz``;
        files written before ``bias_init`` existed load as ``"zeros"``)."""
        net = cls(
            [int(s) for s in arrays["sizes"]],
            activation=str(arrays["activation"]),
            output=str(arrays["output"]),
            init=str(arrays["init"]),
            dtype=str(arrays["dtype"]),
            bias=bool(arrays["bias"]),
            leaky_slope=float(arrays["leaky_slope"]),
            bias_init=str(arrays["bias_init"]) if "bias_init" in arrays else "zeros",
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
        return save_npz(path, self.to_arrays())

    @classmethod
    def load(cls, path: str | os.PathLike) -> MLP:
        """Load a network written by :meth:`save` (no pickle involved)."""
        with np.load(path, allow_pickle=False) as arrays:
            return cls.from_arrays(arrays)

    def __repr__(self) -> str:
        return (
            f"MLP({self.sizes}, activation={self.activation!r}, output={self.output!r}, "
            f"init={self.init!r}, bias_init={self.bias_init!r}, dtype={str(self.dtype)!r}, "
            f"bias={self.bias})"
        )


def save_npz(path: str | os.PathLike, arrays: dict[str, np.ndarray]) -> Path:
    """Write ``arrays`` to ``path`` (``.npz``) under a temporary name, then rename it
    into place: a crash never leaves a half-written file behind."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    return path


def outer_sum(a: np.ndarray, delta: np.ndarray) -> np.ndarray:
    """BP4's weight gradient ``a.T @ delta``: the sum over the samples (rows) of the
    outer products of each sample's ``a`` (m, n_in) and ``delta`` (m, n_out).

    One sample (pure SGD) is its own path: ``a.T @ delta`` is then a single outer
    product, an inner dimension of 1, which ``np.matmul`` does not hand to BLAS and
    computes several times more slowly than ``np.dot`` (for a 784 x 128 layer it
    made a whole SGD step about twice as slow).  For batches ``np.matmul`` is the
    faster of the two.
    """
    if a.shape[0] == 1:
        return np.dot(a.T, delta)
    return a.T @ delta


def match_labels(Y: np.ndarray) -> np.ndarray:
    """Targets ``Y`` (m, k) in the form :func:`n_correct` compares against:
    class indices (m,) for k > 1, a boolean column (m, 1) for k == 1."""
    return Y > 0.5 if Y.shape[1] == 1 else Y.argmax(axis=1)


def n_correct(A: np.ndarray, labels: np.ndarray) -> int:
    """How many rows of outputs ``A`` (m, k) predict ``labels`` (see :func:`match_labels`)."""
    if A.shape[1] == 1:
        return int(np.count_nonzero((A > 0.5) == labels))
    return int(np.count_nonzero(A.argmax(axis=1) == labels))
