// One checkpoint's graph at $tau: edges whose $measure ('total' or 'direct') similarity is below
// $tau and whose weight is positive, with that measure's weight; nodes as component_names' ids
// (ids rather than names: reading a name for every edge would cost most of the read). One row of
// three lists, column by column: far cheaper to receive over Bolt than a row per edge.
MATCH (:Checkpoint {key: $checkpoint_key})-[:HAS_COMPONENT]->(s:Component)
MATCH (s)-[e:INFLUENCES]->(t:Component)
WITH s, t,
     CASE $measure WHEN 'direct' THEN e.direct_similarity ELSE e.similarity END AS similarity,
     CASE $measure WHEN 'direct' THEN e.direct_weight ELSE e.weight END AS weight
WHERE similarity < $tau AND weight > 0
RETURN collect(elementId(s)) AS sources, collect(elementId(t)) AS targets,
       collect(weight) AS weights
