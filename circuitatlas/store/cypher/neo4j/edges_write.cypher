// One batch of INFLUENCES edges; endpoints by component key.
UNWIND $rows AS row
MATCH (s:Component {key: row.source_key})
MATCH (t:Component {key: row.target_key})
CREATE (s)-[:INFLUENCES {
  run_id: row.run_id, step: row.step, weight: row.weight, similarity: row.similarity,
  std: row.std, direct_weight: row.direct_weight, direct_similarity: row.direct_similarity,
  direct_std: row.direct_std
}]->(t)
