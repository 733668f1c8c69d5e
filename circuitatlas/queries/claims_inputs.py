"""What the paper's claims need of a stored run (:mod:`circuitatlas.analytics.claims`), read once.

:func:`claims_inputs` reads an analyzed run: its checkpoints (``step, metric, phase`` and the rest
of the stored analysis), its roles per step, the weights of the graph at the analysis's τ and
the model's depth. :func:`edge_weights` reads every stored edge of a run (for the comparison of
ablations, which ranks edges that may lie on either side of τ).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from circuitatlas.analytics.analyze import Analysis
from circuitatlas.analytics.claims import Claim, RoleSets, check_run, role_sets
from circuitatlas.errors import CircuitAtlasError
from circuitatlas.store.base import StoreBase

WEIGHT_COLUMNS = {"total": "weight", "direct": "direct_weight"}


@dataclass(frozen=True)
class ClaimsInputs:
    """One analyzed run, as the checks take it.

    ``checkpoints``: ``step, loss, metric, phase, n_edges, …`` (one row per checkpoint);
    ``roles``: step → role → top-k names; ``weights``: ``step, source, target, weight``, the
    edges of each checkpoint's graph at ``tau`` (similarity below τ, weight positive) on the
    analysis's ``measure``; ``n_layers``: the model's layers.
    """

    run_id: str
    ablation: str
    task: str
    tau: float
    measure: str
    checkpoints: pd.DataFrame
    roles: RoleSets
    weights: pd.DataFrame
    n_layers: int

    def claims(self) -> list[Claim]:
        """Claims (a)–(d) on this run (:func:`~circuitatlas.analytics.claims.check_run`)."""
        return check_run(self.checkpoints, self.roles, self.weights, self.n_layers)


def claims_inputs(store: StoreBase, run_id: str, analysis: Analysis | None = None) -> ClaimsInputs:
    """Read ``run_id``'s analysis from ``store`` (or take ``analysis``, computed and perhaps not
    written, with the store's edges at its τ). Raises when the run has no stored analysis."""
    run = store.runs().set_index("run_id")
    if run_id not in run.index:
        raise CircuitAtlasError(f"unknown run {run_id!r}; `circuitatlas runs` lists the runs")
    components = store.components(run_id)
    if analysis is None:
        checkpoints = store.checkpoints(run_id)
        if "tau" not in checkpoints or checkpoints["tau"].isna().any():
            raise CircuitAtlasError(
                f"run {run_id} has no stored analysis; run `circuitatlas analyze --run {run_id}`"
            )
        tau, measure = float(checkpoints["tau"].iloc[0]), str(checkpoints["measure"].iloc[0])
        roles = role_sets(components)
    else:
        checkpoints, roles = analysis.checkpoints, analysis.roles
        tau, measure = analysis.settings.tau, analysis.settings.measure
    return ClaimsInputs(
        run_id=run_id,
        ablation=str(run.loc[run_id, "ablation"]),
        task=str(run.loc[run_id, "task"]),
        tau=tau,
        measure=measure,
        checkpoints=checkpoints.sort_values("step").reset_index(drop=True),
        roles=roles,
        weights=edge_weights(store, run_id, tau, measure),
        n_layers=model_layers(components),
    )


def edge_weights(
    store: StoreBase, run_id: str, tau: float | None = None, measure: str = "total"
) -> pd.DataFrame:
    """``step, source, target, weight`` of the run's edges on ``measure`` (at ``tau``: those
    of the graph at τ, with a positive weight; without: every stored edge)."""
    column = WEIGHT_COLUMNS[measure]
    edges = store.edges(run_id, tau=tau, measure=measure)
    frame = edges[["step", "source", "target", column]].rename(columns={column: "weight"})
    if tau is not None:
        frame = frame[frame["weight"] > 0]
    return frame.reset_index(drop=True)


def model_layers(components: pd.DataFrame) -> int:
    """The model's layers: the ``logits`` component's layer (it sits at n_layers), else one
    more than the deepest component's."""
    logits = components.loc[components["kind"] == "logits", "layer"]
    if len(logits):
        return int(logits.max())
    return int(components["layer"].max()) + 1
