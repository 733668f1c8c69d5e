// Writes a circuit of one checkpoint. $kind "paths": the union of the components on its
// strongest $source→$sink paths (k of them, on $measure edges at τ $tau, null for every edge),
// the paths and their strengths. $kind "edges": the edges ranked by the task-metric score
// $scores ("exact" | "eap-ig") kept to reach the faithfulness target $target, as
// "{source}→{target}" in rank order, with their scores (the properties of the other kind null).
// Either, once validated, with its faithfulness and the metrics it is computed from.
MATCH (ck:Checkpoint {key: $checkpoint_key})
CREATE (c:Circuit {
  key: $key, run_id: $run_id, step: $step, kind: $kind, source: $source, sink: $sink, k: $k,
  measure: $measure, tau: $tau, distance: $distance, components: $components, paths: $paths,
  strengths: $strengths, n_components: $n_components, scores: $scores, target: $target,
  edges: $edges, edge_scores: $edge_scores, n_edges: $n_edges, faithfulness: $faithfulness,
  ablation: $ablation, clean_metric: $clean_metric, circuit_metric: $circuit_metric,
  ablated_metric: $ablated_metric, created_at: $created_at
})
CREATE (ck)-[:HAS_CIRCUIT]->(c)
