"""Measurements 1-6 and 8 (7 is cpu.py, 9 cold_start.py), listed in MEASUREMENTS. Each
starts what it needs in its own Stack, measures ours, then the peer under the same load,
stops everything, and returns ``{"data": ..., "rows": [report.Row], "failures": [str]}``.
1a, 1b and 2 are in throughput.py, 8 in jscluster.py; 3 to 6 are here.

A failure listed in "failures" (a replica that lost writes, errors under load)
makes the whole run exit non-zero; a missed target does not.
"""

from __future__ import annotations

from bench.grades import (
    backup_restore,
    cold_start,
    cpu,
    jetstream,
    jscluster,
    lag,
    wrk,
    zmqload,
)
from bench.grades.context import FULL_ROWS, GO_JS, TARGETS, Ctx, no_peer, peer_url
from bench.grades.stack import PEER_PORTS, Stack
from bench.grades.throughput import gets, set_one_replica, set_two_replicas
from bench.report import Row, ms, rate, ratio_of, times, verdict

__all__ = ["ALIASES", "MEASUREMENTS"]

LAG_LOAD = 0.8  # fraction of 1b's best rate driven during the lag probes


# --- 3 ----------------------------------------------------------------------


def replication_lag(ctx: Ctx) -> dict:
    data, notes = {}, []
    duration = max(ctx.duration, 3.0)
    with Stack("lag") as stack:
        bus = stack.bus()
        one = stack.replica(1, bus)
        two = stack.replica(2, bus, next_url=one.get_base)
        set_url = f"{one.set_base}/set"
        best = max((r["rps"] for r in ctx.results.get("set2", {}).get("ours", [])), default=0)
        wrk.run(set_url, wrk.SET_LUA, ctx.concurrencies[0], ctx.warmup)
        if best:
            data["max_rate_from"] = "1b"
        else:
            calibration = wrk.run(
                set_url, wrk.SET_LUA, max(ctx.concurrencies), max(3.0, ctx.duration / 2)
            )
            best, data["max_rate_from"] = calibration.rps, "calibration run"
        data["max_rate"] = best
        data["rate"] = best * LAG_LOAD
        ctx.log(
            f"load: {data['rate']:,.0f} sets/s on replica 1 ({LAG_LOAD:.0%} of "
            f"{best:,.0f}/s from {data['max_rate_from']})"
        )
        data["ours"] = lag.measure(set_url, f"{two.get_base}/get", data["rate"], duration, 200)
        _log_lag(ctx, "ours", data["ours"])
    if ctx.peers:
        with Stack("lag-peer") as stack:
            stack.peers("js")
            peer_set = peer_url(PEER_PORTS["js1"]["set"], "/set")
            wrk.run(peer_set, wrk.SET_LUA, ctx.concurrencies[0], ctx.warmup)
            data["peer"] = lag.measure(
                peer_set, peer_url(PEER_PORTS["js2"]["get"], "/get"), data["rate"], duration, 200
            )
            _log_lag(ctx, GO_JS, data["peer"])
    else:
        notes.append(no_peer(ctx, "3"))
    ours, peer = data["ours"], data.get("peer")
    achieved = ours["load"]["rps"]
    rows = [
        Row(
            "3",
            f"lag p50 ms @ {data['rate']:,.0f} sets/s",
            ms(ours["lag_p50_ms"]),
            ms(peer["lag_p50_ms"]) if peer else "-",
            times(ratio_of(ours["lag_p50_ms"], peer and peer["lag_p50_ms"])),
        ),
        Row(
            "3",
            f"lag p99 ms ({ours['probes']} probes)",
            ms(ours["lag_p99_ms"]),
            ms(peer["lag_p99_ms"]) if peer else "-",
            times(ratio_of(ours["lag_p99_ms"], peer and peer["lag_p99_ms"])),
            f"<= {TARGETS['lag_p99_ms']:g} ms",
            verdict(ours["lag_p99_ms"] <= TARGETS["lag_p99_ms"]),
        ),
        Row(
            "3",
            "  load achieved sets/s",
            rate(achieved),
            rate(peer["load"]["rps"]) if peer else "-",
        ),
    ]
    failures = []
    if ours["probe_errors"] or ours["load"]["non2xx"] or ours["load"]["sockerr"]:
        failures.append(
            f"3: {ours['probe_errors']} probe errors "
            f"({ours['first_probe_error']}), {ours['load']['non2xx']} non-2xx, "
            f"{ours['load']['sockerr']} socket errors under load"
        )
    if achieved < 0.9 * data["rate"]:
        notes.append(
            f"3: the paced load reached only {achieved:,.0f} of {data['rate']:,.0f} sets/s"
        )
    return {"data": data, "rows": rows, "failures": failures, "notes": notes}


def _log_lag(ctx: Ctx, who: str, result: dict) -> None:
    ctx.log(
        f"{who}: lag p50 {result['lag_p50_ms']:.2f} ms p99 {result['lag_p99_ms']:.2f} ms "
        f"over {result['probes']} probes ({result['probe_errors']} errors); load "
        f"{result['load']['rps']:,.0f}/s"
    )


# --- 4 ----------------------------------------------------------------------


def storage_actor(ctx: Ctx) -> dict:
    data = {}
    with Stack("storage") as stack:
        replica = stack.replica(1, None)
        endpoint = replica.storage_endpoint
        zmqload.sequential_sets(endpoint, min(1.0, ctx.warmup))
        data["one_in_flight"] = zmqload.sequential_sets(endpoint, ctx.duration)
        ctx.log(f"one in flight: {data['one_in_flight']['per_s']:,.0f} Set/s")
        data["pipelined"] = zmqload.pipelined_sets(
            endpoint, zmqload.random_keys(), window=1000, duration_s=ctx.duration
        )
        ctx.log(f"pipelined x1000: {data['pipelined']['per_s']:,.0f} Set/s")
    failures = [f"4: {data[k]['errors']} Set errors ({k})" for k in data if data[k]["errors"]]
    rows = [
        Row("4", "storage actor Set/s, 1 in flight", rate(data["one_in_flight"]["per_s"])),
        Row("4", "storage actor Set/s, pipelined x1000", rate(data["pipelined"]["per_s"])),
    ]
    return {"data": data, "rows": rows, "failures": failures, "notes": []}


# --- 5 ----------------------------------------------------------------------


def bus_log(ctx: Ctx) -> dict:
    data, notes = {}, []
    with Stack("bus") as stack:
        bus = stack.bus()
        zmqload.bus_publishes(bus.url, min(1.0, ctx.warmup), stream="warmup")
        data["ours"] = zmqload.bus_publishes(bus.url, ctx.duration)
        data["ours"]["fsyncs_note"] = "one fdatasync per loop turn (group commit)"
        ctx.log(f"bus: {data['ours']['per_s']:,.0f} durable appends/s")
    if ctx.peers and ctx.nats_py:
        with Stack("bus-peer") as stack:
            server = stack.nats()
            for way in ("api", "raw"):
                data[f"jetstream_{way}"] = jetstream.publishes(server.url, ctx.duration, way)
                ctx.log(
                    f"JetStream ({way}): {data[f'jetstream_{way}']['per_s']:,.0f} acked publishes/s"
                )
        notes.append(f"5: {jetstream.JETSTREAM_NOTE}")
        ctx.log(f"note: {jetstream.JETSTREAM_NOTE}")
    else:
        notes.append(no_peer(ctx, "5"))
    ours = data["ours"]["per_s"]
    target = TARGETS["bus"]
    rows = []
    for way, label in (("api", "js.publish x256"), ("raw", "raw PubAck x256")):
        peer = data.get(f"jetstream_{way}")
        r = ratio_of(ours, peer and peer["per_s"])
        rows.append(
            Row(
                "5",
                f"bus appends/s vs JetStream {label}",
                rate(ours),
                rate(peer["per_s"]) if peer else "-",
                times(r),
                f">= {target:g}x JetStream",
                "no peer" if r is None else verdict(r >= target),
            )
        )
    failures = []
    for key in ("ours", "jetstream_api", "jetstream_raw"):
        if key in data and data[key]["errors"]:
            failures.append(f"5 {key}: {data[key]['errors']} errors ({data[key]['first_error']})")
    return {"data": data, "rows": rows, "failures": failures, "notes": notes}


# --- 6 ----------------------------------------------------------------------


def backup_and_restore(ctx: Ctx) -> dict:
    with Stack("backup") as stack:
        data = backup_restore.measure(stack, ctx.rows)
    scale = ctx.rows / FULL_ROWS
    scaled = "" if ctx.rows == FULL_ROWS else f" (scaled to {ctx.rows:,} rows)"
    backup_limit, restore_limit = TARGETS["backup_s"] * scale, TARGETS["restore_s"] * scale
    label = f"{ctx.rows / 1e6:g}M" if ctx.rows >= 100_000 else f"{ctx.rows:,}"
    ctx.log(
        f"prefill {data['prefill']['per_s']:,.0f} Set/s; backup {data['backup_s']:.2f} s "
        f"(getter RSS +{data['getter_rss_growth_mb']:.1f} MB); restore "
        f"{data['restore_s']:.2f} s (storage peak RSS {data['storage2_rss_peak_mb']:.0f} MB)"
    )
    rows = [
        Row(
            "6",
            f"prefill {label} pipelined Set/s (2 hops, durable)",
            rate(data["prefill"]["per_s"]),
        ),
        Row(
            "6",
            "  bytes per user (storage RSS after - before prefill)",
            f"{data['bytes_per_user']:.0f}",
            "",
            "",
            f"<= {TARGETS['bytes_per_user']:g}",
            verdict(data["bytes_per_user"] <= TARGETS["bytes_per_user"]),
        ),
        Row(
            "6",
            f"backup {label} rows: seconds",
            f"{data['backup_s']:.2f}",
            "",
            "",
            f"<= {backup_limit:g} s{scaled}",
            verdict(data["backup_s"] <= backup_limit),
        ),
        Row("6", "  backup rows/s", rate(data["backup_rows_per_s"])),
        Row(
            "6",
            "  the same rows packed (what a restore asks for): seconds",
            f"{data['packed_backup_s']:.2f}",
        ),
        Row(
            "6",
            "  getter worker RSS growth MB",
            f"{data['getter_rss_growth_mb']:.1f}",
            "",
            "",
            f"< {TARGETS['getter_rss_mb']:g} MB",
            verdict(data["getter_rss_growth_mb"] < TARGETS["getter_rss_mb"]),
        ),
        Row(
            "6",
            f"restore {label} rows: seconds to ready",
            f"{data['restore_s']:.2f}",
            "",
            "",
            f"<= {restore_limit:g} s{scaled}",
            verdict(data["restore_s"] <= restore_limit),
        ),
        Row("6", "  restore rows/s", rate(data["restore_rows_per_s"])),
        Row(
            "6",
            "  restore to ready / backup, same run",
            f"{data['restore_to_backup']:.2f}x",
            "",
            "",
            f"<= {TARGETS['restore_to_backup']:g}x",
            verdict(data["restore_to_backup"] <= TARGETS["restore_to_backup"]),
        ),
        Row(
            "6",
            "  restore to ready / packed backup, same run",
            f"{data['restore_to_packed_backup']:.2f}x",
        ),
        Row(
            "6",
            "  CPU s: restoring storage actor / backup's storage+workers",
            f"{data['storage2_cpu_s']:.2f} / {data['backup_cpu_s']:.2f}",
        ),
        Row(
            "6",
            "  of which loading rows (replica 2's log)",
            "-"
            if data["restore_load_s_logged"] is None
            else f"{data['restore_load_s_logged']:.1f}",
        ),
        Row("6", "  replica 2 storage peak RSS MB", f"{data['storage2_rss_peak_mb']:.0f}"),
        Row("6", "  replica 2 storage RSS once ready MB", f"{data['storage2_rss_ready_mb']:.0f}"),
        Row(
            "6",
            "  replica 2 storage peak / once ready",
            f"{data['storage2_peak_to_ready']:.2f}x",
            "",
            "",
            f"<= {TARGETS['restore_peak_rss']:g}x",
            verdict(data["storage2_peak_to_ready"] <= TARGETS["restore_peak_rss"]),
        ),
    ]
    return {"data": data, "rows": rows, "failures": [], "notes": []}


MEASUREMENTS = {  # name: (id, title, function, needs wrk)
    "set1": ("1a", "HTTP sets, one standalone replica vs go-grades", set_one_replica, True),
    "set2": (
        "1b",
        "HTTP sets, two replicas + bus (durable) vs go-grades-js",
        set_two_replicas,
        True,
    ),
    "get": ("2", "HTTP gets, one replica vs go-grades", gets, True),
    "lag": ("3", "replication lag under 80% load", replication_lag, True),
    "storage": ("4", "storage actor over ZeroMQ", storage_actor, False),
    "bus": ("5", "bus log durable appends vs NATS JetStream", bus_log, False),
    "backup": ("6", "backup and restore of a large replica", backup_and_restore, False),
    "cpu": ("7", "CPU per durable set, by process", cpu.measure, True),
    "js": (
        "8",
        "two replicas on a 3-node JetStream cluster (sync always / 2m) vs "
        "go-grades-js on the same cluster",
        jscluster.js_cluster,
        True,
    ),
    "start": (
        "9",
        "fresh two-replica cluster (bus and both replicas launched at once) accepts sets on both",
        cold_start.measure,
        False,
    ),
}
ALIASES = {info[0]: name for name, info in MEASUREMENTS.items()}
