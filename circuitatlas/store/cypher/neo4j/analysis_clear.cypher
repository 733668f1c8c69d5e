// Before an analysis writes centralities checkpoint by checkpoint (GDS write mode), the run's
// stored analysis is marked incomplete: its settings and results, and every checkpoint's τ, are
// removed. The analysis write-back sets them again, all in one transaction, at the end.
MATCH (r:Run {run_id: $run_id})
SET r.analysis_tau = null, r.analysis_measure = null, r.analysis_cost = null,
    r.analysis_top_k = null, r.phase_boundaries = null, r.phase_labels = null,
    r.reconfigurations = null, r.analyzed_at = null
WITH r
OPTIONAL MATCH (r)-[:HAS_CHECKPOINT]->(c:Checkpoint)
SET c.tau = null
