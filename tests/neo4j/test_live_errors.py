"""Bad settings against real servers, through the CLI: a wrong password, a server that is down,
an unknown database and a server without GDS each end with one line on stderr and a non-zero
exit, show no traceback and no password, and change nothing in the database."""

from __future__ import annotations

import secrets
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from neo4j_servers import CLI, PrivateServer, error_lines, free_port_pair
from store_dump import dump_neo4j

from circuitatlas.ingest.pipeline import write_sweep
from circuitatlas.ingest.synthetic import synthetic_sweep
from circuitatlas.store import open_store

pytestmark = pytest.mark.private_server
WRONG = f"wrong-{secrets.token_urlsafe(12)}"  # a wrong password, which must not be shown either
FAST_S = 30


@dataclass
class Stored:
    """The private server, a run stored in it, and a sweep directory of a run it lacks."""

    server: PrivateServer
    run_id: str
    fresh: Path


@pytest.fixture(scope="module")
def stored(no_gds_server: PrivateServer, tmp_path_factory: pytest.TempPathFactory) -> Stored:
    """A run ingested into the server without GDS, with a stored analysis (set by hand, as a
    server that had GDS once would have left it), and a second run's sweep, not ingested."""
    base = tmp_path_factory.mktemp("errors")
    tag = uuid.uuid4()
    present = synthetic_sweep(2, 2, [0, 10], seed=2, model=f"live-errors-{tag}")
    fresh = synthetic_sweep(2, 2, [0, 10], seed=3, model=f"live-errors-fresh-{tag}")
    done = _cli(
        no_gds_server,
        "ingest",
        "--from",
        str(write_sweep(present, base / "present")),
        "--store",
        no_gds_server.url,
    )
    assert done.returncode == 0, done.stderr
    with no_gds_server.driver() as driver:
        driver.execute_query(
            "MATCH (r:Run {run_id: $r})-[:HAS_CHECKPOINT]->(c:Checkpoint) "
            "SET r.analysis_tau = 0.7, r.analysis_measure = 'total', c.tau = 0.7",
            {"r": present.run_id},
        )
    return Stored(no_gds_server, present.run_id, write_sweep(fresh, base / "fresh"))


def _cli(server: PrivateServer, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The CLI with the server's settings in the environment (``env`` replaces some)."""
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, timeout=120, env=server.env(**env)
    )


def _snapshot(stored: Stored) -> dict[str, Any]:
    """What could change: node and relationship counts, the databases, the stored run whole."""
    with stored.server.driver() as driver:
        counts = driver.execute_query(
            "MATCH (n) OPTIONAL MATCH (n)-[r]->() RETURN count(DISTINCT n) AS n, count(r) AS r",
            database_="neo4j",
        ).records[0]
        databases = driver.execute_query("SHOW DATABASES YIELD name", database_="system").records
    with open_store(stored.server.url_with_credentials) as store:
        run = dump_neo4j(store, [stored.run_id])
    return {
        "nodes": counts["n"],
        "relationships": counts["r"],
        "databases": sorted(r["name"] for r in databases),
        "run": run,
    }


CASES = {
    # name: (arguments after the command with {url}/{down}/{run}/{fresh}, env, expected text)
    "wrong password": (
        ["ingest", "--from", "{fresh}", "--store", "{url}"],
        {"NEO4J_PASSWORD": WRONG},
        "refused the credentials of user 'neo4j'",
    ),
    "wrong password in the URL": (
        ["runs", "--store", "{url_wrong}"],
        {},
        "refused the credentials of user 'neo4j'",
    ),
    "server down": (
        ["ingest", "--from", "{fresh}", "--store", "{down}"],
        {},
        "cannot reach Neo4j at {down}",
    ),
    "unknown database": (
        ["ingest", "--from", "{fresh}", "--store", "{url}"],
        {"NEO4J_DATABASE": "nope"},
        "has no database 'nope'",
    ),
    "unknown database, reading": (
        ["query", "MATCH (n) RETURN count(n)", "--store", "{url}"],
        {"NEO4J_DATABASE": "nope"},
        "has no database 'nope'",
    ),
    "analyze without GDS": (
        ["analyze", "--run", "{run}", "--store", "{url}"],
        {},
        "has no Graph Data Science library",
    ),
    "paths without GDS": (
        ["paths", "--run", "{run}", "--store", "{url}", "--step", "10"],
        {},
        "has no Graph Data Science library",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_setting_is_one_line_and_writes_nothing(stored: Stored, case: str) -> None:
    server = stored.server
    password = server.settings()["NEO4J_PASSWORD"]
    names = {
        "url": server.url,
        "url_wrong": f"bolt://neo4j:{WRONG}@127.0.0.1:{server.port}",
        "down": f"bolt://127.0.0.1:{free_port_pair()}",
        "run": stored.run_id,
        "fresh": str(stored.fresh),
    }
    args, env, expected = CASES[case]
    before = _snapshot(stored)
    t0 = time.monotonic()
    done = _cli(server, *(a.format(**names) for a in args), **env)
    took = time.monotonic() - t0
    shown = done.stdout + done.stderr

    assert done.returncode != 0, shown
    lines = error_lines(done.stderr)
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ") and expected.format(**names) in lines[0]
    url = names["down"] if case == "server down" else server.url
    assert url in lines[0]  # names the server, without credentials
    assert "Traceback" not in shown
    assert password not in shown and WRONG not in shown
    assert took < FAST_S, f"{case}: {took:.1f} s"
    assert _snapshot(stored) == before
