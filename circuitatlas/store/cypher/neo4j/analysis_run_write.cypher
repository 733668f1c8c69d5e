// An analysis's run properties ($properties: its settings, phase boundaries and
// reconfiguration events).
MATCH (r:Run {run_id: $run_id})
SET r += $properties
