"""BGD vs SGD vs MBGD on scikit-learn's digits, on four x-axes.

The target, title and grouping are the study's own (``report:`` in
conf/experiment/digits_variants.yaml). Sweep, then compare:

    python -m bpexp -m experiment=digits_variants
    python experiments/digits_variants.py
"""

from _common import study

if __name__ == "__main__":
    study("digits_variants")
