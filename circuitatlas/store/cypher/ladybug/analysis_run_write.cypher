// An analysis's run properties: its settings, phase boundaries and reconfiguration events.
MATCH (r:Run {run_id: $run_id})
SET r.analysis_tau = $analysis_tau, r.analysis_measure = $analysis_measure,
    r.analysis_cost = $analysis_cost, r.analysis_top_k = $analysis_top_k,
    r.phase_boundaries = $phase_boundaries, r.phase_labels = $phase_labels,
    r.reconfigurations = $reconfigurations, r.analyzed_at = $analyzed_at
