"""Which activation and initialisation learn XOR, and how reliably.

A success-rate heatmap over activation x initialisation, five seeds per cell.

Sweep, then compare:

    python -m bpexp -m +experiment=xor_activation_init
    python experiments/xor_activation_init.py
"""

from _common import study

if __name__ == "__main__":
    study(
        "xor_activation_init",
        "xor-activation-init",
        __doc__,
        title="XOR: activation x initialisation",
        group_by=["model.activation", "model.init"],
    )
