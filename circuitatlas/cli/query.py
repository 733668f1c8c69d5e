"""Commands that read a stored run: ``runs``, ``query`` (read-only Cypher) and the named
questions of ``ask``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from circuitatlas.cli import main
from circuitatlas.cli.options import (
    CONTEXT,
    echo_frame,
    edges_option,
    format_option,
    friendly,
    parse_params,
    pick_run,
    store_option,
)


@main.command("runs", context_settings=CONTEXT)
@store_option
@format_option
@friendly
def runs_cmd(store_url: str | None, fmt: str) -> None:
    """List the runs in the store.

    \b
    Examples:
      circuitatlas runs
      circuitatlas runs --store runs/toy.lbdb --format json
      circuitatlas runs --store neo4j://localhost:7687
    """
    from circuitatlas.store import open_store

    with open_store(store_url) as store:
        echo_frame(store.runs(), fmt)


@main.command("query", context_settings=CONTEXT)
@click.argument("cypher")
@click.option(
    "--param",
    "params",
    multiple=True,
    metavar="NAME=VALUE",
    help="A query parameter ($NAME); VALUE is read as JSON when it parses (500, 0.7, "
    '"a0.h1", [1,2]), else as text. Repeat for several.',
)
@store_option
@format_option
@friendly
def query_cmd(cypher: str, params: tuple[str, ...], store_url: str | None, fmt: str) -> None:
    """Run read-only Cypher on the store; values go in as parameters.

    Statements that write are refused (LadybugDB is opened read-only for it, Neo4j runs it in
    a READ session) and change nothing.

    \b
    Examples:
      circuitatlas query "MATCH (r:Run) RETURN r.run_id, r.model"
      circuitatlas query "MATCH (c:Component {name: \\$name}) RETURN c.step, c.effect
          ORDER BY c.step" --param name=a1.h0
      circuitatlas query "MATCH (s)-[e:INFLUENCES]->(t) WHERE e.step = \\$step AND
          e.similarity < \\$tau RETURN s.name, t.name, e.weight" --param step=500
          --param tau=0.7 --format csv
    """
    from circuitatlas.store import open_store

    values = parse_params(params)
    with open_store(store_url) as store:
        echo_frame(store.cypher(cypher, **values), fmt)


@main.group("ask", context_settings=CONTEXT)
def ask_group() -> None:
    """Named questions over a run's training trajectory, answered in the database.

    Each question is one parameterized Cypher statement per backend
    (circuitatlas/store/cypher/*/ask_*.cypher); `circuitatlas ask QUESTION --help` says more.

    \b
    Examples:
      circuitatlas ask top pagerank -k 3
      circuitatlas ask history a1.h0 --metric induction_score
      circuitatlas ask edge a0.h1 a1.h0 --format csv
      circuitatlas ask first a0.h1 a1.h0 --above 0.5 --edges direct
      circuitatlas ask roles 300 720
      circuitatlas ask diff 300 720 --tau 0.7 -k 5
    """


def _ask_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``--run``, ``--store`` and ``--format``, shared by every question."""
    fn = format_option(store_option(fn))
    return click.option(
        "--run", "run_id", default=None, help="Run id (default: the store's only run)."
    )(fn)


def _answer(store_url: str | None, run_id: str | None, fmt: str, question: str, **kw: Any) -> None:
    """Ask ``question`` (a function of circuitatlas.queries.trajectory) of the run and print the
    frame; its note, if any, goes to stderr."""
    from circuitatlas.queries import trajectory
    from circuitatlas.store import open_store

    with open_store(store_url) as store:
        frame = getattr(trajectory, question)(store, pick_run(store, run_id), **kw)
    echo_frame(frame, fmt)
    if frame.attrs.get("note"):
        click.echo(frame.attrs["note"], err=True)


@ask_group.command("top", context_settings=CONTEXT)
@click.argument("metric")
@click.option("-k", "--k", "k", type=int, default=5, show_default=True, help="Rows per step.")
@_ask_options
@friendly
def ask_top_cmd(metric: str, k: int, run_id: str | None, store_url: str | None, fmt: str) -> None:
    """The k components with the largest METRIC at every checkpoint: step, rank, name, value.

    METRIC is a numeric component property: effect, prev_token_score, induction_score (from the
    sweep) or in_degree, out_degree, in_strength, out_strength, betweenness, closeness, pagerank
    (from `circuitatlas analyze`). Ties go by name; tied values share a rank; nulls are left out.

    \b
    Examples:
      circuitatlas ask top induction_score
      circuitatlas ask top pagerank -k 3 --format csv
      circuitatlas ask top effect --run 4800ca1244c7 --store neo4j://localhost:7687
    """
    _answer(store_url, run_id, fmt, "top_components", metric=metric, k=k)


@ask_group.command("history", context_settings=CONTEXT)
@click.argument("name")
@click.option(
    "--metric",
    "metrics",
    multiple=True,
    metavar="METRIC",
    help="A numeric property to show (repeat for several; default: every one stored).",
)
@_ask_options
@friendly
def ask_history_cmd(
    name: str, metrics: tuple[str, ...], run_id: str | None, store_url: str | None, fmt: str
) -> None:
    """Component NAME's numeric properties at every checkpoint.

    \b
    Examples:
      circuitatlas ask history a1.h0
      circuitatlas ask history a0.h1 --metric prev_token_score --metric out_strength
      circuitatlas ask history m0 --format json
    """
    _answer(store_url, run_id, fmt, "component_history", name=name, metrics=metrics or None)


@ask_group.command("edge", context_settings=CONTEXT)
@click.argument("source")
@click.argument("target")
@_ask_options
@friendly
def ask_edge_cmd(
    source: str, target: str, run_id: str | None, store_url: str | None, fmt: str
) -> None:
    """The edge SOURCE → TARGET at every checkpoint: similarity, weight, std of both effects.

    \b
    Examples:
      circuitatlas ask edge a0.h1 a1.h0
      circuitatlas ask edge input logits --format csv > input-logits.csv
    """
    _answer(store_url, run_id, fmt, "edge_history", source=source, target=target)


@ask_group.command("first", context_settings=CONTEXT)
@click.argument("source")
@click.argument("target")
@click.option("--above", type=float, required=True, help="The weight to exceed.")
@edges_option()
@_ask_options
@friendly
def ask_first_cmd(
    source: str,
    target: str,
    above: float,
    measure: str,
    run_id: str | None,
    store_url: str | None,
    fmt: str,
) -> None:
    """The first step at which the weight of SOURCE → TARGET exceeds --above.

    When it never does, no row, and a note says the largest weight it reached and when.

    \b
    Examples:
      circuitatlas ask first a0.h1 a1.h0 --above 0.5
      circuitatlas ask first a0.h2 a1.h1 --above 0.2 --edges direct --format json
    """
    _answer(
        store_url,
        run_id,
        fmt,
        "first_exceeding",
        source=source,
        target=target,
        value=above,
        measure=measure,
    )


@ask_group.command("roles", context_settings=CONTEXT)
@click.argument("step_a", type=int)
@click.argument("step_b", type=int)
@_ask_options
@friendly
def ask_roles_cmd(
    step_a: int, step_b: int, run_id: str | None, store_url: str | None, fmt: str
) -> None:
    """Components whose role (spreader, gatherer, gatekeeper) differs between STEP_A and STEP_B.

    The roles are those the run's last `circuitatlas analyze` wrote (None: no role).

    \b
    Examples:
      circuitatlas ask roles 300 720
      circuitatlas ask roles 0 1200 --format csv
    """
    _answer(store_url, run_id, fmt, "role_changes", step_a=step_a, step_b=step_b)


@ask_group.command("diff", context_settings=CONTEXT)
@click.argument("step_a", type=int)
@click.argument("step_b", type=int)
@click.option(
    "--tau",
    type=float,
    default=0.7,
    show_default=True,
    help="An edge is present when its similarity is below TAU.",
)
@edges_option()
@click.option("-k", "--k", "k", type=int, default=10, show_default=True, help="Rows per change.")
@_ask_options
@friendly
def ask_diff_cmd(
    step_a: int,
    step_b: int,
    tau: float,
    measure: str,
    k: int,
    run_id: str | None,
    store_url: str | None,
    fmt: str,
) -> None:
    """How the graph at TAU changes from STEP_A to STEP_B.

    Edges that appeared (absent at STEP_A, present at STEP_B), vanished, strengthened and
    weakened (present at both; weight up or down): per change the k with the largest |delta|,
    delta = weight_after − weight_before.

    \b
    Examples:
      circuitatlas ask diff 300 720
      circuitatlas ask diff 0 1200 --tau 0.9 --edges direct -k 5 --format csv
    """
    _answer(
        store_url,
        run_id,
        fmt,
        "checkpoint_diff",
        step_a=step_a,
        step_b=step_b,
        tau=tau,
        measure=measure,
        k=k,
    )
