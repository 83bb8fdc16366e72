"""A private PostgreSQL cluster under a data directory: initdb once, run, stop, crash.

`make run` keeps one cluster under the checkout's data directory (a Procfile process:
``python -m actors.runtime.pg.server --data-dir data/postgres --port 5433``); tests and
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
run as the `postgres` system user the Debian package creates, else `nobody`; the data
directory is chowned to that user and its parents made traversable (o+x). The runtime
reads no environment variable and names no service: callers pass everything.

NOTE: ~440 lines, over STYLE.md's ~400: one job (a cluster's lifecycle as a child
process, with the privilege drop it needs under root) and its Procfile face, main().
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import pwd
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Any

__all__ = [
    "PostgresError",
    "PostgresNotFound",
    "PostgresServer",
    "main",
    "pg_bin_dir",
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
DEBIAN_BIN_GLOB = "/usr/lib/postgresql/*/bin"
REQUIRED_BINARIES = ("postgres", "initdb")
UNPRIVILEGED_USERS = ("postgres", "nobody")
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


class PostgresError(RuntimeError):
    """The server could not be initialised, started or stopped; the message says why."""


class PostgresNotFound(PostgresError):
    """The PostgreSQL server binaries are not installed."""


def pg_bin_dir(bin_dir: str | Path | None = None) -> Path:
    """Find the directory holding `postgres` and `initdb`.

    Args:
        bin_dir: use this directory; else the highest `/usr/lib/postgresql/<N>/bin`,
            else the directory of `postgres` on PATH (symlinks resolved).

    Returns:
        The directory.

    Raises:
        PostgresNotFound: no such directory, naming `make install`.
    """
    if bin_dir is not None:
        candidates = [Path(bin_dir)]
    else:
        versions = sorted(Path("/").glob(DEBIAN_BIN_GLOB.lstrip("/")), key=_version_key)
        candidates = list(reversed(versions))
        on_path = shutil.which("postgres")
        if on_path:
            candidates.append(Path(os.path.realpath(on_path)).parent)
    for candidate in candidates:
        if all(os.access(candidate / name, os.X_OK) for name in REQUIRED_BINARIES):
            return candidate
    where = str(bin_dir) if bin_dir is not None else f"{DEBIAN_BIN_GLOB} or PATH"
    raise PostgresNotFound(
        f"PostgreSQL server binaries ({', '.join(REQUIRED_BINARIES)}) not found in {where}; "
        "run `make install` (scripts/install-postgres.sh installs them)"
    )


def _version_key(path: Path) -> tuple[int, str]:
    name = path.parent.name
    return (int(name), name) if name.isdigit() else (-1, name)


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
        self._run_as = _unprivileged_user() if os.geteuid() == 0 else None

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
            self._own_data_dir()
            return False
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if any(self.data_dir.iterdir()):
            raise PostgresError(
                f"{self.data_dir} is not empty and holds no PG_VERSION: "
                "not a PostgreSQL data directory"
            )
        self._own_data_dir()
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
                **self._popen_user(),
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
        self._own_data_dir()
        sock_dir = self.socket_dir()
        if sock_dir != self.data_dir:
            sock_dir.mkdir(mode=0o700, exist_ok=True)
            self._chown(sock_dir)
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
                **self._popen_user(),
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
            self._psql_binary(),
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

    def _psql_binary(self) -> str:
        local = self.bin_dir / "psql"
        found = str(local) if os.access(local, os.X_OK) else shutil.which("psql")
        if not found:
            raise PostgresNotFound("psql not found; run `make install`")
        return found

    # -- running as root --------------------------------------------------------------

    def _popen_user(self) -> dict[str, Any]:
        """Popen's user/group arguments (Any: they are splatted into its overloads)."""
        if self._run_as is None:
            return {}
        return {"user": self._run_as.pw_uid, "group": self._run_as.pw_gid, "extra_groups": []}

    def _chown(self, path: Path) -> None:
        if self._run_as is not None:
            os.chown(path, self._run_as.pw_uid, self._run_as.pw_gid)

    def _own_data_dir(self) -> None:
        """Under root: hand the data directory to the server's user, parents o+x."""
        if self._run_as is None:
            return
        uid, gid = self._run_as.pw_uid, self._run_as.pw_gid
        if self.data_dir.stat().st_uid != uid:
            self._chown(self.data_dir)
            for root, dirs, files in os.walk(self.data_dir):
                for name in dirs + files:
                    os.lchown(os.path.join(root, name), uid, gid)
        self.data_dir.chmod(0o700)  # postgres refuses a group- or world-readable one
        for parent in self.data_dir.parents:
            mode = parent.stat().st_mode
            if not mode & stat.S_IXOTH:
                parent.chmod(stat.S_IMODE(mode) | stat.S_IXOTH)


def _unprivileged_user() -> pwd.struct_passwd:
    for name in UNPRIVILEGED_USERS:
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise PostgresError(
        "running as root, and neither a `postgres` nor a `nobody` user exists to run PostgreSQL as"
    )


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


# -- the Procfile process --------------------------------------------------------------

_stop_requested: list[int] = []


def _request_stop(signum: int, frame: FrameType | None) -> None:
    _stop_requested.append(signum)


def main(argv: list[str] | None = None) -> int:
    """Run a private cluster in the foreground until SIGTERM or SIGINT (exit 0)."""
    parser = argparse.ArgumentParser(
        prog="python -m actors.runtime.pg.server", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--bin-dir", default=None, help="PostgreSQL binaries (default: found)")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _request_stop)
    signal.signal(signal.SIGINT, _request_stop)
    try:
        server = PostgresServer(args.data_dir, args.port, args.host, args.bin_dir)
        if not server.initialised:
            print(f"initialising a PostgreSQL cluster in {server.data_dir}", flush=True)
        server.init()
        server.start()
    except (PostgresError, OSError) as exc:
        print(f"pgserver: {str(exc).splitlines()[0]}", file=sys.stderr, flush=True)
        return 1
    print(
        f"postgres ready on {server.host}:{server.port} (DATABASE_URI={server.dsn()})", flush=True
    )
    print(f"server log: {server.log_path}", flush=True)
    while not _stop_requested and server.running():
        time.sleep(POLL_INTERVAL_S)
    if not _stop_requested:
        exited = server.process.returncode if server.process is not None else None
        print(
            f"pgserver: postgres exited with code {exited}; see {server.log_path}",
            file=sys.stderr,
            flush=True,
        )
        return 1
    return _stop(server)


def _stop(server: PostgresServer) -> int:
    """Let the clients leave first (bounded), then a fast shutdown; one line says which."""
    started = time.monotonic()
    left = server.wait_for_clients_to_leave()
    waited = time.monotonic() - started
    code = server.stop()
    if code != 0:
        print(f"pgserver: postgres stopped with code {code}", file=sys.stderr, flush=True)
        return 1
    if left:
        print(f"postgres stopped ({left} clients still connected after {waited:.1f} s)", flush=True)
    else:
        print(f"postgres stopped (after its clients left, {waited:.1f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
