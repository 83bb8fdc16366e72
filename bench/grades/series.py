"""wrk series for the HTTP measurements (1a, 1b, 2, 8): one run per concurrency, and the
report's rows that hold ours against the peer's at each."""

from __future__ import annotations

from bench.grades import wrk
from bench.grades.context import Ctx
from bench.report import Row, ms, rate, ratio_of, times, verdict

__all__ = ["series_rows", "wrk_series"]


def wrk_series(ctx: Ctx, label: str, url: str, script, env: dict | None = None) -> list[dict]:
    """A short warmup, then one wrk run per concurrency."""
    wrk.run(url, script, ctx.concurrencies[0], ctx.warmup, env=env)
    results = []
    for connections in ctx.concurrencies:
        result = wrk.run(url, script, connections, ctx.duration, env=env)
        ctx.log(
            f"{label} c={connections}: {result.rps:,.0f}/s p50 {result.p50_ms:.2f} ms "
            f"p99 {result.p99_ms:.2f} ms non-2xx {result.non2xx} sockerr {result.sockerr}"
        )
        results.append(result.as_dict())
    return results


def series_rows(
    id_: str, noun: str, ours: list[dict], peer: list[dict] | None, target: float, peer_name: str
) -> tuple[list[Row], list[str]]:
    rows, failures = [], []
    peer_by_c = {r["connections"]: r for r in peer or []}
    for mine in ours:
        c = mine["connections"]
        theirs = peer_by_c.get(c)
        r = ratio_of(mine["rps"], theirs and theirs["rps"])
        errors = mine["non2xx"] + mine["sockerr"]
        ours_cell = rate(mine["rps"]) + (f" ({errors} errors)" if errors else "")
        peer_cell = (
            (
                rate(theirs["rps"])
                + (
                    f" ({theirs['non2xx'] + theirs['sockerr']} errors)"
                    if theirs["non2xx"] + theirs["sockerr"]
                    else ""
                )
            )
            if theirs
            else "-"
        )
        rows.append(
            Row(
                id_,
                f"{noun}/s c={c}",
                ours_cell,
                peer_cell,
                times(r),
                f">= {target:g}x {peer_name}",
                "no peer" if r is None else verdict(r >= target and not errors),
            )
        )
        p50 = ratio_of(mine["p50_ms"], theirs and theirs["p50_ms"])
        p99 = ratio_of(mine["p99_ms"], theirs and theirs["p99_ms"])
        rows.append(
            Row(
                id_,
                f"  p50 / p99 ms c={c}",
                f"{ms(mine['p50_ms'])} / {ms(mine['p99_ms'])}",
                f"{ms(theirs['p50_ms'])} / {ms(theirs['p99_ms'])}" if theirs else "-",
                f"{times(p50)} / {times(p99)}" if theirs else "",
            )
        )
        if errors:
            failures.append(
                f"{id_} c={c}: {mine['non2xx']} non-2xx and {mine['sockerr']} "
                f"socket errors on our side"
            )
    return rows, failures
