// Trajectory question `top`: at every checkpoint of run $run_id, the $k components with the
// largest value of the numeric property $metric (null values left out): the first $k by value,
// ties by name; rank = 1 + how many components of the checkpoint have a larger value (ties share
// it). LadybugDB reads no dynamic property (c[$metric]), so a CASE picks it; and as its collect()
// keeps no input order, the k-th largest value bounds the candidates, ranked by counting.
MATCH (:Run {run_id: $run_id})-[:HAS_CHECKPOINT]->(ck:Checkpoint)-[:HAS_COMPONENT]->(c:Component)
WITH ck.step AS step, c.name AS name,
     CASE $metric
       WHEN 'effect' THEN c.effect
       WHEN 'prev_token_score' THEN c.prev_token_score
       WHEN 'induction_score' THEN c.induction_score
       WHEN 'in_degree' THEN CAST(c.in_degree AS DOUBLE)
       WHEN 'out_degree' THEN CAST(c.out_degree AS DOUBLE)
       WHEN 'in_strength' THEN c.in_strength
       WHEN 'out_strength' THEN c.out_strength
       WHEN 'betweenness' THEN c.betweenness
       WHEN 'closeness' THEN c.closeness
       WHEN 'pagerank' THEN c.pagerank
     END AS value
WHERE value IS NOT NULL
WITH step, collect({name: name, value: value}) AS members,
     list_sort(collect(value), 'DESC') AS ranked
WITH step, members, ranked[CASE WHEN size(ranked) < $k THEN size(ranked) ELSE $k END] AS bound
UNWIND members AS m
WITH step, m, bound
WHERE m.value >= bound
WITH step, collect(m) AS top
UNWIND top AS m
UNWIND top AS o
WITH step, m.name AS name, m.value AS value,
     sum(CASE WHEN o.value > m.value THEN 1 ELSE 0 END) + 1 AS rank,
     sum(CASE WHEN o.value > m.value OR (o.value = m.value AND o.name < m.name) THEN 1 ELSE 0 END)
       + 1 AS position
WHERE position <= $k
RETURN step, rank, name, value
ORDER BY step, position
