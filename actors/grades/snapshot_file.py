"""A replica's own snapshot file: written now and then, read at a cold start with no peer.

The file is ``<run_dir>/snapshot.csv.gz`` in the backup format (actors.grades.backup),
so its first line records the log position it was taken at. It is written to a
temporary name, fsynced, renamed over the old one and the directory fsynced: a
crash leaves the old snapshot or the new one, never half of one.

Why a replica snapshots itself rather than the bus asking: the replica has the
data, the bus does not; and once a snapshot at position P is on the replica's
disk, the replica no longer needs the log below P, which it tells the log (BusRetain
to the bus, or the JetStream retain bucket) so that it may delete those records
(actors.bus.retention, actors.grades.jetstream.retention).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from actors.grades.backup import BackupEncoder, BackupError, read_backup
from actors.grades.messages import SnapshotNext, SnapshotOpen
from actors.grades.restore import BackupDownload

if TYPE_CHECKING:
    from actors.runtime.client import Client  # asyncio with it: the storage actor needs neither

__all__ = ["SNAPSHOT_NAME", "newest", "SnapshotLoad", "write_snapshot"]

SNAPSHOT_NAME = "snapshot.csv.gz"
CHUNK_ROWS = 20_000
"""Rows per SnapshotNext: one short turn of the storage loop each."""
CALL_TIMEOUT_S = 10.0


def newest(run_dir: Path) -> tuple[Path, dict[str, Any]] | None:
    """This replica's snapshot file and its metadata, or None if it has none (or a bad one)."""
    path = Path(run_dir) / SNAPSHOT_NAME
    try:
        with open(path, "rb") as f:
            meta, _ = read_backup(f)
    except (OSError, BackupError):
        return None
    return path, meta


class SnapshotLoad(BackupDownload):
    """BackupDownload of the local snapshot file instead of a peer's /backup."""

    def __init__(self, path: Path):
        super().__init__(f"file://{path}")
        self.path = path

    def _open(self) -> BinaryIO:
        try:
            return open(self.path, "rb")
        except OSError as exc:
            raise ConnectionError(f"{self.path}: {exc}") from None


def write_snapshot(client: Client, run_dir: Path) -> dict[str, Any]:
    """Pull the storage actor's map through SnapshotOpen/Next into the snapshot file.

    Returns:
        The snapshot's metadata (position, log_id, rows...).
    """
    final = Path(run_dir) / SNAPSHOT_NAME
    tmp = final.with_name(SNAPSHOT_NAME + ".tmp")
    meta: dict[str, Any]  # the backup header's fields: position, log_id, rows...
    snapshot_id, meta = client.call(SnapshotOpen(), timeout_s=CALL_TIMEOUT_S)
    encoder = BackupEncoder()
    with open(tmp, "wb") as f:
        f.write(encoder.header(meta))
        while True:
            keys, rows = client.call(
                SnapshotNext(snapshot_id, CHUNK_ROWS), timeout_s=CALL_TIMEOUT_S
            )
            if not keys:
                break
            f.write(encoder.columns(keys, rows))
        f.write(encoder.finish())
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, final)
    fd = os.open(run_dir, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return meta
