// COPY matches columns by position: endpoints first, then the properties in the table's order.
COPY INFLUENCES FROM (
  LOAD FROM $rows
  RETURN source_key, target_key, run_id, step, weight, similarity, std,
         direct_weight, direct_similarity, direct_std
)
