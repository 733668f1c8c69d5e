// Removes a stored candidate circuit (and its links) before it is written again with new values.
MATCH (c:Circuit {key: $key})
DETACH DELETE c
