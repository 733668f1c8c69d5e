// An analysis's component properties ($rows: an Arrow table with key and every property).
LOAD FROM $rows
MATCH (c:Component {key: key})
SET c.in_degree = in_degree, c.out_degree = out_degree,
    c.in_strength = in_strength, c.out_strength = out_strength,
    c.betweenness = betweenness, c.closeness = closeness, c.pagerank = pagerank, c.role = role
