"""The real commands, ``python -m bpexp ...``, run in a directory of the test's."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def command_env() -> dict[str, str]:
    """This environment without what would redirect the command's store or its errors."""
    env = dict(os.environ)
    env.pop("MLFLOW_TRACKING_URI", None)
    env.pop("HYDRA_FULL_ERROR", None)
    return env


def command(module: str, *args: str, cwd: Path | None, timeout: float = 600):
    """Run the real ``python -m MODULE ARGS`` in ``cwd`` to its end, its output captured."""
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd,
        env=command_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def bpexp(*args: str, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run the real command, ``python -m bpexp ARGS``, in ``cwd``, to its end."""
    return command("bpexp", *args, cwd=cwd, timeout=timeout)


def start_bpexp(
    *args: str, cwd: Path, env: dict[str, str] | None = None, **popen
) -> subprocess.Popen:
    """Start the real command, ``python -m bpexp ARGS``, in ``cwd``, in the background
    (``env``: variables added to :func:`command_env`)."""
    return subprocess.Popen(
        [sys.executable, "-m", "bpexp", *args],
        cwd=cwd,
        env={**command_env(), **(env or {})},
        **popen,
    )


def bpexp_sync(*args: str, cwd: Path | None = None, timeout: float = 300):
    """Run the real ``python -m bpexp.sync ARGS`` to its end."""
    return command("bpexp.sync", *args, cwd=cwd, timeout=timeout)
