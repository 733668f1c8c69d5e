"""The package is layered: no module imports a layer above its own.

Tiers, low → high (a module is in the tier of the longest prefix naming it):

0. ``circuitatlas.errors``, ``circuitatlas.atomic_dir``, ``circuitatlas._version``,
   ``circuitatlas.paper`` (constants) and
   ``circuitatlas.graph.*`` (pure graph algorithms; ``circuitatlas.graph`` imports nothing of ours
   but ``circuitatlas.errors``);
1. ``circuitatlas.ingest.*``;
2. ``circuitatlas.store.*``;
3. ``circuitatlas.analytics.*`` and ``circuitatlas.queries.*``: one tier, with one direction
   inside it: the queries may import the analytics (a question reads the analysis's τ), the
   analytics never import the queries;
4. ``circuitatlas.report.*``;
5. ``circuitatlas.export``, ``circuitatlas.demo``, ``circuitatlas.reproduce``,
   ``circuitatlas.cli*`` and ``circuitatlas`` itself (the package ``__init__``, which imports
   its public API lazily; the version the lower tiers record is ``circuitatlas._version``).

A module may import its own tier and any tier below. Every ``circuitatlas`` import counts: at
module level, inside functions and under ``if TYPE_CHECKING:``. Besides the tiers, the packages
(``circuitatlas.store``, ``circuitatlas.cli``, … and the top-level modules) must not import each
other in a cycle. A new module outside the prefixes below fails the test until it is given a tier.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping, Set
from pathlib import Path

import circuitatlas

ROOT = Path(circuitatlas.__file__).parent

TIERS: dict[str, int] = {
    "circuitatlas.errors": 0,
    "circuitatlas.atomic_dir": 0,
    "circuitatlas._version": 0,
    "circuitatlas.paper": 0,
    "circuitatlas.graph": 0,
    "circuitatlas.ingest": 1,
    "circuitatlas.store": 2,
    "circuitatlas.analytics": 3,
    "circuitatlas.queries": 3,
    "circuitatlas.report": 4,
    "circuitatlas.export": 5,
    "circuitatlas.demo": 5,
    "circuitatlas.reproduce": 5,
    "circuitatlas.cli": 5,
    "circuitatlas": 5,  # the package itself only, not a prefix
}
# (importer, imported) pairs refused inside one tier
SAME_TIER_REFUSED = {("circuitatlas.analytics", "circuitatlas.queries")}
GRAPH_MAY_IMPORT = ("circuitatlas.errors", "circuitatlas.graph")


def _prefix(module: str) -> str | None:
    """The longest prefix of ``TIERS`` naming ``module`` (None: none does)."""
    best = None
    for prefix in TIERS:
        within = module.startswith(prefix + ".") and prefix != "circuitatlas"
        if (module == prefix or within) and (best is None or len(prefix) > len(best)):
            best = prefix
    return best


def tier(module: str) -> int | None:
    """The tier of ``module`` (None: not in any)."""
    prefix = _prefix(module)
    return None if prefix is None else TIERS[prefix]


def unit(module: str) -> str:
    """The package or top-level module ``module`` belongs to: ``circuitatlas.store``, …"""
    return ".".join(module.split(".")[:2])


def package_modules(root: Path = ROOT) -> dict[str, str]:
    """Every module of the package: dotted name → source."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = ["circuitatlas", *path.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path.read_text(encoding="utf-8")
    return out


def imports_of(module: str, source: str, known: Set[str] = frozenset()) -> set[str]:
    """Every ``circuitatlas`` module ``source`` imports, anywhere in it (function bodies and
    ``TYPE_CHECKING`` blocks included); ``from pkg import name`` counts as ``pkg.name`` when
    that is a module of ``known``."""
    is_package = module in known and any(k.startswith(module + ".") for k in known)
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "circuitatlas"}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolved against the importing module's package
                package = module.split(".")
                package = package[: len(package) - node.level + (1 if is_package else 0)]
                base = ".".join([*package, *([base] if base else [])])
            if base.split(".")[0] != "circuitatlas":
                continue
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in known else base)
    return found


def violations(modules: Mapping[str, str]) -> list[str]:
    """Every import in ``modules`` (name → source) that goes up a tier, inside a tier the
    refused way, out of ``circuitatlas.graph`` to anything but errors, or from a module with no
    tier; then every cycle between packages."""
    known = set(modules)
    found = []
    edges: dict[str, set[str]] = {}
    for module, source in sorted(modules.items()):
        own = tier(module)
        if own is None:
            found.append(f"{module}: no tier (add its prefix to TIERS)")
            continue
        for imported in sorted(imports_of(module, source, known)):
            theirs = tier(imported)
            if unit(imported) != unit(module):
                edges.setdefault(unit(module), set()).add(unit(imported))
            if theirs is None:
                found.append(f"{module} imports {imported}, which has no tier")
            elif theirs > own:
                found.append(f"{module} (tier {own}) imports {imported} (tier {theirs})")
            elif (_prefix(module), _prefix(imported)) in SAME_TIER_REFUSED:
                found.append(f"{module} imports {imported}: that way is refused in tier {own}")
            elif _prefix(module) == "circuitatlas.graph" and not any(
                imported == p or imported.startswith(p + ".") for p in GRAPH_MAY_IMPORT
            ):
                found.append(f"{module} imports {imported}: circuitatlas.graph imports only errors")
    found += [f"packages import each other in a cycle: {' → '.join(c)}" for c in _cycles(edges)]
    return found


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """One cycle through each package that lies on one (depth-first search)."""
    cycles, done = [], set()

    def visit(node: str, stack: list[str]) -> None:
        if node in stack:
            cycles.append([*stack[stack.index(node) :], node])
            return
        if node in done:
            return
        for nxt in sorted(edges.get(node, ())):
            visit(nxt, [*stack, node])
        done.add(node)

    for node in sorted(edges):
        visit(node, [])
    return cycles


def test_no_module_imports_a_tier_above_its_own() -> None:
    modules = package_modules()
    assert "circuitatlas.graph.paths" in modules and "circuitatlas.cli" in modules
    assert violations(modules) == []


def test_graph_imports_nothing_of_ours_but_errors() -> None:
    modules = package_modules()
    imported = set()
    for module, source in modules.items():
        if module == "circuitatlas.graph" or module.startswith("circuitatlas.graph."):
            imported |= imports_of(module, source, set(modules))
    outside = {m for m in imported if unit(m) != "circuitatlas.graph"}
    assert outside == {"circuitatlas.errors"}


def test_an_upward_import_is_reported_wherever_it_is() -> None:
    upward = {
        # in a function body
        "circuitatlas.store.fake": "def f():\n    from circuitatlas.report import write_report\n",
        # under TYPE_CHECKING
        "circuitatlas.ingest.fake": (
            "from typing import TYPE_CHECKING\n"
            "if TYPE_CHECKING:\n    from circuitatlas.store.base import StoreBase\n"
        ),
        # a plain import, and a relative one
        "circuitatlas.graph.fake": "import circuitatlas.ingest.components\n",
        "circuitatlas.report.fake": "from ..cli import main\n",
    }
    found = violations(upward)
    assert len(found) == 4, found
    assert "circuitatlas.store.fake (tier 2) imports circuitatlas.report (tier 4)" in found
    assert any("circuitatlas.report.fake (tier 4) imports circuitatlas.cli" in f for f in found)


def test_the_refused_direction_a_stray_import_and_a_cycle_are_reported() -> None:
    found = violations(
        {
            "circuitatlas.analytics.fake": "from circuitatlas.queries.paths import find_paths\n",
            "circuitatlas.queries.fake": "from circuitatlas.analytics.analyze import analyze\n",
            "circuitatlas.graph.fake": "from circuitatlas.atomic_dir import atomic_directory\n",
            "circuitatlas.newthing": "x = 1\n",
        }
    )
    assert any("analytics.fake imports circuitatlas.queries.paths: that way" in f for f in found)
    assert any("graph imports only errors" in f for f in found)
    assert any(f.startswith("circuitatlas.newthing: no tier") for f in found)
    assert any("cycle: circuitatlas.analytics → circuitatlas.queries" in f for f in found)
    assert not any(f.startswith("circuitatlas.queries.fake") for f in found)
