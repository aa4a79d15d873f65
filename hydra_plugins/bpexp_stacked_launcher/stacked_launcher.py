"""The launcher's config (``hydra/launcher: stacked``) and class.

Hydra imports every module of ``hydra_plugins`` when it scans for plugins, in
any program: this one imports Hydra only, and bpexp when a sweep is launched.
It executes the module before registering it in ``sys.modules``, so the
dataclass's annotations must not be strings (no ``from __future__ import
annotations``).
"""

from collections.abc import Sequence
from dataclasses import dataclass

from hydra.core.config_store import ConfigStore
from hydra.core.utils import JobReturn
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig


@dataclass
class StackedLauncherConf:
    _target_: str = "hydra_plugins.bpexp_stacked_launcher.stacked_launcher.StackedLauncher"
    #: the most jobs trained as one computation (see bpexp.launcher for its memory)
    max_group: int = 32


ConfigStore.instance().store(
    group="hydra/launcher", name="stacked", node=StackedLauncherConf, provider="bpexp"
)


class StackedLauncher(Launcher):
    """Runs a sweep's jobs in this process, training together those that can share
    one computation (:func:`bpexp.launcher.launch`)."""

    def __init__(self, max_group: int = 32) -> None:
        from bpexp.launcher import check_max_group

        self.max_group = check_max_group(max_group)
        self.config: DictConfig | None = None
        self.task_function: TaskFunction | None = None
        self.hydra_context: HydraContext | None = None

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        from bpexp.launcher import Composer

        self.config = config
        self.hydra_context = hydra_context
        self.task_function = task_function
        # called before the sweeper checks its first batch: each job is composed once
        self.composer = Composer(hydra_context.config_loader)
        self.composer.install()

    def launch(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> Sequence[JobReturn]:
        from bpexp.launcher import launch

        assert self.config is not None and self.hydra_context is not None
        assert self.task_function is not None
        return launch(
            config=self.config,
            hydra_context=self.hydra_context,
            task_function=self.task_function,
            job_overrides=job_overrides,
            initial_job_idx=initial_job_idx,
            max_group=self.max_group,
            composer=self.composer,
        )
