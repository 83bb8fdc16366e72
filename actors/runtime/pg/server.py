"""A private PostgreSQL cluster under a data directory: initdb once, run, stop, crash.

`make run` keeps one cluster under the checkout's data directory (the Procfile process
``python -m actors.runtime.pg.foreground``, this class's process face); tests and
benches start their own on a free port through `PostgresServer`. The system cluster of
the Debian package is never touched: ours differ in data directory, port and socket.

    server = PostgresServer(Path("/tmp/pg"), port=5433)
    server.init()               # initdb once (no-op when PG_VERSION exists)
    server.start()              # returns once the server accepts connections
    dsn = server.create_database("orders")
    server.kill9()              # a crash: every server process SIGKILLed at once
    server.start()              # crash recovery replays the WAL
    server.stop()               # fast shutdown (SIGINT), SIGKILL after a deadline

NOTE: PostgreSQL refuses to run as root. Under root (CI, containers) initdb and postgres
run as an unprivileged user (`installation.RunAs`), which owns the data directory. The
runtime reads no environment variable and names no service: callers pass everything.
"""

from __future__ import annotations

import ipaddress
import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

from actors.runtime.pg.installation import (
    PostgresError,
    PostgresNotFound,
    RunAs,
    pg_bin_dir,
    psql_binary,
)

__all__ = [
    "PostgresError",
    "PostgresNotFound",
    "PostgresServer",
    "pg_bin_dir",
    "port_in_use",
]

SUPERUSER = "postgres"
START_TIMEOUT_S = 30.0  # crash recovery after kill -9 included
STOP_TIMEOUT_S = 10.0  # fast shutdown; SIGKILL after this
INITDB_TIMEOUT_S = 120.0  # initdb fsyncs the new cluster
PSQL_TIMEOUT_S = 30.0  # CREATE DATABASE copies template1 and fsyncs
POLL_INTERVAL_S = 0.05
CLIENTS_WAIT_S = 3.0
"""At a stop of the Procfile process, how long its clients get to disconnect first:
honcho SIGTERMs every process at once (and SIGKILLs after 5 s), so without this the
services' last queries would meet a server shutting down."""
LOG_TAIL_LINES = 20
SOCKET_PATH_MAX_BYTES = 107  # sun_path is 108 bytes with the trailing NUL
SOCKET_NAME_MAX_BYTES = len(".s.PGSQL.65535.lock")
DATABASE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")

# Appended to postgresql.conf by init(). Durability is a requirement: fsync and
# synchronous_commit stay on. Port, listen address and socket directory are passed on
# the command line at start, so a data directory can move or change port.
SETTINGS = """
# --- actors.runtime.pg.server: a private development cluster ---
fsync = on
synchronous_commit = on
full_page_writes = on
max_connections = 200
shared_buffers = 128MB
logging_collector = off
log_min_messages = warning
log_line_prefix = '%m [%p] '
"""


def port_in_use(host: str, port: int) -> bool:
    """True when something already listens on host:port (bind test, no connection)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


class PostgresServer:
    """One private cluster: a data directory, a port, a postmaster child process.

    Args:
        data_dir: the cluster's directory (created by `init()`).
        port: TCP port to listen on.
        host: the one address to listen on; pg_hba trusts loopback only.
        bin_dir: PostgreSQL binaries, see `pg_bin_dir`.
    """

    def __init__(
        self, data_dir: Path, port: int, host: str = "127.0.0.1", bin_dir: str | Path | None = None
    ):
        self.data_dir = Path(data_dir).absolute()
        self.port = port
        self.host = host
        self.bin_dir = pg_bin_dir(bin_dir)
        self.log_path = self.data_dir.parent / f"{self.data_dir.name}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self._run_as = RunAs()

    # -- paths and names --------------------------------------------------------------

    def dsn(self, dbname: str = "postgres") -> str:
        """The URI of a database of this server, as the superuser (trust auth)."""
        return f"postgresql://{SUPERUSER}@{self.host}:{self.port}/{dbname}"

    @property
    def initialised(self) -> bool:
        return (self.data_dir / "PG_VERSION").exists()

    def socket_dir(self) -> Path:
        """Where the unix socket goes: inside the data directory when the path fits."""
        inside = self.data_dir
        if len(os.fsencode(inside)) + 1 + SOCKET_NAME_MAX_BYTES <= SOCKET_PATH_MAX_BYTES:
            return inside
        # NOTE: a deep checkout overflows sun_path; fall back to a short per-port path.
        return Path(f"/tmp/pgsock-{os.getuid()}-{self.port}")

    # -- lifecycle --------------------------------------------------------------------

    def init(self) -> bool:
        """Run initdb unless the data directory already holds a cluster.

        Returns:
            True when a new cluster was created.

        Raises:
            PostgresError: initdb failed; the message carries its output.
        """
        if self.initialised:
            self._run_as.own_data_dir(self.data_dir)
            return False
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if any(self.data_dir.iterdir()):
            raise PostgresError(
                f"{self.data_dir} is not empty and holds no PG_VERSION: "
                "not a PostgreSQL data directory"
            )
        self._run_as.own_data_dir(self.data_dir)
        argv = [
            str(self.bin_dir / "initdb"),
            "-D",
            str(self.data_dir),
            "-U",
            SUPERUSER,
            "--auth-local=trust",
            "--auth-host=trust",
            "--encoding=UTF8",
            "--no-locale",
        ]
        try:
            done = subprocess.run(
                argv,
                check=False,
                capture_output=True,
                text=True,
                cwd="/",
                timeout=INITDB_TIMEOUT_S,
                **self._run_as.popen_kwargs(),
            )
        except subprocess.TimeoutExpired as exc:
            raise PostgresError(f"initdb timed out after {INITDB_TIMEOUT_S:.0f} s") from exc
        if done.returncode != 0:
            tail = _tail(done.stdout + done.stderr)
            raise PostgresError(f"initdb failed with exit code {done.returncode}:\n{tail}")
        with open(self.data_dir / "postgresql.conf", "a") as conf:
            conf.write(SETTINGS)
        return True

    def start(self, timeout_s: float = START_TIMEOUT_S) -> None:
        """Start the postmaster and return once it accepts connections.

        Raises:
            PostgresError: port in use, server exited, or not ready by the deadline;
                the message carries the tail of the server log.
        """
        if self.running():
            return
        if not self.initialised:
            raise PostgresError(f"{self.data_dir} holds no cluster; call init() first")
        if port_in_use(self.host, self.port):
            raise PostgresError(f"port {self.port} on {self.host} is already in use")
        self._run_as.own_data_dir(self.data_dir)
        sock_dir = self.socket_dir()
        if sock_dir != self.data_dir:
            sock_dir.mkdir(mode=0o700, exist_ok=True)
            self._run_as.chown(sock_dir)
        argv = [
            str(self.bin_dir / "postgres"),
            "-D",
            str(self.data_dir),
            "-p",
            str(self.port),
            "-c",
            f"listen_addresses={self.host}",
            "-c",
            f"unix_socket_directories={sock_dir}",
        ]
        with open(self.log_path, "ab") as log:
            # NOTE: its own session, so a terminal's Ctrl-C reaches our process only,
            # which turns it into a fast shutdown.
            self.process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.data_dir,
                start_new_session=True,
                **self._run_as.popen_kwargs(),
            )
        self._wait_ready(timeout_s)

    @property
    def _postmaster(self) -> subprocess.Popen[bytes]:
        """The started postmaster (only called after ``start``)."""
        if self.process is None:
            raise PostgresError("the server was never started")
        return self.process

    def _wait_ready(self, timeout_s: float) -> None:
        # The postmaster writes "ready" into postmaster.pid once it accepts connections
        # (what pg_ctl -w waits for); reading our own pid there rules out another server.
        process = self._postmaster
        deadline = time.monotonic() + timeout_s
        pid_file = self.data_dir / "postmaster.pid"
        while True:
            code = process.poll()
            if code is not None:
                raise self._failure(f"postgres exited with code {code} while starting")
            try:
                lines = pid_file.read_text().splitlines()
            except OSError:
                lines = []
            if (
                len(lines) >= 8
                and lines[0].strip() == str(process.pid)
                and lines[7].strip() == "ready"
            ):
                return
            if time.monotonic() > deadline:
                self._kill_all()
                raise self._failure(f"postgres not ready after {timeout_s:.0f} s")
            time.sleep(POLL_INTERVAL_S)

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> int | None:
        """Fast shutdown (SIGINT: roll back open transactions, checkpoint, exit).

        Returns:
            The postmaster's exit code (0 after a clean shutdown), None if not started.
            A server that had to be SIGKILLed after timeout_s returns a negative code.
        """
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self._kill_all()
        return self.process.returncode

    def client_backends(self) -> int:
        """Client connections open now: backends whose title names a client
        (``postgres: user db 127.0.0.1(5432) idle`` or ``[local]``)."""
        if not self.running():
            return 0
        count = 0
        for pid in _children(self._postmaster.pid):
            try:
                title = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue  # exited while we looked
            count += "(" in title or "[local]" in title
        return count

    def wait_for_clients_to_leave(self, timeout_s: float = CLIENTS_WAIT_S) -> int:
        """Wait until no client is connected, at most timeout_s; the clients left."""
        deadline = time.monotonic() + timeout_s
        while (left := self.client_backends()) and time.monotonic() < deadline:
            time.sleep(POLL_INTERVAL_S)
        return left

    def kill9(self) -> None:
        """SIGKILL the postmaster and every backend at once, as a crash would."""
        if self.running():
            self._kill_all()

    def _kill_all(self) -> None:
        # NOTE: every postgres child calls setsid(), so killpg() would reach the
        # postmaster alone; its children are found by parent pid instead.
        process = self._postmaster
        victims = [process.pid, *_children(process.pid)]
        for pid in victims:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        process.wait(timeout=STOP_TIMEOUT_S)

    def _failure(self, what: str) -> PostgresError:
        """An error whose first line names the server's last complaint, then the log tail."""
        tail = self.log_tail()
        complaints = [
            line
            for line in tail.splitlines()
            if any(level in line for level in ("FATAL:", "PANIC:", "ERROR:"))
        ]
        reason = complaints[-1].split(":  ", 1)[-1] if complaints else "see the log"
        return PostgresError(f"{what}: {reason} (log: {self.log_path})\n{tail}")

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        try:
            return _tail(self.log_path.read_text(errors="replace"), lines)
        except OSError:
            return "(no server log)"

    def trust_network(self, cidr: str) -> None:
        """Let clients of this private network in without a password (pg_hba.conf; read
        at start). For a test's own network namespaces; `host` must face them."""
        ipaddress.ip_network(cidr)  # ValueError for anything but an address range
        with open(self.data_dir / "pg_hba.conf", "a") as hba:
            hba.write(f"host all all {cidr} trust\n")

    # -- databases --------------------------------------------------------------------

    def create_database(self, name: str) -> str:
        """CREATE DATABASE name (via psql); returns its DSN.

        Raises:
            ValueError: name is not a plain identifier.
            PostgresError: psql failed (e.g. the database exists).
        """
        if not DATABASE_NAME.fullmatch(name):
            raise ValueError(
                f"database name {name!r} is not a plain identifier ({DATABASE_NAME.pattern})"
            )
        self.psql(f'CREATE DATABASE "{name}"')
        return self.dsn(name)

    def psql(self, sql: str, dbname: str = "postgres") -> str:
        """Run SQL through psql over TCP; returns its output."""
        argv = [
            psql_binary(self.bin_dir),
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-At",
            "-d",
            self.dsn(dbname),
            "-c",
            sql,
        ]
        try:
            done = subprocess.run(
                argv,
                check=False,
                capture_output=True,
                text=True,
                stdin=subprocess.DEVNULL,
                timeout=PSQL_TIMEOUT_S,
            )
        except subprocess.TimeoutExpired as exc:
            raise PostgresError(f"psql timed out after {PSQL_TIMEOUT_S:.0f} s: {sql}") from exc
        if done.returncode != 0:
            raise PostgresError(f"psql failed: {sql}: {done.stderr.strip()}")
        return done.stdout


def _children(pid: int) -> list[int]:
    """Pids whose parent is pid (Linux /proc; empty elsewhere)."""
    found = []
    for stat_path in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat_path.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # exited while we looked
        if int(fields[1]) == pid:
            found.append(int(stat_path.parent.name))
    return found


def _tail(text: str, lines: int = LOG_TAIL_LINES) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])
