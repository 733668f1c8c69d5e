"""circuitatlas: a transformer's training run as a time-stamped causal graph of its components."""

from typing import Any

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    """``circuitatlas.open_store`` without importing the store (and torch) on ``import``."""
    if name == "open_store":
        from circuitatlas.store import open_store

        return open_store
    raise AttributeError(f"module 'circuitatlas' has no attribute {name!r}")
