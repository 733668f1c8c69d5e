// Create the run on its first write. The SET takes the Run's write lock first in a
// transaction, so concurrent writers of one run (shards) read its checkpoints in turn.
MERGE (r:Run {run_id: $run_id})
ON CREATE SET r.model = $model, r.task = $task, r.ablation = $ablation,
              r.n_prompts = $n_prompts, r.seq_len = $seq_len, r.seed = $seed,
              r.created_at = $created_at, r.version = $version, r.config = $config,
              r.planned_steps = $planned_steps, r.n_checkpoints = 0
SET r.n_checkpoints = r.n_checkpoints
