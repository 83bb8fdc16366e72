"""The Procfile's `postgres` process: a private cluster in the foreground until SIGTERM.

``python -m actors.runtime.pg.foreground --data-dir data/postgres --port 5433`` runs
initdb once, starts the server, prints one ready line, and at SIGTERM or SIGINT lets the
clients leave (bounded) before a fast shutdown, exit 0. The cluster's own lifecycle is
`actors.runtime.pg.server.PostgresServer`; this module is only its process face.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path
from types import FrameType

from actors.runtime.pg.installation import PostgresError
from actors.runtime.pg.server import POLL_INTERVAL_S, PostgresServer

__all__ = ["main"]

_stop_requested: list[int] = []


def _request_stop(signum: int, frame: FrameType | None) -> None:
    _stop_requested.append(signum)


def main(argv: list[str] | None = None) -> int:
    """Run a private cluster in the foreground until SIGTERM or SIGINT (exit 0)."""
    parser = argparse.ArgumentParser(
        prog="python -m actors.runtime.pg.foreground", description=__doc__.splitlines()[0]
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
