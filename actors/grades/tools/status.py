"""``grades status``: each replica's GET /readyz as one row of an aligned table.

::

    replica                ready  phase        rows  position  bus_up
    http://127.0.0.1:8080  yes    ready       1,024      2,048  yes
    http://127.0.0.1:8282  no     unreachable     -          -  -
      http://127.0.0.1:8282: [Errno 111] Connection refused

A replica that is not ready gets a note line with the reason it gave (or why
it could not be asked). ``bus_up`` is ``standalone`` for a replica run with
BUS_URL=none.
"""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request
from typing import Any, TextIO

from actors.grades.tools.remote import ToolError, base_url

__all__ = [
    "COLUMNS",
    "DEFAULT_URLS",
    "fetch_status",
    "print_status",
    "render_table",
    "status_row",
]

DEFAULT_URLS = ("http://127.0.0.1:8080", "http://127.0.0.1:8282")
"""The two replicas of ``make run``."""
READYZ_TIMEOUT_S = 3.0
COLUMNS = ("replica", "ready", "phase", "rows", "position", "bus_up")
NUMERIC_COLUMNS = frozenset({"rows", "position"})
COLUMN_GAP = "  "
MISSING = "-"


def fetch_status(url: str) -> dict[str, Any]:
    """The replica's /readyz JSON; never raises.

    Returns:
        The JSON object (``ready`` is False unless the replica said so), or
        ``{"ready": False, "phase": "unreachable", "reason": ...}``.
    """
    try:
        with urllib.request.urlopen(
            f"{base_url(url)}/readyz", timeout=READYZ_TIMEOUT_S
        ) as response:
            body = response.read()
    except urllib.error.HTTPError as exc:
        with exc:
            body = exc.read()
    except (urllib.error.URLError, OSError, http.client.HTTPException, ToolError) as exc:
        return {"ready": False, "phase": "unreachable", "reason": str(getattr(exc, "reason", exc))}
    try:
        status = json.loads(body)
    except ValueError:
        status = None
    if not isinstance(status, dict):
        return {"ready": False, "phase": "invalid", "reason": f"not JSON: {body[:80]!r}"}
    return {**status, "ready": status.get("ready") is True}


def _cell(status: dict[str, Any], column: str) -> str:
    value = status.get(column)
    if column == "bus_up" and status.get("replicated") is False:
        return "standalone"
    if value is None:
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def status_row(url: str, status: dict[str, Any]) -> list[str]:
    """One table row (the COLUMNS) for a replica's status."""
    return [url] + [_cell(status, column) for column in COLUMNS[1:]]


def render_table(rows: list[list[str]]) -> str:
    """COLUMNS and rows, aligned; numbers to the right."""
    table = [list(COLUMNS), *rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(COLUMNS))]

    def line(row: list[str]) -> str:
        cells = [
            cell.rjust(width) if name in NUMERIC_COLUMNS else cell.ljust(width)
            for name, cell, width in zip(COLUMNS, row, widths)
        ]
        return COLUMN_GAP.join(cells).rstrip()

    return "\n".join(line(row) for row in table)


def _note(url: str, status: dict[str, Any]) -> str | None:
    if status["ready"]:
        return None
    reason = status.get("reason")
    if not reason and status.get("phase") == "ready" and not status.get("writable", True):
        reason = "cannot accept writes (bus not reachable?)"
    return f"  {url}: {reason}" if reason else None


def print_status(urls: list[str], out: TextIO | None = None) -> bool:
    """Print the table for these getter URLs.

    Args:
        urls: getter URLs.
        out: where to print (stdout if None).

    Returns:
        True if every replica is ready.
    """
    statuses = [(url, fetch_status(url)) for url in urls]
    print(render_table([status_row(url, status) for url, status in statuses]), file=out)
    for url, status in statuses:
        note = _note(url, status)
        if note:
            print(note, file=out)
    return all(status["ready"] for _, status in statuses)
