"""The one error type the CLI turns into a single clear line and a non-zero exit."""


class CircuitAtlasError(Exception):
    """A user-facing error: the message names the bad input and what to do about it."""
