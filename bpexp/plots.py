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


# ------------------------------------------------------------ report figures
#: one colour per gradient-descent variant, the same in every figure
VARIANT_COLORS = {"bgd": "#1f77b4", "sgd": "#d62728", "mbgd": "#2ca02c"}
AXIS_LABELS = {
    "epoch": "epochs",
    "updates": "updates (parameter steps)",
    "samples": "samples seen",
    "seconds": "training time (s)",
}


def colors_for(groups) -> dict:
    """Colours for group labels: the variant colours where they apply, else tab10."""
    out, cycle = {}, iter(f"C{i}" for i in range(100))
    for g in groups:
        out[g] = VARIANT_COLORS.get(str(g)) or next(cycle)
    return out


def save(fig: Figure, stem) -> list:
    """Write ``fig`` as ``stem.png`` and ``stem.svg``; return both paths."""
    from pathlib import Path

    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_suffix(".png"), stem.with_suffix(".svg")]
    fig.savefig(paths[0], dpi=120)
    fig.savefig(paths[1])
    return paths


def loss_curves_by_group(
    histories,
    runs,
    group_by: str,
    *,
    x: str = "epoch",
    metric: str = "train_loss",
    points: int = 200,
    title: str | None = None,
) -> Figure:
    """Median loss curve per group with the inter-quartile band across its runs.

    Each run's curve is interpolated (in log-loss) onto a common grid of ``x``;
    a run contributes up to its last point only.  ``x`` is one of epoch,
    updates, samples, seconds.
    """
    curves = histories[histories["metric"] == metric]
    group_of = runs.set_index("run_id")[group_by]
    fig = Figure(figsize=(7, 4.5))
    fig.subplots_adjust(left=0.11, right=0.97, bottom=0.12, top=0.91)
    ax = fig.add_subplot()
    groups = sorted(group_of.dropna().unique(), key=str)
    colors = colors_for(groups)
    for g in groups:
        ids = set(group_of.index[group_of == g])
        per_run = [c for rid, c in curves.groupby("run_id", observed=True) if rid in ids]
        if not per_run:
            continue
        x_max = max(c[x].max() for c in per_run)
        grid = np.linspace(0, x_max, points)
        stack = np.full((len(per_run), points), np.nan)
        for i, c in enumerate(per_run):
            c = c.sort_values(x)
            xs, ys = c[x].to_numpy(float), c["value"].to_numpy(float)
            ok = np.isfinite(ys) & (ys > 0)
            if ok.sum() < 2:
                continue
            xs, ys = xs[ok], np.log10(ys[ok])
            inside = grid <= xs[-1]
            stack[i, inside] = np.interp(grid[inside], xs, ys)
        with np.errstate(all="ignore"):
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns
                q25, med, q75 = np.nanpercentile(stack, [25, 50, 75], axis=0)
        label = f"{group_by}={g} (n={len(per_run)})"
        ax.plot(grid, 10**med, color=colors[g], label=label)
        ax.fill_between(grid, 10**q25, 10**q75, color=colors[g], alpha=0.2, linewidth=0)
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(PLAIN)
    ax.yaxis.set_minor_locator(NullLocator())
    ax.set_xlabel(AXIS_LABELS.get(x, x))
    ax.set_ylabel(f"{metric.replace('_', ' ')} (log scale)")
    ax.set_title(title or f"{metric.replace('_', ' ')} by {group_by}: median and IQR across runs")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def final_loss_vs_lr(
    table,
    *,
    lr: str = "optimizer.lr",
    value: str = "final",
    group_by: str = "optimizer.variant",
    title: str | None = None,
) -> Figure:
    """Median ``value`` (e.g. final loss, or epochs to threshold) against the
    learning rate, one line per group, log axes; diverged runs marked with x at
    the top of the axis."""
    fig = Figure(figsize=(7, 4.5))
    fig.subplots_adjust(left=0.11, right=0.97, bottom=0.12, top=0.91)
    ax = fig.add_subplot()
    groups = sorted(table[group_by].dropna().unique(), key=str)
    colors = colors_for(groups)
    finite_vals = table[value].replace([np.inf, -np.inf], np.nan)
    top = finite_vals.max() if finite_vals.notna().any() else 1.0
    for g in groups:
        t = table[table[group_by] == g]
        ok = t[~t["diverged"].astype(bool)] if "diverged" in t else t
        med = ok.groupby(lr)[value].median().sort_index()
        ax.plot(med.index, med.to_numpy(), "o-", color=colors[g], label=f"{group_by}={g}")
        if "diverged" in t:
            div = t[t["diverged"].astype(bool)]
            if len(div):
                ax.plot(div[lr], [top * 2] * len(div), "x", color=colors[g], markersize=9,
                        label=f"{g}: diverged")  # fmt: skip
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(PLAIN)
    ax.yaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_major_formatter(PLAIN)
    ax.set_xlabel(f"learning rate ({lr})")
    ax.set_ylabel(value.replace("_", " "))
    ax.set_title(title or f"{value.replace('_', ' ')} against learning rate (median over seeds)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def heatmap(table, x: str, y: str, value: str, *, fmt: str = "{:.2g}", title: str | None = None):
    """A grid of ``value`` (already aggregated: one row per (x, y)) over two axes,
    each cell annotated."""
    grid = table.pivot_table(index=y, columns=x, values=value, aggfunc="median")
    fig = Figure(figsize=(1.2 * len(grid.columns) + 2.5, 0.7 * len(grid.index) + 2))
    ax = fig.add_subplot()
    im = ax.imshow(grid.to_numpy(dtype=float), cmap="viridis", aspect="auto", origin="lower")
    ax.set_xticks(range(len(grid.columns)), [str(c) for c in grid.columns])
    ax.set_yticks(range(len(grid.index)), [str(i) for i in grid.index])
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    for (i, j), v in np.ndenumerate(grid.to_numpy(dtype=float)):
        ax.text(j, i, "n/a" if not np.isfinite(v) else fmt.format(v), ha="center", va="center",
                color="white", fontsize=9)  # fmt: skip
    fig.colorbar(im, ax=ax, label=value.replace("_", " "))
    ax.set_title(title or f"{value.replace('_', ' ')} by {y} and {x}")
    fig.tight_layout()
    return fig


def decision_boundary(net, X, y, *, title: str | None = None, resolution: int = 200) -> Figure:
    """For 2-D inputs: the network's output over the plane, its 0.5 contour, and the data."""
    pad = 0.5
    lo, hi = X.min(axis=0) - pad, X.max(axis=0) + pad
    gx, gy = np.meshgrid(
        np.linspace(lo[0], hi[0], resolution), np.linspace(lo[1], hi[1], resolution)
    )
    out = net.feedforward(np.column_stack([gx.ravel(), gy.ravel()]))
    z = (out[:, 0] if out.shape[1] == 1 else out.argmax(axis=1)).reshape(gx.shape)
    fig = Figure(figsize=(5, 4.5))
    ax = fig.add_subplot()
    filled = ax.contourf(gx, gy, z, levels=20, cmap="RdBu_r", alpha=0.8)
    if out.shape[1] == 1:
        ax.contour(gx, gy, z, levels=[0.5], colors="k", linewidths=1.5)
    labels = y[:, 0] if y.shape[1] == 1 else y.argmax(axis=1)
    ax.scatter(X[:, 0], X[:, 1], c=labels, cmap="RdBu_r", edgecolors="k", s=80, zorder=3)
    fig.colorbar(filled, ax=ax, label="network output")
    ax.set_xlabel("x1")
    ax.set_ylabel("x2")
    ax.set_title(title or "decision boundary (output 0.5 contour)")
    fig.tight_layout()
    return fig
