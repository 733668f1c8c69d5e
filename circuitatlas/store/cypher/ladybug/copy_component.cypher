// COPY matches columns by position: the subquery names them in the table's order.
COPY Component FROM (
  LOAD FROM $rows
  RETURN key, run_id, step, name, kind, layer, head, effect, prev_token_score, induction_score
)
