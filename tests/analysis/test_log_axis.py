"""Every log-scaled axis bpexp draws says what its values are, over any range."""

from __future__ import annotations

import numpy as np
import pytest

from bpexp.plots import loss_curve_figure


def _labels(fig) -> list[str]:
    fig.canvas.draw()  # ticks are placed when the figure is drawn
    (ax,) = fig.axes
    low, high = ax.get_ylim()
    return [
        t.get_text()
        for t, v in zip(ax.get_yticklabels(), ax.get_yticks(), strict=True)
        if low <= v <= high
    ]


@pytest.mark.parametrize(
    ("first", "last", "expected"),
    [
        (0.13, 6.6e-12, ["1e-11", "1e-09", "1e-07", "1e-05", "0.001", "0.1"]),  # 11 decades
        (0.13, 0.004, ["0.005", "0.01", "0.02", "0.05", "0.1"]),  # 1 to 3: 1, 2 and 5
        (0.13, 0.03, ["0.05", "0.1"]),
    ],
)
def test_a_loss_curve_is_labelled_whatever_decades_it_spans(first, last, expected):
    epochs = np.arange(0, 1001)
    losses = first * (last / first) ** (epochs / 1000)
    records = [{"epoch": int(e), "train_loss": float(v)} for e, v in zip(epochs, losses)]
    assert _labels(loss_curve_figure(records)) == expected
