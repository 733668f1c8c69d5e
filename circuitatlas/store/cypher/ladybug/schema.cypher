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
  std DOUBLE, direct_weight DOUBLE, direct_similarity DOUBLE, direct_std DOUBLE
);
CREATE REL TABLE IF NOT EXISTS NEXT(FROM Component TO Component);
