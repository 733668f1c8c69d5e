// For a store written before INFLUENCES had the task-metric scores (patch_effect, eap_ig),
// opened read-only (a writable open adds them): `ask_edge` without them (read as NaN).
MATCH (:Run {run_id: $run_id})-[:HAS_CHECKPOINT]->(ck:Checkpoint)
WITH ck.key + '/' + $source AS source_key
MATCH (s:Component)
WHERE s.key = source_key
MATCH (s)-[e:INFLUENCES]->(t:Component)
WHERE t.name = $target
RETURN e.step AS step, e.similarity AS similarity, e.weight AS weight, e.std AS std,
       e.direct_similarity AS direct_similarity, e.direct_weight AS direct_weight,
       e.direct_std AS direct_std
ORDER BY step
