"""Helpers the tests share (and benchmarks may import): real Hydra composition,
the real commands, real MLflow stores and servers."""

from tests.helpers.commands import bpexp, bpexp_sync, command, command_env, start_bpexp
from tests.helpers.hydra import compose_cfg
from tests.helpers.mlflow import Server, free_port, runs

__all__ = [
    "Server",
    "bpexp",
    "bpexp_sync",
    "command",
    "command_env",
    "compose_cfg",
    "free_port",
    "runs",
    "start_bpexp",
]
