"""Which activation and initialisation learn XOR, and how reliably.

A success-rate heatmap over activation x initialisation, five seeds per cell.

The target, title and grouping are the study's own (``report:`` in
conf/experiment/xor_activation_init.yaml). Sweep, then compare:

    python -m bpexp -m experiment=xor_activation_init
    python experiments/xor_activation_init.py
"""

from _common import study

if __name__ == "__main__":
    study("xor_activation_init")
