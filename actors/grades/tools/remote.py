"""What the operator tools share about HTTP: replica URLs, GETs with clear errors.

The tools (``grades backup``, ``load``, ``verify``, ``status``) talk to a
replica's ports with the standard library only. A failure that stops a tool
is a ToolError whose message is meant for the operator as is: it names the
URL and says what went wrong (refused, timed out, HTTP status and the
replica's ``{"error": ...}`` text).
"""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.parse
import urllib.request

from actors.grades.tools.outcome import EXIT_ERROR, EXIT_FAILED, EXIT_OK, ToolError

__all__ = [
    "EXIT_ERROR",
    "EXIT_FAILED",
    "EXIT_OK",
    "ToolError",
    "base_url",
    "endpoint",
    "error_text",
    "open_url",
]

ERROR_TEXT_MAX_CHARS = 300


def base_url(url: str) -> str:
    """A replica URL with a scheme and without a trailing slash.

    Args:
        url: e.g. ``127.0.0.1:8080``, ``http://host:8080/``.

    Raises:
        ToolError: not an http(s) URL with a host.
    """
    url = url.strip()
    if "://" not in url:
        url = f"http://{url}"
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ToolError(f"{url}: not an http:// or https:// URL with a host")
    return url.rstrip("/")


def endpoint(url: str, path: str) -> str:
    """``url`` with ``path`` appended unless it already ends with it.

    Args:
        url: a replica's base URL, or the full endpoint URL.
        path: e.g. ``/backup``.
    """
    url = base_url(url)
    return url if url.endswith(path) else url + path


def error_text(body: bytes) -> str:
    """The replica's ``{"error": ...}`` message, or the start of the body."""
    try:
        message = json.loads(body).get("error")
    except (ValueError, AttributeError):
        message = None
    text = message if isinstance(message, str) else body.decode("utf-8", "replace").strip()
    return text[:ERROR_TEXT_MAX_CHARS]


def open_url(url: str, timeout_s: float) -> http.client.HTTPResponse:
    """GET a URL and return the open response (a file-like, stream it).

    Args:
        url: full URL.
        timeout_s: connect timeout and the longest wait for each read.

    Raises:
        ToolError: unreachable, timed out, or any status other than 200.
    """
    try:
        response: http.client.HTTPResponse = urllib.request.urlopen(url, timeout=timeout_s)
        return response
    except urllib.error.HTTPError as exc:
        with exc:
            detail = error_text(exc.read())
        raise ToolError(f"{url}: HTTP {exc.code}{': ' + detail if detail else ''}") from None
    except urllib.error.URLError as exc:
        raise ToolError(f"{url}: unreachable: {exc.reason}") from None
    except (OSError, http.client.HTTPException) as exc:
        raise ToolError(f"{url}: {exc.__class__.__name__}: {exc}") from None
