"""Pathfinding math on hand-built graphs: distances, clipping, ties, τ and the τ suggestion,
persistence and emergence."""

import math

import numpy as np
import pandas as pd
import pytest

from circuitatlas.graph.network import Graph
from circuitatlas.graph.paths import CheckpointEdges, FoundPath, edge_distances, k_strongest
from circuitatlas.queries.paths import emergence, paths_frame, persistence

NAMES = ["input", "a", "b", "c", "logits"]


def graph(edges: list[tuple[str, str, float]], names: list[str] = NAMES) -> Graph:
    frame = pd.DataFrame(edges, columns=["source", "target", "weight"])
    return Graph.from_edges(names, frame)


def test_distance_is_minus_log_of_the_weight_clipped_at_one():
    weights = np.array([0.5, 1.0, 1.7, 1e-300])
    assert edge_distances(weights).tolist() == [-math.log(0.5), 0.0, 0.0, -math.log(1e-300)]


def test_strength_is_the_product_of_clipped_weights_and_ranks_paths():
    g = graph(
        [
            ("input", "a", 0.5),
            ("a", "logits", 0.5),  # 0.25
            ("input", "b", 1.6),  # clipped to 1
            ("b", "logits", 0.3),  # 0.3
            ("input", "logits", 0.1),  # 0.1
            ("a", "b", 0.9),  # input→a→b→logits: 0.5 · 0.9 · 0.3 = 0.135
        ]
    )
    found = k_strongest(g, "input", "logits", 10)
    assert [p.text for p in found] == [
        "input→b→logits",
        "input→a→logits",
        "input→a→b→logits",
        "input→logits",
    ]
    assert [p.strength for p in found] == pytest.approx([0.3, 0.25, 0.135, 0.1], rel=1e-12)
    assert k_strongest(g, "input", "logits", 1) == found[:1]  # Dijkstra's is Yen's first
    assert k_strongest(g, "input", "logits", 2) == found[:2]


def test_equal_strengths_are_ordered_by_names():
    g = graph(
        [
            ("input", "c", 1.0),
            ("c", "logits", 2.0),
            ("input", "a", 1.5),
            ("a", "logits", 1.0),
            ("input", "b", 1.2),
            ("b", "logits", 1.1),
        ]
    )
    found = k_strongest(g, "input", "logits", 5)
    assert [p.text for p in found] == ["input→a→logits", "input→b→logits", "input→c→logits"]
    assert all(p.strength == 1.0 for p in found)


def test_no_path_is_an_empty_list():
    g = graph([("input", "a", 0.5), ("b", "logits", 0.5)])
    assert k_strongest(g, "input", "logits", 3) == []
    assert k_strongest(g, "input", "logits", 1) == []


def edges_with_similarity(rows):
    nodes = pd.DataFrame({"id": range(len(NAMES)), "name": NAMES})
    index = {n: i for i, n in enumerate(NAMES)}
    frame = pd.DataFrame(rows, columns=["source", "target", "weight", "similarity"])
    frame["source"] = frame["source"].map(index)
    frame["target"] = frame["target"].map(index)
    return CheckpointEdges.from_frames(nodes, frame)


def test_tau_and_non_positive_weights_leave_edges_out():
    edges = edges_with_similarity(
        [
            ("input", "a", 0.6, 0.4),
            ("a", "logits", 0.2, 0.8),
            ("input", "b", 0.0, 1.0),  # no influence: never an edge
            ("b", "logits", 0.9, 0.1),
            ("input", "logits", -0.01, 1.01),
        ]
    )
    assert [p.text for p in k_strongest(edges.graph(None), "input", "logits", 5)] == [
        "input→a→logits"
    ]
    assert k_strongest(edges.graph(0.7), "input", "logits", 5) == []
    assert len(k_strongest(edges.graph(0.81), "input", "logits", 5)) == 1


def test_the_tau_suggestion_is_the_best_bottleneck():
    edges = edges_with_similarity(
        [
            ("input", "a", 0.6, 0.4),
            ("a", "logits", 0.2, 0.8),  # bottleneck 0.8 through a
            ("input", "b", 0.3, 0.7),
            ("b", "c", 0.3, 0.75),
            ("c", "logits", 0.4, 0.6),  # bottleneck 0.75 through b, c
            ("input", "logits", 0.0, 1.0),  # weight 0: not an edge at any τ
        ]
    )
    assert edges.tau_with_path("input", "logits") == 0.75
    assert k_strongest(edges.graph(0.75), "input", "logits", 5) == []
    assert [p.text for p in k_strongest(edges.graph(0.7500001), "input", "logits", 5)] == [
        "input→b→c→logits"
    ]
    assert edges.tau_with_path("a", "input") is None


def frame_of(steps_paths):
    return pd.concat(
        [
            paths_frame(step, [FoundPath(tuple(p.split("→")), d) for p, d in paths])
            for step, paths in steps_paths
        ],
        ignore_index=True,
    )


def test_persistence_and_emergence():
    steps = [0, 10, 20, 30]
    paths = frame_of(
        [
            (0, [("input→logits", 0.1), ("input→a→logits", 0.2)]),
            (10, [("input→a→logits", 0.1), ("input→logits", 0.2)]),
            # step 20: no path
            (30, [("input→a→logits", 0.1), ("input→b→logits", 0.3)]),
        ]
    )
    table = persistence(paths, steps).set_index("path")
    assert table.loc["input→a→logits"].to_dict() == {
        "first_step": 0,
        "last_step": 30,
        "n_checkpoints": 3,
        "fraction": 0.75,
        "best_rank": 1,
        "top1_checkpoints": 2,
    }
    assert table.loc["input→b→logits", "fraction"] == 0.25
    assert list(table.index) == ["input→a→logits", "input→logits", "input→b→logits"]
    events = emergence(paths, steps)
    # a path entering the top 1 at 10, and again at 30 after a checkpoint without any path
    assert events[["step", "path"]].values.tolist() == [
        [10, "input→a→logits"],
        [30, "input→a→logits"],
    ]
    assert events["replaced"].iloc[0] == "input→logits"
    assert pd.isna(events["replaced"].iloc[1])
    assert events["strength"].tolist() == pytest.approx([math.exp(-0.1)] * 2)


def test_components_sort_in_computation_order():
    import random

    from circuitatlas.ingest.components import all_components, order_key

    names = [c.name for c in all_components(12, 12)]
    shuffled = random.Random(0).sample(names, len(names))
    assert sorted(shuffled, key=order_key) == names
    assert sorted(["zz", "logits", "m0", "input"], key=order_key) == ["input", "m0", "logits", "zz"]


def test_default_endpoints_are_the_contract_names():
    from circuitatlas.graph.paths import PathSettings
    from circuitatlas.ingest.components import INPUT, LOGITS

    assert (PathSettings().source, PathSettings().sink) == (INPUT, LOGITS)
