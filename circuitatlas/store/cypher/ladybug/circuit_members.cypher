// Links a candidate circuit to its components ($component_keys: their keys, run/step/name).
MATCH (c:Circuit {key: $key})
UNWIND $component_keys AS component_key
MATCH (m:Component {key: component_key})
CREATE (m)-[:IN_CIRCUIT]->(c)
