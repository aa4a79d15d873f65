"""The tutorial's 3-feature network reproduced: does every seed learn its five samples?

Sweep, then compare:

    python -m bpexp -m +experiment=toy3_tutorial
    python experiments/toy3_tutorial.py
"""

from _common import study

if __name__ == "__main__":
    study(
        "toy3_tutorial",
        "toy3-tutorial",
        __doc__,
        title="The 3-feature tutorial, reproduced",
        group_by=["seed"],
        threshold=0.01,
    )
