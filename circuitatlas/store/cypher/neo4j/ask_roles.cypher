// Trajectory question `roles`: the components of checkpoint $checkpoint_a whose role (written by
// `circuitatlas analyze`; null when none) differs at checkpoint $checkpoint_b, in layer order.
// The same component of checkpoint b is found by its key "{checkpoint_b}/{name}".
MATCH (:Checkpoint {key: $checkpoint_a})-[:HAS_COMPONENT]->(a:Component)
WITH a, $checkpoint_b + '/' + a.name AS key
MATCH (b:Component)
WHERE b.key = key AND coalesce(a.role, '') <> coalesce(b.role, '')
RETURN a.name AS name, a.role AS role_before, b.role AS role_after
ORDER BY a.layer, a.kind = 'mlp', a.head, name
