"""Puts tests/ on sys.path, so that test modules can import its helpers (`cypher_lint`), and
fails a CI run (``CI=true``) in which any live Neo4j test (tests/neo4j/) or Ray test (marked
``ray``) was skipped: there ``make test`` starts the server and installs Ray, so a skip means
those tests silently did not run. Holds the session's local Ray cluster (``ray_cluster``)."""

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

TESTS_DIR = str(Path(__file__).resolve().parent)
if TESTS_DIR not in sys.path:
    sys.path.insert(0, TESTS_DIR)

LIVE_PREFIX = "tests/neo4j/"
_skipped_live: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    live = report.nodeid.startswith(LIVE_PREFIX) or "ray" in report.keywords
    if report.skipped and live:
        _skipped_live.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if os.environ.get("CI") == "true" and _skipped_live:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(
                f"CI: {len(_skipped_live)} live Neo4j or Ray test(s) were skipped "
                f"(first: {_skipped_live[0]}); `make test` must start the server (make neo4j) "
                f"and install the [ray] extra",
                red=True,
            )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[Any]:
    """A Ray cluster on 127.0.0.1 for the session: a head and one extra worker node, one CPU
    each (tests/ray_cluster.py); the Ray tests are skipped without the [ray] extra."""
    pytest.importorskip("ray", reason="the Ray tests need the [ray] extra")
    from ray_cluster import start_cluster

    cluster = start_cluster(extra_workers=1)
    try:
        yield cluster
    finally:
        cluster.stop()
