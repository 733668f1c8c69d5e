// The Run node of $run_id with every property (whether and how it was analyzed included).
MATCH (r:Run {run_id: $run_id})
RETURN r AS run
