"""BGD vs SGD vs MBGD on XOR: who reaches loss 0.01 first.

Counted in epochs, updates, samples and seconds, over learning rates and seeds.

Sweep, then compare:

    python -m bpexp -m +experiment=xor_variants
    python experiments/xor_variants.py
"""

from _common import study

if __name__ == "__main__":
    study(
        "xor_variants",
        "xor-variants",
        __doc__,
        title="XOR: batch vs stochastic vs mini-batch",
        group_by=["optimizer.variant", "optimizer.lr"],
    )
