// Projects one checkpoint's graph for pathfinding on given distances into the GDS graph catalog
// as $graph_name (a Cypher projection). Nodes: every component of the checkpoint. Relationships:
// the INFLUENCES edges that $distances ({source name: {target name: distance}}) names, with
// property `distance` from it: on task-metric scores -log of the edge's share of its target's
// total absolute score, computed by the caller (circuitatlas.graph.paths.score_shares) and passed
// as a value; an edge of share 0 is not named. A component without such an edge comes with a
// null target, which projects the node alone.
MATCH (:Checkpoint {key: $checkpoint_key})-[:HAS_COMPONENT]->(source:Component)
OPTIONAL MATCH (source)-[:INFLUENCES]->(target:Component)
  WHERE $distances[source.name][target.name] IS NOT NULL
WITH source, target, $distances[source.name][target.name] AS distance
RETURN gds.graph.project(
  $graph_name,
  source,
  target,
  {
    relationshipProperties: CASE WHEN target IS NULL THEN null ELSE {distance: distance} END
  }
) AS graph
