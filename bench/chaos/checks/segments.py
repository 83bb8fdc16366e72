"""segments: every 2xx change is in the history, each user's membership equals the
replay of the history, and no answer named a segment whose TTL had passed.

The history's timestamps are the database's clock_timestamp() at the change, the
workload's times are time.time() around each request, on the same machine: the
state a 2xx answer named must be the history's replay at some moment while that
request was in flight.
"""

from __future__ import annotations

import csv
import io
import time
from datetime import UTC, datetime
from functools import partial

import requests

from actors.runtime.testing import HarnessError, wait_until
from bench.chaos.checks import Finding
from bench.chaos.workloads.segments import MAX_TTL_S, Change, SegmentsWorkload

__all__ = ["check_segments"]

ADD, REMOVE = "добавление", "удаление"
CLOCK_SLACK_S = 0.05
"""Tolerance between the client's and the database's reading of the same clock."""
SETTLE_TIMEOUT_S = 30.0
"""How long the reaper may take to record the last expiries."""

Row = tuple[float, str, str]  # (at, slug, operation)


def _history(base: str, user_id: int, months: set[str]) -> list[Row]:
    rows: list[Row] = []
    for month in sorted(months):
        url = requests.get(
            f"{base}/api/history", params={"period": month, "user_id": user_id}, timeout=10
        ).json()["url"]
        text = requests.get(url, timeout=30).text
        for line in csv.DictReader(io.StringIO(text), delimiter=";"):
            at = datetime.fromisoformat(line["timestamp"].replace("Z", "+00:00")).timestamp()
            rows.append((at, line["segment"], line["operation"]))
    return sorted(rows)


def _replay(rows: list[Row], until: float) -> list[str]:
    held: set[str] = set()
    for at, slug, operation in rows:
        if at > until:
            break
        (held.add if operation == ADD else held.discard)(slug)
    return sorted(held)


def _in_history(change: Change, rows: list[Row]) -> bool:
    moments = [
        change.sent - CLOCK_SLACK_S,
        *(
            at
            for at, _, _ in rows
            if change.sent - CLOCK_SLACK_S <= at <= change.done + CLOCK_SLACK_S
        ),
    ]
    return any(_replay(rows, moment) == change.segments for moment in moments)


def _expired_served(changes: list[Change]) -> list[str]:
    """2xx answers naming a segment whose last 2xx add had a TTL that had passed
    (users with a change of unknown outcome in between are skipped)."""
    found = []
    for k, change in enumerate(changes):
        for slug in change.segments or []:
            if slug in change.add:
                continue  # (re)added by this very change
            for earlier in reversed(changes[:k]):
                if earlier.user_id != change.user_id:
                    continue
                if earlier.segments is None and (earlier.status == 0 or earlier.status >= 500):
                    break  # unknown outcome: it may have re-added the segment
                if slug in earlier.add or slug in earlier.remove:
                    expiry = earlier.done + earlier.ttl[slug] if slug in earlier.ttl else None
                    if expiry is not None and change.sent > expiry + CLOCK_SLACK_S:
                        late = change.sent - expiry
                        found.append(f"user {change.user_id}: {slug} served {late:.2f} s expired")
                    break
    return found


def _settled(base: str, user_id: int, months: set[str]) -> list[Row] | None:
    """The user's history once its replay equals the segments served now, else None."""
    try:
        rows = _history(base, user_id, months)
        response = requests.get(f"{base}/api/users/{user_id}/segments", timeout=10)
        served = response.json()["segments"]
    except (requests.RequestException, ValueError, KeyError):
        return None  # restarting after the last kill: ask again
    return rows if _replay(rows, time.time()) == served else None


def check_segments(base: str, workload: SegmentsWorkload) -> list[Finding]:
    changes = list(workload.changes)
    users = sorted({c.user_id for c in changes})
    months = {
        datetime.fromtimestamp(t, UTC).strftime("%Y-%m") for c in changes for t in (c.sent, c.done)
    }
    last = max((c.done for c in changes), default=time.time())
    wait_until(lambda: time.time() > last + MAX_TTL_S, MAX_TTL_S + 5, "the last TTLs to pass")
    missing, differ = [], []
    histories = {}
    for user_id in users:
        try:
            histories[user_id] = wait_until(
                partial(_settled, base, user_id, months),
                SETTLE_TIMEOUT_S,
                f"user {user_id}'s membership to equal the history's replay",
                0.5,
            )
        except HarnessError:
            differ.append(f"user {user_id}: membership differs from the history's replay")
            histories[user_id] = _history(base, user_id, months)
    answered = [c for c in changes if c.segments is not None]
    for change in answered:
        if not _in_history(change, histories[change.user_id]):
            missing.append(
                f"user {change.user_id}: answer {change.segments} at {change.sent:.3f} "
                "matches no replay of the history"
            )
    expired = _expired_served(changes)
    return [
        Finding(
            "segments",
            not missing,
            f"2xx answers in the history: {len(answered) - len(missing)} of {len(answered)}",
        ),
        Finding("segments", not differ, f"membership = history replay for all {len(users)} users"),
        Finding(
            "segments",
            not expired,
            f"nothing expired served ({len(expired)} answers named an expired segment)",
        ),
        *[Finding("segments", False, f"  {p}") for p in (missing + differ + expired)[:8]],
    ]
