"""Sample rows and metadata the backup tests of both forms share."""

from __future__ import annotations

META = {
    "generated_at_ms": 1_790_000_000_123,
    "position": 1234,
    "log_id": "ab12cd34",
    "replica_id": 2,
    "hlc": 7_331_840_000_000_001,
    "rows": 3,
}
GENERATED_AT = "2026-09-21T14:13:20.123Z"

AWKWARD_IDS = [
    "plain",
    "comma,inside",
    'double"quote',
    '"',
    "new\nline",
    "crlf\r\nend",
    " leading and trailing spaces ",
    "ünïcødé 😀",
    "x" * 128,
    "é" * 64,
    "=key=value=",
    "#hash",
]


def make_row(i: int, user_id: str) -> list:
    return [user_id, i, -i, 2**63 - 1, -(2**63), i << 10 | 1, i << 10 | 2, 0, 5]
