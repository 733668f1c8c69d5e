// Removes a stored circuit, its CIRCUIT_EDGE relationships (found from the components of its
// checkpoint through the (run_id, step) index) and its other links, before it is written again
// with new values.
MATCH (c:Circuit {key: $key})
OPTIONAL MATCH (:Component {run_id: c.run_id, step: c.step})-[e:CIRCUIT_EDGE {circuit: $key}]->()
WITH c, collect(e) AS edges
FOREACH (e IN edges | DELETE e)
DETACH DELETE c
