// COPY matches columns by position: the column list and the subquery name them in one order
// (analytics columns are left null until `circuitatlas analyze` writes them).
COPY Checkpoint(key, run_id, step, loss, metric)
FROM (LOAD FROM $rows RETURN key, run_id, step, loss, metric)
