// The CIRCUIT_EDGE relationships of run $run_id's edge-level circuits (of circuit $key unless
// $every), by circuit and rank.
MATCH (s:Component)-[e:CIRCUIT_EDGE]->(t:Component)
WHERE e.run_id = $run_id AND ($every OR e.circuit = $key)
RETURN e.circuit AS circuit, e.step AS step, s.name AS source, t.name AS target,
       e.score AS score, e.rank AS rank
ORDER BY circuit, rank
