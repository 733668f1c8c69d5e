"""Everything in an embedded store as comparable values, for tests that compare whole stores."""

from __future__ import annotations

import json


def _plain(props):
    return {k: v for k, v in props.items() if not k.startswith("_")}


def dump(store):
    """Every node with all its properties and every relationship with its properties and the
    primary keys of its ends, per table, as sorted JSON lines (a multiset: duplicates show)."""
    tables = store.cypher("CALL show_tables() RETURN name, type")
    kinds = dict(zip(tables["name"], tables["type"], strict=True))
    pk = {}
    for name, kind in kinds.items():
        if kind == "NODE":
            info = store.cypher(f"CALL table_info('{name}') RETURN *")
            pk[name] = info.loc[info["primary key"].astype(bool), "name"].iloc[0]
    out = {}
    for name, kind in sorted(kinds.items()):
        if kind == "NODE":
            found = store.cypher(f"MATCH (n:{name}) RETURN n")
            rows = [_plain(n) for n in found["n"]] if len(found) else []
        else:
            found = store.cypher(f"MATCH (a)-[r:{name}]->(b) RETURN a, r, b")
            rows = [
                {
                    "_from": [a["_LABEL"], a[pk[a["_LABEL"]]]],
                    "_to": [b["_LABEL"], b[pk[b["_LABEL"]]]],
                    **_plain(r),
                }
                for a, r, b in zip(found["a"], found["r"], found["b"], strict=True)
            ] if len(found) else []  # fmt: skip
        out[name] = sorted(json.dumps(row, sort_keys=True, default=str) for row in rows)
    return out


def without_created_at(d):
    runs = [json.loads(line) for line in d["Run"]]
    for run in runs:
        run.pop("created_at")
    return {**d, "Run": sorted(json.dumps(r, sort_keys=True) for r in runs)}


def dump_neo4j(store, run_ids):
    """Every node of ``run_ids`` in a Neo4j store (labels and all properties) and every
    relationship out of them (type, properties, the keys of its ends), as sorted JSON lines per
    label or type. Volatile stamps (``created_at``) are kept: callers drop what must differ."""

    def ident(labels, props):
        return [sorted(labels), props.get("key", props.get("run_id"))]

    nodes = store.cypher(
        "MATCH (n) WHERE n.run_id IN $run_ids RETURN labels(n) AS labels, properties(n) AS p",
        run_ids=list(run_ids),
    )
    rels = store.cypher(
        "MATCH (a)-[r]->(b) WHERE a.run_id IN $run_ids "
        "RETURN type(r) AS type, properties(r) AS p, labels(a) AS la, properties(a) AS pa, "
        "labels(b) AS lb, properties(b) AS pb",
        run_ids=list(run_ids),
    )
    out: dict[str, list[str]] = {}
    for labels, props in zip(nodes["labels"], nodes["p"], strict=True):
        out.setdefault(":".join(sorted(labels)), []).append(
            json.dumps(props, sort_keys=True, default=str)
        )
    for row in rels.itertuples(index=False):
        record = {"_from": ident(row.la, row.pa), "_to": ident(row.lb, row.pb), **row.p}
        out.setdefault(row.type, []).append(json.dumps(record, sort_keys=True, default=str))
    return {name: sorted(rows) for name, rows in sorted(out.items())}
