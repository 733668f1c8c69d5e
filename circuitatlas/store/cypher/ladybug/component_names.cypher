// One checkpoint's components, the node set of its graph at any threshold: an id (the node's
// offset in its table, what graph_edges returns) and the name.
MATCH (:Checkpoint {key: $checkpoint_key})-[:HAS_COMPONENT]->(c:Component)
RETURN offset(id(c)) AS id, c.name AS name
ORDER BY name
