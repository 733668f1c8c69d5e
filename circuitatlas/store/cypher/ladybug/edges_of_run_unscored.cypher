// For a store written before INFLUENCES had the task-metric scores (patch_effect, eap_ig),
// opened read-only (a writable open adds them): `edges_of_run` without them (read as NaN).
MATCH (:Run {run_id: $run_id})-[:HAS_CHECKPOINT]->(:Checkpoint)-[:HAS_COMPONENT]->(s:Component)
MATCH (s)-[e:INFLUENCES]->(t:Component)
WHERE $unfiltered
   OR (CASE $measure WHEN 'direct' THEN e.direct_similarity ELSE e.similarity END) < $tau
RETURN e.step AS step, s.name AS source, t.name AS target,
       e.similarity AS similarity, e.weight AS weight, e.std AS std,
       e.direct_similarity AS direct_similarity, e.direct_weight AS direct_weight,
       e.direct_std AS direct_std
