MATCH (:Checkpoint {key: $checkpoint_key})-[:HAS_COMPONENT]->(c:Component)
RETURN c AS component
