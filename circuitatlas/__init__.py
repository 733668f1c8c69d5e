"""circuitatlas: a transformer's training run as a time-stamped causal graph of its components."""

__version__ = "0.1.0"
