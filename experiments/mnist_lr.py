"""Learning rate on an MNIST subset: final loss against it, and where training fails.

Sweep, then compare:

    python -m bpexp -m +experiment=mnist_lr
    python experiments/mnist_lr.py
"""

from _common import study

if __name__ == "__main__":
    study(
        "mnist_lr",
        "mnist-lr",
        __doc__,
        title="MNIST subset: the learning rate",
        group_by=["optimizer.lr"],
        relative=0.5,
    )
