"""The report, the notebook and the study scripts against real sweeps in a real store."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from nbclient import NotebookClient

from bpexp.analysis import load_histories, load_runs, select_runs
from bpexp.analysis.report import REPORTS_DIR, default_out, main
from bpexp.analysis.runs import Selection
from tests.conftest import ROOT
from tests.helpers import bpexp, command_env

pytestmark = pytest.mark.slow
EXPERIMENT = "analysis-test"
#: two learning rates x three variants x two seeds: at lr 2, sgd and mbgd reach 0.01 within
#: 600 epochs and bgd sometimes (it needs 600-1,000); at lr 0.1 no variant does
SWEEP = (
    "optimizer=bgd,sgd,mbgd",
    "optimizer.lr=0.1,2.0",
    "seed=0,1",
    "optimizer.batch_size=2",
    "model.init=uniform",
    "model.activation=sigmoid",
    "trainer.epochs=600",
    "trainer.loss_threshold=0.01",
    "tracking.max_points=20",
    f"tracking.experiment={EXPERIMENT}",
)


def report(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """``python -m bpexp.report ARGS`` in ``cwd``, to its end."""
    return subprocess.run(
        [sys.executable, "-m", "bpexp.report", *args],
        cwd=cwd,
        env=command_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> tuple[Path, str]:
    """A real 12-job sweep: some runs converge early, others never."""
    cwd = tmp_path_factory.mktemp("sweep")
    result = bpexp("-m", *SWEEP, cwd=cwd)
    assert result.returncode == 0, result.stderr[-3000:]
    return cwd, f"sqlite:///{cwd}/mlflow.db"


@pytest.fixture(scope="module")
def written(store) -> Path:
    """The report of that sweep, as the command writes it by default."""
    cwd, _ = store
    result = report(cwd=cwd)
    assert result.returncode == 0, result.stderr[-3000:]
    index = Path(cwd, result.stdout.strip().splitlines()[-1].rsplit(": ", 1)[1])
    assert index.parent.parent.parent == cwd / "reports"
    return index.parent


def test_groups_are_every_swept_key_and_the_lr_figure_is_not_pooled(written):
    summary = pd.read_csv(written / "summary.csv")
    assert len(summary) == 6 and set(summary["runs"]) == {2}
    lr = pd.read_csv(written / "lr_time_to_target.csv")
    assert lr.groupby("optimizer.variant").size().to_dict() == {"bgd": 2, "sgd": 2, "mbgd": 2}
    assert sorted(lr["optimizer.lr"].unique()) == [0.1, 2.0]


def test_success_rates_agree_with_what_each_run_logged(written, store):
    _, uri = store
    runs = load_runs(EXPERIMENT, tracking_uri=uri)
    logged = runs.groupby(["optimizer.variant", "optimizer.lr"])["converged"].mean()
    summary = pd.read_csv(written / "summary.csv").set_index(["optimizer.variant", "optimizer.lr"])
    pd.testing.assert_series_equal(
        summary["success_rate"].sort_index(), logged.sort_index(), check_names=False
    )
    # the mix the sweep was built for: successes and failures side by side
    assert summary.loc[("sgd", 2.0), "success_rate"] == 1.0
    assert (summary.xs(0.1, level="optimizer.lr")["success_rate"] == 0).all()
    # a group that never reached the target has no time, never a NaN or a survivor's time
    assert math.isinf(summary.loc[("bgd", 0.1), "epoch_median"])
    table = (written / "summary.md").read_text()
    assert table.startswith("Target: train_loss <= 0.01 (from the runs' trainer.loss_threshold)")
    assert set(summary["target"]) == {"train_loss <= 0.01"}
    assert "not reached" in table and "0/2 = 0%" in table and "2/2 = 100%" in table


def test_runtime_distributions_end_at_the_success_rate(written):
    summary = pd.read_csv(written / "summary.csv").set_index(["optimizer.variant", "optimizer.lr"])
    for axis in ("epoch", "updates", "samples", "seconds"):
        data = pd.read_csv(written / f"ecdf_{axis}.csv")
        for key, g in data.groupby(["optimizer.variant", "optimizer.lr"]):
            assert (np.diff(g["fraction"]) >= 0).all(), (axis, key)
            assert g["fraction"].iloc[-1] == summary.loc[key, "success_rate"], (axis, key)
            assert (g["runs"] == summary.loc[key, "runs"]).all()


def test_loss_curves_are_medians_over_every_run(written, store):
    _, uri = store
    runs = load_runs(EXPERIMENT, tracking_uri=uri)
    hist = load_histories(runs, tracking_uri=uri)
    summary = pd.read_csv(written / "summary.csv").set_index(["optimizer.variant", "optimizer.lr"])
    for axis in ("epoch", "updates", "samples", "seconds"):
        data = pd.read_csv(written / f"curves_train_loss_{axis}.csv")
        for key, g in data.groupby(["optimizer.variant", "optimizer.lr"]):
            # no point is a median over fewer runs than the group has
            assert (g["runs"] == summary.loc[key, "runs"]).all(), (axis, key)
            assert g["x"].is_monotonic_increasing
    # after every run of a group has stopped at its threshold the curve stays flat at the
    # median of where they stopped: it never rises
    data = pd.read_csv(written / "curves_train_loss_epoch.csv")
    sgd = data[(data["optimizer.variant"] == "sgd") & (data["optimizer.lr"] == 2.0)]
    ids = runs[(runs["optimizer.variant"] == "sgd") & (runs["optimizer.lr"] == 2.0)]["run_id"]
    loss = hist[hist["run_id"].isin(ids) & (hist["metric"] == "train_loss")]
    last_stop = loss["epoch"].max()
    after = sgd[sgd["x"] >= last_stop]
    finals = loss.sort_values("epoch").groupby("run_id", observed=True)["value"].last()
    median = np.quantile(finals, 0.5, method="inverted_cdf")
    assert after["x"].max() == 600 and np.allclose(after["median"], median)
    assert (after["median"] <= 0.01).all()


def test_every_figure_has_its_data_and_the_index_shows_them(written):
    index = (written / "index.md").read_text()
    assert "**Target: train_loss <= 0.01**" in index
    assert "fewer than 5 seeds (the smallest has 2)" in index  # two seeds a group: said
    pngs = sorted(written.glob("*.png"))
    assert {p.stem for p in pngs} >= {
        "ecdf_epoch",
        "ecdf_seconds",
        "curves_train_loss_updates",
        "lr_time_to_target",
        "lr_success",
        "success_heatmap",
        "decision_boundary",
    }
    for png in pngs:
        assert png.stat().st_size > 5000, png
        assert len(pd.read_csv(png.with_suffix(".csv"))) > 0, png
        assert f"({png.name})" in index, png


def test_the_newest_sweep_unless_all_are_asked_for(store, tmp_path):
    cwd, uri = store
    # the same study again, smaller: seed 0 of sgd at lr 2.0 is a (config, seed) already covered
    again = bpexp(
        "-m", *SWEEP[:1], "optimizer=sgd", "optimizer.lr=2.0", "seed=0,2", *SWEEP[3:], cwd=cwd
    )
    assert again.returncode == 0, again.stderr[-3000:]
    newest = report("--experiment", EXPERIMENT, "--out", str(tmp_path / "n"), cwd=cwd)
    assert newest.returncode == 0, newest.stderr[-2000:]
    assert "holds 2 sweeps" in newest.stdout and "--all-sweeps" in newest.stdout
    assert pd.read_csv(tmp_path / "n" / "summary.csv")["runs"].tolist() == [2]
    pooled = report(
        "--experiment", EXPERIMENT, "--all-sweeps", "--out", str(tmp_path / "a"), cwd=cwd
    )
    assert pooled.returncode == 0, pooled.stderr[-2000:]
    summary = pd.read_csv(tmp_path / "a" / "summary.csv").set_index(
        ["optimizer.variant", "optimizer.lr"]
    )
    # seeds 0 and 1 from the first sweep, 2 from the second, seed 0 once: 3, not 4
    assert summary.loc[("sgd", 2.0), "runs"] == 3 and summary.loc[("bgd", 2.0), "runs"] == 2
    assert "counted once" in pooled.stdout
    # a sweep directory names its sweep (and its store)
    first = sorted((cwd / "multirun").glob("*/*"))[0]
    by_dir = report("--sweep-dir", str(first), "--out", str(tmp_path / "d"), cwd=tmp_path)
    assert by_dir.returncode == 0, by_dir.stderr[-2000:]
    parent = json.loads((first / ".bpexp-parent.json").read_text())["run_id"]
    assert parent in by_dir.stdout and len(pd.read_csv(tmp_path / "d" / "runs.csv")) == 12
    # the default: the newest sweep of the store
    latest = select_runs(tracking_uri=uri)
    assert len(latest.runs) == 2 and set(latest.runs["seed"]) == {0, 2}


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("--target", "train_loss=0.001"), "below where runs stopped (trainer.loss_threshold"),
        (("--threshold", "0.1"), "--threshold is now --target train_loss=VALUE"),
        (("--target", "val_accuracy<=0.9"), "val_accuracy is reached from below"),
        (("--experiment", "nothing-here"), "no experiment named 'nothing-here'"),
        (("--study", "nope"), "no study 'nope'; studies: digits_variants"),
        (("--study", "toy3_tutorial"), "run the study first: python -m bpexp -m experiment="),
    ],
)
def test_bad_requests_are_one_line(store, tmp_path, capsys, args, expected):
    _, uri = store
    code = main([*args, "--tracking-uri", uri, "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code in (1, 2) and len(err.strip().splitlines()) == 1
    assert expected in err
    assert not (tmp_path / "r").exists()  # nothing half-written


def test_a_dead_network_is_a_failure_whatever_loss_it_reached(tmp_path):
    """Digits with Nielsen's quadratic cost: at lr 100 the sigmoid outputs saturate at 0,
    the loss drops to 0.5 (below the 0.6 target) and the accuracy stays at chance."""
    result = bpexp(
        "-m",
        "dataset=digits",
        "model.output=sigmoid",
        "trainer.loss=mse",
        "optimizer=mbgd",
        "optimizer.batch_size=10",
        "optimizer.lr=1.0,100.0",
        "model.hidden_size=16",
        "model.activation=sigmoid",
        "model.init=lecun_normal",
        "trainer.epochs=3",
        "trainer.loss_threshold=null",
        "tracking.experiment=dead",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = tmp_path / "r"
    done = report("--target", "train_loss=0.6", "--out", str(out), cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    summary = pd.read_csv(out / "summary.csv").set_index("optimizer.lr")
    assert summary.loc[100.0, "successes"] == 0 and summary.loc[100.0, "at chance"] == 1
    assert summary.loc[100.0, "final_accuracy_median"] < 0.15
    assert summary.loc[1.0, "successes"] == 1 and summary.loc[1.0, "final_accuracy_median"] > 0.5
    assert "final accuracy" in (out / "summary.md").read_text()


@pytest.fixture(scope="module")
def study_store(tmp_path_factory) -> tuple[Path, str]:
    """The notebook's own study, xor_variants, on two seeds and 1,500 epochs."""
    cwd = tmp_path_factory.mktemp("study")
    result = bpexp(
        "-m",
        "experiment=xor_variants",
        "seed=0,1",
        "trainer.epochs=1500",
        "tracking.max_points=20",
        cwd=cwd,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return cwd, f"sqlite:///{cwd}/mlflow.db"


def test_the_notebook_shows_a_table_with_times_for_every_group_that_converged(
    study_store, tmp_path, monkeypatch
):
    _, uri = study_store
    nb = nbformat.read(ROOT / "notebooks" / "sweep_walkthrough.ipynb", as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")  # stored clean
    nb.cells.append(nbformat.v4.new_code_cell('print(summary.to_json(orient="records"))'))
    monkeypatch.setenv("BPEXP_TRACKING_URI", uri)
    NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    summary = pd.DataFrame(json.loads(nb.cells[-1].outputs[0]["text"]))
    assert len(summary) == 9
    runs = load_runs("xor-variants", tracking_uri=uri)
    converged = runs.groupby(["optimizer.variant", "optimizer.lr"])["converged"].max()
    assert converged.sum() >= 3  # the sweep has groups that converged, and the table shows them
    for (variant, lr), any_run in converged.items():
        row = summary[(summary["optimizer.variant"] == variant) & (summary["optimizer.lr"] == lr)]
        q25 = row["epoch_q25"].iloc[0]
        assert (q25 is not None and math.isfinite(q25)) == bool(any_run), (variant, lr)
    images = [
        o
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.outputs
        if "image/png" in o.get("data", {})
    ]
    assert len(images) == 2


def test_a_study_script_writes_its_report_with_the_study_settings(study_store, tmp_path):
    cwd, uri = study_store
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "experiments" / "xor_variants.py"),
            "--tracking-uri",
            uri,
            "--out",
            str(tmp_path / "r"),
            "--log-to-parent",
        ],
        cwd=cwd,
        env=command_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    index = (tmp_path / "r" / "index.md").read_text()
    assert index.startswith("# XOR, batch vs stochastic vs mini-batch")
    assert (
        "train_loss <= 0.01** (from study xor_variants, conf/experiment/xor_variants.yaml)" in index
    )
    summary = pd.read_csv(tmp_path / "r" / "summary.csv")
    assert len(summary) == 9 and summary["success_rate"].between(0, 1).all()
    # the MLflow experiment and the study (the experiment config chosen) are two columns
    runs = load_runs("xor-variants", tracking_uri=uri)
    assert set(runs["experiment_name"]) == {"xor-variants"} and set(runs["experiment"]) == {
        "xor_variants"
    }
    # --log-to-parent: the report is an artifact of the sweep's parent run
    parent = runs["parent_run_id"].iloc[0]
    names = {f.path for f in MlflowClient(tracking_uri=uri).list_artifacts(parent, "report")}
    assert "report/index.md" in names


@pytest.mark.parametrize(
    "experiment, parent",
    [
        ("../../x", "0123456789abcdef"),
        ("/etc/cron.d", "abcdef01"),
        ("..", "../../.."),
        (".", "/tmp"),
        ("a/../../b", "..\\..\\x"),
        ("..\\..\\x", ".hidden"),
        ("x\0y", ""),
    ],
)
@pytest.mark.parametrize("all_sweeps", [False, True])
def test_any_experiment_name_gives_a_report_directory_under_reports(experiment, parent, all_sweeps):
    runs = pd.DataFrame({"experiment_name": [experiment]})
    out = default_out(Selection(runs, "w", "sqlite://", parents=[parent]), all_sweeps)
    assert len(out.parts) == 3 and out.parts[0] == str(REPORTS_DIR)
    assert all(part not in ("", ".", "..") and part[0] != "." for part in out.parts[1:])
    assert all(c.isalnum() or c in "._=-" for part in out.parts[1:] for c in part)


def test_the_report_of_an_experiment_named_like_a_path_stays_in_its_output_root(tmp_path):
    cwd = tmp_path / "a" / "b" / "c"
    cwd.mkdir(parents=True)
    sweep = bpexp("-m", "seed=0,1", "trainer.epochs=50", "tracking.experiment=../../x", cwd=cwd)
    assert sweep.returncode == 0, sweep.stderr[-3000:]
    result = report("--experiment", "../../x", cwd=cwd)
    assert result.returncode == 0, result.stderr[-3000:]
    index = Path(cwd, result.stdout.strip().splitlines()[-1].rsplit(": ", 1)[1]).resolve()
    assert index.is_file() and index.parent.parent == cwd / "reports" / "x"
    # nothing written above the working directory
    assert sorted(p.name for p in tmp_path.rglob("*") if cwd not in (p, *p.parents)) == [
        "a",
        "b",
    ]
