// Component names of the node ids a GDS stream yields ($node_ids: Neo4j node ids, as a Cypher
// projection of nodes keeps them).
UNWIND $node_ids AS node_id
RETURN node_id, gds.util.asNode(node_id).name AS name
