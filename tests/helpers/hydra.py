"""Real Hydra composition of bpexp's configuration, as a job sees it."""

from __future__ import annotations

from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import open_dict

from bpexp.app import CONF_DIR


def compose_cfg(*overrides: str, output_dir: Path | None = None):
    """The composed config (with its hydra node), as a single run would see it."""
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=list(overrides), return_hydra_config=True)
    if output_dir is not None:
        with open_dict(cfg):
            cfg.hydra.runtime.output_dir = str(output_dir)
            cfg.hydra.job.override_dirname = ",".join(overrides)
    return cfg
