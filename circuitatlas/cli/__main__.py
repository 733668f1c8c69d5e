"""``python -m circuitatlas.cli``: the ``circuitatlas`` command."""

from circuitatlas.cli import main

main()
