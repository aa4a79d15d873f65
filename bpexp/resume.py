"""``python -m bpexp.resume SWEEP_DIR [KEY=VALUE ...]``: run again the jobs of a stopped
sweep that did not finish, under the same parent run.

It runs the sweep's own command again (its overrides, read from
``SWEEP_DIR/multirun.yaml``, in the directory it was started from) with
``hydra.sweep.dir=SWEEP_DIR``: the jobs that finished are skipped, and said so;
the others run again, each earlier attempt's run (failed, killed) kept in the
store but detached from the sweep.  Typing that command oneself does the same.
``KEY=VALUE`` overrides replace the recorded ones of the same key: a store's
password, which bpexp masks in the files it leaves (``tracking.uri=...``).
"""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

from omegaconf import OmegaConf

from bpexp.tracking.store import HIDDEN, masked


def _key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def command(sweep_dir: Path, extra: list[str]) -> tuple[list[str], Path]:
    """The command that resumes ``sweep_dir`` (with the ``extra`` overrides), and
    the directory to run it in."""
    path = sweep_dir / "multirun.yaml"
    if not path.is_file():
        raise SystemExit(f"bpexp.resume: error: {path} not found: not a sweep directory of bpexp")
    hydra = OmegaConf.load(path).hydra
    skip = ("hydra.mode", "hydra.sweep.dir", *map(_key, extra))
    recorded = [*hydra.overrides.task, *hydra.overrides.hydra]
    kept = [o for o in recorded if _key(o) not in skip]
    if any(HIDDEN in o for o in kept):
        raise SystemExit(
            "bpexp.resume: error: the sweep's tracking.uri held a password, which bpexp does "
            f"not keep: python -m bpexp.resume {sweep_dir} tracking.uri=URI"
        )
    args = ["-m", *kept, *extra, f"hydra.sweep.dir={sweep_dir.resolve()}"]
    return [sys.executable, "-m", "bpexp", *args], Path(hydra.runtime.cwd)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0].startswith("-"):
        raise SystemExit("usage: python -m bpexp.resume SWEEP_DIR [KEY=VALUE ...]")
    cmd, cwd = command(Path(argv[0]), argv[1:])
    shown = masked(shlex.join(cmd[1:]))
    print(f"bpexp.resume: {shown}  (in {cwd})", file=sys.stderr, flush=True)
    os.chdir(cwd)
    os.execv(cmd[0], cmd)


if __name__ == "__main__":
    main()
