// One checkpoint's centralities as the GDS write procedures stored them. GDS writes every score
// as a float, degrees too; they are stored back as integers here (as the embedded store keeps
// them), then returned.
MATCH (:Checkpoint {key: $checkpoint_key})-[:HAS_COMPONENT]->(c:Component)
SET c.in_degree = toInteger(c.in_degree), c.out_degree = toInteger(c.out_degree)
RETURN c.name AS name, c.in_degree AS in_degree, c.out_degree AS out_degree,
       c.in_strength AS in_strength, c.out_strength AS out_strength,
       c.betweenness AS betweenness, c.closeness AS closeness, c.pagerank AS pagerank
ORDER BY name
