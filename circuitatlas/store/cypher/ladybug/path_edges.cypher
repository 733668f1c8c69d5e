// Every stored INFLUENCES edge of one checkpoint with its $measure ('total' or 'direct') weight
// and similarity, unfiltered: pathfinding applies τ and the weight > 0 rule itself, and needs the
// similarities to say at which τ a path would exist. Nodes as component_names' ids.
MATCH (:Checkpoint {key: $checkpoint_key})-[:HAS_COMPONENT]->(s:Component)
MATCH (s)-[e:INFLUENCES]->(t:Component)
RETURN offset(id(s)) AS source, offset(id(t)) AS target,
       CASE $measure WHEN 'direct' THEN e.direct_weight ELSE e.weight END AS weight,
       CASE $measure WHEN 'direct' THEN e.direct_similarity ELSE e.similarity END AS similarity
