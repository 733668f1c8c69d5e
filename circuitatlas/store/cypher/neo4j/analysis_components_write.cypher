// One batch of an analysis's component properties (rows: key, properties {role, …}); a null
// property removes a stale value.
UNWIND $rows AS row
MATCH (c:Component {key: row.key})
SET c += row.properties
