"""``python -m bpexp.report``: tables and figures for a sweep, with an index.

    python -m bpexp.report --experiment xor-variants --out reports/xor-variants
    python -m bpexp.report --parent RUN_ID --x samples --relative 0.05

Writes into ``--out``: ``runs.csv`` (one row per run with its convergence
measures), ``comparison.csv`` and ``comparison.md`` (grouped across seeds),
figures as PNG and SVG (loss curves on each x-axis, final loss against learning
rate, a success-rate heatmap, a decision boundary for 2-D data), and
``index.md`` showing them together.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from bpexp import plots
from bpexp.analysis import (
    AXES,
    NoRunsError,
    compare,
    convergence,
    load_histories,
    load_runs,
    runs_with_convergence,
    to_markdown,
    varied_axes,
)

MEASURES = (
    "epoch_to_threshold",
    "updates_to_threshold",
    "samples_to_threshold",
    "seconds_to_threshold",
    "final",
    "auc_log_loss",
)


def _threshold(runs: pd.DataFrame, threshold, relative) -> tuple[float | None, float | None, str]:
    """The target: given, else the runs' common trainer.loss_threshold, else 1% of
    each run's initial loss."""
    if threshold is not None or relative is not None:
        return (
            threshold,
            relative,
            (
                f"loss <= {threshold:g}"
                if threshold is not None
                else f"loss <= {relative:g} x initial"
            ),
        )
    if "trainer.loss_threshold" in runs:
        common = runs["trainer.loss_threshold"].dropna().unique()
        if len(common) == 1:
            return (
                float(common[0]),
                None,
                f"loss <= {common[0]:g} (the runs' trainer.loss_threshold)",
            )
    return None, 0.01, "loss <= 0.01 x initial (default)"


def comparison_table(table: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Every measure of :data:`MEASURES` aggregated across seeds, long form."""
    frames = []
    for measure in MEASURES:
        c = compare(table, by, measure)
        c.insert(len(by), "measure", measure)
        frames.append(c)
    return pd.concat(frames, ignore_index=True)


def _fmt(med, q25, q75) -> str:
    if not np.isfinite(med):
        return "n/a"
    return f"{med:.4g} [{q25:.3g}, {q75:.3g}]"


def comparison_markdown(long: pd.DataFrame, by: list[str]) -> str:
    """One row per group: runs, success rate, then median [IQR] of each measure."""
    rows = []
    for keys, g in long.groupby(by, dropna=False, sort=True):
        keys = keys if isinstance(keys, tuple) else (keys,)
        row = dict(zip(by, keys, strict=True))
        first = g.iloc[0]
        row["runs"] = int(first["n"])
        row["success rate"] = f"{first.get('success_rate', math.nan):.0%}"
        for _, m in g.iterrows():
            row[m["measure"].replace("_", " ")] = _fmt(m["median"], m["q25"], m["q75"])
        rows.append(row)
    return to_markdown(pd.DataFrame(rows))


def build_report(
    *,
    experiment: str | None = None,
    parent: str | None = None,
    tracking_uri: str | None = None,
    out: str | Path = "report",
    threshold: float | None = None,
    relative: float | None = None,
    group_by: list[str] | None = None,
    x: str = "epoch",
    log_to_parent: bool = False,
    title: str | None = None,
) -> Path:
    """Write the report (see the module docstring); returns the path of ``index.md``.

    Raises
    ------
    NoRunsError
        When the experiment or sweep has no runs.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    runs = load_runs(experiment, parent=parent, tracking_uri=tracking_uri)
    histories = load_histories(runs, tracking_uri=tracking_uri)
    thr, rel, target = _threshold(runs, threshold, relative)
    conv = convergence(histories, threshold=thr, relative=rel)
    table = runs_with_convergence(runs, conv)
    by = group_by or varied_axes(runs) or ["optimizer.variant"]
    primary = by[0]
    table.drop(columns=["artifact_uri"]).to_csv(out / "runs.csv", index=False)
    long = comparison_table(table, by)
    long.to_csv(out / "comparison.csv", index=False)
    md_table = comparison_markdown(long, by)
    (out / "comparison.md").write_text(md_table + "\n")

    figures: list[tuple[str, str]] = []
    for axis in AXES:
        fig = plots.loss_curves_by_group(histories, runs, primary, x=axis)
        plots.save(fig, out / f"loss_curves_{axis}")
        figures.append(
            (f"loss_curves_{axis}.png", f"Training loss against {plots.AXIS_LABELS[axis]}")
        )
    if "optimizer.lr" in table and table["optimizer.lr"].nunique() > 1:
        lines = "optimizer.variant" if table["optimizer.variant"].nunique() > 1 else primary
        fig = plots.final_loss_vs_lr(table, value="final", group_by=lines)
        plots.save(fig, out / "final_loss_vs_lr")
        figures.append(("final_loss_vs_lr.png", "Final loss against the learning rate"))
    if len(by) >= 2:
        rates = compare(table, by[:2], "final")
        fig = plots.heatmap(rates, x=by[0], y=by[1], value="success_rate", fmt="{:.0%}")
        plots.save(fig, out / "success_heatmap")
        figures.append(("success_heatmap.png", f"Success rate ({target}) by {by[1]} and {by[0]}"))
    boundary = _decision_boundary(table, tracking_uri, out)
    if boundary:
        figures.append(boundary)

    what = f"experiment `{experiment}`" if experiment else f"sweep `{parent}`"
    statuses = runs["status"].value_counts()
    lines = [
        f"# {title or 'Convergence report'}: {what}",
        "",
        f"{len(runs)} runs ({', '.join(f'{v} {k}' for k, v in statuses.items())}); "
        f"grouped by {', '.join(f'`{b}`' for b in by)} across seeds; "
        f"a run succeeds when it reaches {target}.",
        "",
        "Measures are medians with the inter-quartile range across the runs of a group. "
        "`epoch`, `updates`, `samples`, `seconds` to threshold put the variants on the same "
        "footing: BGD makes one update per epoch, SGD one per sample. `auc log loss` is the "
        "mean of log10(loss) over the epochs run (lower is better).",
        "",
        md_table,
        "",
        "Tables: [comparison.csv](comparison.csv) (every statistic), "
        "[runs.csv](runs.csv) (every run).",
        "",
    ]
    for path, caption in figures:
        lines += [f"## {caption}", "", f"![{caption}]({path})", ""]
    index = out / "index.md"
    index.write_text("\n".join(lines))

    if log_to_parent:
        parents = table["parent_run_id"].dropna().unique() if parent is None else [parent]
        if len(parents) == 1:
            from bpexp.analysis import _client

            _client(tracking_uri).log_artifacts(parents[0], str(out), artifact_path="report")
    return index


def _decision_boundary(table: pd.DataFrame, tracking_uri, out: Path):
    """For 2-D data, the decision boundary of the best finished run's final weights."""
    done = table[(table["status"] == "FINISHED") & table["final"].notna()]
    if done.empty or "dataset.name" not in done or done["dataset.name"].iloc[0] not in ("xor",):
        return None
    from bpexp.analysis import _client
    from bpexp.core import MLP
    from bpexp.data import load_dataset

    best = done.sort_values("final").iloc[0]
    try:
        path = _client(tracking_uri).download_artifacts(best["run_id"], "weights.npz")
    except Exception:
        return None
    net = MLP.load(path)
    data = load_dataset("xor")
    fig = plots.decision_boundary(
        net,
        data.X_train,
        data.y_train,
        title=f"best run {best['run_name']} (loss {best['final']:.2g})",
    )
    plots.save(fig, out / "decision_boundary")
    return ("decision_boundary.png", "Decision boundary of the best run's final weights")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bpexp.report", description=__doc__.splitlines()[0])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--experiment", help="MLflow experiment name")
    src.add_argument("--parent", help="a sweep's parent run id")
    ap.add_argument(
        "--tracking-uri", help="default: $MLFLOW_TRACKING_URI, else sqlite:///./mlflow.db"
    )
    ap.add_argument("--out", default=None, help="output directory (default: report/<name>)")
    thr = ap.add_mutually_exclusive_group()
    thr.add_argument("--threshold", type=float, help="absolute loss to reach")
    thr.add_argument("--relative", type=float, help="fraction of each run's initial loss to reach")
    ap.add_argument(
        "--group-by", nargs="+", help="config keys to group by (default: the swept ones)"
    )
    ap.add_argument(
        "--log-to-parent", action="store_true", help="log the report to the sweep's parent run"
    )
    args = ap.parse_args(argv)
    out = args.out or f"report/{args.experiment or args.parent}"
    try:
        index = build_report(
            experiment=args.experiment,
            parent=args.parent,
            tracking_uri=args.tracking_uri,
            out=out,
            threshold=args.threshold,
            relative=args.relative,
            group_by=args.group_by,
            log_to_parent=args.log_to_parent,
        )
    except (NoRunsError, KeyError) as exc:
        print(f"bpexp.report: error: {exc.args[0] if exc.args else exc}", file=sys.stderr)
        return 1
    print(f"report written: {index}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
