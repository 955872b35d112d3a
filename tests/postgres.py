"""A real, throw-away PostgreSQL server for the tests (a pytest plugin: ``tests.postgres``).

``postgres_server`` (session scope) runs ``initdb`` and ``postgres`` from ``PATH`` or
``/usr/lib/postgresql/*/bin`` in a temporary directory, listening on 127.0.0.1 on a free
port, as the ``postgres`` user (or ``nobody``) when the tests run as root, since
PostgreSQL refuses to run as root. It is stopped and deleted after the session.
``postgres_url`` is an empty database on it as an asyncpg SQLAlchemy URL. Without the
PostgreSQL binaries both skip, saying so; ``.ci/ensure-postgres`` installs them.

A test that needs a server of its own (to stop and restart it, say) can call
``start_server(find_bin_dir())`` and ``stop_server`` itself.
"""

from __future__ import annotations

import ctypes
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

START_TIMEOUT = 30.0
STOP_TIMEOUT = 20.0
SUPERUSER = "postgres"
PORT_ATTEMPTS = 3


def find_bin_dir() -> Path | None:
    """The directory holding ``initdb`` and ``postgres``, or None if they are not installed."""
    on_path = shutil.which("initdb")
    candidates = [Path(on_path).resolve().parent] if on_path else []
    candidates += sorted(
        (Path(p) for p in glob.glob("/usr/lib/postgresql/*/bin")),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    )
    for directory in candidates:
        if all((directory / tool).is_file() for tool in ("initdb", "postgres", "pg_isready")):
            return directory
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _server_account() -> tuple[int, int] | None:
    """The (uid, gid) to run the server as: None unless we are root, which it refuses."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        return entry.pw_uid, entry.pw_gid
    raise RuntimeError("running as root, and there is no 'postgres' or 'nobody' user to run as")


@dataclass
class PostgresServer:
    """A server on a cluster in ``root``: start, stop, create databases, get their URLs."""

    bin_dir: Path
    root: Path
    port: int
    account: tuple[int, int] | None
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def log(self) -> Path:
        """The server's log file (initdb's output too)."""
        return self.root / "server.log"

    def url(self, database: str) -> str:
        """The asyncpg SQLAlchemy URL of ``database`` on this server."""
        return f"postgresql+asyncpg://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        """Start ``postgres`` and wait until it accepts connections (RuntimeError if not)."""
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [
                    str(self.bin_dir / "postgres"),
                    "-D",
                    str(self.root / "data"),
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(self.port),
                    "-k",
                    str(self.root),
                    # A throw-away server: durability buys nothing and costs seconds.
                    "-c",
                    "fsync=off",
                    "-c",
                    "synchronous_commit=off",
                    "-c",
                    "full_page_writes=off",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=_stop_with_parent(),
                **_as_account(self.account),
            )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline and self.process.poll() is None:
            if self._accepts_connections():
                return
            time.sleep(0.1)
        self.stop()
        tail = self.log.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"PostgreSQL did not start on port {self.port}; its log:\n{tail}")

    def stop(self) -> None:
        """Stop the server ("fast" shutdown: clients are disconnected); no-op if stopped."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def psql(self, sql: str, database: str = "postgres") -> None:
        """Run one SQL command (for instance ``CREATE DATABASE``) as the superuser."""
        subprocess.run(
            [
                str(self.bin_dir / "psql"),
                "-X",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                *self._connection_options(),
                "-d",
                database,
                "-c",
                sql,
            ],
            check=True,
            capture_output=True,
        )

    def create_database(self, name: str | None = None, template: str | None = None) -> str:
        """Create a database (a copy of ``template`` if given) and return its name."""
        name = name or f"test_{uuid.uuid4().hex[:12]}"
        copy = f' TEMPLATE "{template}"' if template else ""
        self.psql(f'CREATE DATABASE "{name}"{copy}')
        return name

    def _connection_options(self) -> list[str]:
        return ["-h", "127.0.0.1", "-p", str(self.port), "-U", SUPERUSER]

    def _accepts_connections(self) -> bool:
        ready = subprocess.run(
            [str(self.bin_dir / "pg_isready"), "-q", *self._connection_options()], check=False
        )
        return ready.returncode == 0


def _as_account(account: tuple[int, int] | None) -> dict[str, Any]:
    """``subprocess`` arguments that run a command as ``account`` (uid, gid), if given."""
    if account is None:
        return {}
    return {"user": account[0], "group": account[1], "extra_groups": []}


def _stop_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` asking Linux to stop the server when the test run dies.

    Without it a test run killed before its teardown (a timeout, SIGKILL) would leave
    a server running. The signal is SIGINT, PostgreSQL's fast shutdown.
    """
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    pr_set_pdeathsig = 1
    return lambda: prctl(pr_set_pdeathsig, signal.SIGINT)


def start_server(bin_dir: Path) -> PostgresServer:
    """Create a cluster in a new temporary directory and start a server on a free port."""
    account = _server_account()
    root = Path(tempfile.mkdtemp(prefix="animebot-pg-"))
    if account:
        os.chown(root, *account)
    server = PostgresServer(bin_dir, root, port=0, account=account)
    try:
        with server.log.open("ab") as out:
            subprocess.run(
                [
                    str(bin_dir / "initdb"),
                    "-D",
                    str(root / "data"),
                    "-U",
                    SUPERUSER,
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--no-locale",
                    "--no-sync",
                ],
                check=True,
                stdout=out,
                stderr=subprocess.STDOUT,
                **_as_account(account),
            )
        _start_on_a_free_port(server)
        return server
    except BaseException:
        stop_server(server)
        raise


def _start_on_a_free_port(server: PostgresServer) -> None:
    for attempt in range(1, PORT_ATTEMPTS + 1):
        server.port = _free_port()
        try:
            server.start()
            return
        except RuntimeError:
            # Most likely another process took the port meanwhile: try another one.
            if attempt == PORT_ATTEMPTS:
                raise


def stop_server(server: PostgresServer) -> None:
    """Stop the server and delete its cluster."""
    server.stop()
    shutil.rmtree(server.root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A throw-away PostgreSQL server for the whole test session (skips if not installed)."""
    bin_dir = find_bin_dir()
    if bin_dir is None:
        pytest.skip(
            "PostgreSQL server binaries (initdb, postgres) are not installed; "
            "run .ci/ensure-postgres (or apt-get install postgresql) to test on PostgreSQL"
        )
    server = start_server(bin_dir)
    try:
        yield server
    finally:
        stop_server(server)


@pytest.fixture(scope="session")
def postgres_url(postgres_server: PostgresServer) -> str:
    """The asyncpg SQLAlchemy URL of an empty database on the throw-away server."""
    return postgres_server.url(postgres_server.create_database("animebot_test"))
