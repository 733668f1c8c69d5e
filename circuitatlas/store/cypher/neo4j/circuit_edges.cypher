// The CIRCUIT_EDGE relationships of run $run_id's edge-level circuits (of circuit $key unless
// $every), by circuit and rank; found from each circuit's checkpoint components through the
// (run_id, step) index.
MATCH (:Run {run_id: $run_id})-[:HAS_CHECKPOINT]->(:Checkpoint)-[:HAS_CIRCUIT]->(c:Circuit)
WHERE $every OR c.key = $key
MATCH (s:Component {run_id: $run_id, step: c.step})-[e:CIRCUIT_EDGE {circuit: c.key}]->(t:Component)
RETURN e.circuit AS circuit, e.step AS step, s.name AS source, t.name AS target,
       e.score AS score, e.rank AS rank
ORDER BY circuit, rank
