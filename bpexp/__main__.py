"""``python -m bpexp``: train XOR with the core and print the result."""

from __future__ import annotations

import numpy as np

from bpexp.core import MLP, fit


def main() -> None:
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
    Y = np.array([[0], [1], [1], [0]], dtype=float)
    net = MLP([2, 4, 1], activation="sigmoid", output="sigmoid", init="uniform", seed=0)
    h = fit(net, X, Y, variant="bgd", lr=2.0, epochs=10_000, loss_threshold=0.01)
    print(
        f"XOR, 2-4-1 sigmoid, bgd: loss {h.initial['train_loss']:.4f} -> {h.final_loss:.4f}"
        f" in {len(h.records)} epochs (converged={h.converged})"
    )
    print("outputs:", net.forward(X).ravel().round(3).tolist())


if __name__ == "__main__":
    main()
