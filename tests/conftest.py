"""Puts tests/ on sys.path, so that test modules can import its helpers (`cypher_lint`), and
fails a CI run (``CI=true``) in which any live Neo4j test (tests/neo4j/) was skipped: there
``make test`` starts the server, so a skip means the live tests silently did not run."""

import os
import sys
from pathlib import Path

import pytest

TESTS_DIR = str(Path(__file__).resolve().parent)
if TESTS_DIR not in sys.path:
    sys.path.insert(0, TESTS_DIR)

LIVE_PREFIX = "tests/neo4j/"
_skipped_live: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and report.nodeid.startswith(LIVE_PREFIX):
        _skipped_live.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if os.environ.get("CI") == "true" and _skipped_live:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(
                f"CI: {len(_skipped_live)} live Neo4j test(s) were skipped "
                f"(first: {_skipped_live[0]}); `make test` must start the server (make neo4j)",
                red=True,
            )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
