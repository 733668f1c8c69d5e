"""Bad input of ``tools/neo4j/local.py``: a taken port, a home of another version, the status of
a stopped home; and what a started server leaves (its ``env`` readable by its user only, its
password never printed)."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from neo4j_servers import PRIVATE_MEMORY, PrivateServer, free_port_pair, without_neo4j_env

pytestmark = pytest.mark.private_server


def _local(*args: str) -> subprocess.CompletedProcess[str]:
    from neo4j_servers import LOCAL

    return subprocess.run(
        [sys.executable, str(LOCAL), *args],
        env={**without_neo4j_env(), **PRIVATE_MEMORY},
        capture_output=True,
        text=True,
        timeout=120,
    )


def _one_line(done: subprocess.CompletedProcess[str]) -> str:
    """The single stderr line of a refused command (exit 1, no traceback, nothing on stdout)."""
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("neo4j: "), done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""
    return lines[0]


@pytest.mark.parametrize("offset", [0, 1], ids=["bolt", "http"])
def test_start_on_a_taken_port_is_refused(offset: int, tmp_path: Path) -> None:
    port = free_port_pair()  # Bolt; HTTP listens on the next port
    home = tmp_path / "home"
    with socket.socket() as other:
        other.bind(("127.0.0.1", port + offset))
        other.listen()
        line = _one_line(_local("start", "--home", str(home), "--port", str(port), "--no-gds"))
    assert f"port {port + offset} " in line and "in use" in line
    assert not home.exists()  # nothing laid out, nothing started


def test_a_home_of_another_version_is_refused(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "VERSION").write_text("neo4j 4.4.30 gds 2.3.0\n")
    line = _one_line(_local("start", "--home", str(home), "--port", str(free_port_pair())))
    assert "neo4j 4.4.30 gds 2.3.0" in line and "remove the directory to reset it" in line
    assert sorted(p.name for p in home.iterdir()) == ["VERSION"]


def test_status_of_a_stopped_home(tmp_path: Path) -> None:
    never = _local("status", "--home", str(tmp_path / "never"))
    assert (never.returncode, never.stdout.strip(), never.stderr) == (3, "not running", "")

    # a pid file left by a server that died: a process that ended, and one not yet reaped
    home = tmp_path / "home"
    (home / "run").mkdir(parents=True)
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        while Path(f"/proc/{zombie.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
            time.sleep(0.01)
        for pid in (ended.pid, zombie.pid):
            (home / "run" / "neo4j.pid").write_text(f"{pid}\n")
            done = _local("status", "--home", str(home))
            assert (done.returncode, done.stdout.strip(), done.stderr) == (3, "not running", "")
    finally:
        zombie.wait()


def test_a_started_server_keeps_its_password_to_itself(no_gds_server: PrivateServer) -> None:
    server = no_gds_server
    password = server.settings()["NEO4J_PASSWORD"]
    assert len(password) >= 24
    assert stat.S_IMODE(os.stat(server.home / "env").st_mode) == 0o600
    assert stat.S_IMODE(os.stat(server.home).st_mode) == 0o700
    assert server.started is not None
    first = server.started.stdout + server.started.stderr
    assert server.url in first and password not in first

    again = server.local("start")  # idempotent: the running server is reused
    assert again.returncode == 0 and "reusing the server" in again.stdout, again.stderr
    status = server.local("status")
    assert (status.returncode, status.stdout.strip()) == (0, f"running at {server.url}")
    for done in (again, status):
        assert password not in done.stdout + done.stderr


def test_maven_central_out_of_reach_is_one_line(tmp_path: Path, monkeypatch) -> None:
    """``assemble`` with Maven Central unreachable (its URL replaced by a closed local port, an
    empty local repository) fails with one line naming the versions and the pom."""
    import importlib.util

    from neo4j_servers import LOCAL

    spec = importlib.util.spec_from_file_location("local_server", LOCAL)
    local = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(local)
    unreachable = "".join(
        f"<{kind}ies><{kind}y><id>central</id><url>https://127.0.0.1:1/</url></{kind}y></{kind}ies>"
        for kind in ("repositor", "pluginRepositor")
    )
    pom = (LOCAL.parent / "pom.xml").read_text().replace("<build>", unreachable + "<build>")
    tools = tmp_path / "tools"
    tools.mkdir()
    (tools / "pom.xml").write_text(pom)
    monkeypatch.setattr(local, "TOOLS", tools)
    monkeypatch.setattr(local, "ASSEMBLY", tools / "target")
    monkeypatch.setenv("MAVEN_OPTS", f"-Dmaven.repo.local={tmp_path / 'empty-repository'}")
    with pytest.raises(local.LocalError) as info:
        local.assemble()
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("cannot reach Maven Central"), message
    assert local.NEO4J_VERSION in message and "tools/neo4j/pom.xml" in message
    assert not (tools / "target" / ".assembled").exists()
