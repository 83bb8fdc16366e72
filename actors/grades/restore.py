"""Downloading a peer's backup in a thread, so the storage loop keeps answering.

The storage actor starts a BackupDownload and, on every loop turn, takes what
it produced from its queue: ("meta", dict), then ("rows", backup.Block) many times,
then ("done", rows) or ("failed", reason). The queue is bounded, so a fast
peer cannot fill memory ahead of the loop.

It asks for the packed form (actors/grades/backup_packed.py) and reads the gzip'd
CSV if that is what the peer sends (a peer that does not know the packed form).
"""

from __future__ import annotations

import json
import queue
import threading
import time
from typing import TYPE_CHECKING, Any, BinaryIO

from actors.grades import backup_packed
from actors.grades.backup import BackupError, read_backup_blocks
from actors.grades.loading import LoadEvent

if TYPE_CHECKING:
    import urllib.error
    from http.client import HTTPResponse

# NOTE: urllib.request (and the email parser it pulls in) is imported by the download
# thread, not here: the storage actor imports this module, and its start is on the
# critical path of a replica's start while the download is not.

__all__ = ["BackupDownload"]

CONNECT_ATTEMPTS = 3
"""A peer that fails in a way that may pass (a timeout, a 5xx) gets a few chances."""
RETRY_PAUSE_S = 1.0
READ_TIMEOUT_S = 15.0
ACCEPT = f"{backup_packed.MEDIA_TYPE}, application/gzip;q=0.5"
QUEUE_BATCHES = 8
REASON_MAX_BYTES = 4096


def _reason(error: urllib.error.HTTPError) -> str:
    """The "error" of a JSON error body, or the status line."""
    try:
        return str(json.loads(error.read(REASON_MAX_BYTES))["error"])
    except (OSError, ValueError, KeyError, TypeError):
        return f"HTTP {error.code}"


def _media_type(stream: BinaryIO) -> str:
    """The Content-Type of an HTTP response; a file (a snapshot) is the gzip'd CSV."""
    headers: Any = getattr(stream, "headers", None)
    return "application/gzip" if headers is None else str(headers.get_content_type())


class BackupDownload(threading.Thread):
    """Streams ``{peer_url}/backup`` into parsed row batches."""

    def __init__(self, peer_url: str) -> None:
        super().__init__(name="backup-download", daemon=True)
        self.url = f"{peer_url}/backup"
        self.events: queue.Queue[LoadEvent] = queue.Queue(maxsize=QUEUE_BATCHES)
        self._cancelled = threading.Event()

    def cancel(self) -> None:
        self._cancelled.set()

    def _put(self, event: LoadEvent) -> bool:
        while not self._cancelled.is_set():
            try:
                self.events.put(event, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def _open(self) -> BinaryIO:
        import urllib.error
        import urllib.request

        last_error = ""
        for attempt in range(CONNECT_ATTEMPTS):
            if attempt:
                time.sleep(RETRY_PAUSE_S)
            # NOTE: a peer that is not running, restoring or catching up holds nothing the
            # bus log does not (an acknowledged write is in the log), so it is not waited
            # for: the two replicas of a fresh cluster start at once and would otherwise
            # wait on each other before both fall back to the log anyway.
            try:
                request = urllib.request.Request(self.url, headers={"Accept": ACCEPT})
                response: HTTPResponse = urllib.request.urlopen(request, timeout=READ_TIMEOUT_S)
                return response
            except urllib.error.HTTPError as exc:
                if exc.code == 503:
                    raise ConnectionError(
                        f"{self.url}: the peer is not ready itself ({_reason(exc)})"
                    ) from None
                last_error = f"peer answered {exc.code}"
            except (urllib.error.URLError, OSError) as exc:
                reason = getattr(exc, "reason", exc)
                if isinstance(reason, ConnectionRefusedError):
                    raise ConnectionError(f"{self.url}: the peer is not running") from None
                last_error = f"peer unreachable: {reason}"
        raise ConnectionError(f"{self.url}: {last_error}")

    def run(self) -> None:
        try:
            with self._open() as response:
                read = (
                    backup_packed.read_packed_blocks
                    if _media_type(response) == backup_packed.MEDIA_TYPE
                    else read_backup_blocks
                )
                meta, blocks = read(response)
                if not self._put(("meta", meta)):
                    return
                rows = 0
                for block in blocks:
                    rows += len(block.keys)
                    if not self._put(("rows", block)):
                        return
            self._put(("done", rows))
        except (ConnectionError, BackupError, OSError) as exc:
            self._put(("failed", str(exc)))
