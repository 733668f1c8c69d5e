// The $k strongest $source → $sink paths of one checkpoint on its projection $graph_name
// (gds_project): GDS's Yen's k shortest paths on the `distance` property, -log(min(weight, 1))
// per edge. A row a path, in order of increasing distance (fewer when fewer exist, none when none
// does): its index, total distance and the component names along it, source first (nodeIds are
// Neo4j node ids, which a Cypher projection keeps).
MATCH (source:Component {key: $checkpoint_key + '/' + $source})
MATCH (sink:Component {key: $checkpoint_key + '/' + $sink})
CALL gds.shortestPath.yens.stream($graph_name, {
  sourceNode: source,
  targetNode: sink,
  k: $k,
  relationshipWeightProperty: 'distance'
})
YIELD index, totalCost, nodeIds
RETURN index, totalCost, [node_id IN nodeIds | gds.util.asNode(node_id).name] AS names
ORDER BY index
