// $measure picks the similarity the threshold $tau applies to; $unfiltered skips it.
MATCH (:Checkpoint {key: $checkpoint_key})-[:HAS_COMPONENT]->(s:Component)
MATCH (s)-[e:INFLUENCES]->(t:Component)
WHERE $unfiltered
   OR (CASE $measure WHEN 'direct' THEN e.direct_similarity ELSE e.similarity END) < $tau
RETURN e.step AS step, s.name AS source, t.name AS target,
       e.similarity AS similarity, e.weight AS weight, e.std AS std,
       e.direct_similarity AS direct_similarity, e.direct_weight AS direct_weight,
       e.direct_std AS direct_std, e.patch_effect AS patch_effect, e.eap_ig AS eap_ig
