"""``circuitatlas reproduce``: the source paper's experiment on a run of Pythia-14M's shape, and its
claims checked one by one.

The paper (arXiv 2509.15269) sweeps 143 checkpoints of Pythia-14M on an induction prompt with
zero ablation and reads the graph of total effects at τ 0.7. This module does the same on any
run, by default a Pythia-14M-shaped GPT-NeoX trained here on a mixture of the induction task and
a second task (``train-toy --shape pythia-14m``), and then:

* sweeps every checkpoint under both output definitions (``write``: what a component writes into
  the residual stream; ``resid``: the residual stream right after it writes), with the paper's
  zero ablation, and, under ``write``, ``CHECK_STEPS`` of them evenly spread over training also
  with mean and resample ablation and on the second task (the paper's three unchecked
  questions, compared on those checkpoints);
* analyzes every sweep at τ 0.7 (total effects) and the two output definitions also at
  τ ∈ {0.3, 0.5, 0.7, 0.9};
* checks each claim (:mod:`circuitatlas.analytics.claims`), finds the circuit of
  ``CIRCUIT_STEPS`` checkpoints of that spread for both tasks from their EAP-IG edge scores, and
  writes the report whose first section is the table of the claims, with the timings of each
  stage.

The output directory holds the trained run (``run/``), the store (``circuitatlas.lbdb`` unless
``--store`` names another), ``claims.md`` and ``claims.json``, and the report (``report/``); a
directory that holds anything else is refused. A second call reuses what is there.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from circuitatlas.analytics.analyze import DEFAULT_TAU, Analysis, analyze
from circuitatlas.analytics.claims import Claim, claims_markdown, claims_table, role_sets
from circuitatlas.analytics.claims_checks import (
    check_ablations,
    check_second_task,
    check_thresholds,
)
from circuitatlas.analytics.phases import PHASE_DEFINITIONS
from circuitatlas.analytics.thresholds import tau_sweep
from circuitatlas.errors import CircuitAtlasError
from circuitatlas.ingest import toy
from circuitatlas.ingest.pipeline import SweepSettings, plan_run
from circuitatlas.ingest.tasks import INDUCTION, SUCCESSOR
from circuitatlas.paper import (
    ABLATIONS,
    CHECK_STEPS,
    CIRCUIT_STEPS,
    OUTPUT_DEFINITIONS,
    PAPER,
    SHAPE,
    TAUS,
)
from circuitatlas.queries.claims_inputs import claims_inputs, edge_weights
from circuitatlas.queries.edge_circuits import CircuitSettings, find_circuits
from circuitatlas.report import write_report
from circuitatlas.report.page import Section
from circuitatlas.store import StoreBase, check_store, open_store
from circuitatlas.store.ingest import ingest_plan

SECOND_TASK = SUCCESSOR
RUN_DIR, STORE_NAME, REPORT_DIR = "run", "circuitatlas.lbdb", "report"
MARKER = "reproduce.json"  # marks a directory as a reproduction's (what --out may reuse)
OWN = {RUN_DIR, STORE_NAME, STORE_NAME + ".wal", REPORT_DIR, MARKER, "claims.md", "claims.json"}


@dataclass(frozen=True)
class Sweep:
    """One sweep of the run's checkpoints: its name, its settings and its role in the checks."""

    name: str
    settings: SweepSettings
    spread: bool = False  # True: ``CHECK_STEPS`` checkpoints spread over training; else all


@dataclass
class Reproduction:
    """What a reproduction found and where it went."""

    out: Path
    store: str
    run_ids: dict[str, str]  # sweep name → run id
    claims: list[tuple[str, Claim]]  # (output definition or "all", claim)
    timings: dict[str, float] = field(default_factory=dict)  # stage → seconds
    check_steps: list[int] = field(default_factory=list)  # of the spread sweeps
    circuit_steps: list[int] = field(default_factory=list)  # whose circuits were found
    report: Path | None = None

    def table(self) -> pd.DataFrame:
        """The claims table with the output definition each row was measured under."""
        frame = claims_table([c for _, c in self.claims])
        frame.insert(1, "output", [o for o, _ in self.claims])
        return frame

    def summary(self) -> str:
        """Lines for the terminal: the table, the timings, where the report is."""
        split = ", ".join(f"{k} {v:.0f} s" for k, v in self.timings.items())
        return "\n".join(
            [
                "the paper's claims, checked:",
                self.table().to_string(index=False, max_colwidth=70),
                "",
                f"took {sum(self.timings.values()):.0f} s: {split}",
                f"runs in {self.store}: " + ", ".join(f"{k} {v}" for k, v in self.run_ids.items()),
                f"report: {self.report}",
            ]
        )


def run_reproduce(
    out: Path,
    model: str | None = None,
    revisions: str | None = None,
    store_url: str | None = None,
    seed: int = 0,
    steps: int | None = None,
    checkpoints: int | None = None,
    progress: bool = True,
    check_steps: int = CHECK_STEPS,
    circuit_steps: int = CIRCUIT_STEPS,
) -> Reproduction:
    """Train (or reuse) the Pythia-14M-shaped run under ``out`` (or take ``model`` with
    ``revisions``), sweep, analyze, check the paper's claims and write the report.

    ``steps`` and ``checkpoints`` shorten the trained run (default: the shape's, 143
    checkpoints); ``store_url`` puts the runs in another store (e.g. Neo4j); ``check_steps``
    checkpoints spread over training get the mean, resample and second-task sweeps, and
    ``circuit_steps`` of those their circuits.
    """
    out = Path(out)
    check_out(out)
    for name, k in (("--check-steps", check_steps), ("--circuit-steps", circuit_steps)):
        if k < 2:
            raise CircuitAtlasError(f"{name} {k}: give at least 2 checkpoints")
    url = store_url or str(out / STORE_NAME)
    check_store(url)
    timings: dict[str, float] = {}
    marker = json.dumps({"model": model, "revisions": revisions, "seed": seed})
    if model is None:
        out.mkdir(parents=True, exist_ok=True)
        (out / MARKER).write_text(marker)
    with _timed(timings, "train"):
        source = model or str(_trained_run(out / RUN_DIR, seed, steps, checkpoints, progress))
    # every sweep planned (its checkpoints listed, the first loaded) before anything is stored
    picked = revisions if model else None
    plans = {s.name: plan_run(source, picked, s.settings) for s in _sweeps() if not s.spread}
    spread_steps = spread([r.step for r in plans["write"].refs], check_steps)
    listed = ",".join(str(step) for step in spread_steps)
    plans |= {s.name: plan_run(source, listed, s.settings) for s in _sweeps() if s.spread}
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text(marker)
    run_ids = {name: plan.run_id for name, plan in plans.items()}
    with open_store(url, writable=True) as store:
        for name, plan in plans.items():
            with _timed(timings, f"sweep {name}"):
                ingest_plan(store, plan, progress=progress)
        with _timed(timings, "analyze"):
            analyses = {
                name: analyze(store, run_id, DEFAULT_TAU, progress=progress)
                for name, run_id in run_ids.items()
            }
            sweeps_by_tau = {
                output: tau_sweep(store, run_ids[output], list(TAUS), DEFAULT_TAU)
                for output in OUTPUT_DEFINITIONS
            }
        with _timed(timings, "circuits"):
            picked_circuits = spread(spread_steps, circuit_steps)
            circuits = {
                task: _save_circuits(store, run_ids[name], picked_circuits, progress)
                for task, name in ((INDUCTION, "write"), (SECOND_TASK, SECOND_TASK))
            }
        with _timed(timings, "claims"):
            claims = _check(store, run_ids, analyses, sweeps_by_tau, circuits)
        result = Reproduction(out, url, run_ids, claims, timings, spread_steps, picked_circuits)
        with _timed(timings, "report"):
            result.report = write_report(
                store,
                run_ids["write"],
                out / REPORT_DIR,
                lead=[claims_section(result)],
                progress=progress,
            ).index
    (out / "claims.md").write_text(claims_document(result), encoding="utf-8")
    (out / "claims.json").write_text(
        json.dumps(
            {
                "run_ids": run_ids,
                "timings_s": timings,
                "check_steps": result.check_steps,
                "circuit_steps": result.circuit_steps,
                "claims": [
                    {
                        "output": o,
                        "claim": c.claim,
                        "paper": c.paper,
                        "this_run": c.this_run,
                        "verdict": c.verdict,
                        "numbers": c.numbers,
                    }
                    for o, c in claims
                ],
            },
            indent=2,
            default=_plain,
        ),
        encoding="utf-8",
    )
    return result


def check_out(out: Path) -> None:
    """Refuse an ``out`` that is a file or holds anything a reproduction does not write."""
    if out.exists() and not out.is_dir():
        raise CircuitAtlasError(f"--out {out}: is a file; give a directory")
    if not out.exists():
        return
    foreign = sorted(p.name for p in out.iterdir() if p.name not in OWN)
    if foreign or (any(out.iterdir()) and not (out / MARKER).exists()):
        shown = ", ".join(foreign[:3]) or "files of something else"
        raise CircuitAtlasError(
            f"--out {out}: holds {shown}, not a reproduction's; give an empty or new directory "
            f"(nothing was changed)"
        )


def claims_section(result: Reproduction) -> Section:
    """The report's first section: the claims table and how long each stage took."""
    timings = pd.DataFrame(
        {"stage": list(result.timings), "seconds": [round(v, 1) for v in result.timings.values()]}
    )
    phases = pd.DataFrame(
        {"phase": list(PHASE_DEFINITIONS), "definition": list(PHASE_DEFINITIONS.values())}
    )
    return Section(
        id="claims",
        title="The paper's claims, checked",
        note=(
            f"Each claim of {PAPER} (Pythia-14M, induction, zero ablation, total effects, "
            f"τ {DEFAULT_TAU:g}) measured on this run under both output definitions (write: what "
            "a component writes into the residual stream; resid: the residual stream right after "
            "it writes), and the paper's three unchecked questions on the same checkpoints. "
            + subsets_note(result)
        ),
        figures=[],
        tables=[
            ("Claim | what the paper reports | what this run shows | verdict.", result.table()),
            ("The phase labels.", phases),
            ("Where the time went.", timings),
        ],
    )


def subsets_note(result: Reproduction) -> str:
    """Which checkpoints the spread sweeps and the circuits used."""
    return (
        f"Mean and resample ablation and the second task were swept on {len(result.check_steps)} "
        f"checkpoints evenly spread over training (steps {_steps_text(result.check_steps)}); "
        f"(f) and (g) compare on those. Circuits: steps {_steps_text(result.circuit_steps)}."
    )


def _steps_text(steps: list[int]) -> str:
    return ", ".join(str(s) for s in steps) if steps else "none"


def claims_document(result: Reproduction) -> str:
    """``claims.md``: the claims table in Markdown, per output definition, then the timings."""
    parts = ["# The paper's claims, checked", ""]
    for output in dict.fromkeys(o for o, _ in result.claims):
        parts += [
            f"## {output}",
            "",
            claims_markdown([c for o, c in result.claims if o == output]),
            "",
        ]
    parts += [subsets_note(result), "", "## Time", ""]
    parts += [f"- {k}: {v:.0f} s" for k, v in result.timings.items()]
    return "\n".join(parts) + "\n"


# --- helpers ---------------------------------------------------------------------------------
def _sweeps() -> list[Sweep]:
    """The sweeps of one reproduction: the paper's settings under each output definition, then
    the other ablations and the second task (under ``write``, on a spread of checkpoints).

    The two tasks' sweeps compute edge scores (EAP-IG, for their circuits); the others need the
    similarity edges alone.
    """
    paper = SweepSettings(task=INDUCTION, ablation="zero", edge_scores="none")
    return [
        Sweep("write", replace(paper, edge_scores="eap-ig")),
        Sweep("resid", replace(paper, output="resid")),
        *(Sweep(a, replace(paper, ablation=a), spread=True) for a in ABLATIONS if a != "zero"),
        Sweep(SECOND_TASK, replace(paper, task=SECOND_TASK, edge_scores="eap-ig"), spread=True),
    ]


def _trained_run(
    run_dir: Path, seed: int, steps: int | None, checkpoints: int | None, progress: bool
) -> Path:
    """The Pythia-14M-shaped run trained on both tasks in ``run_dir`` (trained if not there)."""
    wanted = {"seed": seed, "shape": SHAPE, "tasks": [INDUCTION, SECOND_TASK]}
    try:
        found = json.loads((run_dir / toy.CONFIG_NAME).read_text())
    except (OSError, ValueError):
        found = {}
    complete = found and all(found.get(k) == v for k, v in wanted.items())
    complete = complete and (steps is None or found.get("steps") == steps)
    complete = complete and all(
        (run_dir / f"step{s}").is_dir() for s in found.get("checkpoint_steps", [None])
    )
    if not complete:
        toy.train_toy(
            run_dir,
            steps=steps,
            checkpoints=checkpoints,
            seed=seed,
            progress=progress,
            shape=SHAPE,
            tasks=(INDUCTION, SECOND_TASK),
        )
    return run_dir


def _check(
    store: StoreBase,
    run_ids: dict[str, str],
    analyses: dict[str, Analysis],
    by_tau: dict[str, pd.DataFrame],
    circuits: dict[str, pd.DataFrame],
) -> list[tuple[str, Claim]]:
    """Claims (a)–(e) under each output definition, (f) and (g) under ``write``."""
    claims: list[tuple[str, Claim]] = []
    for output in OUTPUT_DEFINITIONS:
        inputs = claims_inputs(store, run_ids[output], analyses[output])
        claims += [(output, c) for c in inputs.claims()]
        claims.append((output, check_thresholds(by_tau[output])))
    roles = {name: role_sets(a.components) for name, a in analyses.items()}
    edges = {
        ablation: edge_weights(store, run_ids["write" if ablation == "zero" else ablation])
        for ablation in ABLATIONS
    }
    ablation_roles = {a: roles["write" if a == "zero" else a] for a in ABLATIONS}
    claims.append(("write", check_ablations(edges, ablation_roles)))
    tasks = {INDUCTION: roles["write"], SECOND_TASK: roles[SECOND_TASK]}
    claims.append(("write", check_second_task(tasks, circuits)))
    return claims


def spread(steps: list[int], k: int) -> list[int]:
    """``k`` of ``steps`` (sorted) evenly spaced by position, the first and last included (all
    of them when there are at most ``k``)."""
    ordered = sorted(steps)
    if len(ordered) <= k:
        return ordered
    return sorted({ordered[round(i)] for i in np.linspace(0, len(ordered) - 1, k)})


def _save_circuits(store: StoreBase, run_id: str, steps: list[int], progress: bool) -> pd.DataFrame:
    """Find and store the EAP-IG circuit of each of ``steps``; their edges (``step, source,
    target``)."""
    circuits = find_circuits(
        store, run_id, steps, CircuitSettings(scores="eap-ig"), progress=progress
    )
    store.write_circuits([c.record() for c in circuits])
    rows = [(c.step, a, b) for c in circuits for a, b in c.edges]
    return pd.DataFrame(rows, columns=["step", "source", "target"])


@contextmanager
def _timed(timings: dict[str, float], stage: str) -> Iterator[None]:
    """Add the seconds the block takes to ``timings[stage]``."""
    start = time.perf_counter()
    try:
        yield
    finally:
        timings[stage] = timings.get(stage, 0.0) + time.perf_counter() - start


def _plain(value: Any) -> Any:
    """JSON for numpy scalars and arrays."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)
