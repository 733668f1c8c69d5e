// Names of one checkpoint's components: the node set of its graph at any threshold.
MATCH (:Checkpoint {key: $checkpoint_key})-[:HAS_COMPONENT]->(c:Component)
RETURN c.name AS name
ORDER BY name
