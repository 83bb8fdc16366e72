"""One line when a service is ready: ``<program> is ready on http://host:port``.

A service's supervisor runs a ``ReadyAnnouncer`` as its ``on_tick``. It asks each
of the service's HTTP ports for ``GET /healthz`` until every one answers (any
status: an HTTP server took the request), and an optional service check (grades:
the storage actor has restored), then logs the line once. Printing it before the
port answers would send a user (or a script waiting for the line) to a refused
connection. Past ``deadline_s`` it warns once and keeps trying: a slow start
still ends with the line.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from urllib.parse import urlsplit

__all__ = ["ReadyAnnouncer", "answers_http", "READY_DEADLINE_S"]

READY_DEADLINE_S = 60.0
"""The database is prepared before the supervisor starts: gunicorn answers in seconds."""
PROBE_TIMEOUT_S = 0.5
"""A port bound but not yet served holds a request in its backlog: give up on it soon,
the supervisor's loop waits meanwhile."""
PROBE_EVERY_S = 0.5
WILDCARD_HOSTS = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}
"""A server listening on every interface is reached on loopback."""


def answers_http(url: str, timeout_s: float = PROBE_TIMEOUT_S) -> bool:
    """True when ``GET <url>/healthz`` gets an HTTP response, whatever its status."""
    # NOTE: imported here: a supervisor imports this module before it starts its children
    # and probes only once they run.
    import http.client

    parts = urlsplit(url)
    host = parts.hostname or ""
    connection = http.client.HTTPConnection(
        WILDCARD_HOSTS.get(host, host), parts.port or 80, timeout=timeout_s
    )
    try:
        connection.request("GET", "/healthz")
        connection.getresponse().read()
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()
    return True


class ReadyAnnouncer:
    """Logs ``<program> is ready on <urls>`` once every URL answers HTTP (an ``on_tick``).

    ``check``, when given, must also pass: it returns None while the service is not
    ready, else a few words said after the URLs (e.g. ``replica 1 with 12 rows``).
    """

    def __init__(
        self,
        program: str,
        urls: Sequence[str],
        log: logging.Logger,
        check: Callable[[], str | None] | None = None,
        deadline_s: float = READY_DEADLINE_S,
    ):
        self.program = program
        self.urls = list(urls)
        self.log = log
        self.check = check
        self.started = time.monotonic()
        self.deadline = self.started + deadline_s
        self.next_probe = 0.0
        self.warned = False
        self.done = False

    def said(self) -> bool:
        """Whether the ready line was said (every URL answered, the check passed)."""
        return self.done

    def __call__(self) -> None:
        now = time.monotonic()
        if self.done or now < self.next_probe:
            return
        self.next_probe = now + PROBE_EVERY_S
        detail = self.check() if self.check is not None else ""
        if detail is not None and all(answers_http(url) for url in self.urls):
            self.done = True
            suffix = f" ({detail})" if detail else ""
            self.log.info("%s is ready on %s%s", self.program, " and ".join(self.urls), suffix)
        elif now > self.deadline and not self.warned:
            self.warned = True
            self.log.warning(
                "%s is not ready on %s after %.0f s; still waiting",
                self.program,
                " and ".join(self.urls),
                now - self.started,
            )
