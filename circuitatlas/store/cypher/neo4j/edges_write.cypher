// One chunk of one checkpoint's INFLUENCES edges, column by column (a list per property is far
// cheaper to send over Bolt than a map per edge). $keys: the checkpoint's component keys;
// $source, $target: each edge's endpoints as positions in $keys; $weight … $eap_ig: each
// edge's properties (null: not set). The endpoints are looked up once per chunk through the key
// constraint's index, in $keys order; a key without its node makes the chunk write nothing, and
// the caller compares the returned count with the chunk's length.
UNWIND range(0, size($keys) - 1) AS position
MATCH (c:Component {key: $keys[position]})
WITH position, c
ORDER BY position
WITH collect(c) AS nodes
WHERE size(nodes) = size($keys)
UNWIND range(0, size($source) - 1) AS i
WITH nodes[$source[i]] AS s, nodes[$target[i]] AS t, i
CREATE (s)-[:INFLUENCES {
  run_id: $run_id, step: $step, weight: $weight[i], similarity: $similarity[i],
  std: $std[i], direct_weight: $direct_weight[i], direct_similarity: $direct_similarity[i],
  direct_std: $direct_std[i], patch_effect: $patch_effect[i], eap_ig: $eap_ig[i]
}]->(t)
RETURN count(*) AS created
