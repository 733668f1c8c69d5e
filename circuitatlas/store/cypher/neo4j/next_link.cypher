// Link each component of one checkpoint to the component of the same name at the next one.
MATCH (:Checkpoint {key: $from_key})-[:HAS_COMPONENT]->(a:Component)
MATCH (:Checkpoint {key: $to_key})-[:HAS_COMPONENT]->(b:Component)
WHERE a.name = b.name
CREATE (a)-[:NEXT]->(b)
