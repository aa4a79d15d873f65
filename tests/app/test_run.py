"""One job, run in this process as the command runs it, against a real SQLite store."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from mlflow import MlflowClient

from bpexp.config import ConfigError, JobError
from bpexp.core import MLP
from bpexp.data import load_dataset
from bpexp.tracking import resolve_tracking_uri
from bpexp.tracking.files import logged_epochs
from tests.helpers import runs

#: the history's measures sent to MLflow as metrics (samples and seconds stay in history.csv)
HISTORY = ["train_loss", "train_accuracy", "grad_norm", "updates"]


def artifacts(client: MlflowClient, run_id: str) -> Path:
    return Path(client.download_artifacts(run_id, ""))


def test_a_run_logs_params_tags_complete_curves_and_artifacts(run_in_process, store):
    experiment = "t-basic"
    final = run_in_process(f"tracking.experiment={experiment}", "trainer.epochs=30", "seed=3")
    (run,) = runs(store, experiment)
    client = MlflowClient(tracking_uri=store)
    assert run.info.status == "FINISHED"
    p = run.data.params
    assert p["optimizer.variant"] == "bgd" and p["optimizer.lr"] == "1.0" and p["seed"] == "3"
    assert p["model.output"] == "sigmoid" and p["trainer.loss"] == "mse"  # resolved from auto
    assert p["optimizer"] == "bgd" and p["dataset"] == "xor" and p["model"] == "mlp"  # choices
    t = run.data.tags
    assert t["dataset"] == "xor" and t["variant"] == "bgd" and "hydra.output_dir" in t
    # one value per epoch, epoch 0 (before training) included
    for key in HISTORY:
        points = client.get_metric_history(run.info.run_id, key)
        first = 1 if key == "grad_norm" else 0  # no gradient before the first update
        assert sorted(m.step for m in points) == list(range(first, 31)), key
    assert "val_loss" not in run.data.metrics  # XOR validates on its training set: not repeated
    m = run.data.metrics
    assert m["final_loss"] == pytest.approx(final) and m["epochs_run"] == 30
    assert m["converged"] == 0 and m["diverged"] == 0 and m["wall_seconds"] > 0
    assert m["best_loss"] <= m["initial_loss"]

    files = artifacts(client, run.info.run_id)
    assert {"config.yaml", "history.csv", "weights.npz", "loss_curve.png", "dataset.json"} <= {
        f.name for f in files.iterdir()
    }
    with open(files / "history.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["epoch"]) for r in rows] == list(range(31))
    assert float(rows[-1]["train_loss"]) == pytest.approx(final, rel=1e-12)
    assert (files / "loss_curve.png").stat().st_size > 5000
    # the weights rebuild the network that gives the logged final loss
    with np.load(files / "weights.npz", allow_pickle=False) as arrays:
        net = MLP.from_arrays(arrays)
    xor = load_dataset("xor")
    assert net.sizes == [2, 4, 1]
    assert net.loss(xor.X_train, xor.y_train, "mse") == pytest.approx(m["final_loss"], rel=1e-12)


def test_metric_points_are_bounded_but_keep_first_last_and_threshold(run_in_process, store):
    run_in_process(
        "tracking.experiment=t-bounded",
        "trainer.epochs=20000",
        "trainer.loss_threshold=0.01",
        "optimizer.lr=2.0",
        "model.init=uniform",
        "seed=42",
        "tracking.max_points=25",
    )
    (run,) = runs(store, "t-bounded")
    client = MlflowClient(tracking_uri=store)
    reached = int(run.data.metrics["epochs_to_threshold"])
    assert run.data.metrics["converged"] == 1 and 0 < reached < 20000
    steps = sorted(m.step for m in client.get_metric_history(run.info.run_id, "train_loss"))
    assert len(steps) <= 27 and steps[0] == 0 and steps[-1] == reached and reached in steps
    with open(artifacts(client, run.info.run_id) / "history.csv") as fh:
        assert len(list(csv.DictReader(fh))) == reached + 1  # the artifact has every epoch


def test_a_diverging_job_is_a_finished_run(run_in_process, store):
    run_in_process(
        "tracking.experiment=t-diverge",
        "model.activation=relu",
        "model.output=identity",
        "model.init=normal",
        "model.hidden_size=16",
        "optimizer.lr=1000",
        "trainer.epochs=500",
    )
    (run,) = runs(store, "t-diverge")
    assert run.info.status == "FINISHED"
    assert run.data.metrics["diverged"] == 1 and run.data.tags["stop_reason"] == "diverged"


def test_validation_metrics_for_held_out_data(run_in_process, store):
    run_in_process(
        "tracking.experiment=t-digits",
        "dataset=digits",
        "model.hidden_size=16",
        "model.activation=relu",
        "model.init=he_normal",
        "optimizer=mbgd",
        "optimizer.lr=0.1",
        "trainer.epochs=5",
    )
    (run,) = runs(store, "t-digits")
    client = MlflowClient(tracking_uri=store)
    assert run.data.params["model.output"] == "softmax"
    assert len(client.get_metric_history(run.info.run_id, "val_accuracy")) == 6
    assert run.data.metrics["final_val_accuracy"] > 0.8


def test_a_job_that_raises_is_failed_with_the_error_in_a_tag(run_in_process, store):
    experiment = "t-fail"
    with pytest.raises(JobError, match="train_size: 5000 is more than"):
        run_in_process(
            f"tracking.experiment={experiment}", "dataset=digits", "dataset.train_size=5000"
        )
    (run,) = runs(store, experiment)
    assert run.info.status == "FAILED"
    assert "train_size: 5000 is more than" in run.data.tags["error"]


def test_a_bad_config_value_creates_no_run(run_in_process, store):
    with pytest.raises(ConfigError, match=r"optimizer\.lr"):
        run_in_process("tracking.experiment=t-bad", "optimizer.lr=-1")
    assert runs(store, "t-bad") == []


def test_float32_runs_log_float32_weights(run_in_process, store):
    run_in_process("tracking.experiment=t-f32", "model.dtype=float32", "trainer.epochs=10")
    (run,) = runs(store, "t-f32")
    files = artifacts(MlflowClient(tracking_uri=store), run.info.run_id)
    with np.load(files / "weights.npz", allow_pickle=False) as arrays:
        assert arrays["W0"].dtype == np.float32


def test_the_default_store_is_mlflow_db_in_the_launch_directory(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    assert resolve_tracking_uri(None) == f"sqlite:///{tmp_path.resolve()}/mlflow.db"
    assert resolve_tracking_uri("sqlite:///sub/x.db") == f"sqlite:///{tmp_path.resolve()}/sub/x.db"
    assert resolve_tracking_uri("sqlite:////abs/x.db") == "sqlite:////abs/x.db"
    assert resolve_tracking_uri("http://127.0.0.1:5000") == "http://127.0.0.1:5000"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5001")
    assert resolve_tracking_uri(None) == "http://127.0.0.1:5001"


def test_logged_epochs():
    assert logged_epochs(10, 1000) == set(range(11))
    assert logged_epochs(10, None) == set(range(11))
    chosen = logged_epochs(10_000, 200)
    assert len(chosen) == 200 and {0, 10_000} <= chosen  # max_points=200 here
    gaps = np.diff(sorted(chosen))
    assert gaps.max() - gaps.min() <= 1  # evenly spaced


def test_bias_init_reaches_the_network(run_in_process, store):
    run_in_process("tracking.experiment=t-bias-init", "model.bias_init=normal", "trainer.epochs=1")
    (run,) = runs(store, "t-bias-init")
    assert run.data.params["model.bias_init"] == "normal"
    client = MlflowClient(tracking_uri=store)
    with np.load(artifacts(client, run.info.run_id) / "weights.npz", allow_pickle=False) as arrays:
        assert str(arrays["bias_init"]) == "normal"


KNOBS = ("momentum", "beta1", "beta2", "epsilon", "gamma", "step_size", "decay")


def test_a_run_logs_only_the_knobs_that_act_on_it(run_in_process, store):
    run_in_process("tracking.experiment=t-knobs-plain", "trainer.epochs=5")
    (plain,) = runs(store, "t-knobs-plain")
    p = plain.data.params
    assert p["update.name"] == "plain" and p["schedule.name"] == "constant"
    assert not [k for k in p if k.rsplit(".", 1)[-1] in KNOBS]
    run_in_process(
        "tracking.experiment=t-knobs-adam",
        "update=adam",
        "update.beta1=0.8",
        "schedule=step",
        "schedule.step_size=2",
        "trainer.epochs=5",
    )
    (adam,) = runs(store, "t-knobs-adam")
    p = adam.data.params
    knobs = {k: v for k, v in p.items() if k.rsplit(".", 1)[-1] in KNOBS}
    assert knobs == {
        "update.beta1": "0.8",
        "update.beta2": "0.999",
        "update.epsilon": "1e-08",
        "schedule.gamma": "0.5",
        "schedule.step_size": "2",
    }
    assert p["update"] == "adam" and p["schedule"] == "step"  # the groups' choices
    # the step schedule reached training: optimizer.lr halved every 2 epochs
    lrs = MlflowClient(tracking_uri=store).get_metric_history(adam.info.run_id, "lr")
    lr = float(p["optimizer.lr"])
    assert [m.value for m in sorted(lrs, key=lambda m: m.step) if m.step] == [
        lr,
        lr,
        lr / 2,
        lr / 2,
        lr / 4,
    ]


def test_a_typo_is_an_error_naming_the_closest_key_and_creates_no_run(run_in_process, store):
    with pytest.raises(ConfigError) as info:
        run_in_process("tracking.experiment=t-typo", "+optimizer.lrr=0.1")
    assert str(info.value) == (
        "config error: optimizer.lrr: unknown key; did you mean optimizer.lr?"
    )
    assert runs(store, "t-typo") == []
