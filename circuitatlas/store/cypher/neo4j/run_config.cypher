MATCH (r:Run {run_id: $run_id})
RETURN r.config AS config
