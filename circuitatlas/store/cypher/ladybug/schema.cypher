// Tables of a circuitatlas store (LadybugDB). Primary keys make every key unique.
CREATE NODE TABLE IF NOT EXISTS CircuitAtlasSchema(name STRING, version INT64, PRIMARY KEY(name));
CREATE NODE TABLE IF NOT EXISTS Run(
  run_id STRING, model STRING, task STRING, ablation STRING, n_prompts INT64, seq_len INT64,
  seed INT64, created_at STRING, version STRING, config STRING, planned_steps INT64[],
  n_checkpoints INT64, PRIMARY KEY(run_id)
);
CREATE NODE TABLE IF NOT EXISTS Checkpoint(
  key STRING, run_id STRING, step INT64, loss DOUBLE, metric DOUBLE, PRIMARY KEY(key)
);
CREATE NODE TABLE IF NOT EXISTS Component(
  key STRING, run_id STRING, step INT64, name STRING, kind STRING, layer INT64, head INT64,
  effect DOUBLE, prev_token_score DOUBLE, induction_score DOUBLE, PRIMARY KEY(key)
);
CREATE REL TABLE IF NOT EXISTS HAS_CHECKPOINT(FROM Run TO Checkpoint);
CREATE REL TABLE IF NOT EXISTS HAS_COMPONENT(FROM Checkpoint TO Component);
CREATE REL TABLE IF NOT EXISTS INFLUENCES(
  FROM Component TO Component, run_id STRING, step INT64, weight DOUBLE, similarity DOUBLE,
  std DOUBLE, direct_weight DOUBLE, direct_similarity DOUBLE, direct_std DOUBLE,
  patch_effect DOUBLE, eap_ig DOUBLE
);
CREATE REL TABLE IF NOT EXISTS NEXT(FROM Component TO Component);
// Circuits of a checkpoint. kind "paths" (circuitatlas paths --save): the union of its strongest
// paths (source … strengths). kind "edges": a set of edges ranked by a task-metric score
// (scores, target, edges "{source}→{target}" in rank order, edge_scores, n_edges), each edge
// also a CIRCUIT_EDGE relationship between the components the INFLUENCES edge joins. The
// properties of the other kind are null. The columns added after the first schema come last,
// as ALTER adds them to a store written before them.
CREATE NODE TABLE IF NOT EXISTS Circuit(
  key STRING, run_id STRING, step INT64, source STRING, sink STRING, k INT64, measure STRING,
  tau DOUBLE, distance STRING, components STRING[], paths STRING[], strengths DOUBLE[],
  n_components INT64, faithfulness DOUBLE, ablation STRING, clean_metric DOUBLE,
  circuit_metric DOUBLE, ablated_metric DOUBLE, created_at STRING, kind STRING, scores STRING,
  target DOUBLE, edges STRING[], edge_scores DOUBLE[], n_edges INT64, PRIMARY KEY(key)
);
CREATE REL TABLE IF NOT EXISTS HAS_CIRCUIT(FROM Checkpoint TO Circuit);
CREATE REL TABLE IF NOT EXISTS IN_CIRCUIT(FROM Component TO Circuit);
CREATE REL TABLE IF NOT EXISTS CIRCUIT_EDGE(
  FROM Component TO Component, circuit STRING, run_id STRING, step INT64, score DOUBLE,
  rank INT64
);
// Task-metric edge scores and edge-level circuits, added to stores written before them:
ALTER TABLE INFLUENCES ADD IF NOT EXISTS patch_effect DOUBLE;
ALTER TABLE INFLUENCES ADD IF NOT EXISTS eap_ig DOUBLE;
ALTER TABLE Circuit ADD IF NOT EXISTS kind STRING;
ALTER TABLE Circuit ADD IF NOT EXISTS scores STRING;
ALTER TABLE Circuit ADD IF NOT EXISTS target DOUBLE;
ALTER TABLE Circuit ADD IF NOT EXISTS edges STRING[];
ALTER TABLE Circuit ADD IF NOT EXISTS edge_scores DOUBLE[];
ALTER TABLE Circuit ADD IF NOT EXISTS n_edges INT64;
// Analytics properties (circuitatlas analyze), added to stores written before them too:
// every statement of this file is idempotent and runs on each writable open.
ALTER TABLE Component ADD IF NOT EXISTS in_degree INT64;
ALTER TABLE Component ADD IF NOT EXISTS out_degree INT64;
ALTER TABLE Component ADD IF NOT EXISTS in_strength DOUBLE;
ALTER TABLE Component ADD IF NOT EXISTS out_strength DOUBLE;
ALTER TABLE Component ADD IF NOT EXISTS betweenness DOUBLE;
ALTER TABLE Component ADD IF NOT EXISTS closeness DOUBLE;
ALTER TABLE Component ADD IF NOT EXISTS pagerank DOUBLE;
ALTER TABLE Component ADD IF NOT EXISTS role STRING;
ALTER TABLE Checkpoint ADD IF NOT EXISTS tau DOUBLE;
ALTER TABLE Checkpoint ADD IF NOT EXISTS measure STRING;
ALTER TABLE Checkpoint ADD IF NOT EXISTS cost STRING;
ALTER TABLE Checkpoint ADD IF NOT EXISTS top_k INT64;
ALTER TABLE Checkpoint ADD IF NOT EXISTS n_nodes INT64;
ALTER TABLE Checkpoint ADD IF NOT EXISTS n_edges INT64;
ALTER TABLE Checkpoint ADD IF NOT EXISTS density DOUBLE;
ALTER TABLE Checkpoint ADD IF NOT EXISTS mean_weight DOUBLE;
ALTER TABLE Checkpoint ADD IF NOT EXISTS weight_gini DOUBLE;
ALTER TABLE Checkpoint ADD IF NOT EXISTS weight_tail_index DOUBLE;
ALTER TABLE Checkpoint ADD IF NOT EXISTS spreader_jaccard DOUBLE;
ALTER TABLE Checkpoint ADD IF NOT EXISTS gatherer_jaccard DOUBLE;
ALTER TABLE Checkpoint ADD IF NOT EXISTS gatekeeper_jaccard DOUBLE;
ALTER TABLE Checkpoint ADD IF NOT EXISTS role_stability DOUBLE;
ALTER TABLE Checkpoint ADD IF NOT EXISTS reconfiguration BOOL;
ALTER TABLE Checkpoint ADD IF NOT EXISTS phase STRING;
ALTER TABLE Run ADD IF NOT EXISTS analysis_tau DOUBLE;
ALTER TABLE Run ADD IF NOT EXISTS analysis_measure STRING;
ALTER TABLE Run ADD IF NOT EXISTS analysis_cost STRING;
ALTER TABLE Run ADD IF NOT EXISTS analysis_top_k INT64;
ALTER TABLE Run ADD IF NOT EXISTS phase_boundaries INT64[];
ALTER TABLE Run ADD IF NOT EXISTS phase_labels STRING[];
ALTER TABLE Run ADD IF NOT EXISTS reconfigurations INT64[];
ALTER TABLE Run ADD IF NOT EXISTS analyzed_at STRING;
