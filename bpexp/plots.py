"""A run's own figure, and the axis style every figure shares (matplotlib's object
API, headless, no pyplot state).  The comparisons' figures are in
:mod:`bpexp.analysis.plots`."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator

# Plain tick labels: the default log-axis labels (10^k) go through mathtext, whose
# parser costs more than the whole rest of a small figure.
PLAIN = FuncFormatter(lambda v, _: f"{v:g}")


class LogTicks(LogLocator):
    """Ticks at 1, 2 and 5 of each decade over at most three decades (one label a
    decade is too few to read there), at powers of ten over more, one decade in
    two or more when they would crowd.  (LogLocator given several ``subs`` draws
    no tick at all past ten decades: a run's loss from 0.1 to 1e-11 had a bare
    axis.)"""

    def __init__(self) -> None:
        super().__init__(base=10)

    def tick_values(self, vmin: float, vmax: float):
        few = 0 < vmin < vmax <= vmin * 1e3 or 0 < vmax < vmin <= vmax * 1e3
        self.set_params(subs=(1.0, 2.0, 5.0) if few else (1.0,))
        return super().tick_values(vmin, vmax)


def log_axis(axis) -> None:
    """Plain labels on a log-scaled axis (:class:`LogTicks`), no minor ticks (each
    is an artist to lay out)."""
    axis.set_major_locator(LogTicks())
    axis.set_major_formatter(PLAIN)
    axis.set_minor_locator(NullLocator())


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
    log_axis(ax.yaxis)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss (log scale)")
    ax.set_title(title or "loss curve", fontsize=10)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend()
    return fig
