// COPY matches columns by position: endpoints first, then the properties; the column list names
// them in the subquery's order (a store written before the task-metric scores has them last).
COPY INFLUENCES(
  run_id, step, weight, similarity, std, direct_weight, direct_similarity, direct_std,
  patch_effect, eap_ig
) FROM (
  LOAD FROM $rows
  RETURN source_key, target_key, run_id, step, weight, similarity, std,
         direct_weight, direct_similarity, direct_std, patch_effect, eap_ig
)
