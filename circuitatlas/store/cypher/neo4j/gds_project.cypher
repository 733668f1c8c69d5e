// Projects one checkpoint's graph at $tau into the GDS graph catalog as $graph_name (a Cypher
// projection). Nodes: every component of the checkpoint. Relationships: the INFLUENCES edges
// whose $measure ('total' or 'direct') similarity is below $tau and whose weight is positive (as
// graph_edges), with properties `weight` (that measure's weight) and `cost` = 1 / weight (the
// shortest-path length: a stronger influence is a shorter distance). A component without such an
// edge comes with a null target, which projects the node alone.
MATCH (:Checkpoint {key: $checkpoint_key})-[:HAS_COMPONENT]->(source:Component)
OPTIONAL MATCH (source)-[e:INFLUENCES]->(target:Component)
  WHERE CASE $measure WHEN 'direct' THEN e.direct_similarity ELSE e.similarity END < $tau
    AND CASE $measure WHEN 'direct' THEN e.direct_weight ELSE e.weight END > 0
WITH source, target, CASE $measure WHEN 'direct' THEN e.direct_weight ELSE e.weight END AS weight
RETURN gds.graph.project(
  $graph_name,
  source,
  target,
  {
    relationshipProperties: CASE WHEN target IS NULL THEN null
                                 ELSE {weight: weight, cost: 1.0 / weight} END
  }
) AS graph
