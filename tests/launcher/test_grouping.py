"""Which jobs of a sweep hydra/launcher=stacked trains together (real Hydra composition)."""

from __future__ import annotations

import pytest
from omegaconf import open_dict

from bpexp.launcher import check_max_group, group_key, plan
from tests.helpers import compose_cfg


def groups_of(*jobs: tuple[str, ...], max_group: int = 32) -> list[list[int]]:
    return plan([compose_cfg(*job) for job in jobs], max_group)


def test_seeds_learning_rates_inits_and_constants_of_one_network_share_a_group():
    jobs = [
        (),
        ("seed=1",),
        ("optimizer.lr=0.3",),
        ("model.init=he_normal", "model.bias_init=normal"),
        ("trainer.loss_threshold=null", "trainer.divergence_factor=10"),
        ("tracking.max_points=5", "trainer.progress=false"),
    ]
    assert groups_of(*jobs) == [[0, 1, 2, 3, 4, 5]]
    momentum = [("update=momentum", "update.momentum=0.5"), ("update=momentum", "seed=3")]
    schedule = [("schedule=step", "schedule.gamma=0.1"), ("schedule=step", "schedule.step_size=3")]
    assert groups_of(*momentum, *schedule) == [[0, 1], [2, 3]]


@pytest.mark.parametrize(
    "override",
    [
        "optimizer=sgd",
        "optimizer.batch_size=3",
        "model.hidden_size=5",
        "model.activation=tanh",
        "model.dtype=float32",
        "trainer.epochs=10",
        "trainer.train_eval=running",
        "update=adam",
        "schedule=exponential",
        "dataset=toy3",
    ],
)
def test_what_changes_the_computation_makes_another_group(override):
    assert groups_of((), ("seed=1",), (override,), (override, "seed=1")) == [[0, 1], [2, 3]]


def test_seeds_of_a_data_set_drawn_from_the_seed_are_apart_but_its_learning_rates_together():
    """digits and MNIST draw their subsets from the run's seed: another seed is other data."""
    base = ("dataset=digits", "dataset.train_size=100")
    jobs = [(*base, "seed=0"), (*base, "seed=1"), (*base, "seed=0", "optimizer.lr=0.5")]
    assert groups_of(*jobs) == [[0, 2], [1]]


def test_groups_hold_at_most_max_group_jobs_in_the_sweeps_order():
    jobs = [(f"seed={s}",) for s in range(5)] + [("optimizer=sgd",)]
    assert groups_of(*jobs, max_group=2) == [[0, 1], [2, 3], [4], [5]]


def test_a_config_that_does_not_resolve_runs_alone():
    cfg = compose_cfg()
    with open_dict(cfg):
        cfg.model.hidden_size = "${oc.env:BPEXP_TEST_NOT_SET_ANYWHERE}"
    assert group_key(cfg) is None
    assert plan([compose_cfg(), cfg, compose_cfg("seed=1")], 32) == [[0, 2], [1]]


def test_the_launcher_is_found_with_its_setting_and_a_bad_one_is_one_line():
    cfg = compose_cfg("hydra/launcher=stacked", "hydra.launcher.max_group=8")
    assert cfg.hydra.launcher._target_.endswith("StackedLauncher")
    assert cfg.hydra.launcher.max_group == 8
    with pytest.raises(SystemExit, match=r"^bpexp: error: hydra.launcher.max_group: must be an"):
        check_max_group(0)
