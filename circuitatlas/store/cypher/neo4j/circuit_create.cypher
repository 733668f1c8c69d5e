// Writes a candidate circuit of one checkpoint: the union of the components on its strongest
// $source→$sink paths (k of them, on $measure edges at τ $tau, null for every edge), the paths
// and their strengths, and, once validated, its faithfulness and the metrics it is computed from.
MATCH (ck:Checkpoint {key: $checkpoint_key})
CREATE (c:Circuit {
  key: $key, run_id: $run_id, step: $step, source: $source, sink: $sink, k: $k,
  measure: $measure, tau: $tau, distance: $distance, components: $components, paths: $paths,
  strengths: $strengths, n_components: $n_components, faithfulness: $faithfulness,
  ablation: $ablation, clean_metric: $clean_metric, circuit_metric: $circuit_metric,
  ablated_metric: $ablated_metric, created_at: $created_at
})
CREATE (ck)-[:HAS_CIRCUIT]->(c)
