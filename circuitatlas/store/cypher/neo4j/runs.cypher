MATCH (r:Run)
RETURN r.run_id AS run_id, r.model AS model, r.task AS task, r.ablation AS ablation,
       r.n_prompts AS n_prompts, r.seq_len AS seq_len, r.seed AS seed,
       r.n_checkpoints AS n_checkpoints, r.planned_steps AS planned_steps,
       r.created_at AS created_at, r.version AS version
ORDER BY created_at, run_id
