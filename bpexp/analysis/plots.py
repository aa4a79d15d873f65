"""The comparison's figures, each drawn from the tidy frame saved beside it as CSV.

Every figure shows one group per line (the colour key: the variant when it was
swept) and one panel per value of the other swept keys (small multiples), so
nothing is pooled silently.  Numeric keys are ordered as numbers.  Figures are
drawn with matplotlib's object API (no pyplot state).
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import LogLocator
from matplotlib.transforms import blended_transform_factory

from bpexp.analysis.measures import AXIS_LABELS, group_frame
from bpexp.analysis.runs import ordered_values
from bpexp.plots import log_axis

#: one colour per gradient-descent variant, the same in every figure
VARIANT_COLORS = {"bgd": "#1f77b4", "sgd": "#d62728", "mbgd": "#2ca02c"}
#: short names for the keys figures label most
KEY_LABELS = {
    "optimizer.variant": "variant",
    "optimizer.lr": "lr",
    "optimizer.batch_size": "batch",
    "update.name": "update",
    "schedule.name": "schedule",
    "model.activation": "activation",
    "model.init": "init",
    "model.hidden_size": "hidden",
    "model.depth": "depth",
    "dataset.name": "data",
}


def key_label(key: str) -> str:
    return KEY_LABELS.get(key, key)


def group_label(keys: list[str], values) -> str:
    """``"variant=sgd, lr=0.5"`` (an empty list: ``"all runs"``)."""
    if not keys:
        return "all runs"
    return ", ".join(
        f"{key_label(k)}={v:g}" if isinstance(v, float) else f"{key_label(k)}={v}"
        for k, v in zip(keys, values)
    )


def colors_for(values) -> dict:
    """Colours for a key's values: the variant colours where they apply, else tab10."""
    out, cycle = {}, iter(f"C{i}" for i in range(100))
    for v in values:
        out[v] = VARIANT_COLORS.get(str(v)) or next(cycle)
    return out


def save(fig: Figure, stem: Path, data: pd.DataFrame | None = None) -> list[Path]:
    """Write ``fig`` as ``stem.png`` and ``stem.svg``, and ``data`` as ``stem.csv``."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_suffix(".png"), stem.with_suffix(".svg")]
    fig.savefig(paths[0], dpi=110)
    fig.savefig(paths[1])
    if data is not None:
        paths.append(stem.with_suffix(".csv"))
        data.to_csv(paths[-1], index=False)
    return paths


def panels(data: pd.DataFrame, facets: list[str], title: str, *, size=(4.4, 3.3)):
    """A figure with one panel per combination of the ``facets`` keys (up to
    three in a row, four as two by two), sharing their axes.

    Returns the figure and a list of (facet values, the panel's rows, axes).
    """
    groups = group_frame(data, facets)
    n = len(groups)
    cols = n if n <= 3 else 2 if n == 4 else 3
    rows = math.ceil(n / cols)
    width = size[0] * cols + 0.6
    fig = Figure(figsize=(width, size[1] * rows + 1.2), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False, sharex=True, sharey=True)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    fig.suptitle("\n".join(textwrap.wrap(title, int(width * 12))), fontsize=10)
    out = []
    for i, (ax, (keys, rows_)) in enumerate(zip(axes.flat, groups)):
        if facets:
            ax.set_title(group_label(facets, keys), fontsize=9)
        ax.grid(True, alpha=0.3)
        # the lowest panel of each column carries the x tick labels
        ax.xaxis.set_tick_params(labelbottom=i + cols >= n)
        out.append((keys, rows_, ax))
    return fig, out


def _label_axes(cells, xlabel: str, ylabel: str) -> None:
    """The x label under the lowest panel of each column, the y label on the left."""
    n = len(cells)
    cols = cells[0][2].get_gridspec().ncols
    for i, (_, _, ax) in enumerate(cells):
        if i + cols >= n:
            ax.set_xlabel(xlabel)
        if i % cols == 0:
            ax.set_ylabel(ylabel)


def _lines(rows: pd.DataFrame, color: str | None, colors: dict):
    """The panel's rows split by the colour key, in natural order."""
    if color is None:
        return [("all runs", rows, "C0")]
    return [(v, rows[rows[color] == v], colors[v]) for v in ordered_values(rows[color])]


def _legend(fig: Figure, ax, color: str | None) -> None:
    """One legend under the panels, in as many columns as the figure's width holds."""
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        width = max(len(label) for label in labels) * 0.07 + 0.6  # inches per entry
        fig.legend(
            handles,
            labels,
            loc="outside lower center",
            ncols=max(1, min(len(labels), int(fig.get_figwidth() / width))),
            fontsize=8,
            title=key_label(color) if color else None,
            title_fontsize=8,
        )


def ecdf_figure(
    data: pd.DataFrame, *, axis: str, color: str | None, facets: list[str], title: str
) -> Figure:
    """Runtime distributions (:func:`bpexp.analysis.measures.ecdf`): the fraction of
    runs that reached the target against ``axis`` (log scale), one step line per
    colour value; each line ends (a bar) where its group's budget ends, at its
    success rate."""
    fig, cells = panels(data, facets, title)
    colors = colors_for(ordered_values(data[color])) if color else {}
    positive = data.loc[data["x"] > 0, "x"]
    left = positive.min() / 1.5 if len(positive) else 1.0
    for _, rows, ax in cells:
        lines = _lines(rows, color, colors)
        ends: list[float] = []
        for i, (value, line, c) in enumerate(lines):
            x = np.maximum(line["x"].to_numpy(float), left)
            frac = line["fraction"].to_numpy(float)
            n = int(line["runs"].iloc[0])
            # wider lines first, so that groups with equal fractions all stay visible
            ax.step(
                x,
                frac,
                where="post",
                color=c,
                label=str(value),
                linewidth=1.2 + 1.6 * (len(lines) - 1 - i) / max(len(lines) - 1, 1),
            )
            # the end labels of groups that end level are stacked, not drawn over each other
            shift = 9 * sum(abs(frac[-1] - e) < 0.05 for e in ends)
            ends.append(frac[-1])
            ax.plot(x[-1], frac[-1], "|", color=c, markersize=8)  # the group's budget ends
            ax.annotate(
                f"{frac[-1]:.0%} of {n}",
                (x[-1], frac[-1]),
                fontsize=7,
                color=c,
                xytext=(2, -shift),
                textcoords="offset points",
                va="center",
            )
        ax.set_xscale("log")
        log_axis(ax.xaxis)
        ax.set_ylim(-0.03, 1.03)
        ax.set_xlim(left / 1.2, data["x"].max() * 2.5)  # room for the end labels
    _label_axes(cells, AXIS_LABELS[axis], "fraction of runs at target")
    if color is not None:  # one line: the title says what it is
        _legend(fig, cells[0][2], color)
    return fig


def curves_figure(
    data: pd.DataFrame,
    *,
    axis: str,
    metric: str,
    color: str | None,
    facets: list[str],
    title: str,
    target: float | None = None,
) -> Figure:
    """Median ``metric`` over every run of a group against ``axis``, with the
    inter-quartile band (groups of two or more runs), from
    :func:`bpexp.analysis.measures.carried_curves`; ``target`` a dashed line."""
    fig, cells = panels(data, facets, title)
    colors = colors_for(ordered_values(data[color])) if color else {}
    log_y = metric.endswith("loss")
    for _, rows, ax in cells:
        for value, line, c in _lines(rows, color, colors):
            x = line["x"].to_numpy(float)
            finite = {
                q: line[q].replace([np.inf, -np.inf], np.nan).to_numpy(float)
                for q in ("q25", "median", "q75")
            }
            n = int(line["runs"].iloc[0])
            ax.plot(x, finite["median"], color=c, label=f"{value} (n={n})" if color else f"n={n}")
            if n > 1:
                top = np.where(np.isinf(line["q75"]), np.nanmax(finite["q75"]) * 10, finite["q75"])
                ax.fill_between(x, finite["q25"], top, color=c, alpha=0.18, linewidth=0)
        if target is not None:
            ax.axhline(target, color="0.4", linestyle="--", linewidth=1, label="target")
        if log_y:
            ax.set_yscale("log")
            log_axis(ax.yaxis)
    _label_axes(cells, AXIS_LABELS[axis], metric.replace("_", " ") + (" (log)" if log_y else ""))
    _legend(fig, cells[0][2], color)
    return fig


def _dodge(x: np.ndarray, i: int, k: int) -> np.ndarray:
    """``x`` shifted sideways by a few per cent on a log axis, so that the ``k``
    lines of a panel stay visible where they coincide (line ``i``)."""
    return x * 10 ** (0.012 * (i - (k - 1) / 2))


def lr_figure(
    data: pd.DataFrame,
    *,
    lr: str,
    y: str,
    color: str | None,
    facets: list[str],
    title: str,
    ylabel: str,
) -> Figure:
    """A measure of each group against the learning rate (log x), one line per
    colour value, points dodged sideways by a few per cent where lines coincide.

    ``y="time"``: the median time to target with the inter-quartile band over
    seeds (failures infinite); a group whose median is infinite (more than half
    of its runs failed) is an ``x`` in a "not reached" row at the top.
    ``y="success"``: the success rate with its 95% Wilson interval.
    """
    fig, cells = panels(data, facets, title)
    colors = colors_for(ordered_values(data[color])) if color else {}
    if y == "time":
        finite = pd.concat([data["median"], data["q75"]]).replace(np.inf, np.nan).dropna()
        ceiling = finite.max() * 1.6 if len(finite) else 10.0
        not_reached = ceiling * 1.6
        low = pd.concat([data["q25"], data["median"]]).replace(np.inf, np.nan).dropna()
        floor = max(low.min() / 1.5, 1e-12) if len(low) else 1.0
    for _, rows, ax in cells:
        lines = _lines(rows, color, colors)
        for i, (value, line, c) in enumerate(lines):
            line = line.sort_values(lr)
            x = _dodge(line[lr].to_numpy(float), i, len(lines))
            if y == "success":
                rate = line["success_rate"].to_numpy(float)
                err = np.vstack([rate - line["success_low"], line["success_high"] - rate])
                ax.errorbar(x, rate, yerr=err, color=c, marker="o", capsize=3, label=str(value))
                continue
            med = line["median"].to_numpy(float)
            ok = np.isfinite(med)
            ax.plot(x[ok], med[ok], "o-", color=c, label=str(value))
            q75 = np.minimum(line["q75"].to_numpy(float), ceiling)  # an infinite quartile: up
            ax.fill_between(
                x[ok], line["q25"].to_numpy(float)[ok], q75[ok], color=c, alpha=0.18, linewidth=0
            )
            ax.plot(
                x[~ok],
                np.full((~ok).sum(), not_reached),
                "x",
                color=c,
                markersize=9,
                markeredgewidth=2,
            )
        ax.set_xscale("log")
        log_axis(ax.xaxis)
        if y == "success":
            ax.set_ylim(-0.03, 1.05)
        else:
            ax.set_yscale("log")
            log_axis(ax.yaxis)
            # the "not reached" row above every time: no tick of a time inside it
            ax.set_ylim(floor, not_reached * 1.5)
            ax.set_yticks(
                [
                    t
                    for t in LogLocator(subs=(1, 2, 5)).tick_values(floor, ceiling)
                    if floor <= t <= ceiling
                ]
            )
            ax.axhspan(ceiling, not_reached * 1.5, color="0.92", zorder=0)
            ax.text(
                0.99,
                ceiling * 1.05,
                "not reached",
                transform=blended_transform_factory(ax.transAxes, ax.transData),
                fontsize=7,
                ha="right",
                va="bottom",
                color="0.3",
            )
    _label_axes(cells, f"learning rate ({lr})", ylabel)
    if color is not None:
        _legend(fig, cells[0][2], color)
    return fig


def heatmap_figure(data: pd.DataFrame, *, x: str, y: str, facets: list[str], title: str) -> Figure:
    """The success rate over two keys (one panel per value of the rest), each cell
    annotated with successes out of runs."""
    fig, cells = panels(
        data, facets, title, size=(1.0 * data[x].nunique() + 2.0, 0.6 * data[y].nunique() + 1.6)
    )
    xs, ys = ordered_values(data[x]), ordered_values(data[y])
    image = None
    for _, rows, ax in cells:
        grid = np.full((len(ys), len(xs)), np.nan)
        text = {}
        for r in rows.to_dict("records"):
            i, j = ys.index(r[y]), xs.index(r[x])
            grid[i, j] = r["success_rate"]
            text[i, j] = f"{r['successes']}/{r['runs']}"
        image = ax.imshow(grid, cmap="viridis", vmin=0, vmax=1, aspect="auto", origin="lower")
        ax.set_xticks(range(len(xs)), [f"{v:g}" if isinstance(v, float) else str(v) for v in xs])
        ax.set_yticks(range(len(ys)), [f"{v:g}" if isinstance(v, float) else str(v) for v in ys])
        ax.grid(False)
        for (i, j), label in text.items():
            ax.text(
                j,
                i,
                label,
                ha="center",
                va="center",
                fontsize=8,
                color="white" if grid[i, j] < 0.6 else "black",
            )
        ax.set_xlabel(key_label(x))
        ax.set_ylabel(key_label(y))
    if image is not None:
        fig.colorbar(image, ax=[ax for _, _, ax in cells], label="success rate", shrink=0.8)
    return fig


def decision_boundary(net, X, y, *, title: str | None = None, resolution: int = 200):
    """For 2-D inputs: the network's output over the plane, its 0.5 contour, and the data.

    Returns the figure and the grid drawn (columns ``x1``, ``x2``, ``output``).
    """
    pad = 0.5
    lo, hi = X.min(axis=0) - pad, X.max(axis=0) + pad
    gx, gy = np.meshgrid(
        np.linspace(lo[0], hi[0], resolution), np.linspace(lo[1], hi[1], resolution)
    )
    out = net.feedforward(np.column_stack([gx.ravel(), gy.ravel()]))
    z = (out[:, 0] if out.shape[1] == 1 else out.argmax(axis=1)).reshape(gx.shape)
    fig = Figure(figsize=(5, 4.5), layout="constrained")
    ax = fig.add_subplot()
    filled = ax.contourf(gx, gy, z, levels=20, cmap="RdBu_r", alpha=0.8)
    if out.shape[1] == 1:
        ax.contour(gx, gy, z, levels=[0.5], colors="k", linewidths=1.5)
    labels = y[:, 0] if y.shape[1] == 1 else y.argmax(axis=1)
    ax.scatter(X[:, 0], X[:, 1], c=labels, cmap="RdBu_r", edgecolors="k", s=80, zorder=3)
    fig.colorbar(filled, ax=ax, label="network output")
    ax.set_xlabel("x1")
    ax.set_ylabel("x2")
    title = title or "decision boundary (output 0.5 contour)"
    ax.set_title("\n".join(textwrap.wrap(title, 55)), fontsize=9)
    grid = pd.DataFrame({"x1": gx.ravel(), "x2": gy.ravel(), "output": z.ravel()})
    return fig, grid
