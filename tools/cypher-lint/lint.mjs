// Lints Cypher statements with Neo4j's own linter (@neo4j-cypher/language-support).
//
// stdin:  {"queries": [{"name": "...", "query": "..."}],
//          "schema": {"labels": [...], "relationshipTypes": [...], "propertyKeys": [...],
//                     "parameters": {...}?, "graphSchema": [{"from", "to", "relType"}]?}}
// stdout: [{"name": "...", "diagnostics": [{"severity": "error"|"warning",
//                                           "message": "...", "line": n, "column": n}]}]
//
// line and column are 1-based (the package reports 0-based LSP positions).
//
// The procedure and function signatures are the package's own `testData.mockSchema`
// (Neo4j built-ins plus GDS and APOC), which the linter's semantic analysis (Neo4j's
// Java front end compiled to JS) uses to check procedure names, arguments and YIELD
// columns. Labels, relationship types and property keys come from the caller, so that
// anything outside the project's schema is warned about. Statements are analysed as
// Cypher 5 (Neo4j 5) unless they start with an explicit `CYPHER 25`.
//
// `$parameters` are supplied by the Python driver at run time; the linter reports every
// parameter missing from `schema.parameters` as an error, so those errors are dropped
// unless the caller passes `schema.parameters`.
//
// Workaround for a bug of this version: a property key anywhere inside a node or
// relationship pattern's property map is attributed to the pattern's variable, so in
// `UNWIND $rows AS row MATCH (s:Component {key: row.source_key})` the field `source_key`
// of the map `row` is warned about as if it were a property of the node `s`. The linter
// means to check properties of nodes and relationships only; a warning for `x.name` where
// `x` is not a node or relationship variable is dropped here (see notOnMapField).
import { readFileSync } from 'node:fs';

import {
  isNotParamError,
  lintCypherQuery,
  testData,
} from '@neo4j-cypher/language-support';

const SEVERITY = { 1: 'error', 2: 'warning', 3: 'info', 4: 'hint' };

function buildDbSchema(schema = {}) {
  const mock = testData.mockSchema;
  const dbSchema = {
    procedures: mock.procedures,
    functions: mock.functions,
    labels: schema.labels ?? [],
    relationshipTypes: schema.relationshipTypes ?? [],
    propertyKeys: schema.propertyKeys ?? [],
    parameters: schema.parameters ?? {},
    defaultLanguage: 'CYPHER 5',
  };
  if (schema.graphSchema) dbSchema.graphSchema = schema.graphSchema;
  return dbSchema;
}

const PROPERTY_WARNING = / is not present in the database\. /;
const LABEL_WARNING = /^(Label|Relationship type) /;
// The variable at the start of a property-access chain ending where the key begins.
const NAME = '(?:[A-Za-z_][A-Za-z0-9_]*|`[^`]+`)';
const ACCESSED_ON = new RegExp(`(${NAME})\\s*\\.\\s*(?:${NAME}\\s*\\.\\s*)*$`);

function isNodeOrRel(symbol) {
  return (
    symbol.types.length > 0 &&
    symbol.types.every((t) => t === 'Node' || t === 'Relationship')
  );
}

// False for a missing-property warning on `x.name` where `x` is no node or relationship
// variable (a map such as an UNWIND row); true for every other diagnostic.
function notOnMapField(d, query, symbols) {
  if (
    d.severity !== 2 ||
    !PROPERTY_WARNING.test(d.message) ||
    LABEL_WARNING.test(d.message)
  )
    return true;
  const accessed = ACCESSED_ON.exec(query.slice(0, d.offsets.start));
  if (!accessed) return true; // a key of the pattern's own map: a real property
  const name = accessed[1].replace(/^`|`$/g, '');
  // The variable's definition nearest before the access (statements are in order).
  const defined = symbols
    .filter((s) => s.variable === name && s.definitionPosition <= d.offsets.start)
    .sort((a, b) => b.definitionPosition - a.definitionPosition)[0];
  return defined === undefined || isNodeOrRel(defined);
}

function lintOne(query, dbSchema, checkParameters) {
  // consoleCommandsEnabled: false -- these are driver statements, not cypher-shell
  // scripts, so `:param` and friends must be syntax errors. Several statements
  // separated by `;` are split and linted one by one by the package itself.
  const { diagnostics, symbolTables } = lintCypherQuery(query, dbSchema, {
    consoleCommandsEnabled: false,
  });
  const symbols = symbolTables.flat();
  return diagnostics
    .filter((d) => checkParameters || isNotParamError(d))
    .filter((d) => notOnMapField(d, query, symbols))
    .map((d) => ({
      severity: SEVERITY[d.severity] ?? String(d.severity),
      message: d.message,
      line: d.range.start.line + 1,
      column: d.range.start.character + 1,
    }));
}

function main() {
  const input = JSON.parse(readFileSync(0, 'utf8'));
  const dbSchema = buildDbSchema(input.schema);
  const checkParameters = Boolean(input.schema?.parameters);
  const results = (input.queries ?? []).map(({ name, query }) => ({
    name,
    diagnostics: lintOne(query, dbSchema, checkParameters),
  }));
  process.stdout.write(JSON.stringify(results));
}

main();
