"""The README's marked Cypher examples: each ```cypher block after a line
``<!-- cypher: DIALECTS -->`` (``embedded``, ``neo4j`` or both), and the values their
``$parameters`` take in the tests (besides ``$run_id``, the test's own run)."""

from __future__ import annotations

import re

from cypher_lint import REPO_ROOT

README = REPO_ROOT / "README.md"
DIALECTS = ("embedded", "neo4j")
_PARAMETER = re.compile(r"\$(\w+)")
_BLOCK = re.compile(r"^<!-- cypher: ([\w ,]+) -->\n+```cypher\n(.*?)\n```", re.M | re.S)
# what the examples' parameters other than $run_id are set to, on the tests' synthetic runs
EXAMPLE_VALUES = {
    "name": "a1.h0",
    "source": "a0.h1",
    "target": "a1.h0",
    "metric": "pagerank",
    "threshold": 0.5,
    "tau": 0.7,
    "step": 20,
    "k": 3,
}


def cypher_blocks(text: str) -> list[tuple[set[str], str]]:
    """``(dialects, query)`` of every marked ```cypher block of ``text``, in order."""
    blocks = []
    for marker, query in _BLOCK.findall(text):
        dialects = set(re.split(r"[\s,]+", marker.strip()))
        assert dialects <= set(DIALECTS), f"unknown dialect in <!-- cypher: {marker} -->"
        blocks.append((dialects, query))
    return blocks


def readme_blocks() -> list[tuple[set[str], str]]:
    """``(dialects, query)`` of every marked ```cypher block of README.md, in order."""
    return cypher_blocks(README.read_text(encoding="utf-8"))


def parameters(query: str) -> set[str]:
    """The ``$parameter`` names ``query`` uses."""
    return set(_PARAMETER.findall(query))
