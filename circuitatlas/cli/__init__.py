"""The ``circuitatlas`` command: thin, it parses, calls the library and prints.

This module holds the click group :func:`main` (the ``circuitatlas`` entry point); each command
group lives in a module of its own that attaches its commands to ``main`` when imported:

* :mod:`.ingest`: ``train-toy``, ``sweep``, ``ingest``;
* :mod:`.query`: ``runs``, ``query``, ``ask …``;
* :mod:`.analysis`: ``analyze``, ``paths``;
* :mod:`.circuits`: ``circuits``;
* :mod:`.report`: ``report``, ``export``, ``demo``.

What they share (``CONTEXT``, :func:`~.options.friendly`, the ``--store``/``--edges``/``--format``
options, :func:`~.options.pick_run`, :func:`~.options.echo_frame`) is :mod:`.options`. A new
command group is a module ``circuitatlas/cli/NAME.py`` that does
``from circuitatlas.cli import main`` and decorates its commands with ``@main.command(...)``,
plus one name in the import at the bottom of this file.
"""

from __future__ import annotations

import os

import click

from circuitatlas.cli.options import CONTEXT


@click.group(context_settings=CONTEXT)
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
@click.version_option(package_name="circuitatlas")
def main(debug: bool) -> None:
    """circuitatlas: a transformer's training run as a time-stamped causal graph of components.

    \b
    Examples:
      circuitatlas demo --out demo-run
      circuitatlas train-toy --out runs/toy --seed 1
      circuitatlas sweep --model runs/toy --revisions 0:2000:250 --out runs/toy-sweep
      circuitatlas sweep --model EleutherAI/pythia-14m --revisions paper --out runs/p14m
    """
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


# The command modules register their commands on ``main`` when imported (see the docstring).
from circuitatlas.cli import analysis, circuits, ingest, query, report  # noqa: E402

__all__ = ["analysis", "circuits", "ingest", "main", "query", "report"]
