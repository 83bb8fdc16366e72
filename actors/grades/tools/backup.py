"""``grades backup``: save a replica's GET /backup to a file, atomically.

The bytes are streamed to ``FILE.part`` and renamed to ``FILE`` only once the
download is complete and checked: the gzip stream must end properly (a
replica that dies mid-backup leaves a truncated stream) and its first line
must be a backup header (actors/backup.py). Any failure removes the
``.part`` file, so ``FILE`` is either a whole backup or absent.
"""

from __future__ import annotations

import http.client
import os
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from actors.grades.backup import BackupError, parse_header_line
from actors.grades.tools.progress import Progress, format_bytes
from actors.grades.tools.remote import ToolError, endpoint, open_url

__all__ = ["BackupSaved", "save_backup"]

READ_TIMEOUT_S = 30.0
"""Longest wait for the replica to connect or to send the next bytes."""
CHUNK_BYTES = 256 * 1024
HEADER_MAX_BYTES = 4096
"""Line 1 of a backup is far shorter; more without a newline is not a backup."""
PART_SUFFIX = ".part"


@dataclass(frozen=True)
class BackupSaved:
    """What ``save_backup`` wrote."""

    path: Path
    size_bytes: int
    meta: dict[str, Any]
    """The backup's header (actors.grades.backup.parse_header_line)."""


class _GzipCheck:
    """Decompresses as bytes arrive, to read line 1 and to see the stream end."""

    def __init__(self) -> None:
        self._inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self._head = b""
        self.meta: dict[str, Any] | None = None

    def feed(self, data: bytes) -> None:
        try:
            text = self._inflate.decompress(data)
        except zlib.error as exc:
            raise ToolError(f"the replica sent a damaged gzip stream: {exc}") from None
        if self.meta is None:
            self._read_header(text)

    def _read_header(self, text: bytes) -> None:
        self._head += text
        line, newline, _rest = self._head.partition(b"\n")
        if not newline:
            if len(self._head) > HEADER_MAX_BYTES:
                raise ToolError("the replica sent something that is not a backup")
            return
        try:
            self.meta = parse_header_line(line.decode("utf-8", "replace"))
        except BackupError as exc:
            raise ToolError(f"the replica sent something that is not a backup: {exc}") from None
        self._head = b""

    def finish(self) -> dict[str, Any]:
        """The header; raises ToolError if the stream stopped early."""
        if not self._inflate.eof or self.meta is None:
            raise ToolError("the backup stream ended early (truncated download)")
        return self.meta


def _target_path(output: str | None, response: http.client.HTTPResponse) -> Path:
    if output:
        return Path(output)
    name = response.headers.get_filename() or "grades-backup.csv.gz"
    return Path(Path(name).name)


def _stream_to(
    response: http.client.HTTPResponse, part: Path, progress: Progress
) -> dict[str, Any]:
    check = _GzipCheck()
    with open(part, "wb") as out:
        while True:
            try:
                chunk = response.read(CHUNK_BYTES)
            except (OSError, http.client.HTTPException) as exc:
                raise ToolError(
                    f"download interrupted after {progress.count:,} bytes: "
                    f"{exc.__class__.__name__}: {exc}"
                ) from None
            if not chunk:
                break
            check.feed(chunk)
            out.write(chunk)
            progress.add(len(chunk))
        meta = check.finish()
        out.flush()
        os.fsync(out.fileno())
    return meta


def save_backup(url: str, output: str | None, progress: Progress | None = None) -> BackupSaved:
    """Download ``url``/backup to ``output`` (write ``output.part``, then rename).

    Args:
        url: the replica's getter URL (``/backup`` is appended unless present).
        output: the file to write; None for the name the replica suggests
            (``grades-replicaN-<time>.csv.gz``) in the current directory.
        progress: counts bytes; one is made (stderr) if not given.

    Returns:
        Where it went, its size and its header.

    Raises:
        ToolError: unreachable, HTTP error, a damaged or truncated stream,
            or the file cannot be written; no file is left behind.
    """
    source = endpoint(url, "/backup")
    progress = progress or Progress("backup", format_bytes)
    response = open_url(source, READ_TIMEOUT_S)
    with response:
        path = _target_path(output, response)
        part = path.with_name(path.name + PART_SUFFIX)
        try:
            meta = _stream_to(response, part, progress)
            os.replace(part, path)
        except OSError as exc:
            part.unlink(missing_ok=True)
            raise ToolError(f"cannot write {part}: {exc}") from None
        except BaseException:
            part.unlink(missing_ok=True)
            raise
    return BackupSaved(path, progress.count, meta)
