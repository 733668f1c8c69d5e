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
