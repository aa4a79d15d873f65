"""Learning rate on an MNIST subset: final loss against it, and where training fails.

The target, title and grouping are the study's own (``report:`` in
conf/experiment/mnist_lr.yaml). Sweep, then compare:

    python -m bpexp -m experiment=mnist_lr
    python experiments/mnist_lr.py
"""

from _common import study

if __name__ == "__main__":
    study("mnist_lr")
