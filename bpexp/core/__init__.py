"""bpexp.core: the NumPy multi-layer perceptron and its training (NumPy only).

Samples are rows and ``Z = X @ W + b`` throughout; see :mod:`bpexp.core.network`.
"""

from bpexp.core.activations import HIDDEN_ACTIVATIONS, OUTPUT_ACTIVATIONS
from bpexp.core.gradcheck import GradientCheck, check_gradients
from bpexp.core.init import BIAS_INITIALISERS, INITIALISERS
from bpexp.core.losses import LOSSES
from bpexp.core.network import MLP
from bpexp.core.optim import SCHEDULES, UPDATES
from bpexp.core.stacked import fit_many
from bpexp.core.training import TRAIN_EVAL, VARIANTS, History, fit, update_mini_batch

__all__ = [
    "BIAS_INITIALISERS",
    "HIDDEN_ACTIVATIONS",
    "INITIALISERS",
    "LOSSES",
    "MLP",
    "OUTPUT_ACTIVATIONS",
    "SCHEDULES",
    "TRAIN_EVAL",
    "UPDATES",
    "VARIANTS",
    "GradientCheck",
    "History",
    "check_gradients",
    "fit",
    "fit_many",
    "update_mini_batch",
]
