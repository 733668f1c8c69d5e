"""A local Neo4j server with Graph Data Science for the tests and for `make neo4j`, no Docker.

    python tools/neo4j/local.py start     # idempotent: a running server is reused
    python tools/neo4j/local.py stop
    python tools/neo4j/local.py status
    python tools/neo4j/local.py start --home /tmp/x --port 21000 --no-gds   # a second server

The server is Neo4j's own, assembled from Maven Central by `tools/neo4j/pom.xml` (Neo4j
Community and Browser in `target/lib/`, OpenGDS in `target/plugins/`) and run by Neo4j's own
bootloader (`org.neo4j.server.startup.Neo4jCommand`, what `bin/neo4j` runs), so `start` leaves
a background server with its pid in `HOME/run/neo4j.pid` and `stop` stops it gracefully.

HOME (default `.neo4j/` of this checkout) holds its configuration, data, logs and `env`: the
connection settings (`NEO4J_URI`, `NEO4J_USERNAME`, `NEO4J_PASSWORD`, `NEO4J_DATABASE`,
`NEO4J_BROWSER_URL`) for `source`, readable only by the user. The password is generated at the
first start and set through Bolt from the expired initial one, so it is never printed nor passed
on a command line. It listens on 127.0.0.1 only, on a Bolt port derived from the checkout's path
(HTTP on the next port), so that two checkouts on one machine do not collide;
`CIRCUITATLAS_NEO4J_PORT` or `--port` chooses another.

Errors are one line on stderr and exit status 1. Needs the `neo4j` Python driver (the project's
virtual environment has it), Java 17 or 21 and Maven.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

TOOLS = Path(__file__).resolve().parent
ROOT = TOOLS.parent.parent
ASSEMBLY = TOOLS / "target"
NEO4J_VERSION = re.search(r"<neo4j.version>(.+)</neo4j.version>", (TOOLS / "pom.xml").read_text())[
    1
]
GDS_VERSION = re.search(r"<gds.version>(.+)</gds.version>", (TOOLS / "pom.xml").read_text())[1]
VERSION_LINE = f"neo4j {NEO4J_VERSION} gds {GDS_VERSION}"
BOOTLOADER = "org.neo4j.server.startup.Neo4jCommand"
USER, DATABASE, INITIAL_PASSWORD = "neo4j", "neo4j", "neo4j"
READY_TIMEOUT_S = 180
# The driver logs every retry while the server starts; failures are reported as one line.
logging.getLogger("neo4j").addHandler(logging.NullHandler())
CONF = """\
# Written by tools/neo4j/local.py at every start (edits here do not last); the heap and page
# cache come from CIRCUITATLAS_NEO4J_HEAP and CIRCUITATLAS_NEO4J_PAGECACHE.
server.directories.lib={lib}
server.directories.plugins={plugins}
server.default_listen_address=127.0.0.1
server.default_advertised_address=127.0.0.1
server.bolt.listen_address=127.0.0.1:{bolt}
server.bolt.advertised_address=127.0.0.1:{bolt}
server.http.listen_address=127.0.0.1:{http}
server.http.advertised_address=127.0.0.1:{http}
server.https.enabled=false
dbms.security.auth_enabled=true
dbms.security.procedures.unrestricted=gds.*
server.memory.heap.initial_size={heap}
server.memory.heap.max_size={heap}
server.memory.pagecache.size={pagecache}
db.tx_log.rotation.retention_policy=2 files
dbms.usage_report.enabled=false
# Browser content from this host only (browser.allow_outgoing_connections is Enterprise's:
# Community refuses to start on it)
browser.remote_content_hostname_whitelist=localhost,127.0.0.1
"""


class LocalError(Exception):
    """A one-line failure of this tool."""


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run ``start``, ``stop`` or ``status``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["start", "stop", "status"])
    parser.add_argument("--home", type=Path, default=ROOT / ".neo4j")
    parser.add_argument("--port", type=int, default=None, help="Bolt port (HTTP: the next one)")
    parser.add_argument("--no-gds", action="store_true", help="start without the GDS plugin")
    args = parser.parse_args(argv)
    server = Server(args.home.resolve(), args.port, gds=not args.no_gds)
    try:
        if args.command == "start":
            server.start()
        elif args.command == "stop":
            server.stop()
        else:
            print(f"running at {server.bolt_url()}" if server.running() else "not running")
            return 0 if server.running() else 3
    except LocalError as e:
        print(f"neo4j: {e}", file=sys.stderr)
        return 1
    return 0


def default_port(home: Path) -> int:
    """A Bolt port in 20000–29998 derived from ``home``'s path (HTTP takes the next one)."""
    env = os.environ.get("CIRCUITATLAS_NEO4J_PORT")
    if env:
        return int(env)
    digest = hashlib.sha256(str(home).encode()).digest()
    return 20000 + 2 * (int.from_bytes(digest[:4], "big") % 5000)


class Server:
    """The Neo4j server whose home directory is ``home``."""

    def __init__(self, home: Path, port: int | None, gds: bool = True) -> None:
        self.home = home
        self.gds = gds
        self.conf = home / "conf" / "neo4j.conf"
        self.env_file = home / "env"
        self.pid_file = home / "run" / "neo4j.pid"
        self.port = port if port is not None else self._configured_port() or default_port(home)

    # --- commands ----------------------------------------------------------------------------
    def start(self) -> None:
        """Start the server unless it runs, wait until Bolt answers, write ``env``."""
        self._check_version()
        if self.running():
            self._wait_bolt(self._password())
            print(f"neo4j: reusing the server at {self.bolt_url()} ({self.env_file})")
            return
        for port in (self.port, self.port + 1):
            if port_taken(port):
                raise LocalError(
                    f"port {port} on 127.0.0.1 is in use by another program; stop it or choose "
                    f"another port (CIRCUITATLAS_NEO4J_PORT=N make neo4j)"
                )
        java = find_java()
        assemble()
        # Neo4j 5 keeps users in the system database: present once a server has started here
        first = not (self.home / "data" / "databases" / "system").exists()
        self._lay_out()
        self._bootloader(java, "start")
        password = self._password()
        if first:
            self._wait_bolt(INITIAL_PASSWORD, set_password=password)
        self._wait_bolt(password)
        print(
            f"neo4j: Neo4j {NEO4J_VERSION} {'with' if self.gds else 'without'} GDS at "
            f"{self.bolt_url()}; settings in "
            f"{self.env_file} (source it)"
        )

    def stop(self) -> None:
        """Stop the server gracefully if it runs."""
        if not self.running():
            print("neo4j: not running")
            return
        self._bootloader(find_java(), "stop")
        print("neo4j: stopped")

    def running(self) -> bool:
        """Whether the pid file names a live process (a killed one not yet reaped is not)."""
        try:
            pid = int(self.pid_file.read_text().strip())
            os.kill(pid, 0)
        except (OSError, ValueError):
            return False
        try:  # Linux: state "Z" (zombie) is a dead process its parent has not reaped
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return True
        return state != "Z"

    def bolt_url(self) -> str:
        """The server's Bolt URL."""
        return f"bolt://127.0.0.1:{self.port}"

    # --- steps -------------------------------------------------------------------------------
    def _configured_port(self) -> int | None:
        if not self.conf.exists():
            return None
        found = re.search(
            r"^server\.bolt\.listen_address=127\.0\.0\.1:(\d+)$", self.conf.read_text(), re.M
        )
        return int(found[1]) if found else None

    def _check_version(self) -> None:
        stamp = self.home / "VERSION"
        if not self.home.exists() or not any(self.home.iterdir()):
            return
        found = stamp.read_text().strip() if stamp.exists() else "an unknown version"
        if found != VERSION_LINE:
            raise LocalError(
                f"{self.home} was made by {found}, this checkout runs {VERSION_LINE}; stop that "
                f"server and remove the directory to reset it (make neo4j-reset deletes its data)"
            )

    def _lay_out(self) -> None:
        """Home directory, configuration, version stamp and (at the first start) password."""
        for sub in ("conf", "data", "logs", "run", "import"):
            (self.home / sub).mkdir(parents=True, exist_ok=True)
        self.home.chmod(0o700)
        plugins = ASSEMBLY / "plugins"
        if not self.gds:
            plugins = self.home / "no-plugins"
            plugins.mkdir(exist_ok=True)
        self.conf.write_text(
            CONF.format(
                lib=ASSEMBLY / "lib",
                plugins=plugins,
                bolt=self.port,
                http=self.port + 1,
                heap=os.environ.get("CIRCUITATLAS_NEO4J_HEAP", "2g"),
                pagecache=os.environ.get("CIRCUITATLAS_NEO4J_PAGECACHE", "1g"),
            )
        )
        (self.home / "VERSION").write_text(VERSION_LINE + "\n")
        if not self.env_file.exists():
            self._write_env(secrets.token_urlsafe(24))

    def _write_env(self, password: str) -> None:
        text = (
            f"export NEO4J_URI={self.bolt_url()}\n"
            f"export NEO4J_USERNAME={USER}\n"
            f"export NEO4J_PASSWORD={password}\n"
            f"export NEO4J_DATABASE={DATABASE}\n"
            f"export NEO4J_BROWSER_URL=http://127.0.0.1:{self.port + 1}/browser/\n"
        )
        fd = os.open(self.env_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        self.env_file.chmod(0o600)

    def _password(self) -> str:
        found = re.search(r"^export NEO4J_PASSWORD=(.+)$", self.env_file.read_text(), re.M)
        if not found:
            raise LocalError(f"{self.env_file} has no NEO4J_PASSWORD; reset {self.home}")
        return found[1]

    def _bootloader(self, java: str, command: str) -> None:
        env = {**os.environ, "NEO4J_HOME": str(self.home), "NEO4J_CONF": str(self.conf.parent)}
        done = subprocess.run(
            [java, "-cp", f"{ASSEMBLY / 'lib'}/*", BOOTLOADER, command],
            env=env,
            cwd=self.home,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise LocalError(f"`neo4j {command}` failed: {self._log_error() or done.stdout[-300:]}")

    def _log_error(self) -> str:
        log = self.home / "logs" / "neo4j.log"
        lines = log.read_text(errors="replace").splitlines() if log.exists() else []
        errors = [ln for ln in lines if " ERROR " in ln or ln.startswith("Caused by")]
        return errors[-1].strip() if errors else ""

    def _wait_bolt(self, password: str, set_password: str | None = None) -> None:
        """Wait for Bolt; with ``set_password`` replace the expired initial password by it."""
        import neo4j

        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            try:
                with neo4j.GraphDatabase.driver(self.bolt_url(), auth=(USER, password)) as d:
                    if set_password is None:
                        d.execute_query(
                            "RETURN gds.version()" if self.gds else "RETURN 1", database_=DATABASE
                        )
                    else:
                        d.execute_query(
                            "ALTER CURRENT USER SET PASSWORD FROM $old TO $new",
                            {"old": password, "new": set_password},
                            database_="system",
                        )
                return
            except (neo4j.exceptions.ServiceUnavailable, neo4j.exceptions.SessionExpired, OSError):
                pass
            except neo4j.exceptions.AuthError:
                raise LocalError(
                    f"the server at {self.bolt_url()} refused the password in {self.env_file}; "
                    f"reset {self.home} (make neo4j-reset)"
                ) from None
            except neo4j.exceptions.ClientError as e:
                if "gds.version" in str(e.message):
                    raise LocalError(
                        f"the server at {self.bolt_url()} has no GDS procedures "
                        f"({self._log_error() or e.message})"
                    ) from None
                raise LocalError(f"the server at {self.bolt_url()}: {e.message}") from None
            if not self.running():
                raise LocalError(f"the server stopped while starting: {self._log_error()}")
            if time.monotonic() > deadline:
                raise LocalError(f"no answer on {self.bolt_url()} within {READY_TIMEOUT_S} s")
            time.sleep(0.5)


def port_taken(port: int) -> bool:
    """Whether something accepts connections on 127.0.0.1:``port``."""
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def find_java() -> str:
    """A Java 17 or 21 executable (``JAVA_HOME``, then ``PATH``, then ``/usr/lib/jvm``)."""
    candidates = []
    if os.environ.get("JAVA_HOME"):
        candidates.append(Path(os.environ["JAVA_HOME"]) / "bin" / "java")
    if shutil.which("java"):
        candidates.append(Path(shutil.which("java")))
    candidates += sorted(Path("/usr/lib/jvm").glob("*/bin/java"))
    for java in candidates:
        done = subprocess.run([java, "-version"], capture_output=True, text=True, check=False)
        found = re.search(r'version "(\d+)', done.stderr)
        if found and found[1] in ("17", "21"):
            return str(java)
    raise LocalError(f"Neo4j {NEO4J_VERSION} needs Java 17 or 21; install openjdk-17-jre-headless")


def assemble() -> None:
    """Lay out Neo4j and GDS under ``tools/neo4j/target/`` with Maven, unless done already."""
    stamp = ASSEMBLY / ".assembled"
    if stamp.exists() and stamp.read_text().strip() == VERSION_LINE:
        return
    if shutil.which("mvn") is None:
        raise LocalError("Maven (mvn) is needed to fetch Neo4j; install the maven package")
    shutil.rmtree(ASSEMBLY, ignore_errors=True)
    done = subprocess.run(
        ["mvn", "-q", "-B", "-Dstyle.color=never", "-f", str(TOOLS / "pom.xml"), "package"],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        output = done.stdout + done.stderr
        if re.search(
            r"Could not transfer|UnknownHost|Connection refused|timed out|"
            r"Network is unreachable",
            output,
        ):
            raise LocalError(
                f"cannot reach Maven Central to fetch Neo4j {NEO4J_VERSION} and GDS "
                f"{GDS_VERSION} (tools/neo4j/pom.xml); check the network or a Maven mirror"
            )
        raise LocalError(f"mvn package of tools/neo4j/pom.xml failed: {maven_error(output)}")
    stamp.write_text(VERSION_LINE + "\n")


def maven_error(output: str) -> str:
    """The first ``[ERROR]`` line of Maven's ``output`` that says what went wrong."""
    generic = (
        "Some problems were",
        "The build could not",
        "The project ",
        "To see the",
        "Re-run Maven",
        "For more information",
        "-> [Help",
    )
    for line in output.splitlines():
        text = re.sub(r"^(\[ERROR\]\s*)+", "", line.strip()) if "[ERROR]" in line else ""
        if text and not text.startswith(generic):
            return text[:300]
    return "see `mvn -f tools/neo4j/pom.xml package`"


if __name__ == "__main__":
    sys.exit(main())
