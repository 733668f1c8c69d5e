// Every stored INFLUENCES edge of one checkpoint with its task-metric score $measure ('patch':
// patch_effect, 'eap_ig': eap_ig; null where not computed, a property Neo4j does not store),
// unfiltered: pathfinding turns the scores into each edge's share of its target's total
// (circuitatlas.graph.paths.score_shares). Nodes as component_names' ids.
MATCH (:Checkpoint {key: $checkpoint_key})-[:HAS_COMPONENT]->(s:Component)
MATCH (s)-[e:INFLUENCES]->(t:Component)
RETURN elementId(s) AS source, elementId(t) AS target,
       CASE $measure WHEN 'patch' THEN e.patch_effect ELSE e.eap_ig END AS score
