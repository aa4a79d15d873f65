"""``python -m bpexp``: see :mod:`bpexp.app`."""

from bpexp.app import main

if __name__ == "__main__":
    main()
