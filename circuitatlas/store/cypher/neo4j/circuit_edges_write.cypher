// Links an edge-level circuit to its edges: one CIRCUIT_EDGE per edge, between the components
// its INFLUENCES edge joins ($edges: maps of source_key, target_key, score, rank).
UNWIND $edges AS edge
MATCH (s:Component {key: edge.source_key})
MATCH (t:Component {key: edge.target_key})
CREATE (s)-[:CIRCUIT_EDGE {
  circuit: $key, run_id: $run_id, step: $step, score: edge.score, rank: edge.rank
}]->(t)
