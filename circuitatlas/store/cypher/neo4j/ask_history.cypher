// Trajectory question `history`: component $name of run $run_id at every checkpoint, with every
// numeric property (null where not stored), by step. The component of each checkpoint is found by
// its key "{checkpoint key}/{name}" (a primary-key lookup).
MATCH (:Run {run_id: $run_id})-[:HAS_CHECKPOINT]->(ck:Checkpoint)
WITH ck.step AS step, ck.key + '/' + $name AS key
MATCH (c:Component)
WHERE c.key = key
RETURN step, c.effect AS effect, c.prev_token_score AS prev_token_score,
       c.induction_score AS induction_score, c.in_degree AS in_degree, c.out_degree AS out_degree,
       c.in_strength AS in_strength, c.out_strength AS out_strength,
       c.betweenness AS betweenness, c.closeness AS closeness, c.pagerank AS pagerank
ORDER BY step
