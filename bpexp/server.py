"""``python -m bpexp.server``: see :mod:`bpexp.tracking.server`."""

from bpexp.tracking.server import main

if __name__ == "__main__":
    main()
