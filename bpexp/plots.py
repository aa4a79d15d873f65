"""Figures (matplotlib, headless: the object API, no pyplot state)."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure


def loss_curve_figure(records: list[dict], title: str | None = None) -> Figure:
    """Training (and validation) loss against epochs, log-scaled, for one run.

    ``records`` are :class:`bpexp.core.History` records (epoch 0 included).
    """
    epochs = np.array([r["epoch"] for r in records])
    fig = Figure(figsize=(6, 4), layout="constrained")
    ax = fig.subplots()
    for key, label in (("train_loss", "training"), ("val_loss", "validation")):
        values = np.array([r.get(key, np.nan) for r in records], dtype=float)
        values[~np.isfinite(values)] = np.nan  # a diverged run: leave a gap, not inf
        if np.isfinite(values).any():
            ax.plot(epochs, values, label=label)
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss (log scale)")
    ax.set_title(title or "loss curve")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    return fig
