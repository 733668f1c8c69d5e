// Trajectory question `top`: at every checkpoint of run $run_id, the $k components with the
// largest value of the numeric property $metric (null values left out): the first $k by value,
// ties by name; rank = 1 + how many components of the checkpoint have a larger value (ties share
// it: every larger value is ahead in the list).
MATCH (:Run {run_id: $run_id})-[:HAS_CHECKPOINT]->(ck:Checkpoint)-[:HAS_COMPONENT]->(c:Component)
WITH ck.step AS step, c.name AS name, c[$metric] AS value
WHERE value IS NOT NULL
ORDER BY step, value DESC, name
WITH step, collect({name: name, value: value})[..$k] AS top
UNWIND range(0, size(top) - 1) AS i
RETURN step, size([o IN top WHERE o.value > top[i].value]) + 1 AS rank, top[i].name AS name,
       top[i].value AS value
ORDER BY step, i
