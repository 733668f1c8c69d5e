"""circuitatlas: a transformer's training run as a time-stamped causal graph of its components."""

from importlib import import_module
from typing import Any

from circuitatlas._version import __version__ as __version__

# Public API, imported on first use so `import circuitatlas` stays light (no torch, no store).
_LAZY = {
    "open_store": "circuitatlas.store",
    "analyze": "circuitatlas.analytics.analyze",
    "tau_sweep": "circuitatlas.analytics.thresholds",
    "to_networkx": "circuitatlas.export",
}


def __getattr__(name: str) -> Any:
    """``circuitatlas.open_store``, ``circuitatlas.analyze``, ``circuitatlas.tau_sweep`` and
    ``circuitatlas.to_networkx``."""
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'circuitatlas' has no attribute {name!r}")
