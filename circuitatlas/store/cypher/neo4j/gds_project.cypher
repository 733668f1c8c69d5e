// Projects one checkpoint's graph into the GDS graph catalog as $graph_name (a Cypher
// projection). Nodes: every component of the checkpoint. Relationships: the INFLUENCES edges whose
// $measure ('total' or 'direct') weight is positive and, unless $unfiltered, whose similarity is
// below $tau (as graph_edges), with properties `weight` (that measure's weight), `cost` =
// 1 / weight (the betweenness length: a stronger influence is a shorter distance) and `distance`
// = -log(min(weight, 1)) (the pathfinding length: a path's strength is exp(-its distance)). A
// component without such an edge comes with a null target, which projects the node alone.
MATCH (:Checkpoint {key: $checkpoint_key})-[:HAS_COMPONENT]->(source:Component)
OPTIONAL MATCH (source)-[e:INFLUENCES]->(target:Component)
  WHERE ($unfiltered
         OR CASE $measure WHEN 'direct' THEN e.direct_similarity ELSE e.similarity END < $tau)
    AND CASE $measure WHEN 'direct' THEN e.direct_weight ELSE e.weight END > 0
WITH source, target, CASE $measure WHEN 'direct' THEN e.direct_weight ELSE e.weight END AS weight
RETURN gds.graph.project(
  $graph_name,
  source,
  target,
  {
    relationshipProperties: CASE WHEN target IS NULL THEN null
                                 ELSE {
                                   weight: weight,
                                   cost: 1.0 / weight,
                                   distance: -log(CASE WHEN weight > 1.0 THEN 1.0 ELSE weight END)
                                 } END
  }
) AS graph
