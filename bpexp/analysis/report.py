"""``python -m bpexp.report``: which variant reaches the target first, for one sweep.

    python -m bpexp.report                              # the newest sweep in the store
    python -m bpexp.report --study xor_variants         # a study's newest sweep, its settings
    python -m bpexp.report --parent RUN_ID --target val_accuracy=0.9
    python -m bpexp.report --sweep-dir multirun/2026-12-07/10-00-00-ab12cd

Writes into ``--out`` (default ``reports/<experiment>/<sweep>``): ``summary.md`` and
``summary.csv`` (per group: runs, seeds, success rate with its 95% interval,
time to target on four x-axes, final loss and accuracy), ``runs.csv`` (every
run with its measures), figures as PNG and SVG each with the CSV it was drawn
from (runtime distributions, loss curves, time to target and success against
the learning rate, a success heatmap, a decision boundary for XOR), and
``index.md`` showing them together.
"""

from __future__ import annotations

import argparse
import math
import re
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from bpexp.analysis import plots
from bpexp.analysis.measures import (
    AXIS_LABELS,
    OUTCOMES,
    TO_TARGET,
    Target,
    carried_curves,
    describe_targets,
    ecdf,
    parse_target,
    summarize,
    with_measures,
)
from bpexp.analysis.runs import (
    AXES,
    NoRunsError,
    Selection,
    load_histories,
    select_runs,
    swept_keys,
)
from bpexp.tracking.names import LAUNCHER

#: where reports go unless ``--out`` says otherwise (ignored by git)
REPORTS_DIR = Path("reports")


class ReportError(ValueError):
    """A report that cannot be made as asked; the message says what to change."""


@dataclass
class Settings:
    """How a report judges its runs: the targets, the main x-axis, the title.

    ``source`` says where the targets came from, for the report's text.
    """

    targets: list[Target]
    source: str
    x: str = "epoch"
    title: str | None = None
    group_by: list[str] | None = None
    notes: list[str] = field(default_factory=list)


def _targets_from(node, where: str) -> list[Target]:
    """``{metric: value, ...}`` (a study's ``report.target``) as targets."""
    try:
        return [Target(str(k), float(v)) for k, v in dict(node).items()]
    except (TypeError, ValueError) as exc:
        raise ReportError(f"{where}: report.target: {exc}") from None


def study_config(name: str):
    """``conf/experiment/NAME.yaml`` as a plain config (no composition needed)."""
    from omegaconf import OmegaConf

    from bpexp.app import CONF_DIR

    path = CONF_DIR / "experiment" / f"{name}.yaml"
    if not path.is_file():
        studies = sorted(p.stem for p in (CONF_DIR / "experiment").glob("*.yaml"))
        raise ReportError(f"no study {name!r}; studies: {', '.join(studies)}")
    return OmegaConf.load(path)


def settings_for(
    runs: pd.DataFrame,
    *,
    targets: list[str] | None = None,
    study: str | None = None,
    x: str | None = None,
    title: str | None = None,
    group_by: list[str] | None = None,
) -> Settings:
    """The report's settings: what is given, else the study's ``report:`` node, else
    what the runs logged (``report.*`` params from their study, else their common
    ``trainer.loss_threshold`` as a training-loss target).

    Raises
    ------
    ReportError
        When no target can be found, or a loss target lies below where the runs
        stopped (they could not have reached it).
    """
    node: dict = {}
    where = ""
    if study is not None:
        node = dict(study_config(study).get("report") or {})
        where = f"study {study}, conf/experiment/{study}.yaml"
    else:
        logged = {
            k[len("report.") :]: runs[k].dropna().iloc[0]
            for k in runs
            if k.startswith("report.") and runs[k].notna().any()
        }
        if logged:
            node = {k: v for k, v in logged.items() if "." not in k}
            node["target"] = {
                k.split(".", 1)[1]: v for k, v in logged.items() if k.startswith("target.")
            }
            where = "the study's settings logged with the runs"
    if targets:
        parsed, source = [parse_target(t) for t in targets], "--target"
    elif node.get("target"):
        parsed, source = _targets_from(node["target"], where), where
    else:
        parsed, source = _threshold_target(runs)
    stops = runs["trainer.loss_threshold"].dropna() if "trainer.loss_threshold" in runs else []
    for t in parsed:
        if t.metric == "train_loss" and len(stops) and t.value < stops.max():
            raise ReportError(
                f"target {t} is below where runs stopped (trainer.loss_threshold = "
                f"{stops.max():g}): they could not reach it; choose train_loss={stops.max():g} "
                "or more, or sweep again with a lower trainer.loss_threshold"
            )
    x = x or node.get("x") or "epoch"
    if x not in AXES:
        raise ReportError(f"x-axis {x!r}: must be one of {', '.join(AXES)}")
    notes = []
    if len(stops) and any(t.metric != "train_loss" for t in parsed):
        notes.append(
            f"runs stopped once their training loss reached trainer.loss_threshold "
            f"({stops.max():g}); a run that stopped there before reaching the other targets "
            "counts as not reaching them"
        )
    return Settings(
        targets=parsed,
        source=source,
        x=x,
        title=title or node.get("title"),
        group_by=group_by or (list(node["group_by"]) if node.get("group_by") else None),
        notes=notes,
    )


def _threshold_target(runs: pd.DataFrame) -> tuple[list[Target], str]:
    if "trainer.loss_threshold" in runs:
        common = runs["trainer.loss_threshold"].dropna().unique()
        if len(common) == 1:
            return [Target("train_loss", float(common[0]))], "the runs' trainer.loss_threshold"
    raise ReportError(
        "no target: these runs have no common trainer.loss_threshold and no study settings; "
        "give one, e.g. --target train_loss=0.01 or --target val_accuracy=0.9"
    )


def layout(runs: pd.DataFrame, settings: Settings) -> tuple[list[str], str | None, list[str]]:
    """The groups and how figures show them: ``(by, color, facets)``.

    ``by`` is every swept key (or ``settings.group_by``); lines are coloured by
    the variant when it was swept, else by the first key; each combination of
    the other keys gets its own panel.
    """
    by = settings.group_by or swept_keys(runs)
    missing = [k for k in by if k not in runs]
    if missing:
        raise ReportError(f"--group-by {', '.join(missing)}: not a param of these runs")
    return (by, *layout_of(by))


def layout_of(keys: list[str]) -> tuple[str | None, list[str]]:
    """``(color, facets)`` for ``keys``: the variant colours the lines when it is
    among them, else the first key; the others get a panel each."""
    color = "optimizer.variant" if "optimizer.variant" in keys else (keys[0] if keys else None)
    return color, [k for k in keys if k != color]


# ----------------------------------------------------------------- tables
def _number(v: float, axis: str | None = None) -> str:
    if isinstance(v, float) and math.isinf(v):
        return "not reached"
    if not isinstance(v, (int, float)) or math.isnan(v):
        return "n/a"
    if axis in ("epoch", "updates", "samples"):
        return f"{v:,.0f}"
    return f"{v:.3g}"


def _spread(row, stem: str, axis: str | None = None) -> str:
    """``median [q25, q75]``, or the value alone for a group of one run."""
    med = row[f"{stem}_median"]
    if row["runs"] <= 1 or math.isinf(med):
        return _number(med, axis)
    return (
        f"{_number(med, axis)} [{_number(row[f'{stem}_q25'], axis)}, "
        f"{_number(row[f'{stem}_q75'], axis)}]"
    )


def summary_markdown(summary: pd.DataFrame, by: list[str]) -> str:
    """The summary as the report shows it: one row per group."""
    rows = []
    for r in summary.to_dict("records"):
        row = {plots.key_label(k): r[k] for k in by}
        row["runs"] = f"{r['runs']}" + (
            f" (+{r['unfinished']} unfinished)" if r["unfinished"] else ""
        )
        row["seeds"] = r["seeds"]
        rate = f"{r['successes']}/{r['runs']}"
        if r["runs"]:
            rate += f" = {r['success_rate']:.0%} [{r['success_low']:.0%}, {r['success_high']:.0%}]"
        row["success [95% CI]"] = rate
        for axis in AXES:
            row[f"{AXIS_LABELS[axis].split(' (')[0]} to target"] = _spread(r, axis, axis)
        row["final train loss"] = _spread(r, "final_loss")
        if "final_accuracy_median" in r:
            row["final accuracy"] = _spread(r, "final_accuracy")
        failures = [f"{r[o]} {o}" for o in OUTCOMES[1:-1] if r.get(o)]
        row["failures"] = ", ".join(failures) or "none"
        rows.append(row)
    return pd.DataFrame(rows).to_markdown(index=False)


# ---------------------------------------------------------------- the report
def _slug(text: str) -> str:
    """A path component made of ``text``: never a separator, ``..``, hidden or absolute."""
    return re.sub(r"[^A-Za-z0-9._=-]+", "-", str(text)).strip(".-") or "report"


def default_out(selection: Selection, all_sweeps: bool = False) -> Path:
    """``reports/<experiment>/<sweep>``: one directory per sweep report.

    Both parts are made safe (:func:`_slug`), so whatever an experiment is
    called (``../../x``, ``/etc``) its report stays under :data:`REPORTS_DIR`.
    """
    experiment = _slug(selection.runs["experiment_name"].iloc[0])
    if all_sweeps or len(selection.parents) != 1:
        return REPORTS_DIR / experiment / "all-runs"
    return REPORTS_DIR / experiment / _slug(selection.parents[0][:8])


def build_report(
    selection: Selection, settings: Settings, out: str | Path, *, log_to_parent: bool = False
) -> Path:
    """Write the report (module docstring) into ``out``; returns ``out/index.md``.

    The report is written into a new directory and moved into place once
    complete: ``out`` holds a whole report or is left as it was.
    """
    out = Path(out)
    runs = selection.runs
    histories = load_histories(runs, tracking_uri=selection.tracking_uri)
    table = with_measures(runs, histories, settings.targets)
    by, color, facets = layout(runs, settings)
    summary = summarize(table, by)
    target = describe_targets(settings.targets)
    study = settings.title or runs["experiment_name"].iloc[0]

    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        figures = _figures(
            work, table, histories, summary, by, color, facets, settings, study, selection
        )
        table.drop(columns=["artifact_uri"]).to_csv(work / "runs.csv", index=False)
        summary.insert(len(by), "target", target)
        summary.to_csv(work / "summary.csv", index=False)
        md = summary_markdown(summary, by)
        (work / "summary.md").write_text(f"Target: {target} (from {settings.source})\n\n{md}\n")
        (work / "index.md").write_text(
            _index(selection, settings, table, summary, by, target, study, md, figures)
        )
        if out.exists():
            old = out.with_name(f".{out.name}-old")
            shutil.rmtree(old, ignore_errors=True)
            out.rename(old)
            work.rename(out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            work.rename(out)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    if log_to_parent and len(selection.parents) == 1:
        from bpexp.analysis.runs import client

        client(selection.tracking_uri).log_artifacts(selection.parents[0], str(out), "report")
    return out / "index.md"


@dataclass
class Drawn:
    """A figure of the report: its file stem, heading and caption in the index."""

    name: str
    heading: str
    caption: str


def _save(out: Path, name: str, fig, data: pd.DataFrame, heading: str, caption: str) -> Drawn:
    plots.save(fig, out / name, data)
    return Drawn(name, heading, caption)


def _figures(out, table, histories, summary, by, color, facets, settings, study, selection):
    """Draw every figure with the CSV it is drawn from; returns them for the index."""
    target = describe_targets(settings.targets)
    pooled = "" if by else " (every run in one group)"
    made = []
    for axis in AXES:
        data = ecdf(table, by, axis)
        title = f"{study}: fraction of runs reaching {target}, by {AXIS_LABELS[axis]}{pooled}"
        fig = plots.ecdf_figure(data, axis=axis, color=color, facets=facets, title=title)
        made.append(
            _save(
                out,
                f"ecdf_{axis}",
                fig,
                data,
                f"Runs reaching {target} by {AXIS_LABELS[axis]}",
                "Each line is a group's runtime distribution: the fraction of its runs (every "
                "seed, failures counted as never reaching the target) that reached the target by "
                "x, so each line ends at the group's success rate (printed at its end), where its "
                "budget of epochs ends (a bar).",
            )
        )
    metrics = ["train_loss"] + [t.metric for t in settings.targets if t.metric != "train_loss"]
    for metric in dict.fromkeys(metrics):
        line = next((t.value for t in settings.targets if t.metric == metric), None)
        for axis in AXES if metric == "train_loss" else (settings.x,):
            data = carried_curves(table, histories, by, metric=metric, axis=axis)
            if data.empty:
                continue
            what = metric.replace("_", " ")
            title = f"{study}: {what} by {AXIS_LABELS[axis]}, median and IQR over every run{pooled}"
            fig = plots.curves_figure(
                data, axis=axis, metric=metric, color=color, facets=facets, title=title, target=line
            )
            made.append(
                _save(
                    out,
                    f"curves_{metric}_{axis}",
                    fig,
                    data,
                    f"{what.capitalize()} by {AXIS_LABELS[axis]}",
                    "Median and inter-quartile band over every run of a group. A run that "
                    "stopped (at its threshold, or diverged) keeps its last value to the end of "
                    "the axis, so no curve is a median over only the runs still going; the "
                    f"target ({target}) is dashed.",
                )
            )
    lr = "optimizer.lr"
    if lr in by and table[lr].nunique() > 1:
        # the learning rate is the x-axis: lines and panels are the other swept keys
        lr_color, lr_facets = layout_of([k for k in by if k != lr])
        x = settings.x
        data = summary[[*by, "runs", f"{x}_q25", f"{x}_median", f"{x}_q75"]]
        data = data.rename(columns={f"{x}_{q}": q for q in ("q25", "median", "q75")})
        fig = plots.lr_figure(
            data,
            lr=lr,
            y="time",
            color=lr_color,
            facets=lr_facets,
            ylabel=f"{AXIS_LABELS[x]} to target",
            title=f"{study}: {AXIS_LABELS[x]} to reach {target} against the learning rate "
            "(median and IQR over seeds; x: more than half never reached it)",
        )
        made.append(
            _save(
                out,
                "lr_time_to_target",
                fig,
                data,
                f"{AXIS_LABELS[x].capitalize()} to target against the learning rate",
                "Median over every run of a group, failures counted as never reaching the target, "
                "with the inter-quartile band; a group whose median is not reached is an x in the "
                "grey row at the top.",
            )
        )
        data = summary[[*by, "runs", "successes", "success_rate", "success_low", "success_high"]]
        fig = plots.lr_figure(
            data,
            lr=lr,
            y="success",
            color=lr_color,
            facets=lr_facets,
            ylabel="success rate",
            title=f"{study}: success rate ({target}) against the "
            "learning rate, with 95% Wilson intervals",
        )
        made.append(
            _save(
                out,
                "lr_success",
                fig,
                data,
                "Success rate against the learning rate",
                "The fraction of a group's runs that succeeded (reached the target, did not "
                "diverge, learnt above chance), with its 95% Wilson interval.",
            )
        )
    if len(by) >= 2:
        data = summary[[*by, "runs", "successes", "success_rate"]]
        fig = plots.heatmap_figure(
            data, x=by[1], y=by[0], facets=by[2:], title=f"{study}: success rate ({target})"
        )
        made.append(
            _save(
                out,
                "success_heatmap",
                fig,
                data,
                f"Success rate by {plots.key_label(by[0])} and {plots.key_label(by[1])}",
                "Each cell: successes out of runs"
                + (
                    f", one panel per {', '.join(plots.key_label(k) for k in by[2:])}."
                    if by[2:]
                    else "."
                ),
            )
        )
    boundary = _decision_boundary(table, selection, settings.x)
    if boundary is not None:
        made.append(
            _save(
                out,
                "decision_boundary",
                *boundary,
                "Decision boundary of the fastest successful run",
                "The network's output over the plane after training, its 0.5 contour (black) "
                "and the four XOR points.",
            )
        )
    return made


def _decision_boundary(table: pd.DataFrame, selection: Selection, x: str):
    """For XOR: the figure and grid of the fastest successful run's final weights."""
    if table.get("dataset.name", pd.Series(dtype=object)).ne("xor").any():
        return None
    done = table[table["success"]].sort_values(TO_TARGET[x])
    if done.empty:
        done = table[table["status"].eq("FINISHED")].sort_values("final_loss")
    if done.empty:
        return None
    from bpexp.analysis.runs import client
    from bpexp.core import MLP
    from bpexp.data import load_dataset
    from bpexp.tracking.names import WEIGHTS
    from bpexp.tracking.store import download_artifact

    best = done.iloc[0]
    path = download_artifact(client(selection.tracking_uri), best["run_id"], WEIGHTS)
    if path is None:
        return None  # a run logged without weights (tracking.log_weights=false)
    data = load_dataset("xor")
    how = (
        f"reached the target in {_number(best[TO_TARGET[x]], x)} {AXIS_LABELS[x]}"
        if best["success"]
        else f"no run succeeded; lowest final loss {best['final_loss']:.3g}"
    )
    return plots.decision_boundary(
        MLP.load(path), data.X_train, data.y_train, title=f"{best['run_name']}: {how}"
    )


#: fewer seeds than this in a group: its success rate's interval is wider than 40 points
FEW_SEEDS = 5


def _index(selection, settings, table, summary, by, target, study, md, figures) -> str:
    statuses = table["status"].value_counts()
    seeds = table["seed"].nunique() if "seed" in table else len(table)
    cautions = (
        []
        if summary["seeds"].min() >= FEW_SEEDS
        else [
            f"some groups have fewer than {FEW_SEEDS} seeds (the smallest has "
            f"{summary['seeds'].min()}): "
            "their success rates have wide intervals; sweep more seeds, e.g. seed='range(0,10)'"
        ]
    )
    if table.get(LAUNCHER, pd.Series(dtype=object)).eq("stacked").any():
        cautions.append(
            "runs trained by the stacked launcher (hydra/launcher=stacked) count their "
            "group's training time: the figures by training time (s) compare groups of "
            "networks trained together, not single runs"
        )
    grouped = ", ".join(f"`{b}`" for b in by) if by else "nothing (one group)"
    lines = [
        f"# {study}: which variant reaches the target first",
        "",
        f"{selection.what}; {len(table)} runs "
        f"({', '.join(f'{v} {k}' for k, v in statuses.items())}), "
        f"{seeds} seed{'s' if seeds != 1 else ''}; "
        f"grouped by {grouped}.",
        "",
        f"**Target: {target}** (from {settings.source}). A run succeeds when it finished, reached "
        "the target, never diverged and, for a classifier, ended with an accuracy above chance "
        "(a network at chance has learnt nothing, whatever loss it reached). Times to target are "
        "counted on four axes: BGD makes one update per epoch, SGD one per sample. Medians and "
        "inter-quartile ranges are over every finished run of a group, a failure counting as "
        "never reaching the target (`not reached` when more than half failed).",
        "",
    ]
    lines += [f"> {note}" for note in [*selection.notes, *settings.notes, *cautions]]
    lines += [
        "",
        md,
        "",
        "Tables: [summary.csv](summary.csv) (every statistic), "
        "[runs.csv](runs.csv) (every run and its measures). Each figure's data is the "
        "CSV of the same name.",
        "",
    ]
    for f in figures:
        lines += [
            f"## {f.heading}",
            "",
            f"![{f.heading}]({f.name}.png)",
            "",
            f.caption,
            f"Data: [{f.name}.csv]({f.name}.csv).",
            "",
        ]
    return "\n".join(lines)


# -------------------------------------------------------------------- command
RENAMED = {
    "--threshold": "--target train_loss=VALUE",
    "--relative": "--target METRIC=VALUE (an absolute target)",
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    for old, new in RENAMED.items():
        if any(a == old or a.startswith(f"{old}=") for a in argv):
            print(f"bpexp.report: error: {old} is now {new}", file=sys.stderr)
            return 2
    ap = argparse.ArgumentParser(prog="python -m bpexp.report", description=__doc__.splitlines()[0])
    src = ap.add_mutually_exclusive_group()
    src.add_argument("--parent", help="a sweep's parent run id, or latest (the default)")
    src.add_argument("--sweep-dir", help="a sweep's directory (multirun/DATE/TIME-ID)")
    src.add_argument("--experiment", help="an MLflow experiment: its newest sweep")
    src.add_argument("--study", help="a study of conf/experiment/: its newest sweep and settings")
    ap.add_argument(
        "--all-sweeps",
        action="store_true",
        help="with --experiment or --study: every sweep of it, each run once",
    )
    ap.add_argument(
        "--target",
        action="append",
        metavar="METRIC=VALUE",
        help="train_loss=0.01, val_accuracy=0.9 ... (repeat: all must hold)",
    )
    ap.add_argument("--x", choices=AXES, help="the x-axis of the learning-rate figure")
    ap.add_argument("--group-by", nargs="+", help="config keys (default: every swept key)")
    ap.add_argument("--title", help="the study's name in titles")
    ap.add_argument("--tracking-uri", help="default: $MLFLOW_TRACKING_URI, else ./mlflow.db")
    ap.add_argument("--out", help="output directory (default: reports/EXPERIMENT/SWEEP)")
    ap.add_argument(
        "--log-to-parent", action="store_true", help="attach the report to the sweep's parent run"
    )
    args = ap.parse_args(argv)
    try:
        experiment = args.experiment
        if args.study:
            experiment = str(study_config(args.study).tracking.experiment)
        if args.all_sweeps and experiment is None:
            raise ReportError("--all-sweeps needs --experiment NAME or --study NAME")
        selection = select_runs(
            parent=args.parent,
            sweep_dir=args.sweep_dir,
            experiment=experiment,
            all_sweeps=args.all_sweeps,
            tracking_uri=args.tracking_uri,
        )
        settings = settings_for(
            selection.runs,
            targets=args.target,
            study=args.study,
            x=args.x,
            title=args.title,
            group_by=args.group_by,
        )
        out = Path(args.out) if args.out else default_out(selection, args.all_sweeps)
        index = build_report(selection, settings, out, log_to_parent=args.log_to_parent)
    except (NoRunsError, ReportError, ValueError) as exc:
        hint = ""
        if isinstance(exc, NoRunsError) and args.study:
            hint = f"; run the study first: python -m bpexp -m experiment={args.study}"
        print(f"bpexp.report: error: {exc}{hint}", file=sys.stderr)
        return 1
    for note in selection.notes:
        print(f"note: {note}")
    print(f"report of {selection.what}: {index}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
