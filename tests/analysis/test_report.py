"""Analysis, report, figures and the notebook against a real sweep in a real store."""

from __future__ import annotations

import os
import subprocess
import sys

import nbformat
import pandas as pd
import pytest
from mlflow import MlflowClient
from nbclient import NotebookClient

from bpexp import plots
from bpexp.analysis import (
    NoRunsError,
    convergence,
    load_histories,
    load_runs,
    runs_with_convergence,
)
from bpexp.core import MLP
from bpexp.data import load_dataset
from bpexp.report import build_report
from tests.app.conftest import bpexp
from tests.conftest import ROOT

pytestmark = pytest.mark.slow
EXPERIMENT = "analysis-test"


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> str:
    """A real 6-job sweep: 3 variants x 2 seeds, histories thinned in MLflow to 20 points."""
    cwd = tmp_path_factory.mktemp("sweep")
    result = bpexp(
        "-m",
        "optimizer=bgd,sgd,mbgd",
        "seed=0,1",
        "optimizer.lr=2.0",
        "optimizer.batch_size=2",
        "model.init=uniform",
        "trainer.epochs=200",
        "trainer.loss_threshold=0.05",
        "tracking.max_points=20",
        f"tracking.experiment={EXPERIMENT}",
        cwd=cwd,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return f"sqlite:///{cwd}/mlflow.db"


def test_runs_as_a_typed_frame(sweep):
    runs = load_runs(EXPERIMENT, tracking_uri=sweep)
    assert len(runs) == 6 and set(runs["status"]) == {"FINISHED"}
    assert runs["optimizer.lr"].dtype == float and runs["seed"].dtype == "int64"
    assert runs["model.bias"].map(type).eq(bool).all()
    assert runs["model.hidden_sizes"].isna().all()
    assert sorted(runs["optimizer"].unique()) == ["bgd", "mbgd", "sgd"]
    assert {"final_loss", "epochs_to_threshold", "converged", "wall_seconds"} <= set(runs)
    # no run logged val metrics (XOR): the columns are there all the same, as NaN
    assert runs["final_val_loss"].isna().all()
    parent = runs["parent_run_id"].unique()
    assert len(parent) == 1
    assert len(load_runs(EXPERIMENT, tracking_uri=sweep, include_parents=True)) == 7
    assert len(load_runs(parent=parent[0], tracking_uri=sweep)) == 6
    sgd = load_runs(
        EXPERIMENT, tracking_uri=sweep, filter_string="params.`optimizer.variant` = 'sgd'"
    )
    assert len(sgd) == 2


def test_histories_are_complete_from_the_artifacts(sweep):
    runs = load_runs(EXPERIMENT, tracking_uri=sweep)
    hist = load_histories(runs, tracking_uri=sweep)
    loss = hist[hist["metric"] == "train_loss"]
    per_run = loss.groupby("run_id", observed=True).size()
    # every epoch up to the one that stopped the run, although MLflow holds at most ~20 points
    expected = (runs.set_index("run_id")["epochs_run"] + 1).astype(int)
    assert per_run.sort_index().tolist() == expected.loc[per_run.sort_index().index].tolist()
    assert per_run.max() > 25
    assert set(hist.columns) == {
        "run_id",
        "epoch",
        "updates",
        "samples",
        "seconds",
        "metric",
        "value",
    }


def test_convergence_agrees_with_what_the_runs_logged(sweep):
    runs = load_runs(EXPERIMENT, tracking_uri=sweep)
    conv = convergence(load_histories(runs, tracking_uri=sweep), threshold=0.05)
    table = runs_with_convergence(runs, conv)
    reached = table[table["run_converged"] == 1]
    assert len(reached) > 0
    pd.testing.assert_series_equal(
        reached["epoch_to_threshold"].astype(float),
        reached["epochs_to_threshold"].astype(float),
        check_names=False,
    )
    # XOR has 4 samples: bgd makes 1 update an epoch, mbgd (batches of 2) 2, sgd 4
    per_epoch = table["optimizer.variant"].map({"bgd": 1, "mbgd": 2, "sgd": 4})
    hit = table["epoch_to_threshold"].notna()
    assert (
        table["updates_to_threshold"][hit] == per_epoch[hit] * table["epoch_to_threshold"][hit]
    ).all()
    assert (table["samples_to_threshold"][hit] == 4 * table["epoch_to_threshold"][hit]).all()


def test_the_report_command_end_to_end(sweep, tmp_path):
    out = tmp_path / "report"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bpexp.report",
            "--experiment",
            EXPERIMENT,
            "--tracking-uri",
            sweep,
            "--out",
            str(out),
            "--log-to-parent",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    index = (out / "index.md").read_text()
    for stem in [
        "loss_curves_epoch",
        "loss_curves_updates",
        "loss_curves_samples",
        "loss_curves_seconds",
        "decision_boundary",
    ]:
        assert f"({stem}.png)" in index
        assert (out / f"{stem}.png").stat().st_size > 5000
        assert (out / f"{stem}.svg").read_text().lstrip().startswith("<?xml")
    table = (out / "comparison.md").read_text()
    assert all(v in table for v in ("bgd", "sgd", "mbgd")) and "success rate" in table
    comp = pd.read_csv(out / "comparison.csv")
    assert set(comp["measure"]) >= {"epoch_to_threshold", "samples_to_threshold", "final"}
    assert comp.groupby("optimizer.variant")["n"].first().tolist() == [2, 2, 2]
    assert len(pd.read_csv(out / "runs.csv")) == 6
    # --log-to-parent: the report is an artifact of the sweep's parent run
    parent = load_runs(EXPERIMENT, tracking_uri=sweep)["parent_run_id"].iloc[0]
    names = {f.path for f in MlflowClient(tracking_uri=sweep).list_artifacts(parent, "report")}
    assert "report/index.md" in names


def test_every_plot_is_written(sweep, tmp_path):
    runs = load_runs(EXPERIMENT, tracking_uri=sweep)
    hist = load_histories(runs, tracking_uri=sweep)
    table = runs_with_convergence(runs, convergence(hist, relative=0.5))
    table["lr2"] = table["seed"] + 1.0  # a second numeric axis to draw against
    figures = {
        "curves": plots.loss_curves_by_group(hist, runs, "optimizer.variant", x="samples"),
        "lr": plots.final_loss_vs_lr(table, lr="lr2"),
        "heat": plots.heatmap(
            table.groupby(["optimizer.variant", "seed"], as_index=False)["converged"].mean(),
            x="optimizer.variant",
            y="seed",
            value="converged",
        ),
        "boundary": plots.decision_boundary(
            MLP([2, 4, 1], seed=0), load_dataset("xor").X_train, load_dataset("xor").y_train
        ),
    }
    for name, fig in figures.items():
        png, svg = plots.save(fig, tmp_path / name)
        assert png.stat().st_size > 5000 and svg.stat().st_size > 5000, name


def test_an_experiment_without_runs_is_a_clear_message(sweep, tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bpexp.report",
            "--experiment",
            "nothing-here",
            "--tracking-uri",
            sweep,
            "--out",
            str(tmp_path / "r"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "no experiment named 'nothing-here'" in result.stderr
    assert EXPERIMENT in result.stderr  # and where to look instead
    with pytest.raises(NoRunsError, match="no runs in experiment 'empty'"):
        client = MlflowClient(tracking_uri=sweep)
        client.create_experiment("empty")
        build_report(experiment="empty", tracking_uri=sweep, out=tmp_path / "r2")


def test_the_notebook_runs_against_the_sweep(sweep, tmp_path, monkeypatch):
    nb = nbformat.read(ROOT / "notebooks" / "sweep_walkthrough.ipynb", as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")  # stored clean
    monkeypatch.setenv("BPEXP_TRACKING_URI", sweep)
    monkeypatch.setenv("BPEXP_EXPERIMENT", EXPERIMENT)
    NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    text = "\n".join(
        str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", ""))
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.outputs
    )
    assert "6 runs" in text and "samples_to_threshold" in text
    images = [
        o
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.outputs
        if "image/png" in o.get("data", {})
    ]
    assert len(images) == 2
    assert os.environ["BPEXP_EXPERIMENT"] == EXPERIMENT
