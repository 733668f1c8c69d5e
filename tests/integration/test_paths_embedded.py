"""`circuitatlas paths` on the embedded store: paths against an independent enumeration,
candidate circuits stored as Circuit nodes, the CLI and bad input."""

import io
import json
import math
from itertools import pairwise

import networkx as nx
import pandas as pd
import pytest
from click.testing import CliRunner
from store_dump import dump

from circuitatlas.cli import main
from circuitatlas.errors import CircuitAtlasError
from circuitatlas.graph.paths import PathSettings
from circuitatlas.ingest.synthetic import synthetic_sweep
from circuitatlas.queries.circuits import Circuit, circuits_of, save
from circuitatlas.queries.paths import find_paths
from circuitatlas.store import open_store
from circuitatlas.store.ingest import ingest_sweep

STEPS = [0, 5, 50, 500]


@pytest.fixture(scope="module")
def sweep():
    return synthetic_sweep(3, 4, STEPS, seed=11)


@pytest.fixture(scope="module")
def path(tmp_path_factory, sweep):
    path = tmp_path_factory.mktemp("paths") / "store.lbdb"
    with open_store(path, writable=True) as store:
        ingest_sweep(store, sweep, progress=False)
    return path


@pytest.fixture()
def fresh(tmp_path, sweep):
    """A store of its own, for tests that write."""
    path = tmp_path / "store.lbdb"
    with open_store(path, writable=True) as store:
        ingest_sweep(store, sweep, progress=False)
    return path


def every_path(store, run_id, step, settings):
    """The plain reference: every simple path of the store's ordinary edge read, with networkx,
    ranked by strength (the product of the weights clipped to 1), ties by names."""
    edges = store.edges(run_id, step, tau=settings.tau, measure=settings.measure)
    weight = "direct_weight" if settings.measure == "direct" else "weight"
    g = nx.DiGraph()
    for row in edges.itertuples():
        w = getattr(row, weight)
        if w > 0:
            g.add_edge(row.source, row.target, w=min(w, 1.0))
    if settings.source not in g or settings.sink not in g:
        return []
    found = []
    for p in nx.all_simple_paths(g, settings.source, settings.sink):
        strength = math.prod(g.edges[a, b]["w"] for a, b in pairwise(p))
        found.append((round(-math.log(strength), 12), tuple(p), strength))
    return [(names, strength) for _, names, strength in sorted(found)]


SETTINGS = [
    PathSettings(),
    PathSettings(k=1),
    PathSettings(k=8, measure="total"),
    PathSettings(k=3, measure="total", tau=0.4),
    PathSettings(k=5, measure="direct", tau=0.8),
    PathSettings(k=4, source="a0.h1", sink="m2"),
]


@pytest.mark.parametrize("settings", SETTINGS, ids=lambda s: f"{s.measure}-k{s.k}-tau{s.tau}")
def test_paths_equal_an_independent_enumeration(path, sweep, settings):
    with open_store(path) as store:
        result = find_paths(store, sweep.run_id, None, settings)
        checked_ties = 0
        for step in STEPS:
            reference = every_path(store, sweep.run_id, step, settings)
            ours = result.paths[result.paths.step == step]
            expected = reference[: settings.k]
            assert ours["rank"].tolist() == list(range(1, len(expected) + 1))
            assert ours["strength"].tolist() == pytest.approx([s for _, s in expected], rel=1e-12)
            strengths = pd.Series([round(s, 12) for _, s in reference])
            for (names, strength), text in zip(expected, ours["path"], strict=True):
                tied = (strengths == round(strength, 12)).sum() > 1
                if tied:  # which of equally strong paths fill the last places is the backend's
                    checked_ties += 1
                    assert tuple(text.split("→")) in {n for n, s in reference if s == strength}
                else:
                    assert text == "→".join(names)
            assert (ours["hops"] == ours["path"].str.count("→")).all()
    if settings.measure == "total" and settings.tau is None:
        assert checked_ties > 0  # weights above 1 clip to 1: this case must meet ties


def test_a_checkpoint_without_a_path_names_a_tau_with_one(path, sweep):
    settings = PathSettings(k=3, tau=0.52)
    with open_store(path) as store:
        result = find_paths(store, sweep.run_id, [500], settings)
        assert result.paths.empty
        [note] = result.notes
        assert "step 500: no input→logits path at τ=0.52 (direct effects)" in note
        suggested = float(note.rsplit("--tau ", 1)[1].rstrip(")"))
        again = find_paths(store, sweep.run_id, [500], PathSettings(k=3, tau=suggested))
        assert len(again.paths) > 0
        exact = float(note.split("τ > ")[1].split(" ")[0])
        below = find_paths(store, sweep.run_id, [500], PathSettings(k=3, tau=exact * 0.999))
        assert below.paths.empty


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"source": "a0.h9"}, "--source 'a0.h9': no such component in run"),
        ({"sink": "logit"}, "did you mean logits"),
        ({"source": "m2", "sink": "a1.h0"}, "is not upstream of --sink a1.h0"),
        ({"source": "a1.h0", "sink": "a1.h2"}, "is not upstream"),  # same layer
        ({"k": 0}, "-k 0: give a positive number"),
        ({"tau": 0.0}, "--tau 0.0: give a threshold in (0, 2]"),
        ({"measure": "both"}, "--edges both: give one of total, direct"),
        ({"sink": "input"}, "both 'input'"),
    ],
)
def test_bad_settings_are_one_clear_error(path, sweep, kwargs, message):
    with open_store(path) as store, pytest.raises(CircuitAtlasError, match=None) as error:
        find_paths(store, sweep.run_id, [0], PathSettings(**kwargs))
    assert message in str(error.value)


def test_unknown_step_and_run(path, sweep):
    with open_store(path) as store:
        with pytest.raises(CircuitAtlasError, match="step 7 is not stored"):
            find_paths(store, sweep.run_id, [7])
        with pytest.raises(CircuitAtlasError, match="unknown run 'nope'"):
            find_paths(store, "nope", [0])


def test_circuits_are_stored_linked_and_replaced(fresh, sweep):
    with open_store(fresh, writable=True) as store:
        result = find_paths(store, sweep.run_id, None, PathSettings(k=3))
        circuits = circuits_of(result)
        save(store, circuits)
        stored = store.circuits(sweep.run_id)
        members = store.cypher(
            "MATCH (k:Checkpoint)-[:HAS_CIRCUIT]->(c:Circuit)<-[:IN_CIRCUIT]-(m:Component) "
            "WHERE m.step = k.step RETURN c.step AS step, m.name AS name"
        )
        before = dump(store)
        save(store, circuits)  # the same settings: replaced, not added
        assert dump(store)["Circuit"] != [] and len(store.circuits(sweep.run_id)) == len(STEPS)
        assert dump(store)["IN_CIRCUIT"] == before["IN_CIRCUIT"]
    assert stored["step"].tolist() == STEPS
    for circuit, (_, row) in zip(circuits, stored.iterrows(), strict=True):
        texts = result.paths[result.paths.step == circuit.step].path
        on_paths = {n for text in texts for n in text.split("→")}
        assert set(row["components"]) == on_paths == set(circuit.components)
        assert row["paths"] == texts.tolist()
        assert row["k"] == 3 and row["measure"] == "direct" and pd.isna(row.get("tau", None))
        assert set(members[members.step == circuit.step].name) == on_paths


def test_circuits_of_other_settings_are_kept_apart(fresh, sweep):
    with open_store(fresh, writable=True) as store:
        for settings in (PathSettings(k=2), PathSettings(k=2, measure="total")):
            save(store, circuits_of(find_paths(store, sweep.run_id, [5], settings)))
        assert sorted(store.circuits(sweep.run_id)["measure"]) == ["direct", "total"]


def test_saving_needs_a_writable_store(path, sweep):
    with open_store(path) as store:
        result = find_paths(store, sweep.run_id, [0])
        with pytest.raises(CircuitAtlasError, match="opened read-only"):
            save(store, circuits_of(result))


def test_a_failed_write_leaves_nothing(fresh, sweep):
    with open_store(fresh, writable=True) as store:
        good = circuits_of(find_paths(store, sweep.run_id, [0, 5]))
        before = dump(store)
        broken = Circuit(sweep.run_id, 5, PathSettings(k=9), good[1].paths)
        records = [good[0].record(), {**broken.record(), "step": "not a number"}]
        with pytest.raises(RuntimeError):
            store.write_circuits(records)
        assert dump(store) == before


def run_cli(*args):
    return CliRunner().invoke(main, list(map(str, args)))


def test_cli_paths_table_csv_json(fresh, sweep):
    out = run_cli("paths", "--store", fresh, "--step", 50, "-k", 3)
    assert out.exit_code == 0, out.output
    assert "the 3 strongest input→logits paths (direct effects" in out.output
    with open_store(fresh) as store:
        expected = find_paths(store, sweep.run_id, [50], PathSettings(k=3)).paths
    for text in expected.path:
        assert text in out.output
    out = run_cli("paths", "--store", fresh, "--all-steps", "--format", "csv")
    assert out.exit_code == 0, out.output
    frame = pd.read_csv(io.StringIO(out.stdout))
    assert frame.columns.tolist() == ["step", "rank", "path", "strength", "distance", "hops"]
    assert sorted(frame.step.unique()) == STEPS
    out = run_cli("paths", "--store", fresh, "--all-steps", "--save", "--format", "json")
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert set(data) >= {"paths", "persistence", "emergence", "circuits", "run_id"}
    assert len(data["circuits"]) == len(STEPS)
    with open_store(fresh) as store:
        assert len(store.circuits(sweep.run_id)) == len(STEPS)
    out = run_cli("paths", "--store", fresh, "--all-steps", "--show", "persistence")
    assert out.exit_code == 0 and "first_step" in out.stdout and "hops" not in out.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--step", 50, "--all-steps"], "give --step S (one checkpoint) or --all-steps"),
        ([], "give --step S (one checkpoint) or --all-steps"),
        (["--step", 51], "step 51 is not stored"),
        (["--step", 50, "--source", "a0.h7"], "no such component"),
        (["--step", 50, "-k", 0], "-k 0"),
        (["--step", 50, "--show", "emergence"], "add --all-steps"),
        (["--step", 50, "--run", "feedbeef"], "unknown run 'feedbeef'"),
    ],
)
def test_cli_bad_input_is_one_line_and_writes_nothing(fresh, args, message):
    with open_store(fresh) as store:
        before = dump(store)
    out = run_cli("paths", "--store", fresh, "--save", *args)
    assert out.exit_code == 1
    assert out.output.count("\n") == 1 and message in out.output, out.output
    with open_store(fresh) as store:
        assert dump(store) == before


def test_cli_no_path_is_a_note_not_an_error(fresh):
    out = run_cli("paths", "--store", fresh, "--step", 500, "--tau", 0.52)
    assert out.exit_code == 0, out.output
    assert "note: step 500: no input→logits path at τ=0.52" in out.output
    assert "(no rows)" in out.output
