// Trajectory question `diff`: how the graph at $tau changes from checkpoint $checkpoint_a to
// $checkpoint_b. An edge is present at τ when its $measure ('total' or 'direct') similarity is
// below $tau. Classes: appeared (absent before, present after), vanished, strengthened and
// weakened (present at both; weight up or down); per class the $k largest |delta| (the change of
// the measure's weight), ties by source then target.
// The two checkpoints' edges are grouped by (source, target): LadybugDB plans a join through the
// other checkpoint's component keys as a scan of every INFLUENCES edge of the store. Its collect()
// keeps no input order, so the k-th largest |delta| bounds the candidates, ranked by counting.
MATCH (ck:Checkpoint)-[:HAS_COMPONENT]->(s:Component)-[e:INFLUENCES]->(t:Component)
WHERE ck.key = $checkpoint_a OR ck.key = $checkpoint_b
WITH s.name AS source, t.name AS target, ck.key = $checkpoint_b AS later,
     CASE $measure WHEN 'direct' THEN e.direct_similarity ELSE e.similarity END AS similarity,
     CASE $measure WHEN 'direct' THEN e.direct_weight ELSE e.weight END AS weight
WITH source, target,
     max(CASE WHEN later THEN NULL ELSE similarity END) < $tau AS before,
     max(CASE WHEN later THEN similarity END) < $tau AS after,
     max(CASE WHEN later THEN NULL ELSE weight END) AS weight_before,
     max(CASE WHEN later THEN weight END) AS weight_after
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
WITH change,
     collect({source: source, target: target, weight_before: weight_before,
              weight_after: weight_after, delta: delta, size: abs(delta)}) AS members,
     list_sort(collect(abs(delta)), 'DESC') AS ranked
WITH change, members, ranked[CASE WHEN size(ranked) < $k THEN size(ranked) ELSE $k END] AS bound
UNWIND members AS m
WITH change, m, bound
WHERE m.size >= bound
WITH change, collect(m) AS top
UNWIND top AS m
UNWIND top AS o
WITH change, m.source AS source, m.target AS target, m.weight_before AS weight_before,
     m.weight_after AS weight_after, m.delta AS delta,
     sum(CASE WHEN o.size > m.size OR (o.size = m.size AND (o.source < m.source
         OR (o.source = m.source AND o.target < m.target))) THEN 1 ELSE 0 END) + 1 AS position
WHERE position <= $k
RETURN change, source, target, weight_before, weight_after, delta
ORDER BY CASE change WHEN 'appeared' THEN 1 WHEN 'vanished' THEN 2 WHEN 'strengthened' THEN 3
         ELSE 4 END, position
