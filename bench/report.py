"""The results table: one row per figure, ours next to the peer's, with the ratio and
the target; and, as ``python -m bench.report FILE.json...``, the chart of the headline
ratios across those runs (bench.charts).

Ratios are always ours / peer. For a rate (sets/s, gets/s, appends/s) above 1
means we are faster; for a time (latency, lag) below 1 means we are faster.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

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


def main(argv: list[str] | None = None) -> int:
    """Draw the ratio of each headline figure across the given result files, in order."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.report",
        description="Chart the ratio (ours / yardstick) of each headline figure across "
        "benchmark result files, one x position per file, in the order given.",
    )
    parser.add_argument("files", nargs="+", type=Path, help="bench/results/*.json")
    parser.add_argument(
        "--out", type=Path, help="the PNG to write (default: trend.png beside the last file)"
    )
    args = parser.parse_args(argv)
    from bench import charts  # NOTE: matplotlib only when charting, not for every table

    records = []
    for path in args.files:
        try:
            records.append((path.stem, json.loads(path.read_text())))
        except (OSError, ValueError) as exc:
            parser.error(f"{path}: {exc}")
    out = charts.draw_trend(records, args.out or args.files[-1].with_name("trend.png"))
    print(f"chart: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
