// Remove the NEXT links out of one checkpoint's components (before a checkpoint is put between).
MATCH (:Checkpoint {key: $from_key})-[:HAS_COMPONENT]->(:Component)-[n:NEXT]->(:Component)
DELETE n
