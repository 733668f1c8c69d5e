"""How the held-out loss on the repeated half of the toy run falls: where the induction circuit
forms, for the tests that check what the analytics and the pathfinding find there."""

from __future__ import annotations

import numpy as np
import pandas as pd

WINDOW = 200  # steps: a sixth of the default run


def drop_stats(log: pd.DataFrame, window: int = WINDOW) -> dict[str, float]:
    """How far and how abruptly the held-out loss on the repeat falls.

    ``early``: mean icl loss over steps <= 100 (before any in-context learning: ~ln 62);
    ``late``: mean over the last 100 steps; ``drop = early - late``. ``steepest``: the largest fall
    of the (3-row smoothed) icl loss between two logged steps at most ``window`` steps apart, as a
    fraction of ``drop``, with the window's ``start`` and ``end``. A steady decline from step 100 to
    the end would give a fraction of ``window / (steps - 100)`` (0.18 for the default run).
    """
    icl = log.set_index("step")["icl_loss"].rolling(3, center=True, min_periods=1).mean()
    steps, values = icl.index.to_numpy(), icl.to_numpy()
    early = float(icl[steps <= 100].mean())
    late = float(icl[steps >= steps.max() - 100].mean())
    fall = values[:, None] - values[None, :]  # fall[i, j]: from steps[i] to steps[j]
    apart = steps[None, :] - steps[:, None]
    fall[(apart < 0) | (apart > window)] = -np.inf
    i, j = np.unravel_index(np.argmax(fall), fall.shape)
    drop = early - late
    return {
        "early": early,
        "late": late,
        "drop": drop,
        "steepest": float(fall[i, j] / drop),
        "start": int(steps[i]),
        "end": int(steps[j]),
    }


def drop_window(log: pd.DataFrame, share: float = 0.1) -> tuple[int, int]:
    """Where the (3-row smoothed) icl loss makes the middle 80 % of its fall: from the first
    logged step at or below ``early - share * drop`` to the first at or below
    ``late + share * drop`` (``drop_stats``' early, late and drop)."""
    stats = drop_stats(log)
    icl = log.set_index("step")["icl_loss"].rolling(3, center=True, min_periods=1).mean()
    start = icl[icl <= stats["early"] - share * stats["drop"]].index.min()
    end = icl[icl <= stats["late"] + share * stats["drop"]].index.min()
    return int(start), int(end)
