"""Configuration: composition with the Compose API, and validation before tracking."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from bpexp.app import CONF_DIR
from bpexp.config import ConfigError, hidden_sizes, validate
from tests.helpers import compose_cfg

EXPERIMENTS = sorted(p.stem for p in (CONF_DIR / "experiment").glob("*.yaml"))


def test_defaults_are_xor_bgd_and_a_2_4_1_sigmoid_network():
    cfg = compose_cfg()
    validate(cfg)
    assert cfg.dataset.name == "xor" and cfg.optimizer.variant == "bgd"
    assert hidden_sizes(cfg) == [4] and cfg.model.activation == "sigmoid"
    assert cfg.model.output == "sigmoid" and cfg.trainer.loss == "mse"  # auto, resolved
    assert cfg.tracking.uri is None and cfg.hydra.job.name == "bpexp"
    assert "bpexp_tracking" in cfg.hydra.callbacks


def test_auto_picks_softmax_and_cross_entropy_for_ten_classes():
    cfg = compose_cfg("dataset=digits")
    validate(cfg)
    assert (cfg.model.output, cfg.trainer.loss) == ("softmax", "cross_entropy")


def test_depth_and_hidden_sizes():
    cfg = compose_cfg("model.hidden_size=8", "model.depth=3")
    validate(cfg)
    assert hidden_sizes(cfg) == [8, 8, 8]
    cfg = compose_cfg("model.hidden_sizes=[10,20,30]")
    validate(cfg)
    assert hidden_sizes(cfg) == [10, 20, 30]


@pytest.mark.parametrize("variant", ["bgd", "sgd", "mbgd"])
def test_each_variant_has_the_shared_options_only(variant):
    cfg = compose_cfg(f"optimizer={variant}")
    assert set(cfg.optimizer) == {"variant", "lr", "batch_size"}
    assert cfg.optimizer.variant == variant


@pytest.mark.parametrize(
    "group,choice,knobs",
    [
        ("update", "plain", set()),
        ("update", "momentum", {"momentum"}),
        ("update", "nesterov", {"momentum"}),
        ("update", "adam", {"beta1", "beta2", "epsilon"}),
        ("schedule", "constant", set()),
        ("schedule", "step", {"gamma", "step_size"}),
        ("schedule", "exponential", {"gamma"}),
        ("schedule", "inverse_time", {"decay"}),
    ],
)
def test_update_and_schedule_groups_hold_only_their_own_knobs(group, choice, knobs):
    cfg = compose_cfg(f"{group}={choice}")
    validate(cfg)
    assert cfg[group].name == choice
    assert set(cfg[group]) == {"name", *knobs}


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_every_experiment_composes_validates_and_declares_a_sweep(name):
    cfg = compose_cfg(f"experiment={name}")  # declared in the defaults list: no +
    validate(cfg)
    assert cfg.tracking.experiment != "bpexp"
    assert OmegaConf.select(cfg, "hydra.sweeper.params"), name


def test_the_five_studies_are_there():
    assert {
        "xor_variants",
        "toy3_tutorial",
        "xor_activation_init",
        "mnist_lr",
        "digits_variants",
    } <= set(EXPERIMENTS)


@pytest.mark.parametrize(
    "override,message",
    [
        ("optimizer.lr=-1", "optimizer.lr: must be > 0, got -1"),
        ("optimizer.lr=0", "optimizer.lr: must be > 0, got 0"),
        ("optimizer.lr=fast", "optimizer.lr: must be a number, got 'fast'"),
        ("optimizer.batch_size=0", "optimizer.batch_size: must be an integer >= 1, got 0"),
        ("optimizer.batch_size=2.5", "optimizer.batch_size: must be an integer >= 1, got 2.5"),
        ("model.hidden_size=0", "model.hidden_size: must be an integer >= 1, got 0"),
        ("model.hidden_sizes=[4,0]", "model.hidden_sizes: must be a list of integers >= 1"),
        ("trainer.epochs=0", "trainer.epochs: must be an integer >= 1, got 0"),
        ("trainer.loss_threshold=-0.5", "trainer.loss_threshold: must be > 0, got -0.5"),
        ("model.activation=swish", "model.activation: must be one of sigmoid, tanh, relu"),
        ("model.init=glorot", "model.init: must be one of uniform, normal, xavier_uniform"),
        ("model.bias_init=ones", "model.bias_init: must be one of zeros, normal, got 'ones'"),
        ("model.dtype=float16", "model.dtype: must be one of float32, float64"),
        ("update.name=rmsprop", "update.name: must be one of plain, momentum"),
        ("schedule.name=cosine", "schedule.name: must be one of constant, step"),
        (
            "trainer.loss=cross_entropy",
            "trainer.loss / model.output: loss 'cross_entropy' does not fit",
        ),
        ("tracking.max_points=1", "tracking.max_points: must be an integer >= 2 or null, got 1"),
        ("seed=-1", "seed: must be an integer >= 0, got -1"),
        ("model.bias=maybe", "model.bias: must be true or false, got 'maybe'"),
        ("+dataset.train_size=10", "dataset.train_size: unknown key of dataset 'xor'"),
        ("update=adam update.beta2=1.0", "update.beta2: must be in [0, 1), got 1.0"),
        ("update=momentum update.momentum=-0.1", "update.momentum: must be in [0, 1), got -0.1"),
        ("schedule=step schedule.gamma=0", "schedule.gamma: must be in (0, 1], got 0"),
        ("schedule=step schedule.step_size=0", "schedule.step_size: must be an integer >= 1"),
        ("schedule=inverse_time schedule.decay=-1", "schedule.decay: must be >= 0, got -1"),
    ],
)
def test_bad_values_give_one_line_naming_the_key(override, message):
    cfg = compose_cfg(*override.split())
    with pytest.raises(ConfigError) as info:
        validate(cfg)
    text = str(info.value)
    assert "\n" not in text and text.startswith("config error: ")
    assert message in text, text


@pytest.mark.parametrize(
    "override,message",
    [
        ("dataset.train_size=-5", "dataset.train_size: must be an integer >= 1 or null, got -5"),
        ("dataset.normalize=minmax", "dataset.normalize: must be one of unit, standard"),
        ("dataset.download=perhaps", "dataset.download: must be true or false"),
        ("dataset.source=both", "dataset.source: must be one of auto, train, test_split"),
    ],
)
def test_bad_dataset_options(override, message):
    cfg = compose_cfg("dataset=mnist", override)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        validate(cfg)


def test_sweep_and_run_dirs_are_unique_per_invocation(monkeypatch):
    monkeypatch.setenv("BPEXP_STAMP", "2026-01-01/10-00-00-abc123")
    cfg = compose_cfg()
    assert cfg.hydra.sweep.dir == "multirun/2026-01-01/10-00-00-abc123"
    assert cfg.hydra.run.dir == "outputs/2026-01-01/10-00-00-abc123"
