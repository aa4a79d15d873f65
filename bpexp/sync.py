"""``python -m bpexp.sync``: see :mod:`bpexp.tracking.sync`."""

import sys

from bpexp.tracking.sync import main

if __name__ == "__main__":
    sys.exit(main())
