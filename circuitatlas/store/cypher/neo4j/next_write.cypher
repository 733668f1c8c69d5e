// One batch of NEXT links between consecutive new checkpoints (rows: from_key, to_key).
UNWIND $rows AS row
MATCH (a:Component {key: row.from_key})
MATCH (b:Component {key: row.to_key})
CREATE (a)-[:NEXT]->(b)
