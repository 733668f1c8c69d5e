// A run's stored candidate circuits, by step.
MATCH (c:Circuit)
WHERE c.run_id = $run_id
RETURN c AS circuit
ORDER BY c.step, c.key
