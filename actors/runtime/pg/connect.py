"""Reaching PostgreSQL: a DSN checked, the bounded wait at start, the outage errors.

``TRANSIENT_ERRORS`` and ``DatabaseUnavailable`` are what a request may meet while the
database is down or restarting; the HTTP apps map them to 503 (``transient_errors()``).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from urllib.parse import urlsplit

import asyncpg

__all__ = [
    "CONNECT_TIMEOUT_S",
    "DatabaseUnavailable",
    "TRANSIENT_ERRORS",
    "host_port",
    "normalize_dsn",
    "one_line",
    "transient_errors",
    "wait_for_database",
]

SCHEMES = ("postgresql", "postgres")
DEFAULT_PORT = 5432
WAIT_TIMEOUT_S = 30.0  # the services' documented bounded wait at start
CONNECT_TIMEOUT_S = 5.0  # one connection attempt (TCP + startup + auth)
RETRY_FIRST_S = 0.1  # backoff between attempts: doubles up to RETRY_MAX_S
RETRY_MAX_S = 1.0
LOG_EVERY_S = 5.0  # how often wait_for_database reports that it is still waiting

TRANSIENT_ERRORS = (
    asyncpg.PostgresConnectionError,  # 08xxx: the connection broke
    asyncpg.exceptions.OperatorInterventionError,  # 57xxx: shutdown, crash, starting, canceled
    asyncpg.InterfaceError,  # e.g. "the underlying connection is closed"
    # NOTE: asyncpg raises this ("cannot switch to state 12; another operation is in
    # progress") for a pooled connection whose server died mid-operation.
    asyncpg.exceptions.InternalClientError,
    asyncpg.TransactionRollbackError,  # serialization failure, deadlock: retry
    asyncio.TimeoutError,
    OSError,
)
"""The database is unreachable or busy now, not the request wrong: nothing the request did
is known to have committed; a service answers 503 with Retry-After (DatabaseUnavailable,
defined below, belongs with these: see ``transient_errors()``)."""

# Errors that waiting will not fix: wrong password, unknown role or database.
_FATAL = (asyncpg.InvalidAuthorizationSpecificationError, asyncpg.InvalidCatalogNameError)


def transient_errors() -> tuple[type[BaseException], ...]:
    """TRANSIENT_ERRORS and DatabaseUnavailable: what a request may meet during an outage."""
    return (DatabaseUnavailable, *TRANSIENT_ERRORS)


class DatabaseUnavailable(Exception):
    """The database cannot be reached; the message is one line naming host:port."""


def normalize_dsn(uri: str) -> str:
    """Validate a PostgreSQL URI and return it with the `postgresql://` scheme.

    Raises:
        ValueError: empty, not a URI, or another scheme, naming the problem.
    """
    if not isinstance(uri, str) or not uri.strip():
        raise ValueError("database URI is empty; expected postgresql://user@host:port/db")
    uri = uri.strip()
    scheme, sep, rest = uri.partition("://")
    if not sep:
        raise ValueError(
            f"database URI {_redact(uri)!r} is not a URI; expected postgresql://user@host:port/db"
        )
    if scheme.lower() not in SCHEMES:
        raise ValueError(f"database URI scheme {scheme!r} is not postgres:// or postgresql://")
    try:
        urlsplit(uri).port  # noqa: B018 - raises on a malformed port
    except ValueError as exc:
        raise ValueError(f"database URI {_redact(uri)!r}: {exc}") from None
    return f"postgresql://{rest}"


def host_port(dsn: str) -> str:
    """`host:port` of a DSN, for messages (never the password)."""
    parts = urlsplit(dsn)
    return f"{parts.hostname or 'localhost'}:{parts.port or DEFAULT_PORT}"


def _redact(uri: str) -> str:
    return re.sub(r"(://[^:/@]*):[^@/]*@", r"\1:***@", uri)


def one_line(exc: BaseException) -> str:
    """An error as one line, ``Type: message``, for a log line or a startup message."""
    text = " ".join(str(exc).split()) or "no details"
    return f"{type(exc).__name__}: {text}"


async def wait_for_database(
    dsn: str, timeout_s: float = WAIT_TIMEOUT_S, log: logging.Logger | None = None
) -> None:
    """Connect until it works or the deadline passes.

    Args:
        dsn: the database URI (either scheme).
        timeout_s: overall deadline.
        log: reports the wait every LOG_EVERY_S.

    Raises:
        DatabaseUnavailable: unreachable at the deadline, or a failure waiting will not
            fix (authentication, unknown database) at once.
    """
    dsn = normalize_dsn(dsn)
    deadline = time.monotonic() + timeout_s
    delay_s, next_log = RETRY_FIRST_S, time.monotonic() + LOG_EVERY_S
    while True:
        remaining = deadline - time.monotonic()
        try:
            conn = await asyncpg.connect(dsn, timeout=max(0.05, min(CONNECT_TIMEOUT_S, remaining)))
        except _FATAL as exc:
            raise DatabaseUnavailable(
                f"database at {host_port(dsn)} refused us: {one_line(exc)}"
            ) from exc
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            last = exc
        else:
            await conn.close(timeout=CONNECT_TIMEOUT_S)
            return
        now = time.monotonic()
        if now + delay_s >= deadline:
            raise DatabaseUnavailable(
                f"database at {host_port(dsn)} unreachable after {timeout_s:g} s: {one_line(last)}"
            ) from last
        if log is not None and now >= next_log:
            log.info("waiting for the database at %s: %s", host_port(dsn), one_line(last))
            next_log = now + LOG_EVERY_S
        await asyncio.sleep(delay_s)
        delay_s = min(delay_s * 2, RETRY_MAX_S)
