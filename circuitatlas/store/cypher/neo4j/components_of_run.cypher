MATCH (:Run {run_id: $run_id})-[:HAS_CHECKPOINT]->(:Checkpoint)-[:HAS_COMPONENT]->(c:Component)
RETURN c AS component
