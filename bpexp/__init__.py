"""bpexp: an experiment-tracking research harness for backpropagation."""

__version__ = "0.1.0"
