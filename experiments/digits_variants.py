"""BGD vs SGD vs MBGD on scikit-learn's digits, on four x-axes.

Sweep, then compare:

    python -m bpexp -m +experiment=digits_variants
    python experiments/digits_variants.py
"""

from _common import study

if __name__ == "__main__":
    study(
        "digits_variants",
        "digits-variants",
        __doc__,
        title="Digits: batch vs stochastic vs mini-batch",
        group_by=["optimizer.variant"],
        relative=0.1,
    )
