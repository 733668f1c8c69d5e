// One batch of components (rows: checkpoint_key, properties {key, run_id, step, name, …}).
UNWIND $rows AS row
MATCH (ck:Checkpoint {key: row.checkpoint_key})
CREATE (ck)-[:HAS_COMPONENT]->(c:Component)
SET c = row.properties
