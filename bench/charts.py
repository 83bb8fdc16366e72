"""Charts of the benchmark results: one run's figures beside their yardsticks, and the
ratios of the headline figures across runs.

Both read the JSON a run writes (bench/common/results.py, bench/grades/run.py): its
``table`` rows, the same cells the printed table shows, so a chart says what the table
says. A row is a figure when it has a ratio and both its cells are numbers: a rate
(``/s`` in the cell or the measurement's name) or a latency (``ms``, ``s``, p50/p99).
A pair cell (``5.51 / 21.6`` under ``p50 / p99 ms``) is two figures. CPU breakdowns,
checks and figures without a yardstick are left out: there is nothing to set them beside.

    python -m bench.report bench/results/*.json [--out trend.png]   # ratios across runs

The run's chart is written by the run itself, next to its JSON (``save_beside``).
"""

from __future__ import annotations

import math
import re
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: no display on a server or in CI

import matplotlib.pyplot as plt  # noqa: E402

__all__ = [
    "Figure",
    "draw_run",
    "draw_trend",
    "figures",
    "save_beside",
    "service_of",
    "trend_series",
]

RATE, LATENCY = "rate", "latency"
OURS_COLOUR, PEER_COLOUR = "#1f77b4", "#9a9a9a"
PANEL_COLUMNS = 4
PANEL_INCHES = (3.4, 2.7)
DPI = 100
TREND_MAX_INCHES = 16.0

_NUMBER = re.compile(r"^\s*(\d[\d,]*(?:\.\d+)?)\s*(/s|ms|s)?(?:\s+(.*?))?\s*$")
_PAIR = re.compile(r"(\S+) / (\S+)")
_LATENCY_WORDS = re.compile(r"\b(p50|p90|p99|latency|lag)\b|\bms\b")


@dataclass(frozen=True)
class Figure:
    """One measured figure and its yardstick, as the table row gives them."""

    id: str
    what: str
    kind: str
    """RATE (higher is better) or LATENCY (lower is better)."""
    unit: str
    ours: float
    peer: float
    peer_name: str
    target: str
    """The row's target ("" for a figure that is not judged)."""
    ratio: float
    """ours / peer as the table says it (from the unrounded figures)."""

    @property
    def key(self) -> str:
        return f"{self.id} {self.what}"

    def target_ratio(self) -> float | None:
        """The ratio the target asks for (``>= 0.5x go-grades`` -> 0.5), if any."""
        found = re.search(r"(\d+(?:\.\d+)?)x", self.target)
        return float(found.group(1)) if found else None


def _number(cell: str) -> tuple[float, str, str] | None:
    """(value, unit, label) of a cell like ``2,324/s``, ``3.91 ms tpcb-like``, ``9,928``."""
    found = _NUMBER.match(cell)
    if not found or (found.group(3) or "").startswith("/"):  # "12.9 / 158": a pair
        return None
    return float(found.group(1).replace(",", "")), found.group(2) or "", found.group(3) or ""


def _kind(what: str, unit: str) -> str | None:
    if unit == "/s" or (not unit and "/s" in what):
        return RATE
    if unit in ("ms", "s") or _LATENCY_WORDS.search(what):
        return LATENCY
    return None


def _parts(row: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(what, ours, peer, ratio) per figure of a row: two for a ``p50 / p99`` pair."""
    cells = [row[name].split(" / ") for name in ("ours", "peer", "ratio")]
    what = row["what"].strip()
    pair = _PAIR.search(what)
    if all(len(cell) == 2 for cell in cells) and pair:
        return [
            (what[: pair.start()] + pair.group(k) + what[pair.end() :], *(c[k - 1] for c in cells))
            for k in (1, 2)
        ]
    return [(what, row["ours"], row["peer"], row["ratio"])]


def figures(record: dict[str, Any]) -> list[Figure]:
    """The figures of a run's table that have a yardstick, in table order."""
    found: list[Figure] = []
    peer_names: dict[str, str] = {}  # a latency row under its rate row names no peer
    for row in record.get("table", []):
        if not row.get("ratio"):
            continue
        for what, ours_cell, peer_cell, ratio_cell in _parts(row):
            ours, peer = _number(ours_cell), _number(peer_cell)
            ratio = re.fullmatch(r"\s*(\d+(?:\.\d+)?)x\s*", ratio_cell)
            if ours is None or peer is None or ratio is None or not peer[0]:
                continue
            unit = ours[1] or peer[1] or ("ms" if re.search(r"\bms\b", what) else "")
            kind = _kind(what, unit)
            if kind is None:
                continue
            target = row.get("target", "")
            named = peer[2] or (target.split("x ", 1)[1] if "x " in target else "")
            name = peer_names[row["id"]] = named or peer_names.get(row["id"], "")
            unit = unit or ("/s" if kind == RATE else "")
            found.append(
                Figure(
                    row["id"],
                    what,
                    kind,
                    unit,
                    ours[0],
                    peer[0],
                    name,
                    target,
                    float(ratio.group(1)),
                )
            )
    return found


def service_of(record: dict[str, Any]) -> str:
    """grades' runner writes no "service" (its files are named by time only)."""
    return str(record.get("service", "grades"))


def _run_title(record: dict[str, Any]) -> str:
    machine = record.get("machine", {})
    title = f"{service_of(record)} bench {record.get('started_at', '')}"
    if machine.get("cpus"):
        title += f", {machine['cpus']} cores"
    others = record.get("others_cores")
    if others:
        title += f"; other work used {others:.1f} cores meanwhile"
    return title + ": ours (blue) beside the yardstick (grey), same run"


def _label(value: float, unit: str) -> str:
    text = f"{value:,.0f}" if value >= 100 else f"{value:.2f}" if value < 10 else f"{value:.1f}"
    return f"{text}{unit if unit == '/s' else ' ' + unit if unit else ''}"


def draw_run(record: dict[str, Any], out: Path) -> Path | None:
    """One panel per figure: two bars, ours and the yardstick. None if the run has none."""
    found = figures(record)
    if not found:
        return None
    columns = min(PANEL_COLUMNS, len(found))
    rows = math.ceil(len(found) / columns)
    width, height = PANEL_INCHES
    fig, axes = plt.subplots(
        rows,
        columns,
        figsize=(width * columns, height * rows + 0.6),
        squeeze=False,
        dpi=DPI,
        layout="constrained",  # room for the suptitle, however many rows
    )
    for ax, figure in zip(axes.flat, found):
        bars = ax.bar(
            ["ours", figure.peer_name or "yardstick"],
            [figure.ours, figure.peer],
            color=[OURS_COLOUR, PEER_COLOUR],
        )
        ax.bar_label(bars, [_label(figure.ours, figure.unit), _label(figure.peer, figure.unit)])
        better = "higher" if figure.kind == RATE else "lower"
        ax.set_title(
            "\n".join(textwrap.wrap(f"{figure.key}", 38))
            + f"\n{figure.ratio:.2f}x ({better} is better)",
            fontsize=9,
        )
        ax.set_ylim(0, max(figure.ours, figure.peer) * 1.25)
        ax.tick_params(labelsize=8)
    for ax in list(axes.flat)[len(found) :]:
        ax.axis("off")
    fig.suptitle(_run_title(record), fontsize=10)
    fig.savefig(out)
    plt.close(fig)
    return out


def save_beside(json_path: Path, record: dict[str, Any]) -> Path | None:
    """The run's chart next to its JSON (same name, .png); says where, or why not."""
    try:
        out = draw_run(record, json_path.with_suffix(".png"))
    except Exception as exc:  # noqa: BLE001 - a chart must not lose the run's results
        print(f"chart not drawn: {type(exc).__name__}: {exc}", flush=True)
        return None
    if out is not None:
        print(f"chart: {out}", flush=True)
    return out


def trend_series(
    records: list[dict[str, Any]],
) -> tuple[dict[str, list[float]], dict[str, float | None]]:
    """Per headline figure ("<service> <id> <what>"): its ratio in each record (NaN where
    the record lacks it), and the ratio its target asks for.

    Headline figures are the judged ones (a target); a record without any adds all its
    figures.
    """
    series: dict[str, list[float]] = {}
    targets: dict[str, float | None] = {}
    for index, record in enumerate(records):
        found = figures(record)
        for figure in [f for f in found if f.target] or found:
            key = f"{service_of(record)} {figure.key}"
            series.setdefault(key, [math.nan] * len(records))[index] = figure.ratio
            targets[key] = figure.target_ratio()
    return series, targets


def draw_trend(records: list[tuple[str, dict[str, Any]]], out: Path) -> Path:
    """The ratio (ours / yardstick) of each headline figure, one x position per named
    record; a dashed line of the same colour is the figure's target, 1.0 is parity."""
    names = [name for name, _ in records]
    series, targets = trend_series([record for _, record in records])
    width = min(TREND_MAX_INCHES, max(7.0, 0.9 * len(records) + 5))
    fig, ax = plt.subplots(figsize=(width, 5.5), dpi=DPI)
    for key, ratios in series.items():
        (line,) = ax.plot(range(len(records)), ratios, marker="o", label=key)
        if targets[key] is not None:
            ax.axhline(targets[key], color=line.get_color(), linestyle="--", linewidth=0.8)
    ax.axhline(1.0, color="black", linewidth=0.6)
    ax.set_xticks(range(len(records)), names, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("ours / yardstick (rates: higher is better)")
    ax.set_ylim(bottom=0)
    ax.set_title("Headline ratios across runs (dashed: target)", fontsize=10)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    return out
