"""The getter port: GET /get?user_id=, GET /backup, /healthz and /readyz.

Served on GETTER_PORT by the replica's gunicorn (web.grades.app routes to it).

/backup streams a gzip'd CSV (format in actors/grades/backup.py) pulled from the
storage actor chunk by chunk: neither side holds the whole dump, and the
storage actor serves sets between chunks. A client that asks for it by
``Accept`` (a restoring replica does) gets the same rows packed instead
(actors/grades/backup_packed.py).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator
from typing import Any

import falcon
import falcon.asgi

from actors.grades import backup_packed
from actors.grades.backup import BackupEncoder, backup_filename
from actors.grades.messages import Get, SnapshotNext, SnapshotOpen, Status
from actors.runtime.client import AsyncClient, RemoteError
from web.common.app import App, Middleware, add_probes, base_app
from web.grades.metrics import GradesCollector
from web.grades.openapi import GETTER_SPEC
from web.grades.storage_client import record_json
from web.grades.validation import check_user_id

__all__ = ["create_app", "BACKUP_CHUNK_ROWS"]

BACKUP_CHUNK_ROWS = 20_000


class GetResource:
    def __init__(self, store: AsyncClient):
        self.store = store

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        user_id = req.get_param("user_id")
        if user_id is None:
            raise falcon.HTTPBadRequest(description="user_id: required query parameter")
        check_user_id(user_id)
        row = await self.store.call(Get(user_id), resend=True)  # a read: safe to ask again
        resp.data = record_json(row)
        resp.content_type = falcon.MEDIA_JSON


class BackupResource:
    def __init__(self, store: AsyncClient):
        self.store = store

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        packed = _wants_packed(req.accept)
        snapshot_id, meta = await self.store.call(SnapshotOpen())
        resp.set_header("X-Backup-Generated-At-Ms", str(meta["generated_at_ms"]))
        resp.set_header("X-Backup-Position", str(meta["position"]))
        resp.vary = ("Accept",)
        if packed:
            resp.content_type = backup_packed.MEDIA_TYPE
            resp.stream = self._packed_chunks(snapshot_id, meta)
            return
        resp.content_type = "application/gzip"
        resp.downloadable_as = backup_filename(meta)
        resp.stream = self._chunks(snapshot_id, meta)

    async def _packed_chunks(self, snapshot_id: int, meta: dict[str, Any]) -> AsyncIterator[bytes]:
        encoder = backup_packed.PackedEncoder()
        yield encoder.header(meta)
        next_chunk = SnapshotNext(snapshot_id, BACKUP_CHUNK_ROWS)
        upcoming = asyncio.ensure_future(self.store.call(next_chunk))
        try:
            while True:
                keys, rows = await upcoming
                if not keys:
                    break
                upcoming = asyncio.ensure_future(self.store.call(next_chunk))
                yield encoder.columns(keys, rows)
        finally:
            upcoming.cancel()
        yield encoder.finish()

    async def _chunks(self, snapshot_id: int, meta: dict[str, Any]) -> AsyncIterator[bytes]:
        encoder = BackupEncoder()
        yield encoder.header(meta)
        # NOTE: the next chunk is asked for before this one is encoded, so the storage
        # actor reads rows on one core while this worker formats them on the other.
        # Compression runs in a thread (zlib releases the GIL) while the next chunk is
        # formatted here: three stages on two cores.
        next_chunk = SnapshotNext(snapshot_id, BACKUP_CHUNK_ROWS)
        ask = functools.partial(self.store.call, next_chunk)
        loop = asyncio.get_running_loop()
        upcoming = asyncio.ensure_future(ask())
        compressing: asyncio.Future[bytes] | None = None
        try:
            while True:
                keys, rows = await upcoming
                if not keys:
                    break
                upcoming = asyncio.ensure_future(ask())
                text = encoder.format(keys, rows)
                if compressing is not None:
                    yield await compressing
                compressing = loop.run_in_executor(None, encoder.compress, text)
            if compressing is not None:
                yield await compressing
        finally:
            upcoming.cancel()
        yield encoder.finish()


def _refused(param: str) -> bool:
    """A ``q=0`` parameter: the client names the type to say it does not want it."""
    try:
        return param.startswith("q=") and float(param[2:]) == 0
    except ValueError:
        return False


def _wants_packed(accept: str) -> bool:
    """True only when the client names the packed type: ``*/*`` (curl's default) gets the CSV."""
    for part in accept.split(","):
        media, *params = (piece.strip().lower() for piece in part.split(";"))
        if media == backup_packed.MEDIA_TYPE:
            return not any(map(_refused, params))
    return False


async def _readiness(store: AsyncClient) -> tuple[bool, dict[str, Any]]:
    """Ready once restored and (if replicated) live with the bus."""
    try:
        status = await store.call(Status(), timeout_s=2.0, resend=True)
    except RemoteError as exc:
        status = {"phase": "down", "reason": exc.reason}
    ready = status.get("phase") == "ready" and (
        not status.get("replicated") or status.get("writable")
    )
    return ready, status


def create_app(
    store: AsyncClient, bus: AsyncClient | None = None, middleware: list[Middleware] | None = None
) -> App:
    app = base_app(middleware)
    app.add_route("/get", GetResource(store))
    app.add_route("/backup", BackupResource(store))
    add_probes(app, GETTER_SPEC, functools.partial(_readiness, store), GradesCollector(store, bus))
    return app
