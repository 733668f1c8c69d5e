// Trajectory question `edge`: the INFLUENCES edge $source → $target of run $run_id at every
// checkpoint, both measures and the task-metric scores, by step. The source is found by its key
// "{checkpoint key}/{name}" and the edge among its out-edges (LadybugDB plans a lookup of both
// ends as a scan of every INFLUENCES edge).
MATCH (:Run {run_id: $run_id})-[:HAS_CHECKPOINT]->(ck:Checkpoint)
WITH ck.key + '/' + $source AS source_key
MATCH (s:Component)
WHERE s.key = source_key
MATCH (s)-[e:INFLUENCES]->(t:Component)
WHERE t.name = $target
RETURN e.step AS step, e.similarity AS similarity, e.weight AS weight, e.std AS std,
       e.direct_similarity AS direct_similarity, e.direct_weight AS direct_weight,
       e.direct_std AS direct_std, e.patch_effect AS patch_effect, e.eap_ig AS eap_ig
ORDER BY step
