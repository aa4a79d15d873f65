"""What every study script shares: the report of its study, with the study's own settings."""

from __future__ import annotations

import sys

from bpexp.analysis.report import main


def study(name: str) -> None:
    """``python -m bpexp.report --study NAME`` with this script's arguments
    (``--tracking-uri``, ``--out``, ``--all-sweeps``, ``--log-to-parent``...)."""
    sys.exit(main(["--study", name, *sys.argv[1:]]))
