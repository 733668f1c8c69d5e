// How much of a run is stored: checkpoints, components and INFLUENCES edges.
MATCH (:Run {run_id: $run_id})-[:HAS_CHECKPOINT]->(c:Checkpoint)-[:HAS_COMPONENT]->(m:Component)
OPTIONAL MATCH (m)-[e:INFLUENCES]->(:Component)
RETURN count(DISTINCT c) AS checkpoints, count(DISTINCT m) AS components, count(e) AS edges
