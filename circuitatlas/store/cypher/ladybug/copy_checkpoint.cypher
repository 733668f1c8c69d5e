// COPY matches columns by position: the subquery names them in the table's order.
COPY Checkpoint FROM (LOAD FROM $rows RETURN key, run_id, step, loss, metric)
