"""BGD vs SGD vs MBGD on XOR: who reaches loss 0.01 first.

Counted in epochs, updates, samples and seconds, over learning rates and seeds.

The target, title and grouping are the study's own (``report:`` in
conf/experiment/xor_variants.yaml). Sweep, then compare:

    python -m bpexp -m experiment=xor_variants
    python experiments/xor_variants.py
"""

from _common import study

if __name__ == "__main__":
    study("xor_variants")
