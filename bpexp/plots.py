"""Figures (matplotlib, headless: the object API, no pyplot state)."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, NullLocator

# Plain tick labels: the default log-axis labels (10^k) go through mathtext, whose
# parser costs more than the whole rest of a small figure.
PLAIN = FuncFormatter(lambda v, _: f"{v:g}")


def loss_curve_figure(records: list[dict], title: str | None = None) -> Figure:
    """Training (and validation) loss against epochs, log-scaled, for one run.

    ``records`` are :class:`bpexp.core.History` records (epoch 0 included).
    """
    epochs = np.array([r["epoch"] for r in records])
    fig = Figure(figsize=(6, 4))
    fig.subplots_adjust(left=0.13, right=0.97, bottom=0.12, top=0.92)
    ax = fig.add_subplot()
    for key, label in (("train_loss", "training"), ("val_loss", "validation")):
        values = np.array([r.get(key, np.nan) for r in records], dtype=float)
        # a diverging run: leave a gap where the loss leaves any readable scale
        values[~np.isfinite(values) | (values > 1e100)] = np.nan
        if np.isfinite(values).any():
            ax.plot(epochs, values, label=label)
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(PLAIN)
    ax.yaxis.set_minor_locator(NullLocator())  # each minor tick is an artist to lay out
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss (log scale)")
    ax.set_title(title or "loss curve", fontsize=10)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend()
    return fig
