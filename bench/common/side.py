"""Ours beside a yardstick: alternate runs in one process tree, ratios, table rows.

Both sides of a comparison run in the same benchmark run, one after the other and
alternately (yardstick, ours, yardstick, ours, ...), so a change in what else the
machine is doing reaches both. A figure is the mean over its rounds.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bench import report
from bench.common import wrk
from bench.common.cpu import CpuMeter
from bench.common.pg import PgbenchResult
from bench.common.wrk import WrkResult

__all__ = [
    "Figure",
    "add_comparison",
    "alternate",
    "combine",
    "cpu_row",
    "from_pgbench",
    "from_wrk",
    "latency_rows",
    "pgbench_side",
    "rate_row",
    "wrk_side",
]


@dataclass
class Figure:
    """One side's figure: a rate (per second) and latencies, with its raw runs."""

    rate: float
    p50_ms: float | None = None
    p99_ms: float | None = None
    errors: int = 0
    runs: list[dict] = field(default_factory=list)
    cpu_us: dict[str, float] = field(default_factory=dict)
    """CPU microseconds per operation, by process group (bench.common.cpu)."""

    def as_dict(self) -> dict:
        return asdict(self)


def from_wrk(result: WrkResult) -> Figure:
    return Figure(
        result.rps, result.p50_ms, result.p99_ms, result.non2xx + result.sockerr, [result.as_dict()]
    )


def from_pgbench(result: PgbenchResult) -> Figure:
    return Figure(result.tps, result.p50_ms, result.p99_ms, result.failed, [result.as_dict()])


def _mean(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.fmean(present) if present else None


def combine(figures: list[Figure]) -> Figure:
    names = {name for f in figures for name in f.cpu_us}
    return Figure(
        rate=statistics.fmean(f.rate for f in figures),
        p50_ms=_mean([f.p50_ms for f in figures]),
        p99_ms=_mean([f.p99_ms for f in figures]),
        errors=sum(f.errors for f in figures),
        runs=[run for f in figures for run in f.runs],
        cpu_us={
            name: round(_mean([f.cpu_us.get(name) for f in figures]), 1) for name in sorted(names)
        },
    )


def alternate(
    ours: Callable[[], Figure],
    peer: Callable[[], Figure],
    rounds: int,
    log: Callable[[str], None] = print,
) -> tuple[Figure, Figure]:
    """Run peer, ours, peer, ours, ... `rounds` times each; the mean figure of each side."""
    mine, theirs = [], []
    for index in range(rounds):
        theirs.append(peer())
        mine.append(ours())
        log(
            f"  round {index + 1}/{rounds}: ours {mine[-1].rate:,.0f}/s "
            f"(p50 {report.ms(mine[-1].p50_ms)} ms), yardstick {theirs[-1].rate:,.0f}/s "
            f"(p50 {report.ms(theirs[-1].p50_ms)} ms)"
        )
    return combine(mine), combine(theirs)


def rate_row(
    id_: str,
    what: str,
    ours: Figure,
    peer: Figure | None,
    target: float | None,
    peer_name: str,
    unit: str = "/s",
) -> report.Row:
    """A rate row: ours, the yardstick's, ours/yardstick and PASS/FAIL against target."""
    ratio = report.ratio_of(ours.rate, peer.rate if peer else None)
    return report.Row(
        id_,
        what,
        f"{report.rate(ours.rate)}{unit}",
        f"{report.rate(peer.rate)}{unit} {peer_name}" if peer else "",
        report.times(ratio),
        f">= {target:g}x" if target is not None and peer else "",
        report.verdict(None if target is None or ratio is None else ratio >= target),
    )


def latency_rows(
    id_: str, what: str, ours: Figure, peer: Figure | None, peer_name: str
) -> list[report.Row]:
    """p50 and p99 rows (ms) with ours/yardstick; no target (below 1 is faster)."""
    rows = []
    for name in ("p50_ms", "p99_ms"):
        mine = getattr(ours, name)
        theirs = getattr(peer, name) if peer else None
        rows.append(
            report.Row(
                f"{id_}.{name[:3]}",
                f"{what} {name[:3]}",
                f"{report.ms(mine)} ms",
                f"{report.ms(theirs)} ms {peer_name}" if theirs is not None else "",
                report.times(report.ratio_of(mine, theirs)),
            )
        )
    return rows


def wrk_side(
    url: str,
    script,
    clients: int,
    duration_s: float,
    env: dict | None = None,
    cpu: dict | None = None,
) -> Callable[[], Figure]:
    """One side that is a wrk run of `script` against `url`; with `cpu` (groups of
    bench.common.cpu.CpuMeter), the CPU per request of each group too."""

    def run() -> Figure:
        with CpuMeter(cpu or {}, label=Path(script).stem if cpu else "") as meter:
            figure = from_wrk(wrk.run(url, script, clients, duration_s, env=env))
        if cpu:
            figure.cpu_us = meter.per_op_us(figure.runs[0]["requests"])
        return figure

    return run


def pgbench_side(
    pg, dbname: str, mode: str, clients: int, duration_s: float, cpu: dict | None = None
) -> Callable[[], Figure]:
    """One side that is a pgbench run (bench.common.pg.Postgres.pgbench)."""

    def run() -> Figure:
        with CpuMeter(cpu or {}) as meter:
            figure = from_pgbench(pg.pgbench(dbname, mode, clients, duration_s))
        if cpu:
            figure.cpu_us = meter.per_op_us(figure.runs[0]["transactions"])
        return figure

    return run


def cpu_row(id_: str, ours: Figure, peer: Figure | None, peer_name: str) -> report.Row | None:
    """CPU microseconds per operation by process group, ours and the yardstick's."""

    def text(figure: Figure | None) -> str:
        if figure is None or not figure.cpu_us:
            return ""
        return " + ".join(f"{name} {us:,.0f}" for name, us in figure.cpu_us.items() if us)

    if not ours.cpu_us:
        return None
    total = sum(ours.cpu_us.values())
    theirs = sum(peer.cpu_us.values()) if peer and peer.cpu_us else None
    return report.Row(
        f"{id_}.cpu",
        "  CPU us per op, by process",
        text(ours),
        f"{text(peer)} {peer_name}" if theirs else "",
        report.times(report.ratio_of(total, theirs)),
    )


def add_comparison(
    out,
    id_: str,
    what: str,
    ours: Figure,
    peer: Figure,
    peer_name: str,
    target: float | None,
    unit: str = "/s",
    latency_what: str = "",
) -> None:
    """The rate row, its p50/p99 rows when ours has latencies, a failure for errors."""
    out.rows.append(rate_row(id_, what, ours, peer, target, peer_name, unit))
    if ours.p50_ms is not None:
        out.rows.extend(
            latency_rows(id_, latency_what or what.split(" (")[0], ours, peer, peer_name)
        )
    row = cpu_row(id_, ours, peer, peer_name)
    if row is not None:
        out.rows.append(row)
    if ours.errors:
        out.fail(f"{id_}: {ours.errors} requests answered non-2xx or failed")
