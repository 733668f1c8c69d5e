// One batch of checkpoints of a run (rows: key, run_id, step, loss, metric).
MATCH (r:Run {run_id: $run_id})
UNWIND $rows AS row
CREATE (r)-[:HAS_CHECKPOINT]->(c:Checkpoint)
SET c = row
