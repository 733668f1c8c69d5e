// Trajectory question `first`: when the $measure ('total' or 'direct') weight of the edge
// $source → $target of run $run_id first exceeds $value. One row: crossed = true with the first
// step whose weight is above $value, or crossed = false with the first step where the weight
// reached its largest value; no row when the run has no such edge.
MATCH (:Run {run_id: $run_id})-[:HAS_CHECKPOINT]->(ck:Checkpoint)
WITH ck.key + '/' + $source AS source_key, ck.key + '/' + $target AS target_key
MATCH (s:Component)
WHERE s.key = source_key
MATCH (t:Component)
WHERE t.key = target_key
MATCH (s)-[e:INFLUENCES]->(t)
WITH e.step AS step, CASE $measure WHEN 'direct' THEN e.direct_weight ELSE e.weight END AS weight
WITH collect({step: step, weight: weight}) AS rows, max(weight) AS largest,
     min(CASE WHEN weight > $value THEN step END) AS first_step
UNWIND rows AS row
WITH row, largest, first_step
WHERE row.step = first_step OR (first_step IS NULL AND row.weight = largest)
RETURN row.step AS step, row.weight AS weight, first_step IS NOT NULL AS crossed
ORDER BY step
LIMIT 1
