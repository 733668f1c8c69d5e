// The strongest $source → $sink path of one checkpoint on its projection $graph_name
// (gds_project): GDS's Dijkstra on the `distance` property, -log(min(weight, 1)) per edge. One
// row, none when no path exists: the index (0), its total distance and the component names along
// it, source first (nodeIds are Neo4j node ids, which a Cypher projection keeps).
MATCH (source:Component {key: $checkpoint_key + '/' + $source})
MATCH (sink:Component {key: $checkpoint_key + '/' + $sink})
CALL gds.shortestPath.dijkstra.stream($graph_name, {
  sourceNode: source,
  targetNode: sink,
  relationshipWeightProperty: 'distance'
})
YIELD index, totalCost, nodeIds
RETURN index, totalCost, [node_id IN nodeIds | gds.util.asNode(node_id).name] AS names
ORDER BY index
