"""Circuits that carry the task: at each checkpoint, the smallest faithful set of top-scored edges.

For a run and a step, the edges are ranked by ``|score|`` (``exact``: the stored ``patch_effect``;
``eap-ig``: the stored ``eap_ig``), and the circuit is the shortest prefix of that ranking whose
faithfulness reaches the target, pruned to be 1-minimal
(:func:`circuitatlas.graph.selection.select_circuit`). Faithfulness is measured by rerunning the
checkpoint's model with every edge outside the circuit carrying its source's ablated value
(:meth:`circuitatlas.ingest.edge_scores.EdgeScorer.faithfulness`).

Scores come from the store when the run holds them and the circuit's ablation is the run's; else
they are computed from the run's stored configuration (the same model and prompts), and the
circuit says so (``scores_from``). With ``bootstrap = B`` the circuit is also found on B resamples
of the prompt set (drawn with replacement; the ablated values stay those of the full set), and
the mean Jaccard similarity of those circuits with this one and the spread of their faithfulness
(on the full set) say how stable it is.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch

from circuitatlas.errors import CircuitAtlasError
from circuitatlas.graph.paths import ARROW
from circuitatlas.graph.selection import Selection, select_circuit
from circuitatlas.ingest.components import order_key
from circuitatlas.ingest.contract import DEFAULT_IG_STEPS
from circuitatlas.ingest.edge_scores import EdgeScorer
from circuitatlas.ingest.model import ForwardPieces
from circuitatlas.queries.circuit_trajectory import jaccard
from circuitatlas.queries.faithfulness import load_run_checkpoint
from circuitatlas.store.rows import checkpoint_key

if TYPE_CHECKING:
    from circuitatlas.store.base import StoreBase

SCORE_KINDS = {"exact": "patch_effect", "eap-ig": "eap_ig"}
DEFAULT_TARGET = 0.8
BOOTSTRAP_SEED = 0
CIRCUIT_COLUMNS = [
    "step",
    "faithfulness",
    "n_edges",
    "n_components",
    "reached",
    "scores",
    "ablation",
    "score_correlation",
    "edges",
]


@dataclass(frozen=True)
class CircuitSettings:
    """How circuits are chosen: the faithfulness target, the score kind, the ablation (None:
    the run's) and the number of bootstrap resamples (0: none)."""

    target: float = DEFAULT_TARGET
    scores: str = "exact"
    ablation: str | None = None
    bootstrap: int = 0

    def check(self) -> None:
        """Raise a one-line error for a setting outside its range."""
        if not (isinstance(self.target, float | int) and 0 < self.target <= 1):
            raise CircuitAtlasError(f"--target {self.target}: give a share in (0, 1], e.g. 0.8")
        if self.scores not in SCORE_KINDS:
            raise CircuitAtlasError(
                f"--scores {self.scores!r}: give one of {', '.join(SCORE_KINDS)}"
            )
        if self.bootstrap < 0:
            raise CircuitAtlasError(f"--bootstrap {self.bootstrap}: give at least 1 resample")


@dataclass(frozen=True)
class Stability:
    """How the circuit moves over bootstrap resamples of the prompt set."""

    resamples: int
    mean_jaccard: float  # of the resampled circuits with the full-set circuit
    faithfulness_mean: float  # of the resampled circuits, measured on the full prompt set
    faithfulness_std: float


@dataclass(frozen=True)
class StepCircuit:
    """The circuit of one checkpoint."""

    run_id: str
    step: int
    settings: CircuitSettings
    ablation: str
    edges: tuple[tuple[str, str], ...]  # in rank order
    edge_scores: tuple[float, ...]
    faithfulness: float
    reached: bool  # false: no circuit reaches the target; ``edges`` is every edge
    prefix: int  # the shortest faithful prefix, before pruning
    n_model_edges: int
    clean_metric: float
    ablated_metric: float
    circuit_metric: float
    scores_from: str  # "store" | "computed"
    score_correlation: float | None  # Spearman of patch_effect and eap_ig, where both exist
    stability: Stability | None = None
    seconds: float = 0.0
    notes: tuple[str, ...] = field(default=())

    @property
    def components(self) -> tuple[str, ...]:
        """The components the edges touch, in computation order."""
        return tuple(sorted({n for edge in self.edges for n in edge}, key=order_key))

    @property
    def edge_names(self) -> tuple[str, ...]:
        """``source→target`` of every edge, in rank order."""
        return tuple(f"{a}{ARROW}{b}" for a, b in self.edges)

    @property
    def key(self) -> str:
        """``{run_id}/{step}/circuit/{digest of the settings}``."""
        s = self.settings
        text = json.dumps(["edges", s.scores, float(s.target), self.ablation])
        digest = hashlib.sha256(text.encode()).hexdigest()[:12]
        return f"{checkpoint_key(self.run_id, self.step)}/circuit/{digest}"

    def record(self) -> dict[str, Any]:
        """The store's parameters for this circuit (``circuit_create`` + member keys)."""
        ck = checkpoint_key(self.run_id, self.step)
        return {
            "checkpoint_key": ck,
            "key": self.key,
            "run_id": self.run_id,
            "step": int(self.step),
            "kind": "edges",
            "scores": self.settings.scores,
            "target": float(self.settings.target),
            "edges": list(self.edge_names),
            "edge_scores": [float(x) for x in self.edge_scores],
            "n_edges": len(self.edges),
            "components": list(self.components),
            "n_components": len(self.components),
            "faithfulness": _finite(self.faithfulness),
            "ablation": self.ablation,
            "clean_metric": self.clean_metric,
            "circuit_metric": self.circuit_metric,
            "ablated_metric": self.ablated_metric,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "component_keys": [f"{ck}/{name}" for name in self.components],
            "edge_keys": [
                {"source_key": f"{ck}/{a}", "target_key": f"{ck}/{b}", "score": float(s), "rank": r}
                for r, ((a, b), s) in enumerate(zip(self.edges, self.edge_scores, strict=True))
            ],
        }


def _finite(value: float) -> float | None:
    return None if value != value else float(value)


def find_circuits(
    store: StoreBase,
    run_id: str,
    steps: list[int],
    settings: CircuitSettings = CircuitSettings(),
    device: str = "auto",
    progress: bool = False,
) -> list[StepCircuit]:
    """The circuit of each of ``steps`` (module docstring); every step is checked first."""
    from tqdm.auto import tqdm

    settings.check()
    config = store.run_config(run_id)
    for step in steps:
        store.check_step(run_id, step)
    ablation = settings.ablation or str(config["ablation"])
    ig_steps = int(config.get("settings", {}).get("ig_steps", DEFAULT_IG_STEPS))
    out = []
    for step in tqdm(steps, desc="circuits", unit="ckpt", disable=not progress):
        weights, prompts = load_run_checkpoint(config, step, device)
        dev = weights.device
        scorer = EdgeScorer(
            ForwardPieces(weights, prompts.seq_len),
            prompts.tokens.to(dev),
            prompts.metric_mask.to(dev),
            ablation,
        )
        stored = _stored_scores(store.edges(run_id, step), scorer)
        out.append(
            _circuit(
                run_id, step, settings, scorer, stored, ablation == config["ablation"], ig_steps
            )
        )
    return out


def circuits_frame(circuits: list[StepCircuit]) -> pd.DataFrame:
    """One row per circuit: ``CIRCUIT_COLUMNS`` (and the bootstrap's, when it ran)."""
    rows = []
    for c in circuits:
        row: dict[str, Any] = {
            "step": c.step,
            "faithfulness": c.faithfulness,
            "n_edges": len(c.edges),
            "n_components": len(c.components),
            "reached": c.reached,
            "scores": c.settings.scores,
            "ablation": c.ablation,
            "score_correlation": c.score_correlation,
        }
        if c.stability is not None:
            row["mean_jaccard"] = c.stability.mean_jaccard
            row["faithfulness_mean"] = c.stability.faithfulness_mean
            row["faithfulness_std"] = c.stability.faithfulness_std
        row["edges"] = " ".join(c.edge_names)
        rows.append(row)
    return pd.DataFrame(rows) if rows else pd.DataFrame(columns=CIRCUIT_COLUMNS)


def _stored_scores(edges: pd.DataFrame, scorer: EdgeScorer) -> pd.DataFrame:
    """The stored scores in the scorer's edge order (NaN where absent)."""
    names = pd.MultiIndex.from_tuples(
        [(scorer.names[i], scorer.names[j]) for i, j in scorer.pairs], names=["source", "target"]
    )
    columns = list(SCORE_KINDS.values())
    frame = edges.set_index(["source", "target"]).reindex(names)
    for c in columns:
        if c not in frame:
            frame[c] = np.nan
    return frame[columns].reset_index(drop=True)


def _circuit(
    run_id: str,
    step: int,
    settings: CircuitSettings,
    scorer: EdgeScorer,
    stored: pd.DataFrame,
    same_ablation: bool,
    ig_steps: int,
) -> StepCircuit:
    start = time.perf_counter()
    column = SCORE_KINDS[settings.scores]
    have = stored[column].to_numpy(dtype=float)
    notes: list[str] = []
    per_prompt: torch.Tensor | None = None
    if same_ablation and np.isfinite(have).all():
        scores, source = have, "store"
    else:
        per_prompt = _per_prompt_scores(scorer, settings.scores, ig_steps)
        scores, source = per_prompt.mean(dim=1).double().cpu().numpy(), "computed"
        why = "its ablation differs from the run's" if not same_ablation else "the run has none"
        notes.append(
            f"step {step}: {column} computed from the run's stored configuration ({why}); "
            f"re-ingest with --edge-scores both to store them"
        )

    def oracle(masks: np.ndarray) -> np.ndarray:
        return scorer.faithfulness(torch.as_tensor(masks)).cpu().numpy()

    sel = select_circuit(scores, oracle, settings.target)
    if not sel.reached:
        notes.append(
            f"step {step}: no circuit reaches faithfulness {settings.target:g}; "
            f"kept the whole model ({scorer.n_edges} edges)"
        )
    both = stored.to_numpy(dtype=float)
    corr = _spearman(both[:, 0], both[:, 1]) if np.isfinite(both).all() else None
    stability = None
    if settings.bootstrap:
        if per_prompt is None:
            per_prompt = _per_prompt_scores(scorer, settings.scores, ig_steps)
        stability = _stability(scorer, per_prompt, sel, settings)
    metrics = _metrics(scorer, sel)
    return StepCircuit(
        run_id=run_id,
        step=int(step),
        settings=settings,
        ablation=scorer.ablation,
        edges=tuple(_edge_name(scorer, e) for e in sel.edges),
        edge_scores=tuple(float(scores[e]) for e in sel.edges),
        faithfulness=sel.faithfulness,
        reached=sel.reached,
        prefix=sel.prefix,
        n_model_edges=scorer.n_edges,
        clean_metric=metrics[0],
        ablated_metric=metrics[1],
        circuit_metric=metrics[2],
        scores_from=source,
        score_correlation=corr,
        stability=stability,
        seconds=time.perf_counter() - start,
        notes=tuple(notes),
    )


def _edge_name(scorer: EdgeScorer, e: int) -> tuple[str, str]:
    i, j = scorer.pairs[e]
    return scorer.names[i], scorer.names[j]


def _per_prompt_scores(scorer: EdgeScorer, kind: str, ig_steps: int) -> torch.Tensor:
    return scorer.patch_effects() if kind == "exact" else scorer.eap_ig(ig_steps)


def _mask(edges: tuple[int, ...], n: int) -> torch.Tensor:
    mask = torch.zeros((1, n), dtype=torch.bool)
    mask[0, list(edges)] = True
    return mask


def _metrics(scorer: EdgeScorer, sel: Selection) -> tuple[float, float, float]:
    """Mean metric with every edge, with none, and of the circuit run."""
    clean, none = scorer.end_metrics().mean(dim=1).tolist()
    circuit = float(scorer.circuit_metrics(_mask(sel.edges, scorer.n_edges)).mean())
    return float(clean), float(none), circuit


def _stability(
    scorer: EdgeScorer, per_prompt: torch.Tensor, sel: Selection, settings: CircuitSettings
) -> Stability:
    """The circuit found again on ``settings.bootstrap`` resamples of the prompts."""
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    full = set(sel.edges)
    jaccards, faiths = [], []
    n = scorer.n
    for _ in range(settings.bootstrap):
        counts = np.bincount(rng.integers(0, n, n), minlength=n)
        weights = torch.as_tensor(counts / n, dtype=torch.float32)
        scores = (per_prompt.cpu().double() @ weights.double()).numpy()

        def oracle(masks: np.ndarray, w: torch.Tensor = weights) -> np.ndarray:
            return scorer.faithfulness(torch.as_tensor(masks), w).cpu().numpy()

        again = select_circuit(scores, oracle, settings.target)
        jaccards.append(jaccard(full, set(again.edges)))
        faiths.append(float(scorer.faithfulness(_mask(again.edges, scorer.n_edges))[0]))
    return Stability(
        settings.bootstrap, float(np.mean(jaccards)), float(np.mean(faiths)), float(np.std(faiths))
    )


def _spearman(a: np.ndarray, b: np.ndarray) -> float | None:
    """Spearman's rank correlation (average ranks for ties); None when a side is constant."""
    value = float(pd.Series(a).rank().corr(pd.Series(b).rank()))
    return None if math.isnan(value) else value
