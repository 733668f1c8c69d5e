"""Lint Cypher with Neo4j's own linter (npm `@neo4j-cypher/language-support`, pinned).

`lint()` hands the statements to `tools/cypher-lint/lint.mjs` in one `node` process (about a
second to start, then some 50 ms a statement). The linter parses them, runs Neo4j's semantic
analysis as Cypher 5 against the package's built-in procedure and function signatures (Neo4j,
GDS and APOC), and warns about labels, relationship types and property keys outside the schema
given here. `$parameters` are not checked: the driver supplies them.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
LINTER_DIR = REPO_ROOT / "tools" / "cypher-lint"
LINT_SCRIPT = LINTER_DIR / "lint.mjs"
LINTER_PACKAGE = LINTER_DIR / "node_modules" / "@neo4j-cypher" / "language-support"
NEO4J_STATEMENT_DIR = REPO_ROOT / "circuitatlas" / "store" / "cypher" / "neo4j"

# The project's graph schema, as the linter should know it: read from the embedded store's table
# definitions (circuitatlas/store/cypher/ladybug/schema.cypher), the one place it is declared, so
# a Neo4j statement that names a label, type or property the store does not have is flagged.
_SCHEMA_FILE = REPO_ROOT / "circuitatlas" / "store" / "cypher" / "ladybug" / "schema.cypher"
_TABLE = re.compile(r"CREATE (NODE|REL) TABLE IF NOT EXISTS (\w+)\s*\(([^;]*)\)\s*;", re.S)
_PROPERTY = re.compile(r"^\s*(\w+)\s+[A-Z]", re.M)
_ADDED = re.compile(r"ALTER TABLE \w+ ADD IF NOT EXISTS (\w+) ")


def _declared_schema() -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    labels, types, keys = [], [], set()
    for kind, name, body in _TABLE.findall(_SCHEMA_FILE.read_text()):
        (labels if kind == "NODE" else types).append(name)
        items = body.replace("\n", " ").split(",")
        keys |= {m for item in items for m in _PROPERTY.findall(item)} - {"FROM", "PRIMARY"}
    keys |= set(_ADDED.findall(_SCHEMA_FILE.read_text()))
    return tuple(labels), tuple(types), tuple(sorted(keys))


LABELS, RELATIONSHIP_TYPES, PROPERTY_KEYS = _declared_schema()

LINT_TIMEOUT_S = 300


@dataclass(frozen=True)
class Diagnostic:
    """One finding of the linter; `line` and `column` are 1-based."""

    severity: str  # "error" or "warning"
    message: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.line}:{self.column} {self.severity}: {self.message}"


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        raise RuntimeError(
            "the Cypher linter needs Node.js (`node` is not on PATH); run `make test`, "
            "which installs it, or install nodejs and npm yourself"
        )
    if not LINTER_PACKAGE.is_dir():
        raise RuntimeError(
            f"the Cypher linter is not installed ({LINTER_PACKAGE} is missing); "
            "run `make test`, or `npm ci --prefix tools/cypher-lint`"
        )
    return node


def lint(
    queries: Mapping[str, str],
    *,
    labels: Iterable[str] = LABELS,
    relationship_types: Iterable[str] = RELATIONSHIP_TYPES,
    property_keys: Iterable[str] = PROPERTY_KEYS,
) -> dict[str, list[Diagnostic]]:
    """Lint each named query (one or more `;`-separated statements); diagnostics by name."""
    if not queries:
        return {}
    payload = {
        "queries": [{"name": name, "query": query} for name, query in queries.items()],
        "schema": {
            "labels": list(labels),
            "relationshipTypes": list(relationship_types),
            "propertyKeys": list(property_keys),
        },
    }
    proc = subprocess.run(
        [_node(), str(LINT_SCRIPT)],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        encoding="utf-8",
        cwd=LINTER_DIR,
        timeout=LINT_TIMEOUT_S,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"the Cypher linter failed (exit {proc.returncode}):\n{proc.stderr}")
    return {
        result["name"]: [Diagnostic(**d) for d in result["diagnostics"]]
        for result in json.loads(proc.stdout)
    }


def neo4j_statement_files() -> dict[str, str]:
    """The text of every `circuitatlas/store/cypher/neo4j/*.cypher`, by file stem."""
    if not NEO4J_STATEMENT_DIR.is_dir():
        return {}
    return {
        path.stem: path.read_text(encoding="utf-8")
        for path in sorted(NEO4J_STATEMENT_DIR.glob("*.cypher"))
    }
