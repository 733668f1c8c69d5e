MERGE (s:CircuitAtlasSchema {name: $name})
ON CREATE SET s.version = $version
