"""Every SQL statement of segments, one module per concern: the HTTP side's `segments`,
`users` and `history`, and the reaper's `expiry`; `base` holds the schema, the errors,
the rollout lock and readiness. Import the names from here
(`from actors.segments import store`).

Concurrency is settled by the database: changes of one user serialize on the user's row,
a change holds the segments it names `FOR SHARE` so a deletion waits for it, a percent
segment's creation and a user's first transaction exclude each other with an advisory
lock, and every transaction stamps its history rows with the time it took effect (each
module's docstring says how).
"""

from actors.segments.changes import AddItem, ExpiryInPast, SegmentsError
from actors.segments.store.base import SCHEMA_DIR, SegmentExists, UnknownSegments, ping
from actors.segments.store.expiry import REAP_BATCH_ROWS, reap_expired, seconds_to_next_expiry
from actors.segments.store.history import history_lines
from actors.segments.store.segments import (
    Created,
    SegmentInfo,
    create_segment,
    delete_segment,
    list_segments,
)
from actors.segments.store.users import change_user_segments, user_segments

__all__ = [
    "REAP_BATCH_ROWS",
    "SCHEMA_DIR",
    "AddItem",
    "Created",
    "ExpiryInPast",
    "SegmentExists",
    "SegmentInfo",
    "SegmentsError",
    "UnknownSegments",
    "change_user_segments",
    "create_segment",
    "delete_segment",
    "history_lines",
    "list_segments",
    "ping",
    "reap_expired",
    "seconds_to_next_expiry",
    "user_segments",
]
