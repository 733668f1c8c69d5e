"""The version of circuitatlas, in one place (the package exports it as ``__version__``)."""

__version__ = "0.1.0"
