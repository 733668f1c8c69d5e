"""Previous-token and induction scores of attention heads, from attention patterns.

Both scores work on any prompts, not only repeated random tokens:

* previous-token score of a head: mean over prompts and positions ``t >= 1`` of the attention
  from ``t`` to ``t - 1``;
* induction score: mean, over positions ``t`` whose token occurred earlier in the prompt, of the
  attention from ``t`` to the positions right after those earlier occurrences (where an induction
  head looks to copy the next token). On ``[bos] + seg + seg`` this is the attention from the
  second copy to ``t - len(seg) + 1``, the usual definition.
"""

from __future__ import annotations

import torch


def previous_token_scores(patterns: torch.Tensor) -> torch.Tensor:
    """Scores ``[heads]`` from ``patterns`` of shape ``[batch, heads, query, key]``."""
    diag = torch.diagonal(patterns, offset=-1, dim1=-2, dim2=-1)  # [batch, heads, query-1]
    return diag.mean(dim=(0, 2))


def induction_targets(tokens: torch.Tensor) -> torch.Tensor:
    """Boolean ``[batch, query, key]``: key ``s`` follows an earlier copy of the query's token.

    ``s - 1 < t`` and ``tokens[s - 1] == tokens[t]`` with ``1 <= s <= t``.
    """
    batch, seq = tokens.shape
    same = tokens[:, :, None] == tokens[:, None, :]  # [b, t, s']: tokens[t] == tokens[s']
    t_idx = torch.arange(seq, device=tokens.device)
    earlier = t_idx[None, :] < t_idx[:, None]  # s' < t
    prev_match = same & earlier[None]
    targets = torch.zeros(batch, seq, seq, dtype=torch.bool, device=tokens.device)
    targets[:, :, 1:] = prev_match[:, :, :-1]  # key s = s' + 1
    return targets


def induction_scores(patterns: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """Scores ``[heads]`` from ``patterns`` ``[b, heads, query, key]``, ``tokens`` ``[b, query]``.

    Returns zeros when no token repeats (no position can be scored).
    """
    targets = induction_targets(tokens)  # [b, t, s]
    scored = targets.any(dim=-1)  # [b, t]
    n = scored.sum()
    if n == 0:
        return torch.zeros(patterns.shape[1], dtype=patterns.dtype, device=patterns.device)
    mass = (patterns * targets[:, None].to(patterns.dtype)).sum(dim=-1)  # [b, h, t]
    return (mass * scored[:, None].to(patterns.dtype)).sum(dim=(0, 2)) / n
