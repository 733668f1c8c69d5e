MATCH (s:CircuitAtlasSchema {name: $name})
RETURN s.version AS version
