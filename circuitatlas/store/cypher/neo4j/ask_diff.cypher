// Trajectory question `diff`: how the graph at $tau changes from checkpoint $checkpoint_a to
// $checkpoint_b. An edge is present at τ when its $measure ('total' or 'direct') similarity is
// below $tau. Classes: appeared (absent before, present after), vanished, strengthened and
// weakened (present at both; weight up or down); per class the $k largest |delta| (the change of
// the measure's weight), ties by source then target. Each edge of checkpoint a finds its pair in
// checkpoint b through the unique component keys "{checkpoint_b}/{name}" (index seeks).
MATCH (:Checkpoint {key: $checkpoint_a})-[:HAS_COMPONENT]->(s:Component)-[a:INFLUENCES]->(t:Component)
MATCH (:Component {key: $checkpoint_b + '/' + s.name})-[b:INFLUENCES]->
      (:Component {key: $checkpoint_b + '/' + t.name})
WITH s.name AS source, t.name AS target,
     CASE $measure WHEN 'direct' THEN a.direct_similarity ELSE a.similarity END < $tau AS before,
     CASE $measure WHEN 'direct' THEN b.direct_similarity ELSE b.similarity END < $tau AS after,
     CASE $measure WHEN 'direct' THEN a.direct_weight ELSE a.weight END AS weight_before,
     CASE $measure WHEN 'direct' THEN b.direct_weight ELSE b.weight END AS weight_after
WITH source, target, before, after, weight_before, weight_after,
     weight_after - weight_before AS delta
WITH source, target, weight_before, weight_after, delta,
     CASE
       WHEN after AND NOT before THEN 'appeared'
       WHEN before AND NOT after THEN 'vanished'
       WHEN before AND after AND delta > 0 THEN 'strengthened'
       WHEN before AND after AND delta < 0 THEN 'weakened'
     END AS change
WHERE change IS NOT NULL
ORDER BY abs(delta) DESC, source, target
WITH change,
     collect({source: source, target: target, weight_before: weight_before,
              weight_after: weight_after, delta: delta})[..$k] AS top
UNWIND range(0, size(top) - 1) AS i
RETURN change, top[i].source AS source, top[i].target AS target,
       top[i].weight_before AS weight_before, top[i].weight_after AS weight_after,
       top[i].delta AS delta
ORDER BY CASE change WHEN 'appeared' THEN 1 WHEN 'vanished' THEN 2 WHEN 'strengthened' THEN 3
         ELSE 4 END, i
