// One batch of an analysis's checkpoint properties (rows: key, properties {tau, measure, …}); a
// null property removes a stale value.
UNWIND $rows AS row
MATCH (ck:Checkpoint {key: row.key})
SET ck += row.properties
