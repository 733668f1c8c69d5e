// Record how many checkpoints of the run are stored.
MATCH (r:Run {run_id: $run_id})-[:HAS_CHECKPOINT]->(c:Checkpoint)
WITH r, count(c) AS n
SET r.n_checkpoints = n
