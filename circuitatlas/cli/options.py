"""What the command modules share: click settings, the error wrapper, the common options
(``--store``, ``--edges``, ``--format``, a training run's ``--seed``, ``--steps`` and
``--checkpoints``) and the helpers that pick a run and print a frame."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any

import click

from circuitatlas.errors import CircuitAtlasError

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def friendly(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn errors into one line and a non-zero exit; tracebacks only with ``--debug``."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        debug = click.get_current_context().find_root().params.get("debug", False)
        try:
            return fn(*args, **kwargs)
        except CircuitAtlasError as e:
            if debug:
                raise
            click.echo(f"error: {e}", err=True)
            sys.exit(1)
        except KeyboardInterrupt as e:
            click.echo(f"interrupted: {e}" if str(e) else "interrupted", err=True)
            sys.exit(130)
        except Exception as e:
            if debug:
                raise
            first = str(e).splitlines()[0] if str(e) else ""
            click.echo(
                f"error: {type(e).__name__}: {first} (rerun with --debug for the traceback)",
                err=True,
            )
            sys.exit(2)

    return wrapper


def store_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--store",
        "store_url",
        default=None,
        metavar="URL",
        help="Store: a .lbdb file path (default $CIRCUITATLAS_STORE or circuitatlas.lbdb) or "
        "neo4j:// | neo4j+s:// | bolt:// (NEO4J_USERNAME, NEO4J_PASSWORD, NEO4J_DATABASE).",
    )(fn)


def own_store_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``--store`` of a command that keeps its store in its ``--out`` directory by default."""
    return click.option(
        "--store",
        "store_url",
        default=None,
        metavar="URL",
        help="Store to ingest into instead of OUT/circuitatlas.lbdb (a path or neo4j://…).",
    )(fn)


def seed_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``--seed`` of a command that trains a toy run."""
    return click.option("--seed", type=int, default=0, show_default=True, help="Training seed.")(fn)


def length_options(steps: str, checkpoints: str) -> Callable[[Callable[..., Any]], Any]:
    """``--steps`` and ``--checkpoints`` of a command that trains a toy run; ``steps`` and
    ``checkpoints`` say what their defaults are."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        fn = click.option(
            "--checkpoints", type=int, default=None, help=f"Checkpoints to save ({checkpoints})."
        )(fn)
        return click.option("--steps", type=int, default=None, help=f"Training steps ({steps}).")(
            fn
        )

    return decorate


def edges_option(
    default: str = "total", help: str = "Which effect's weight (and similarity) to read."
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--edges total|direct`` (the ``measure`` argument), shared by every command that reads
    edges; ``help`` says what the choice changes there."""
    return click.option(
        "--edges",
        "measure",
        type=click.Choice(["total", "direct"]),
        default=default,
        show_default=True,
        help=help,
    )


def format_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(["table", "csv", "json"]),
        default="table",
        show_default=True,
        help="How to print the rows.",
    )(fn)


def echo_frame(frame: Any, fmt: str) -> None:
    """Print a frame as an aligned table, CSV or JSON records."""
    if fmt == "csv":
        click.echo(frame.to_csv(index=False), nl=False)
    elif fmt == "json":
        import json

        from circuitatlas.store.rows import plain_records

        click.echo(json.dumps(plain_records(frame), default=str))
    elif frame.empty:
        click.echo("(no rows)")
    else:
        click.echo(frame.to_string(index=False))


def parse_params(pairs: tuple[str, ...]) -> dict[str, Any]:
    """``k=v`` pairs → parameters; a value is read as JSON when it parses, else as a string."""
    import json
    import re

    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            raise CircuitAtlasError(
                f"--param {pair!r}: give name=value with a Cypher parameter name, e.g. step=500"
            )
        try:
            params[key] = json.loads(value)
        except ValueError:
            params[key] = value
    return params


def pick_run(store: Any, run_id: str | None) -> str:
    """``--run``, or the store's only run when it holds one."""
    if run_id is not None:
        return run_id
    known = store.runs().run_id.tolist()
    if len(known) == 1:
        return str(known[0])
    hint = f"one of {', '.join(known)}" if known else "the store holds no run; ingest one first"
    raise CircuitAtlasError(f"--run: give the run ({hint})")
