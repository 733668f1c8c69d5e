"""Graph stores: the embedded LadybugDB file by default, Neo4j in production.

``open_store(url)`` picks the backend from the URL: ``neo4j://``, ``neo4j+s://``, ``bolt://`` (and
their ``+ssc`` forms) open Neo4j with ``NEO4J_USERNAME``, ``NEO4J_PASSWORD`` and
``NEO4J_DATABASE`` from the environment; anything else is a path to a LadybugDB store file
(default ``$CIRCUITATLAS_STORE`` or ``circuitatlas.lbdb``).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from circuitatlas.errors import CircuitAtlasError
from circuitatlas.store.base import GraphStore, StoreBase
from circuitatlas.store.ladybug import DEFAULT_STORE, LadybugStore
from circuitatlas.store.rows import RunRecord

NEO4J_SCHEMES = ("neo4j", "neo4j+s", "neo4j+ssc", "bolt", "bolt+s", "bolt+ssc")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")

__all__ = [
    "DEFAULT_STORE",
    "GraphStore",
    "RunRecord",
    "StoreBase",
    "check_store",
    "default_store_url",
    "open_store",
]


def default_store_url() -> str:
    """``$CIRCUITATLAS_STORE`` when set, else ``circuitatlas.lbdb`` in the working directory."""
    return os.environ.get("CIRCUITATLAS_STORE") or DEFAULT_STORE


def open_store(
    url: str | Path | None = None, *, writable: bool = False, batch_size: int = 10_000
) -> StoreBase:
    """Open the store at ``url`` (see the module docstring); ``writable`` for ingesting.

    ``batch_size`` is the number of rows per ``UNWIND`` batch in Neo4j.
    """
    url = str(url) if url is not None else default_store_url()
    match = _SCHEME.match(url)
    if match is None:
        return LadybugStore(url, writable=writable)
    scheme = match.group(1).lower()
    if scheme not in NEO4J_SCHEMES:
        raise CircuitAtlasError(
            f"store {scheme}://…: unknown scheme; give a file path for the embedded store or "
            f"one of {', '.join(s + '://' for s in NEO4J_SCHEMES)} for Neo4j"
        )
    from circuitatlas.store.neo4j import Neo4jStore

    return Neo4jStore(url, writable=writable, batch_size=batch_size)


def check_store(url: str | Path | None = None) -> None:
    """Fail early, writing nothing, on a store that cannot be used (checked before long work).

    An existing embedded store is opened read-only (foreign file, other schema version); a Neo4j
    URL is connected to (unreachable, credentials, schema version); a new path is left alone.
    """
    url = str(url) if url is not None else default_store_url()
    if _SCHEME.match(url) is None and not Path(url).exists():
        return
    open_store(url, writable=False).close()
