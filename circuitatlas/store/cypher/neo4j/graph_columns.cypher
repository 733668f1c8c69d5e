// One checkpoint's graph at $tau (the edges of graph_edges) in one row, column by column: each
// edge's source and target names and its $measure weight (one row of three lists is far cheaper
// to receive over Bolt than a row per edge).
MATCH (:Checkpoint {key: $checkpoint_key})-[:HAS_COMPONENT]->(s:Component)
MATCH (s)-[e:INFLUENCES]->(t:Component)
WITH s, t,
     CASE $measure WHEN 'direct' THEN e.direct_similarity ELSE e.similarity END AS similarity,
     CASE $measure WHEN 'direct' THEN e.direct_weight ELSE e.weight END AS weight
WHERE similarity < $tau AND weight > 0
RETURN collect(s.name) AS sources, collect(t.name) AS targets, collect(weight) AS weights
