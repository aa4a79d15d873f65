"""``python -m bpexp.report``: the comparison of a sweep (see :mod:`bpexp.analysis.report`)."""

import sys

from bpexp.analysis.report import main

if __name__ == "__main__":
    sys.exit(main())
