MATCH (:Run {run_id: $run_id})-[:HAS_CHECKPOINT]->(c:Checkpoint)
RETURN c.step AS step
ORDER BY step
