"""``python -m bpexp.resume DIR [KEY=VALUE ...]``: go on with a stopped sweep, or a stopped
run.

- ``DIR`` a sweep's directory: run again the jobs of the sweep that did not finish,
  under the same parent run.  It runs the sweep's own command again (its overrides,
  read from ``DIR/multirun.yaml``, in the directory it was started from) with
  ``hydra.sweep.dir=DIR``: the jobs that finished are skipped, and said so; the
  others run again, each earlier attempt's run (failed, killed) kept in the store
  but detached from the sweep.  Typing that command oneself does the same.
- ``DIR`` a single run's output directory (``outputs/DATE/TIME-ID``), stopped by
  Ctrl-C or SIGTERM: train on from its checkpoint, as a new run of the same
  configuration (:mod:`bpexp.continuing`).  It runs the run's own command again
  (``DIR/.hydra/hydra.yaml``) with ``trainer.continue_from=DIR``.

``KEY=VALUE`` overrides replace the recorded ones of the same key: a store's
password, which bpexp masks in the files it leaves (``tracking.uri=...``).
"""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

from omegaconf import OmegaConf

from bpexp.continuing import KEY
from bpexp.tracking.store import HIDDEN, masked


def _key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def command(directory: Path, extra: list[str]) -> tuple[list[str], Path]:
    """The command that resumes the sweep of ``directory``, or continues the single
    run of ``directory`` (with the ``extra`` overrides), and the directory to run
    it in."""
    sweep, run = directory / "multirun.yaml", directory / ".hydra" / "hydra.yaml"
    if sweep.is_file():
        hydra = OmegaConf.load(sweep).hydra
        skip = ("hydra.mode", "hydra.sweep.dir")
        mode, last = ["-m"], [f"hydra.sweep.dir={directory.resolve()}"]
    elif run.is_file():
        hydra = OmegaConf.load(run).hydra
        if hydra.mode == "MULTIRUN":
            raise SystemExit(
                f"bpexp.resume: error: {directory} is a job of a sweep: resume the sweep, "
                f"python -m bpexp.resume {directory.resolve().parent}"
            )
        skip = ("hydra.mode", "hydra.run.dir", KEY)
        mode, last = [], [f"{KEY}={directory.resolve()}"]
    else:
        raise SystemExit(
            f"bpexp.resume: error: {directory} is neither a sweep's directory of bpexp "
            "(no multirun.yaml) nor a run's output directory (no .hydra/hydra.yaml)"
        )
    skip = (*skip, *map(_key, extra))
    recorded = [*hydra.overrides.task, *hydra.overrides.hydra]
    kept = [o for o in recorded if _key(o) not in skip]
    if any(HIDDEN in o for o in kept):
        raise SystemExit(
            "bpexp.resume: error: the tracking.uri it was run with held a password, which "
            f"bpexp does not keep: python -m bpexp.resume {directory} tracking.uri=URI"
        )
    args = [*mode, *kept, *extra, *last]  # Hydra reads the overrides as one run of words
    return [sys.executable, "-m", "bpexp", *args], Path(hydra.runtime.cwd)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0].startswith("-"):
        raise SystemExit("usage: python -m bpexp.resume SWEEP_DIR|RUN_DIR [KEY=VALUE ...]")
    cmd, cwd = command(Path(argv[0]), argv[1:])
    shown = masked(shlex.join(cmd[1:]))
    print(f"bpexp.resume: {shown}  (in {cwd})", file=sys.stderr, flush=True)
    os.chdir(cwd)
    os.execv(cmd[0], cmd)


if __name__ == "__main__":
    main()
