"""Each data set's defaults: how they compose, and the runs they make.

``conf/dataset/*.yaml`` set model, optimizer and trainer values; they come after
those groups in the defaults list, so they win over the groups' generic values,
while the command line and ``experiment=`` files win over them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from mlflow import MlflowClient
from omegaconf import OmegaConf

from bpexp.app import CONF_DIR
from bpexp.config import validate
from tests.helpers import bpexp, compose_cfg, runs

DATASETS = sorted(p.stem for p in (CONF_DIR / "dataset").glob("*.yaml"))
EXPERIMENTS = sorted(p.stem for p in (CONF_DIR / "experiment").glob("*.yaml"))


def values_set(path: Path) -> dict[str, Any]:
    """The dotted keys a config file sets (its defaults list and sweep aside)."""
    conf = OmegaConf.load(path)
    flat: dict[str, Any] = {}

    def walk(node, prefix: str) -> None:
        for key, value in node.items():
            if OmegaConf.is_dict(value):
                walk(value, f"{prefix}{key}.")
            else:
                flat[f"{prefix}{key}"] = value

    walk(conf, "")
    return {k: v for k, v in flat.items() if not k.startswith(("defaults", "hydra."))}


def dataset_values(name: str) -> dict[str, Any]:
    return values_set(CONF_DIR / "dataset" / f"{name}.yaml")


# ------------------------------------------------------------- composition
@pytest.mark.parametrize("name", DATASETS)
def test_a_data_sets_values_win_over_the_groups_defaults(name):
    cfg = compose_cfg(f"dataset={name}")
    for key, value in dataset_values(name).items():
        assert OmegaConf.select(cfg, key) == value, key
    validate(cfg)


def test_xor_brings_its_own_lr_batch_and_target():
    generic = OmegaConf.load(CONF_DIR / "base" / "optimizer.yaml")
    xor = dataset_values("xor")
    assert xor["optimizer.lr"] != generic.lr  # else the precedence below proves nothing
    cfg = compose_cfg()
    assert cfg.optimizer.lr == xor["optimizer.lr"]
    # mbgd's batch is a real mini-batch of XOR's 4 samples; runs have a target
    assert 1 < cfg.optimizer.batch_size < 4
    assert cfg.trainer.loss_threshold is not None


@pytest.mark.parametrize("variant", ["sgd", "mbgd"])
def test_choosing_an_optimizer_keeps_the_data_sets_values(variant):
    cfg = compose_cfg(f"optimizer={variant}")
    assert cfg.optimizer.variant == variant
    xor = dataset_values("xor")
    assert cfg.optimizer.lr == xor["optimizer.lr"]
    assert cfg.optimizer.batch_size == xor["optimizer.batch_size"]


def test_command_line_values_win_over_the_data_sets():
    cfg = compose_cfg("optimizer.batch_size=8", "trainer.loss_threshold=null")
    assert cfg.optimizer.batch_size == 8 and cfg.trainer.loss_threshold is None
    cfg = compose_cfg("dataset=mnist", "optimizer.lr=0.7", "model.hidden_size=16")
    assert (cfg.optimizer.lr, cfg.model.hidden_size) == (0.7, 16)


def test_dataset_mnist_switches_all_its_defaults_and_its_optimizer():
    cfg = compose_cfg("dataset=mnist")
    mnist = dataset_values("mnist")
    for key, value in mnist.items():
        assert OmegaConf.select(cfg, key) == value, key
    assert cfg.optimizer.variant == "mbgd" and cfg.hydra.runtime.choices.optimizer == "mbgd"
    # what XOR set is gone: no leftovers of another data set's defaults
    assert cfg.trainer.loss_threshold is None
    # the command line's optimizer wins over the data set's, in either order
    for overrides in (("dataset=mnist", "optimizer=sgd"), ("optimizer=sgd", "dataset=mnist")):
        cfg = compose_cfg(*overrides)
        assert cfg.optimizer.variant == "sgd"
        assert cfg.optimizer.lr == mnist["optimizer.lr"]


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiments_keep_their_own_values(name):
    cfg = compose_cfg(f"experiment={name}")
    for key, value in values_set(CONF_DIR / "experiment" / f"{name}.yaml").items():
        assert OmegaConf.select(cfg, key) == value, key


def test_an_experiments_optimizer_wins_over_its_data_sets(tmp_path):
    (tmp_path / "experiment").mkdir()
    (tmp_path / "experiment" / "mnist_bgd.yaml").write_text(
        "# @package _global_\n"
        "defaults:\n"
        "  - override /dataset: mnist\n"
        "  - override /optimizer: bgd\n"
    )
    cfg = compose_cfg("experiment=mnist_bgd", f"hydra.searchpath=[file://{tmp_path}]")
    assert cfg.dataset.name == "mnist" and cfg.optimizer.variant == "bgd"


# -------------------------------------------------------------- real runs
@pytest.mark.slow
def test_the_headline_sweep_compares_three_different_things(tmp_path):
    result = bpexp("-m", "optimizer=bgd,sgd,mbgd", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "mbgd is bgd" not in result.stdout + result.stderr
    children = [
        r for r in runs(f"sqlite:///{tmp_path}/mlflow.db") if "mlflow.parentRunId" in r.data.tags
    ]
    by = {r.data.params["optimizer.variant"]: r for r in children}
    assert sorted(by) == ["bgd", "mbgd", "sgd"]
    assert int(by["mbgd"].data.params["optimizer.batch_size"]) < 4  # XOR's n
    finals = {v: r.data.metrics["final_loss"] for v, r in by.items()}
    assert len(set(finals.values())) == 3, finals
    target = float(by["bgd"].data.params["trainer.loss_threshold"])
    for r in by.values():
        assert r.data.metrics["converged"] == 1 and r.data.metrics["final_loss"] <= target
    epochs = {v: r.data.metrics["epochs_to_threshold"] for v, r in by.items()}
    assert len(set(epochs.values())) == 3, epochs


@pytest.mark.slow
def test_mbgd_with_a_batch_of_the_whole_set_warns(tmp_path):
    result = bpexp("optimizer=mbgd", "optimizer.batch_size=4", "trainer.epochs=3", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    # Hydra's console log is the command's stdout
    said = [line for line in result.stdout.splitlines() if "mbgd is bgd" in line]
    assert len(said) == 1, result.stdout
    assert "WARNING" in said[0] and "optimizer.batch_size=4 >= n=4" in said[0]
    assert "set optimizer.batch_size below 4" in said[0]
    (log,) = (tmp_path / "outputs").glob("*/*/bpexp.log")
    assert "mbgd is bgd" in log.read_text()


@pytest.mark.slow
def test_an_mnist_job_runs_offline_from_the_test_split(tmp_path, t10k_only):
    result = bpexp(
        "dataset=mnist",
        f"dataset.root={t10k_only}",
        "dataset.train_size=2000",
        "dataset.test_size=500",
        "trainer.epochs=2",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "source=auto: only the test split's files" in result.stdout
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    (run,) = runs(uri)
    assert run.data.params["dataset.source"] == "auto"
    assert run.data.metrics["final_val_accuracy"] > 0.5  # chance is 0.1
    files = Path(MlflowClient(tracking_uri=uri).download_artifacts(run.info.run_id, ""))
    meta = json.loads((files / "dataset.json").read_text())
    assert meta["source"] == "test_split"
    assert (meta["train_indices"]["n"], meta["val_indices"]["n"]) == (2000, 500)
    assert meta["train_indices"]["split"] == meta["val_indices"]["split"] == "test"
    # nothing was downloaded: the training split was never asked for
    assert not [p for p in t10k_only.iterdir() if p.name.startswith(("train", "."))]


@pytest.mark.slow
def test_test_split_sizes_that_do_not_fit_give_one_line(tmp_path, t10k_only):
    result = bpexp(
        "dataset=mnist",
        f"dataset.root={t10k_only}",
        "dataset.source=test_split",
        "dataset.train_size=9000",
        "dataset.test_size=2000",
        cwd=tmp_path,
    )
    assert result.returncode == 1
    output = result.stdout + result.stderr
    said = [line for line in output.splitlines() if "train_size: 9000" in line]
    assert said and all("test_size 2000" in line for line in said), output
    assert "Traceback" not in output


@pytest.mark.slow
def test_the_mnist_study_runs_from_the_read_only_shared_test_split(tmp_path, shared_mnist):
    before = sorted(p.name for p in shared_mnist.iterdir())
    # one job of experiment=mnist_lr: the command line's sweep replaces the file's
    result = bpexp(
        "-m",
        "experiment=mnist_lr",
        f"dataset.root={shared_mnist}",
        "optimizer.lr=3.0",
        "seed=0",
        "trainer.epochs=1",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (run,) = [r for r in runs(f"sqlite:///{tmp_path}/mlflow.db", "mnist-lr") if r.data.metrics]
    assert run.info.status == "FINISHED"
    assert run.data.params["optimizer.batch_size"] == "10"  # Nielsen's mini-batches
    assert run.data.metrics["final_val_accuracy"] > 0.5
    assert sorted(p.name for p in shared_mnist.iterdir()) == before  # no cache written there
