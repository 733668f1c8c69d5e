MATCH (:Run {run_id: $run_id})-[:HAS_CHECKPOINT]->(c:Checkpoint)
RETURN c AS checkpoint
ORDER BY c.step
