"""Everything in a store as comparable Python values: every node with all its properties and
every relationship with its endpoints' keys and properties (through read-only user Cypher)."""

from __future__ import annotations

from typing import Any

NODE_KEYS = {"Run": "run_id", "Checkpoint": "key", "Component": "key"}
RELATIONSHIPS = {
    "HAS_CHECKPOINT": ("Run", "Checkpoint"),
    "HAS_COMPONENT": ("Checkpoint", "Component"),
    "INFLUENCES": ("Component", "Component"),
    "NEXT": ("Component", "Component"),
}


def _plain(value: dict[str, Any], ignore: set[str]) -> tuple:
    """Properties without the database's internal fields (``_ID``, ``_LABEL``, …) or ``ignore``."""
    return tuple(
        sorted((k, repr(v)) for k, v in value.items() if not k.startswith("_") and k not in ignore)
    )


def dump(store: Any, ignore: set[str] = frozenset()) -> dict[str, list[tuple]]:
    """Sorted nodes per label and relationships per type; ``ignore`` names properties to skip."""
    out: dict[str, list[tuple]] = {}
    for label in NODE_KEYS:
        frame = store.cypher(f"MATCH (n:{label}) RETURN n")
        out[label] = sorted(_plain(n, ignore) for n in frame["n"])
    for rel, (a, b) in RELATIONSHIPS.items():
        frame = store.cypher(
            f"MATCH (a:{a})-[e:{rel}]->(b:{b}) "
            f"RETURN a.{NODE_KEYS[a]} AS a, b.{NODE_KEYS[b]} AS b, e"
        )
        out[rel] = sorted(
            (x, y, _plain(e, ignore)) for x, y, e in zip(frame.a, frame.b, frame.e, strict=True)
        )
    return out
