// Constraints and indexes of a circuitatlas store (Neo4j); idempotent, run on every writable open.
CREATE CONSTRAINT circuitatlas_schema_name IF NOT EXISTS
FOR (s:CircuitAtlasSchema) REQUIRE s.name IS UNIQUE;
CREATE CONSTRAINT run_id_unique IF NOT EXISTS FOR (r:Run) REQUIRE r.run_id IS UNIQUE;
CREATE CONSTRAINT checkpoint_key_unique IF NOT EXISTS FOR (c:Checkpoint) REQUIRE c.key IS UNIQUE;
CREATE CONSTRAINT component_key_unique IF NOT EXISTS FOR (c:Component) REQUIRE c.key IS UNIQUE;
CREATE CONSTRAINT circuit_key_unique IF NOT EXISTS FOR (c:Circuit) REQUIRE c.key IS UNIQUE;
CREATE INDEX component_run_step IF NOT EXISTS FOR (c:Component) ON (c.run_id, c.step);
CREATE INDEX influences_run_step IF NOT EXISTS FOR ()-[e:INFLUENCES]-() ON (e.run_id, e.step);
