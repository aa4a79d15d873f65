"""The tutorial's 3-feature network reproduced: does every seed learn its five samples?

The target, title and grouping are the study's own (``report:`` in
conf/experiment/toy3_tutorial.yaml). Sweep, then compare:

    python -m bpexp -m experiment=toy3_tutorial
    python experiments/toy3_tutorial.py
"""

from _common import study

if __name__ == "__main__":
    study("toy3_tutorial")
