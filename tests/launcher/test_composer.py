"""A job's config made by copying another's is the config Hydra composes (real Hydra)."""

from __future__ import annotations

import pytest
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.types import RunMode
from omegaconf import OmegaConf

from bpexp.app import CONF_DIR
from bpexp.launcher import Composer

#: jobs of sweeps, and how many of them Hydra must compose (the others are copies)
SWEEPS = [
    ([["seed=0"], ["seed=1"], ["seed=2"]], 1),
    (
        [
            ["optimizer=sgd", "optimizer.lr=0.5", "seed=0"],
            ["optimizer=sgd", "optimizer.lr=2", "seed=3"],
            ["optimizer=bgd", "optimizer.lr=2", "seed=3"],
        ],
        2,
    ),
    (
        [
            ["model.init=he_normal", "trainer.loss_threshold=null", "tracking.experiment=x"],
            ["model.init=uniform", "trainer.loss_threshold=0.5", "tracking.experiment='a b'"],
            ["model.init=normal", "trainer.loss_threshold=0.5", "tracking.experiment=${seed}"],
        ],
        1,
    ),
    ([["update=momentum", "update.momentum=0.5"], ["update=momentum", "update.momentum=0.8"]], 1),
    # a list, an added key and a repeated key: each composed by Hydra
    ([["model.hidden_sizes=[3,4]"], ["model.hidden_sizes=[5]"]], 2),
    ([["+model.extra=1"], ["+model.extra=2"]], 2),
    ([["seed=1", "seed=2"], ["seed=3", "seed=4"]], 2),
    # the experiment group, then values
    ([["experiment=xor_variants", "seed=0"], ["experiment=xor_variants", "seed=4"]], 1),
]


@pytest.fixture(scope="module")
def loader_and_master():
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        loader = GlobalHydra.instance().config_loader()
        master = loader.load_configuration(
            "config", overrides=["hydra/launcher=stacked"], run_mode=RunMode.MULTIRUN
        )
        yield loader, master


@pytest.mark.parametrize(("jobs", "composed"), SWEEPS)
def test_a_copied_config_is_the_one_hydra_composes(loader_and_master, jobs, composed):
    loader, master = loader_and_master
    composer = Composer(loader)  # not installed: loader.load_sweep_config stays Hydra's
    for overrides in jobs:
        made = composer.load_sweep_config(master, overrides)
        hydras = loader.load_sweep_config(master, overrides)
        assert OmegaConf.to_yaml(made) == OmegaConf.to_yaml(hydras), overrides
        assert OmegaConf.is_struct(made) and not OmegaConf.is_readonly(made.hydra)
        top = [k for k in hydras if k != "hydra"]
        made_values, hydras_values = (
            OmegaConf.to_container(OmegaConf.masked_copy(c, top), resolve=True)
            for c in (made, hydras)
        )
        assert made_values == hydras_values, overrides
        assert composer.take(master, overrides) is made  # composed once, kept for the launcher
    assert len(composer.templates) == composed  # one per form: the others were copies


def test_a_bad_override_is_hydras_error(loader_and_master):
    loader, master = loader_and_master
    composer = Composer(loader)
    composer.load_sweep_config(master, ["optimizer.lr=0.5"])
    with pytest.raises(Exception, match=r"Could not override 'optimizer\.lrr'") as made:
        composer.load_sweep_config(master, ["optimizer.lrr=0.5"])
    with pytest.raises(type(made.value), match=r"Could not override 'optimizer\.lrr'"):
        loader.load_sweep_config(master, ["optimizer.lrr=0.5"])
