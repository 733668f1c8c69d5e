"""Named Cypher statements: one ``.cypher`` file per statement and dialect, parameters only.

``cypher/neo4j/NAME.cypher`` and ``cypher/ladybug/NAME.cypher`` hold the statement ``NAME`` for
each backend. Whole-line ``//`` comments document a file and are dropped before it is sent; a file
may hold several statements separated by ``;`` (the schema files do).
"""

from __future__ import annotations

import functools
from pathlib import Path

CYPHER_DIR = Path(__file__).parent / "cypher"
DIALECTS = ("ladybug", "neo4j")


def statement_path(dialect: str, name: str) -> Path:
    """Where statement ``name`` of ``dialect`` lives."""
    if dialect not in DIALECTS:
        raise ValueError(f"unknown Cypher dialect {dialect!r}; one of {DIALECTS}")
    return CYPHER_DIR / dialect / f"{name}.cypher"


@functools.cache
def statements(dialect: str, name: str) -> tuple[str, ...]:
    """The statements of file ``name`` in ``dialect``, comments dropped, in order."""
    lines = [
        line
        for line in statement_path(dialect, name).read_text().splitlines()
        if not line.lstrip().startswith("//")
    ]
    return tuple(part.strip() for part in "\n".join(lines).split(";") if part.strip())


def statement(dialect: str, name: str) -> str:
    """The single statement of file ``name`` in ``dialect``."""
    parts = statements(dialect, name)
    if len(parts) != 1:
        raise ValueError(f"{statement_path(dialect, name)} holds {len(parts)} statements, not 1")
    return parts[0]


def statement_names(dialect: str) -> list[str]:
    """Every statement name of ``dialect``."""
    return sorted(p.stem for p in (CYPHER_DIR / dialect).glob("*.cypher"))
