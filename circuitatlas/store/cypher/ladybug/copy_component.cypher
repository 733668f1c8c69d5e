// COPY matches columns by position: the column list and the subquery name them in one order
// (analytics columns are left null until `circuitatlas analyze` writes them).
COPY Component(
  key, run_id, step, name, kind, layer, head, effect, prev_token_score, induction_score
) FROM (
  LOAD FROM $rows
  RETURN key, run_id, step, name, kind, layer, head, effect, prev_token_score, induction_score
)
