"""Benchmark: edges per second into the stores, ours against the store alone and a row a statement.

Two scenarios, measured side by side in one run, on synthetic sweep output (seeded random values
in exactly the frames ``circuitatlas sweep`` writes, wrapped in a ``SweepResult`` whose
configuration ``ingest_sweep`` accepts):

* **A** (many small checkpoints): 143 checkpoints of a Pythia-14M-shaped run (6 layers × 4 heads,
  parallel blocks: input, ``a{L}.h{H}``, ``m{L}``, logits = 32 components, 436 downstream pairs);
* **B** (few large checkpoints): 10 checkpoints of a Pythia-1.4B-shaped run (24 layers × 16
  heads: 410 components, 80 581 downstream pairs).

Variants:

* **ours**: ``open_store(path, writable=True)``, ``ingest_sweep(store, result)`` and ``close()``:
  the real ingest path (validation, keyed rows, Arrow tables, ``COPY`` per table, ``NEXT`` links,
  one transaction per batch of ≤ ``--batch-edges`` edges, default ``DEFAULT_BATCH_EDGES``). The
  time covers all of it; each of ``--repeats`` ingests goes into a fresh store and the best counts.
* **limit**: the store alone, the most ours could reach: the same transactions through the
  backend's own writer (``_write_batch``) with their rows built beforehand (``prepare_batch``,
  one ``BatchRows`` per transaction, outside the timing), into a fresh store; the time covers
  open, the statements, ``COPY`` (embedded) or ``UNWIND`` batches and the driver's encoding
  (Neo4j), the commits and close. Ours ÷ limit is how much of the store's speed our
  validation and row building leave. ``--no-limit`` skips it.
* **per row**: the naive way, on a fresh ``ladybug.Database`` with the project's own schema
  (``cypher/ladybug/schema.cypher``): per checkpoint, in one transaction, one parameterized
  statement per Run, Checkpoint (with its ``HAS_CHECKPOINT``), Component (with its
  ``HAS_COMPONENT``), ``NEXT`` link and ``INFLUENCES`` edge
  (``MATCH (a:Component {key: $s}), (b:Component {key: $t}) CREATE (a)-[:INFLUENCES {…}]->(b)``).
  It is slow, so it runs on a subset: the first ``--per-row-checkpoints-a`` checkpoints of A, and
  the first checkpoint of B with only its first ``--per-row-edges-b`` edges. Its rate for the
  whole scenario is extrapolated from the measured parts: per checkpoint (the node and ``NEXT``
  statements, the commit) times checkpoints, plus per edge times edges, plus the close.

With ``NEO4J_URI`` set (and no ``--no-neo4j``), each scenario is written into that Neo4j too,
under run ids of its own (deleted afterwards, the deletion timed apart): ours (``ingest_sweep``;
Neo4j splits a batch in transactions of ≤ ``MAX_TRANSACTION_EDGES`` edges), its limit, and the
per-row way (one explicit transaction per checkpoint, one ``tx.run`` a row, on the subsets of
``--neo4j-per-row-checkpoints-a`` / ``--neo4j-per-row-edges-b``). Each backend gets a table.

After the first timed ingest, ours is checked: the store is reopened read-only,
``store.counts(run_id)`` must equal what was written, and the edges read back for one step
(``store.edges(run_id, step)``) must equal that step's input frame (sorted by source, target;
``allclose`` with ``rtol=0``).

Progress goes to stderr; the table and, last, one line of ``key=value`` pairs to stdout
(``edges_per_s`` and ``speedup_vs_per_row`` are the smaller of the two scenarios', then per
scenario ``edges_per_s_*``, ``limit_edges_per_s_*``, ``per_row_edges_per_s_*`` and the same with
``neo4j_`` in front; ``check=ok``
or ``failed``, and the exit status is 1 when the check failed).

    python benchmarks/store.py                       # both scenarios, default sizes
    python benchmarks/store.py --quick               # a smoke run of a few seconds
    python benchmarks/store.py --scenarios b --batch-edges 100000 --no-per-row
    python benchmarks/store.py --scenarios b --checkpoints-b 40 --no-per-row   # a bigger run
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from circuitatlas import __version__
from circuitatlas.ingest.components import all_components, is_downstream
from circuitatlas.ingest.pipeline import SweepResult, run_id_of
from circuitatlas.ingest.sweep import COMPONENT_COLUMNS, EDGE_COLUMNS
from circuitatlas.ingest.tasks import induction_prompts
from circuitatlas.store import open_store
from circuitatlas.store.ingest import DEFAULT_BATCH_EDGES, ingest_sweep, sweep_frames
from circuitatlas.store.neo4j import MAX_TRANSACTION_EDGES, redact
from circuitatlas.store.rows import (
    EDGE_PROPERTIES,
    BatchRows,
    RunRecord,
    checkpoint_key,
    edge_batches,
    prepare_batch,
)
from circuitatlas.store.statements import statements

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pythia_sized import delete_run, deleting_runs, neo4j_driver, neo4j_url

TARGET_EDGES_PER_S = 300_000
NEO4J_TARGET_EDGES_PER_S = 50_000  # on the large checkpoints (B)
NEO4J_TARGET_SPEEDUP = 20
VOCAB = 50304


@dataclass(frozen=True)
class Scenario:
    """A run shape and how many checkpoints it has."""

    name: str
    nominal: str  # edges per checkpoint, roughly, for the keys of the last line
    n_layers: int
    n_heads: int
    n_checkpoints: int
    d_model: int

    @property
    def label(self) -> str:
        return f"{self.n_checkpoints}x{self.nominal}"


SCENARIOS = {
    "a": Scenario("a", "500", n_layers=6, n_heads=4, n_checkpoints=143, d_model=128),
    "b": Scenario("b", "80k", n_layers=24, n_heads=16, n_checkpoints=10, d_model=2048),
}
QUICK_CHECKPOINTS = {"a": 12, "b": 2}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- synthetic sweep output ------------------------------------------------------------------------
def synthetic_sweep(s: Scenario, seed: int) -> SweepResult:
    """A ``SweepResult`` of ``s``'s shape with seeded random values and a valid configuration."""
    rng = np.random.default_rng(seed)
    comps = all_components(s.n_layers, s.n_heads)
    pairs = [(a, b) for a in comps for b in comps if is_downstream(a, b, True)]
    steps = [round(143_000 * (i + 1) / s.n_checkpoints) for i in range(s.n_checkpoints)]
    n, c, e = len(steps), len(comps), len(pairs)

    checkpoints = pd.DataFrame(
        {"step": np.array(steps, dtype=np.int64), "loss": rng.uniform(2, 10, n)}
    ).assign(metric=rng.uniform(-10, 0, n))

    is_head = np.array([x.kind == "attn_head" for x in comps])
    head_scores = np.where(np.tile(is_head, n), rng.random((2, n * c)), np.nan)
    effect = rng.normal(0, 1, n * c)
    effect[np.tile([x.kind == "logits" for x in comps], n)] = np.nan  # as the sweep writes
    components = pd.DataFrame(
        {
            "step": np.repeat(np.array(steps, dtype=np.int64), c),
            "name": np.tile(np.array([x.name for x in comps], dtype=object), n),
            "kind": np.tile(np.array([x.kind for x in comps], dtype=object), n),
            "layer": np.tile(np.array([x.layer for x in comps], dtype=np.int64), n),
            "head": pd.array(np.tile([x.head for x in comps], n), dtype="Int64"),
            "effect": effect,
            "prev_token_score": head_scores[0],
            "induction_score": head_scores[1],
        }
    )[["step", *COMPONENT_COLUMNS]]

    similarity = rng.uniform(-1, 1, (2, n * e))
    edges = pd.DataFrame(
        {
            "step": np.repeat(np.array(steps, dtype=np.int64), e),
            "source": np.tile(np.array([a.name for a, _ in pairs], dtype=object), n),
            "target": np.tile(np.array([b.name for _, b in pairs], dtype=object), n),
            "similarity": similarity[0],
            "weight": 1.0 - similarity[0],
            "std": rng.uniform(0, 0.5, n * e),
            "direct_similarity": similarity[1],
            "direct_weight": 1.0 - similarity[1],
            "direct_std": rng.uniform(0, 0.5, n * e),
            "patch_effect": rng.normal(0, 0.1, n * e),
            "eap_ig": rng.normal(0, 0.1, n * e),
        }
    )[["step", *EDGE_COLUMNS]]

    prompts = induction_prompts(16, 10, VOCAB, seed, bos_token_id=0)
    config = {
        "model": f"synthetic/pythia-{s.n_layers}x{s.n_heads}",
        "steps": steps,
        "prompts": prompts.to_config(),
        "ablation": "zero",
        "arch": {
            "arch": "gpt_neox",
            "parallel_blocks": True,
            "n_layers": s.n_layers,
            "n_heads": s.n_heads,
            "d_model": s.d_model,
            "d_vocab": VOCAB,
        },
        "settings": {"task": "induction", "n_prompts": 16, "seq_len": 21, "seed": seed},
        "version": __version__,
    }
    config["run_id"] = run_id_of(config)
    return SweepResult(checkpoints, components, edges, prompts, config)


# -- ours -----------------------------------------------------------------------------------------
@dataclass
class Ours:
    seconds: list[float]  # one per repeat, each into a fresh store
    edges: int
    batches: int
    problems: list[str]

    @property
    def best(self) -> float:
        return min(self.seconds)


@dataclass
class Row:
    """One scenario's results."""

    scenario: Scenario
    n_checkpoints: int
    per_checkpoint: int
    edges: int
    ours: Ours
    rate: float  # ours, edges/s
    limit_rate: float | None  # the store alone (rows built beforehand); None when not timed
    per_row_rate: float | None  # extrapolated; None when not timed
    subset: str

    @property
    def speedup(self) -> float | None:
        return self.rate / self.per_row_rate if self.per_row_rate else None


def run_ours(result: SweepResult, directory: Path, batch_edges: int, repeats: int) -> Ours:
    """Time open + ingest_sweep + close into a fresh store ``repeats`` times; check the first."""
    seconds, problems = [], []
    for i in range(repeats):
        (directory / str(i)).mkdir(parents=True)
        path = directory / str(i) / "ours.lbdb"
        seconds.append(timed_ingest(result, path, batch_edges, f"ours, repeat {i + 1}"))
        if i == 0:
            problems = check_ours(result, path)
        shutil.rmtree(directory / str(i), ignore_errors=True)
    return Ours(seconds, len(result.edges), batch_count(result, batch_edges), problems)


def timed_ingest(result: SweepResult, target: Path | str, batch_edges: int, label: str) -> float:
    """Seconds of open + ingest_sweep + close of ``result`` into the store at ``target``."""
    start = time.perf_counter()
    store = open_store(target, writable=True)
    report = ingest_sweep(store, result, progress=False, batch_edges=batch_edges)
    store.close()
    took = time.perf_counter() - start
    if len(report.written) != len(result.checkpoints):
        raise SystemExit(f"ours wrote {len(report.written)} of {len(result.checkpoints)} steps")
    log(f"  {label}: {took:.2f} s ({len(result.edges) / took:,.0f} edges/s)")
    return took


@dataclass
class Prebuilt:
    """A prepared batch whose rows were built beforehand (one ``BatchRows`` per transaction):
    writing it times the store alone, our validation and row building left out."""

    part_rows: list[BatchRows]

    def parts(self, max_edges: int) -> list[Prebuilt]:
        return [Prebuilt([rows]) for rows in self.part_rows]

    def rows(self, stored: list[int]) -> BatchRows:
        (rows,) = self.part_rows
        return rows


def prebuilt(result: SweepResult, batch_edges: int, part_edges: int) -> list[Prebuilt]:
    """``ingest_sweep``'s batches of ``result`` (each split in transactions of ≤ ``part_edges``
    edges, as the backend splits it) with their rows built, each given the steps before it."""
    run = RunRecord.from_config(result.config)
    frames = sweep_frames(result, list(run.planned_steps))
    batches, stored = [], []
    for batch in edge_batches(frames, lambda f: len(f.edges), batch_edges):
        parts = []
        for part in prepare_batch(run.run_id, batch).parts(part_edges):
            rows = part.rows(stored)
            parts.append(rows)
            stored += [int(s) for s in rows.checkpoints.step]
        batches.append(Prebuilt(parts))
    return batches


def run_limit(result: SweepResult, where: Path | str, batch_edges: int, part_edges: int) -> float:
    """Seconds of open + the writes of ``result``'s prebuilt rows + close into ``where`` (a fresh
    store, or a Neo4j URL with a run of its own): what the store itself takes."""
    run = RunRecord.from_config(result.config)
    batches = prebuilt(result, batch_edges, part_edges)
    start = time.perf_counter()
    store = open_store(where, writable=True)
    written = sum(store._write_batch(run, batch) for batch in batches)
    store.close()
    took = time.perf_counter() - start
    if written != len(result.checkpoints):
        raise SystemExit(f"limit: wrote {written} of {len(result.checkpoints)} steps")
    log(
        f"  store alone (rows built beforehand): {took:.2f} s "
        f"({len(result.edges) / took:,.0f} edges/s)"
    )
    return took


def embedded_limit(result: SweepResult, directory: Path, batch_edges: int) -> float:
    """:func:`run_limit` into a fresh embedded store in ``directory`` (removed after)."""
    directory.mkdir(parents=True)
    try:
        return run_limit(result, directory / "limit.lbdb", batch_edges, batch_edges)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def check_ours(result: SweepResult, path: Path | str) -> list[str]:
    """Counts equal what was written; one step's edges read back equal its input frame.

    ``path`` is the embedded store's path or the Neo4j URL. Returns the problems found (none:
    the check passed).
    """
    run_id = result.run_id
    problems = []
    with open_store(path, writable=False) as store:
        counts = store.counts(run_id)
        expected = {
            "checkpoints": len(result.checkpoints),
            "components": len(result.components),
            "edges": len(result.edges),
        }
        if counts != expected:
            problems.append(f"store counts {counts}, wrote {expected}")
        step = int(result.checkpoints.step.iloc[len(result.checkpoints) // 2])
        got = store.edges(run_id, step)
    want = result.edges[result.edges.step == step]
    got = got.sort_values(["source", "target"]).reset_index(drop=True)
    want = want.sort_values(["source", "target"]).reset_index(drop=True)
    if list(got.columns) != list(want.columns):
        problems.append(f"step {step}: columns {list(got.columns)}, expected {list(want.columns)}")
    elif len(got) != len(want):
        problems.append(f"step {step}: {len(got)} edges read back, {len(want)} written")
    else:
        for c in ("step", "source", "target"):
            if not (got[c].to_numpy() == want[c].to_numpy()).all():
                problems.append(f"step {step}: column {c} differs")

        def same(a: str, b: str) -> bool:
            x, y = got[a].to_numpy(float), want[b].to_numpy(float)
            return bool(np.allclose(x, y, rtol=0, atol=0, equal_nan=True))

        for c in EDGE_PROPERTIES if not problems else []:
            if not same(c, c):
                holds = [o for o in EDGE_PROPERTIES if o != c and same(c, o)]
                where = f" (it holds the input's {holds[0]})" if holds else ""
                problems.append(f"step {step}: stored {c} differs from the input{where}")
    if problems:
        log(f"  ours check FAILED: {'; '.join(problems)}")
    else:
        log(f"  ours check: counts {counts} match; edges of step {step} read back equal the input")
    return problems


# -- per row --------------------------------------------------------------------------------------
RUN_ROW = (
    "MERGE (r:Run {run_id: $run_id}) ON CREATE SET r.model = $model, r.task = $task, "
    "r.ablation = $ablation, r.n_prompts = $n_prompts, r.seq_len = $seq_len, r.seed = $seed, "
    "r.created_at = $created_at, r.version = $version, r.config = $config, "
    "r.planned_steps = $planned_steps, r.n_checkpoints = 0"
)
CHECKPOINT_ROW = (
    "MATCH (r:Run {run_id: $run_id}) CREATE (r)-[:HAS_CHECKPOINT]->"
    "(:Checkpoint {key: $key, run_id: $run_id, step: $step, loss: $loss, metric: $metric})"
)
COMPONENT_ROW = (
    "MATCH (c:Checkpoint {key: $checkpoint_key}) CREATE (c)-[:HAS_COMPONENT]->"
    "(:Component {key: $key, run_id: $run_id, step: $step, name: $name, kind: $kind, "
    "layer: $layer, head: $head, effect: $effect, prev_token_score: $prev_token_score, "
    "induction_score: $induction_score})"
)
NEXT_ROW = "MATCH (a:Component {key: $a}), (b:Component {key: $b}) CREATE (a)-[:NEXT]->(b)"
EDGE_ROW = (
    "MATCH (a:Component {key: $s}), (b:Component {key: $t}) CREATE (a)-[:INFLUENCES {"
    + ", ".join(f"{p}: ${p}" for p in ["run_id", "step", *EDGE_PROPERTIES])
    + "}]->(b)"
)


@dataclass
class PerRow:
    node_s: list[float] = field(default_factory=list)  # per checkpoint: run, nodes, NEXT
    edge_s: float = 0.0
    edges: int = 0
    commit_s: list[float] = field(default_factory=list)
    close_s: float = 0.0

    def estimate(self, n_checkpoints: int, n_edges: int) -> float:
        """Seconds to write the whole scenario, extrapolated from the timed subset."""
        per_checkpoint = float(np.mean(self.node_s) + np.mean(self.commit_s))
        return n_checkpoints * per_checkpoint + n_edges * self.edge_s / self.edges + self.close_s

    @property
    def measured_s(self) -> float:
        return sum(self.node_s) + self.edge_s + sum(self.commit_s) + self.close_s


class Writer:
    """Runs statements one by one in an explicit transaction (one backend's connection)."""

    def begin(self) -> None:
        raise NotImplementedError

    def execute(self, text: str, params: dict[str, Any]) -> None:
        raise NotImplementedError

    def commit(self) -> None:
        raise NotImplementedError


class LadybugWriter(Writer):
    def __init__(self, conn: Any) -> None:
        self.conn = conn

    def begin(self) -> None:
        self.conn.execute("BEGIN TRANSACTION")

    def execute(self, text: str, params: dict[str, Any]) -> None:
        self.conn.execute(text, params)

    def commit(self) -> None:
        self.conn.execute("COMMIT")


class Neo4jWriter(Writer):
    def __init__(self, session: Any) -> None:
        self.session, self.tx = session, None

    def begin(self) -> None:
        self.tx = self.session.begin_transaction()

    def execute(self, text: str, params: dict[str, Any]) -> None:
        self.tx.run(text, params).consume()

    def commit(self) -> None:
        self.tx.commit()
        self.tx.close()


def run_per_row(result: SweepResult, path: Path, n_checkpoints: int, max_edges: int) -> PerRow:
    """One statement per row for the first ``n_checkpoints`` (≤ ``max_edges`` edges each)."""
    import ladybug

    db = ladybug.Database(str(path))
    conn = ladybug.Connection(db)
    for text in statements("ladybug", "schema"):
        conn.execute(text)
    timing = per_row(result, n_checkpoints, max_edges, LadybugWriter(conn))
    found = conn.execute("MATCH ()-[e:INFLUENCES]->() RETURN count(e) AS n").get_as_df()
    if int(found.n.iloc[0]) != timing.edges:
        raise SystemExit(f"per row: {int(found.n.iloc[0])} edges stored, wrote {timing.edges}")
    start = time.perf_counter()
    conn.close()
    db.close()
    timing.close_s = time.perf_counter() - start
    return timing


def run_per_row_neo4j(result: SweepResult, url: str, n_checkpoints: int, max_edges: int) -> PerRow:
    """:func:`run_per_row` into Neo4j, whose schema (constraints, indexes) ``open_store`` made:
    one explicit transaction per checkpoint, one ``tx.run`` a row."""
    database = os.environ.get("NEO4J_DATABASE") or None
    with neo4j_driver(url) as driver, driver.session(database=database) as session:
        timing = per_row(result, n_checkpoints, max_edges, Neo4jWriter(session))
        found = session.run(
            "MATCH ()-[e:INFLUENCES]->() WHERE e.run_id = $run_id AND e.step IS NOT NULL "
            "RETURN count(e) AS n",
            {"run_id": result.run_id},
        ).single()
    if found is None or int(found["n"]) != timing.edges:
        raise SystemExit(f"per row: {found} edges stored in Neo4j, wrote {timing.edges}")
    return timing


def per_row(result: SweepResult, n_checkpoints: int, max_edges: int, writer: Writer) -> PerRow:
    """Write the subset a row a statement through ``writer``, one transaction per checkpoint."""
    run = RunRecord.from_config(result.config)
    run_params = run.parameters()
    by_step = {
        name: dict(iter(getattr(result, name).groupby("step", sort=False)))
        for name in ("checkpoints", "components", "edges")
    }
    timing = PerRow()
    previous: dict[str, str] = {}
    for step in run.planned_steps[:n_checkpoints]:
        ck = by_step["checkpoints"][step].iloc[0]
        comps = by_step["components"][step]
        edges = by_step["edges"][step].iloc[:max_edges]
        key = checkpoint_key(run.run_id, step)
        comp_rows = [
            {k: (None if pd.isna(v) else v) for k, v in row.items()}
            for row in comps[COMPONENT_COLUMNS].astype(object).to_dict("records")
        ]
        edge_rows = edges[EDGE_COLUMNS].to_dict("records")

        start = time.perf_counter()
        writer.begin()
        writer.execute(RUN_ROW, run_params)
        writer.execute(
            CHECKPOINT_ROW,
            {
                "run_id": run.run_id,
                "key": key,
                "step": step,
                "loss": float(ck["loss"]),
                "metric": float(ck["metric"]),
            },
        )
        current = {}
        for row in comp_rows:
            current[row["name"]] = f"{key}/{row['name']}"
            writer.execute(
                COMPONENT_ROW,
                {
                    "checkpoint_key": key,
                    "key": current[row["name"]],
                    "run_id": run.run_id,
                    "step": step,
                    **row,
                },
            )
        for name, to_key in current.items():
            if name in previous:
                writer.execute(NEXT_ROW, {"a": previous[name], "b": to_key})
        nodes_done = time.perf_counter()
        for row in edge_rows:
            writer.execute(
                EDGE_ROW,
                {
                    "s": current[row["source"]],
                    "t": current[row["target"]],
                    "run_id": run.run_id,
                    "step": step,
                    **{p: row[p] for p in EDGE_PROPERTIES},
                },
            )
        edges_done = time.perf_counter()
        writer.commit()
        committed = time.perf_counter()
        timing.node_s.append(nodes_done - start)
        timing.edge_s += edges_done - nodes_done
        timing.edges += len(edge_rows)
        timing.commit_s.append(committed - edges_done)
        previous = current
        log(
            f"  per row: step {step}: {len(comp_rows)} components in {nodes_done - start:.2f} s, "
            f"{len(edge_rows)} edges in {edges_done - nodes_done:.2f} s "
            f"({len(edge_rows) / (edges_done - nodes_done):,.0f}/s), "
            f"commit {committed - edges_done:.3f} s"
        )
    return timing


# -- Neo4j ----------------------------------------------------------------------------------------
def own_run(result: SweepResult, tag: str) -> SweepResult:
    """``result`` under a run id of its own (a model name with ``tag``), so a benchmark never
    writes into another's run in the shared database."""
    config = {**result.config, "model": f"{result.config['model']}/bench-{tag}"}
    config["run_id"] = run_id_of({k: v for k, v in config.items() if k != "run_id"})
    return replace(result, config=config)


def run_ours_neo4j(
    result: SweepResult, url: str, batch_edges: int, repeats: int, run_ids: list[str]
) -> tuple[Ours, float]:
    """Time open + ingest_sweep + close into Neo4j ``repeats`` times, each under a new run id
    (deleted right after, the deletion timed apart); check the first. Also the deletion's
    seconds (the last)."""
    seconds, problems, delete_s = [], [], 0.0
    for i in range(repeats):
        mine = own_run(result, uuid.uuid4().hex[:12])
        run_ids.append(mine.run_id)
        seconds.append(timed_ingest(mine, url, batch_edges, f"neo4j ours, repeat {i + 1}"))
        if i == 0:
            problems = check_ours(mine, url)
        with neo4j_driver(url) as driver:
            delete_s = delete_run(driver, mine.run_id)
        run_ids.remove(mine.run_id)
        log(f"  neo4j: deleted the run in {delete_s:.1f} s")
    return Ours(seconds, len(result.edges), batch_count(result, batch_edges), problems), delete_s


def batch_count(result: SweepResult, batch_edges: int) -> int:
    """Transactions ``ingest_sweep`` writes ``result`` in (its batching rule)."""
    sizes = result.edges.groupby("step").size().tolist()
    return sum(1 for _ in edge_batches(sizes, int, batch_edges))


# -- main ----------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--scenarios", default="a,b", help="comma-separated of: a, b")
    parser.add_argument(
        "--quick", action="store_true", help="12 checkpoints of A, 2 of B, small per-row subsets"
    )
    parser.add_argument(
        "--checkpoints-a", type=int, default=None, help="checkpoints of A (default 143)"
    )
    parser.add_argument(
        "--checkpoints-b",
        type=int,
        default=None,
        help="checkpoints of B (default 10); more shows how commits into a filled table cost",
    )
    parser.add_argument(
        "--batch-edges",
        type=int,
        default=DEFAULT_BATCH_EDGES,
        help=f"edges per transaction of ours (ingest_sweep's default {DEFAULT_BATCH_EDGES:,})",
    )
    parser.add_argument(
        "--per-row-checkpoints-a",
        type=int,
        default=None,
        help="checkpoints of A written one row a statement (default 30; quick 2)",
    )
    parser.add_argument(
        "--per-row-edges-b",
        type=int,
        default=None,
        help="edges of B's first checkpoint written a row a statement (default 40000; quick 2000)",
    )
    parser.add_argument(
        "--repeats", type=int, default=3, help="timed ingests of ours, best counts (default 3)"
    )
    parser.add_argument("--no-per-row", action="store_true", help="no per-row baseline")
    parser.add_argument(
        "--no-limit",
        action="store_true",
        help="no store-alone limit (the same writes with the rows built beforehand)",
    )
    parser.add_argument(
        "--no-neo4j", action="store_true", help="the embedded store only (also without NEO4J_URI)"
    )
    parser.add_argument(
        "--neo4j-repeats", type=int, default=1, help="timed ingests into Neo4j (default 1)"
    )
    parser.add_argument(
        "--neo4j-per-row-checkpoints-a",
        type=int,
        default=None,
        help="checkpoints of A written into Neo4j one row a statement (default 10; quick 2)",
    )
    parser.add_argument(
        "--neo4j-per-row-edges-b",
        type=int,
        default=None,
        help="edges of B's first checkpoint written into Neo4j a row a statement "
        "(default 5000; quick 500)",
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    names = [s.strip().lower() for s in args.scenarios.split(",") if s.strip()]
    unknown = [s for s in names if s not in SCENARIOS]
    if unknown or not names:
        parser.error(f"--scenarios: unknown {unknown}; choose from {', '.join(SCENARIOS)}")
    if args.repeats < 1 or args.neo4j_repeats < 1:
        parser.error("--repeats and --neo4j-repeats must be at least 1")
    if args.batch_edges < 1:
        parser.error("--batch-edges must be at least 1")
    counts = {"a": args.checkpoints_a, "b": args.checkpoints_b}
    if any(n is not None and n < 1 for n in counts.values()):
        parser.error("--checkpoints-a and --checkpoints-b must be at least 1")
    shapes = {
        k: replace(
            s, n_checkpoints=counts[k] or (QUICK_CHECKPOINTS[k] if args.quick else s.n_checkpoints)
        )
        for k, s in SCENARIOS.items()
    }
    per_row_a = args.per_row_checkpoints_a or (2 if args.quick else 30)
    per_row_b = args.per_row_edges_b or (2_000 if args.quick else 40_000)
    neo4j_per_row_a = args.neo4j_per_row_checkpoints_a or (2 if args.quick else 10)
    neo4j_per_row_b = args.neo4j_per_row_edges_b or (500 if args.quick else 5_000)
    url = None if args.no_neo4j else neo4j_url()
    if url is None:
        why = "--no-neo4j" if args.no_neo4j else "NEO4J_URI is not set"
        log(f"Neo4j: skipped ({why}); the embedded store only")

    rows: list[Row] = []
    neo4j_rows: list[Row] = []
    keys: dict[str, str] = {}
    tmp = Path(tempfile.mkdtemp(prefix="circuitatlas-store-bench-"))
    try:
        with deleting_runs(url) if url else contextlib.nullcontext([]) as run_ids:
            for name in names:
                s = shapes[name]
                made = time.perf_counter()
                result = synthetic_sweep(s, args.seed)
                n_ckpt, n_edges = len(result.checkpoints), len(result.edges)
                per_ckpt = n_edges // n_ckpt
                log(
                    f"[{name}] {n_ckpt} checkpoints × {per_ckpt:,} edges = {n_edges:,} edges, "
                    f"{len(result.components):,} components (frames built in "
                    f"{time.perf_counter() - made:.1f} s)"
                )
                ours = run_ours(result, tmp / name, args.batch_edges, args.repeats)
                n_sub = min(per_row_a if name == "a" else 1, n_ckpt)
                max_edges = per_ckpt if name == "a" else min(per_row_b, per_ckpt)

                def embedded_per_row(n: int, m: int, result: SweepResult = result) -> PerRow:
                    return run_per_row(result, tmp / f"{result.run_id}-per-row.lbdb", n, m)

                per_row_run = None if args.no_per_row else embedded_per_row
                limit_s = None
                if not args.no_limit:
                    limit_s = min(
                        embedded_limit(result, tmp / f"limit-{name}-{i}", args.batch_edges)
                        for i in range(args.repeats)
                    )
                rows.append(
                    measured(
                        "embedded",
                        s,
                        result,
                        (ours, limit_s),
                        args,
                        per_row_run,
                        n_sub,
                        max_edges,
                        keys,
                        "",
                    )
                )
                if url is None:
                    continue
                log(f"[{name}] Neo4j at {redact(url)}")
                ours, delete_s = run_ours_neo4j(
                    result, url, args.batch_edges, args.neo4j_repeats, run_ids
                )
                keys[f"neo4j_delete_s_{s.label}"] = f"{delete_s:.1f}"
                n_sub = min(neo4j_per_row_a if name == "a" else 1, n_ckpt)
                max_edges = per_ckpt if name == "a" else min(neo4j_per_row_b, per_ckpt)

                def neo4j_per_row(n: int, m: int, result: SweepResult = result) -> PerRow:
                    mine = own_run(result, "per-row-" + uuid.uuid4().hex[:8])
                    run_ids.append(mine.run_id)
                    return run_per_row_neo4j(mine, url, n, m)

                limit_s = None
                if not args.no_limit:
                    limits = []
                    for _ in range(args.neo4j_repeats):
                        mine = own_run(result, "limit-" + uuid.uuid4().hex[:8])
                        run_ids.append(mine.run_id)  # deleted at the end, untimed
                        part = MAX_TRANSACTION_EDGES
                        limits.append(run_limit(mine, url, args.batch_edges, part))
                    limit_s = min(limits)
                neo4j_rows.append(
                    measured(
                        "neo4j",
                        s,
                        result,
                        (ours, limit_s),
                        args,
                        None if args.no_per_row else neo4j_per_row,
                        n_sub,
                        max_edges,
                        keys,
                        "neo4j_",
                    )
                )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print_table("embedded LadybugDB", rows)
    if neo4j_rows:
        print_table(f"Neo4j at {redact(url or '')} (the same run)", neo4j_rows)
    print(
        f"ours: open_store + ingest_sweep + close into a fresh store (Neo4j: a new run), timed "
        f"whole, best of {args.repeats} (Neo4j {args.neo4j_repeats}). limit: the store alone, "
        "the same transactions with their rows built beforehand (open, statements, COPY or "
        "UNWIND, commit, close; validation and row building left out); of limit: ours ÷ limit. "
        "per row: one Cypher statement a row, timed on the subset shown and extrapolated to "
        "the scenario (per checkpoint: nodes, NEXT, commit; per edge; close)."
    )
    failed = [
        f"{backend} {r.scenario.name.upper()}: {p}"
        for backend, table in (("embedded", rows), ("neo4j", neo4j_rows))
        for r in table
        for p in r.ours.problems
    ]
    if failed:
        print()
        print("CHECK FAILED (ours stored something other than its input):")
        for line in failed:
            print(f"  {line}")
    final = {"edges_per_s": f"{min(r.rate for r in rows):.0f}"}
    speedups = [r.speedup for r in rows if r.speedup is not None]
    if speedups:
        final["speedup_vs_per_row"] = f"{min(speedups):.1f}"
    if neo4j_rows:
        final["neo4j_edges_per_s"] = f"{min(r.rate for r in neo4j_rows):.0f}"
        speedups = [r.speedup for r in neo4j_rows if r.speedup is not None]
        if speedups:
            final["neo4j_speedup_vs_per_row"] = f"{min(speedups):.1f}"
    final.update(keys)
    final["batch_edges"] = str(args.batch_edges)
    final["target_edges_per_s"] = str(TARGET_EDGES_PER_S)
    if url is None:
        final["neo4j"] = "skipped"
    else:
        final["neo4j_target_edges_per_s_80k"] = str(NEO4J_TARGET_EDGES_PER_S)
        final["neo4j_target_speedup"] = str(NEO4J_TARGET_SPEEDUP)
        final["neo4j_rust_ext"] = "1" if importlib.util.find_spec("neo4j._rust") else "0"
    final["check"] = "failed" if failed else "ok"
    if args.quick:
        final["quick"] = "1"
    print(" ".join(f"{k}={v}" for k, v in final.items()))
    return 1 if failed else 0


def measured(
    backend: str,
    s: Scenario,
    result: SweepResult,
    timed: tuple[Ours, float | None],
    args: argparse.Namespace,
    per_row_run: Callable[[int, int], PerRow] | None,
    n_sub: int,
    max_edges: int,
    keys: dict[str, str],
    prefix: str,
) -> Row:
    """One backend's row of a scenario: ours' rate, the store alone's (``timed``: ours and the
    limit's seconds), the per-row way's extrapolated rate; their ``key=value`` pairs added to
    ``keys`` (names with ``prefix``)."""
    ours, limit_s = timed
    n_ckpt, n_edges = len(result.checkpoints), len(result.edges)
    rate = ours.edges / ours.best
    limit_rate = n_edges / limit_s if limit_s else None
    log(
        f"[{s.name}] {backend} ours: best {ours.best:.2f} s, median "
        f"{statistics.median(ours.seconds):.2f} s, {rate:,.0f} edges/s "
        f"({ours.batches} transactions of ≤ {args.batch_edges:,} edges)"
    )
    per_row_rate, subset = None, "-"
    if per_row_run is not None:
        timing = per_row_run(n_sub, max_edges)
        estimate = timing.estimate(n_ckpt, n_edges)
        per_row_rate = n_edges / estimate
        subset = f"{n_sub} ckpt × {max_edges:,} edges"
        log(
            f"[{s.name}] {backend} per row: {timing.edges:,} edges of {n_sub} checkpoint(s) in "
            f"{timing.measured_s:.2f} s; extrapolated to all {n_edges:,} edges: "
            f"{estimate:,.1f} s, {per_row_rate:,.0f} edges/s"
        )
    row = Row(s, n_ckpt, n_edges // n_ckpt, n_edges, ours, rate, limit_rate, per_row_rate, subset)
    keys[f"{prefix}edges_per_s_{s.label}"] = f"{rate:.0f}"
    keys[f"{prefix}ours_s_{s.label}"] = f"{ours.best:.3f}"
    if limit_rate is not None:
        keys[f"{prefix}limit_edges_per_s_{s.label}"] = f"{limit_rate:.0f}"
    if row.per_row_rate is not None and row.speedup is not None:
        keys[f"{prefix}per_row_edges_per_s_{s.label}"] = f"{row.per_row_rate:.0f}"
        keys[f"{prefix}speedup_vs_per_row_{s.label}"] = f"{row.speedup:.1f}"
    return row


def print_table(title: str, rows: list[Row]) -> None:
    """The scenarios of one backend as a table: ours, the store alone, the per-row way."""
    header = (
        f"{'scenario':<10}{'ckpts':>6}{'edges/ckpt':>11}{'edges':>11}{'ours s':>9}"
        f"{'ours edges/s':>14}{'limit edges/s':>15}{'of limit':>9}{'per-row edges/s':>17}"
        f"{'speedup':>9}  per-row subset"
    )
    print(title)
    print(header)
    print("-" * len(header))
    for r in rows:
        limit = f"{r.limit_rate:,.0f}" if r.limit_rate is not None else "-"
        share = f"{r.rate / r.limit_rate:.0%}" if r.limit_rate is not None else "-"
        per_row = f"{r.per_row_rate:,.0f}" if r.per_row_rate is not None else "-"
        speedup = f"{r.speedup:.1f}" if r.speedup is not None else "-"
        print(
            f"{r.scenario.name.upper() + ' ' + r.scenario.label:<10}{r.n_checkpoints:>6}"
            f"{r.per_checkpoint:>11,}{r.edges:>11,}{r.ours.best:>9.2f}{r.rate:>14,.0f}"
            f"{limit:>15}{share:>9}{per_row:>17}{speedup:>9}  {r.subset}"
        )
    print()


if __name__ == "__main__":
    raise SystemExit(main())
