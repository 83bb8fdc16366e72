"""The results table: one row per figure, ours next to the peer's, with the ratio and
the target.

Ratios are always ours / peer. For a rate (sets/s, gets/s, appends/s) above 1
means we are faster; for a time (latency, lag) below 1 means we are faster.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

PASS, FAIL = "PASS", "FAIL"


@dataclass
class Row:
    id: str
    what: str
    ours: str
    peer: str = ""
    ratio: str = ""
    target: str = ""
    result: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def rate(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.2f}" if value < 10 else f"{value:.1f}" if value < 100 else f"{value:.0f}"


def ratio_of(ours: float | None, peer: float | None) -> float | None:
    if ours is None or not peer:
        return None
    return ours / peer


def times(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}x"


def verdict(ok: bool | None) -> str:
    return "" if ok is None else PASS if ok else FAIL


HEADERS = Row("ID", "MEASUREMENT", "OURS", "PEER", "OURS/PEER", "TARGET", "RESULT")


def render(rows: list[Row]) -> str:
    table = [HEADERS, *rows]
    fields = list(asdict(HEADERS))
    widths = {f: max(len(getattr(r, f)) for r in table) for f in fields}
    right = {"ours", "peer", "ratio"}
    lines = []
    for index, row in enumerate(table):
        cells = [
            getattr(row, f).rjust(widths[f])
            if f in right and index
            else getattr(row, f).ljust(widths[f])
            for f in fields
        ]
        lines.append("  ".join(cells).rstrip())
        if index == 0:
            lines.append("  ".join("-" * widths[f] for f in fields))
    return "\n".join(lines)
