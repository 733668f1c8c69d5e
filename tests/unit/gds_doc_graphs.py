"""Example graphs of the Neo4j Graph Data Science manual, with the results published for them.

Plain data, transcribed from the pages ``doc/modules/ROOT/pages/algorithms/<page>.adoc`` of the
``neo4j/graph-data-science`` repository: the nodes and relationships of each page's CREATE
statement and the score tables of its examples, each with the projection and configuration the
table was produced with. Nothing here says how our definitions map onto them; the tests do.

An edge is ``(source, target, weight)`` in the direction of the CREATE statement; ``weight`` is
the relationship property the page projects (``score`` for degree, ``weight`` for betweenness
and PageRank), ``None`` where the relationships carry no property (closeness).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class PublishedTable:
    """One published result table: the call, its effective configuration, and the scores."""

    call: str
    config: dict[str, object]
    scores: dict[str, float]


@dataclass(frozen=True)
class DocGraph:
    """One page's example graph and the result tables published for it."""

    page: str
    nodes: tuple[str, ...]
    edges: tuple[tuple[str, str, float | None], ...]
    tables: dict[str, PublishedTable] = field(default_factory=dict)


# degree-centrality.adoc: a social network; the graph is projected with orientation REVERSE
# (FOLLOWS reversed, property ``score``), so the algorithm's NATURAL orientation counts the
# followers (incoming FOLLOWS of the CREATE direction) and its REVERSE orientation, applied on top
# of the reversed projection, counts the followees (outgoing FOLLOWS). Weighted degree ignores
# non-positive weights (Alice→Bridget has score −2).
DEGREE = DocGraph(
    page="degree-centrality",
    nodes=("Alice", "Bridget", "Charles", "Doug", "Mark", "Michael"),
    edges=(
        ("Alice", "Doug", 1.0),
        ("Alice", "Bridget", -2.0),
        ("Alice", "Charles", 5.0),
        ("Mark", "Doug", 1.5),
        ("Mark", "Michael", 4.5),
        ("Bridget", "Doug", 1.5),
        ("Charles", "Doug", 2.0),
        ("Michael", "Doug", 1.5),
    ),
    tables={
        "followers": PublishedTable(
            call="gds.degree.stream",
            config={"projection": "REVERSE", "orientation": "NATURAL", "weighted": False},
            scores={
                "Doug": 5.0,
                "Michael": 1.0,
                "Charles": 1.0,
                "Bridget": 1.0,
                "Mark": 0.0,
                "Alice": 0.0,
            },
        ),
        "weighted_followers": PublishedTable(
            call="gds.degree.stream",
            config={
                "projection": "REVERSE",
                "orientation": "NATURAL",
                "weighted": True,
                "relationshipWeightProperty": "score",
            },
            scores={
                "Doug": 7.5,
                "Charles": 5.0,
                "Michael": 4.5,
                "Mark": 0.0,
                "Bridget": 0.0,
                "Alice": 0.0,
            },
        ),
        "followees": PublishedTable(
            call="gds.degree.stream",
            config={"projection": "REVERSE", "orientation": "REVERSE", "weighted": False},
            scores={
                "Alice": 3.0,
                "Mark": 2.0,
                "Michael": 1.0,
                "Charles": 1.0,
                "Bridget": 1.0,
                "Doug": 0.0,
            },
        ),
    },
)

# betweenness-centrality.adoc: projected NATURAL with property ``weight``; exact (no sampling).
# The weighted table uses the weight as the length of a relationship.
BETWEENNESS = DocGraph(
    page="betweenness-centrality",
    nodes=("Alice", "Bob", "Carol", "Dan", "Eve", "Frank", "Gale"),
    edges=(
        ("Alice", "Carol", 1.0),
        ("Bob", "Carol", 1.0),
        ("Carol", "Dan", 1.0),
        ("Carol", "Eve", 1.3),
        ("Dan", "Frank", 1.0),
        ("Eve", "Frank", 0.5),
        ("Frank", "Gale", 1.0),
    ),
    tables={
        "unweighted": PublishedTable(
            call="gds.betweenness.stream",
            config={"projection": "NATURAL", "weighted": False},
            scores={
                "Alice": 0.0,
                "Bob": 0.0,
                "Carol": 8.0,
                "Dan": 3.0,
                "Eve": 3.0,
                "Frank": 5.0,
                "Gale": 0.0,
            },
        ),
        "weighted": PublishedTable(
            call="gds.betweenness.stream",
            config={
                "projection": "NATURAL",
                "weighted": True,
                "relationshipWeightProperty": "weight",
            },
            scores={
                "Alice": 0.0,
                "Bob": 0.0,
                "Carol": 8.0,
                "Dan": 0.0,
                "Eve": 6.0,
                "Frank": 5.0,
                "Gale": 0.0,
            },
        ),
        # every unordered pair of nodes counted once
        "undirected": PublishedTable(
            call="gds.betweenness.stream",
            config={"projection": "UNDIRECTED", "weighted": False},
            scores={
                "Alice": 0.0,
                "Bob": 0.0,
                "Carol": 9.5,
                "Dan": 3.0,
                "Eve": 3.0,
                "Frank": 5.5,
                "Gale": 0.0,
            },
        ),
    },
)

# closeness-centrality.adoc: a path A–B–C–D–E with a relationship each way, projected NATURAL,
# no weights; the default configuration (useWassermanFaust false).
CLOSENESS = DocGraph(
    page="closeness-centrality",
    nodes=("A", "B", "C", "D", "E"),
    edges=(
        ("A", "B", None),
        ("B", "A", None),
        ("B", "C", None),
        ("C", "B", None),
        ("C", "D", None),
        ("D", "C", None),
        ("D", "E", None),
        ("E", "D", None),
    ),
    tables={
        "default": PublishedTable(
            call="gds.closeness.stream",
            config={"projection": "NATURAL", "useWassermanFaust": False},
            scores={
                "C": 0.6666666666666666,
                "B": 0.5714285714285714,
                "D": 0.5714285714285714,
                "A": 0.4,
                "E": 0.4,
            },
        ),
    },
)

# page-rank.adoc: a small web site, projected NATURAL with property ``weight``. Every page has an
# outgoing link. Both tables ran with dampingFactor 0.85, maxIterations 20 and the default
# tolerance 1e-7 (the defaults of the page's configuration table); the page's mutate and write
# runs of the unweighted configuration report ranIterations 20 = maxIterations, i.e. the
# tolerance was not reached and the scores are those after the 20th iteration (no count is
# published for the weighted run). GDS publishes the scores unnormalized: they sum to about the
# node count, not to 1.
PAGERANK = DocGraph(
    page="page-rank",
    nodes=("Home", "About", "Product", "Links", "Site A", "Site B", "Site C", "Site D"),
    edges=(
        ("Home", "About", 0.2),
        ("Home", "Links", 0.2),
        ("Home", "Product", 0.6),
        ("About", "Home", 1.0),
        ("Product", "Home", 1.0),
        ("Site A", "Home", 1.0),
        ("Site B", "Home", 1.0),
        ("Site C", "Home", 1.0),
        ("Site D", "Home", 1.0),
        ("Links", "Home", 0.8),
        ("Links", "Site A", 0.05),
        ("Links", "Site B", 0.05),
        ("Links", "Site C", 0.05),
        ("Links", "Site D", 0.05),
    ),
    tables={
        "unweighted": PublishedTable(
            call="gds.pageRank.stream",
            config={
                "projection": "NATURAL",
                "weighted": False,
                "dampingFactor": 0.85,
                "maxIterations": 20,
                "tolerance": 1e-7,
                "ranIterations": 20,
            },
            scores={
                "Home": 3.215681999884452,
                "About": 1.0542700552146722,
                "Links": 1.0542700552146722,
                "Product": 1.0542700552146722,
                "Site A": 0.3278578964488539,
                "Site B": 0.3278578964488539,
                "Site C": 0.3278578964488539,
                "Site D": 0.3278578964488539,
            },
        ),
        "weighted": PublishedTable(
            call="gds.pageRank.stream",
            config={
                "projection": "NATURAL",
                "weighted": True,
                "relationshipWeightProperty": "weight",
                "dampingFactor": 0.85,
                "maxIterations": 20,
                "tolerance": 1e-7,
            },
            scores={
                "Home": 3.53751028396339,
                "Product": 1.9357838291651097,
                "About": 0.7452612763883698,
                "Links": 0.7452612763883698,
                "Site A": 0.18152677135466103,
                "Site B": 0.18152677135466103,
                "Site C": 0.18152677135466103,
                "Site D": 0.18152677135466103,
            },
        ),
    },
)

ALL = (DEGREE, BETWEENNESS, CLOSENESS, PAGERANK)
