// Removes a stored circuit, its CIRCUIT_EDGE relationships and its other links, before it is
// written again with new values.
MATCH (:Component)-[e:CIRCUIT_EDGE]->(:Component)
WHERE e.circuit = $key
DELETE e
WITH count(*) AS removed
MATCH (c:Circuit {key: $key})
DETACH DELETE c
