"""The segments routes: segments, a user's segments, the history report.

Resources check input (validation.py) and call the store; they build no SQL. Store errors
become HTTP statuses once, in app.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from decimal import Decimal

import falcon
import falcon.asgi

from actors.segments import store
from web.common.database import Database
from web.common.requests import read_json_body
from web.common.responses import send_json
from web.segments import validation
from web.segments.validation import MAX_BODY_BYTES, Period

__all__ = [
    "CSV_HEADER",
    "HistoryCsvResource",
    "HistoryResource",
    "SegmentResource",
    "SegmentsResource",
    "UserSegmentsResource",
]

CSV_HEADER = "user_id;segment;operation;timestamp\n"
OPERATIONS = ("добавление", "удаление")  # addition, removal: the seed task's words


def percent_json(percent: Decimal | None) -> int | float | None:
    """A percent as a JSON number: 30 for 30.00, 12.5 for 12.50."""
    if percent is None:
        return None
    return int(percent) if percent == percent.to_integral_value() else float(percent)


class SegmentsResource:
    """POST /api/segments creates a segment; GET /api/segments lists them by slug."""

    def __init__(self, pool: Database):
        self.pool = pool

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        segment = validation.parse_segment(await read_json_body(req, MAX_BODY_BYTES))
        created = await store.create_segment(self.pool, segment.slug, segment.percent)
        send_json(
            resp,
            {
                "slug": created.slug,
                "percent": percent_json(created.percent),
                "users_assigned": created.users_assigned,
            },
            falcon.HTTP_201,
        )

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        segments = await store.list_segments(self.pool)
        send_json(
            resp,
            [
                {"slug": s.slug, "percent": percent_json(s.percent), "users": s.users}
                for s in segments
            ],
        )


class SegmentResource:
    """DELETE /api/segments/{slug}: every member leaves the segment now."""

    def __init__(self, pool: Database):
        self.pool = pool

    async def on_delete(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, slug: str
    ) -> None:
        await store.delete_segment(self.pool, validation.parse_slug(slug))
        resp.status = falcon.HTTP_204


class UserSegmentsResource:
    """GET and POST /api/users/{user_id}/segments: a user's active segments, and changes."""

    def __init__(self, pool: Database, on_expiry: Callable[[], None] | None = None):
        self.pool = pool
        self.on_expiry = on_expiry  # tells the reaper a new expiry exists

    async def on_get(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, user_id: str
    ) -> None:
        user = validation.parse_user_id(user_id)
        send_json(resp, {"user_id": user, "segments": await store.user_segments(self.pool, user)})

    async def on_post(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, user_id: str
    ) -> None:
        user = validation.parse_user_id(user_id)
        change = validation.parse_change(await read_json_body(req, MAX_BODY_BYTES))
        segments = await store.change_user_segments(self.pool, user, change.add, change.remove)
        if self.on_expiry is not None and any(
            item.expires_at or item.ttl_seconds for item in change.add
        ):
            self.on_expiry()
        send_json(resp, {"user_id": user, "segments": segments})


def _filters(req: falcon.asgi.Request) -> tuple[Period, int | None]:
    period = validation.parse_period(req.get_param("period", required=False))
    raw_user = req.get_param("user_id", required=False)
    user = None if raw_user is None else validation.parse_user_id(raw_user)
    return period, user


class HistoryResource:
    """GET /api/history?period=YYYY-MM[&user_id=N]: {"url": absolute URL of the CSV report}."""

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        period, user = _filters(req)
        url = f"{req.prefix}/api/history/{period.text}.csv"
        if user is not None:
            url += f"?user_id={user}"
        send_json(resp, {"url": url})


class HistoryCsvResource:
    """GET /api/history/{YYYY-MM}.csv[?user_id=N]: the month's changes, streamed as CSV."""

    def __init__(self, pool: Database):
        self.pool = pool

    async def on_get(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, report: str
    ) -> None:
        period, dot_csv, rest = report.rpartition(".csv")
        if not dot_csv or rest:
            raise falcon.HTTPNotFound(
                description=f"no report {report[:40]!r}: reports are /api/history/YYYY-MM.csv"
            )
        month = validation.parse_period(period)
        raw_user = req.get_param("user_id", required=False)
        user = None if raw_user is None else validation.parse_user_id(raw_user)
        # NOTE: expiries due by now go to history first, so the report is exact even when
        # the reaper has not run since; reapers of other instances skip what this one holds.
        await store.reap_expired(self.pool)
        resp.content_type = "text/csv; charset=utf-8"
        resp.set_header(
            "Content-Disposition", f'inline; filename="segments-history-{month.text}.csv"'
        )
        resp.stream = csv_lines(self.pool, month, user)


async def csv_lines(pool: Database, month: Period, user_id: int | None) -> AsyncIterator[bytes]:
    """The header, then one chunk of lines per batch the store's cursor reads."""
    yield CSV_HEADER.encode()
    async for batch in store.history_lines(pool, month.start, month.end, user_id, OPERATIONS):
        batch.append("")
        yield "\n".join(batch).encode()
