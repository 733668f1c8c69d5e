"""Exports of one checkpoint's graph: a networkx ``DiGraph``, and GraphML for Gephi or Cytoscape.

The graph is built from the store's ordinary reads, so it holds exactly what they return:

* nodes: the checkpoint's components (``store.components(run_id, step)``), keyed by name, with
  every stored property of that step as attributes (null and NaN values left out);
* edges: its INFLUENCES edges (``store.edges(run_id, step, tau, measure)``) with ``step``,
  both measures' ``similarity``, ``weight`` and ``std`` and the task-metric scores
  ``patch_effect`` and ``eap_ig`` where computed; with ``tau`` only those whose
  ``measure`` similarity is below it (an edge exists at τ when its similarity is below τ), without
  it every stored edge;
* graph attributes: ``run_id``, ``step``, ``measure`` and ``tau`` (None: every edge).
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import networkx as nx

from circuitatlas.errors import CircuitAtlasError
from circuitatlas.graph.attributes import plain_records, plain_value
from circuitatlas.graph.network import MEASURES, check_tau

if TYPE_CHECKING:
    from circuitatlas.store.base import StoreBase

DEFAULT_MEASURE = "total"


def to_networkx(
    store: StoreBase,
    run_id: str,
    step: int,
    measure: str = DEFAULT_MEASURE,
    tau: float | None = None,
) -> nx.DiGraph:
    """One stored checkpoint as a ``networkx.DiGraph`` (see the module docstring).

    ``measure`` (``total`` or ``direct``) is the similarity ``tau`` applies to; every edge
    carries both measures either way. Raises :class:`CircuitAtlasError` for an unknown run or
    step, a measure other than those two, or a τ outside (0, 2].
    """
    if measure not in MEASURES:
        raise CircuitAtlasError(f"--edges {measure}: give one of {', '.join(MEASURES)}")
    if tau is not None:
        check_tau(tau)
    components = store.components(run_id, step)  # checks the run and the step
    edges = store.edges(run_id, step, tau=tau, measure=measure)
    graph = nx.DiGraph(
        run_id=run_id, step=int(step), measure=measure, tau=None if tau is None else float(tau)
    )
    for node in plain_records(components):
        graph.add_node(node["name"], **node)
    for edge in plain_records(edges):
        graph.add_edge(edge.pop("source"), edge.pop("target"), **edge)
    return graph


def _graphml_value(value: Any) -> Any:
    """A value GraphML can hold: lists and maps as JSON text, everything else as it is."""
    if isinstance(value, list | tuple | dict):
        return json.dumps(value, default=str, ensure_ascii=False)
    return value


def graphml_ready(graph: nx.DiGraph) -> nx.DiGraph:
    """A copy of ``graph`` whose attributes GraphML can store: None values left out, lists
    and maps as JSON text (GraphML has scalar attributes only)."""

    def clean(attributes: dict[str, Any]) -> dict[str, Any]:
        return {k: _graphml_value(v) for k, v in attributes.items() if plain_value(v) is not None}

    out = nx.DiGraph(**clean(graph.graph))
    out.add_nodes_from((n, clean(a)) for n, a in graph.nodes(data=True))
    out.add_edges_from((s, t, clean(a)) for s, t, a in graph.edges(data=True))
    return out


def _check_out(path: Path) -> None:
    """Raise a one-line error when ``path`` cannot be the file written."""
    if path.is_dir():
        raise CircuitAtlasError(
            f"--out {path}: is a directory; give a file path, e.g. {path / 'graph.graphml'}"
        )
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise CircuitAtlasError(f"--out {path}: {parent} is not a directory; give a file path")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise CircuitAtlasError(f"--out {path}: cannot write in {parent}; give a writable path")


@contextmanager
def atomic_file(out: Path) -> Iterator[Path]:
    """Yield a temporary file path beside ``out``; on success it replaces ``out`` whole.

    On any error the temporary file is removed and ``out`` is left as it was, so a failed write
    never leaves half a file behind.
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.{secrets.token_hex(6)}.tmp"
    # created here (O_EXCL) rather than by mkstemp, so the file gets the umask's usual mode
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    try:
        yield tmp
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_graphml(
    store: StoreBase,
    run_id: str,
    step: int,
    path: str | os.PathLike[str],
    measure: str = DEFAULT_MEASURE,
    tau: float | None = None,
) -> nx.DiGraph:
    """Write one checkpoint's graph (:func:`to_networkx`) to ``path`` as GraphML; returns it.

    The file is written whole or not at all (an existing file is replaced only on success).
    Attributes GraphML cannot hold are adapted (:func:`graphml_ready`): None left out, lists as
    JSON text. Read it back with ``networkx.read_graphml`` or open it in Gephi or Cytoscape.
    """
    out = Path(path)
    _check_out(out)
    graph = to_networkx(store, run_id, step, measure, tau)
    ready = graphml_ready(graph)
    try:
        with atomic_file(out) as tmp:
            nx.write_graphml(ready, tmp, encoding="utf-8")
    except OSError as e:
        raise CircuitAtlasError(
            f"--out {out}: cannot write it ({e.strerror or e}); give a writable file path"
        ) from None
    return graph
