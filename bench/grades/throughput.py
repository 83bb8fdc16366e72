"""Measurements 1a, 1b and 2: HTTP sets on one replica and on two with the bus, and gets,
each against its Go peer under the same wrk load (and 2 against the bare HTTP ceiling)."""

from __future__ import annotations

from actors.grades.config import DEFAULT_HTTP_WORKERS
from bench.common.ceiling import CONSTANT_LUA, Ceiling
from bench.grades import httppipe, verify, wrk, zmqload
from bench.grades.context import GO, GO_JS, TARGETS, Ctx, no_peer, peer_url
from bench.grades.series import series_rows, wrk_series
from bench.grades.stack import PEER_PORTS, BenchError, Stack
from bench.report import Row, rate, ratio_of, times, verdict

__all__ = ["gets", "set_one_replica", "set_two_replicas"]

GET_IDS = 20_000  # get.lua asks for ids 1..GET_IDS


# --- 1a ---------------------------------------------------------------------


def set_one_replica(ctx: Ctx) -> dict:
    data, notes = {}, []
    with Stack("set1") as stack:
        replica = stack.replica(1, None)
        data["ours"] = wrk_series(
            ctx, "ours (1 replica, standalone)", f"{replica.set_base}/set", wrk.SET_LUA
        )
    if ctx.peers:
        with Stack("set1-peer") as stack:
            stack.peers("plain")
            set_url = peer_url(PEER_PORTS["plain"]["set"], "/set")
            data["peer"] = wrk_series(ctx, GO, set_url, wrk.SET_LUA)
    else:
        notes.append(no_peer(ctx, "1a"))
    rows, failures = series_rows(
        "1a", "1 replica sets", data["ours"], data.get("peer"), TARGETS["one_replica"], GO
    )
    return {"data": data, "rows": rows, "failures": failures, "notes": notes}


# --- 1b ---------------------------------------------------------------------


def set_two_replicas(ctx: Ctx) -> dict:
    data, notes, failures = {}, [], []
    with Stack("set2") as stack:
        bus = stack.bus()
        one = stack.replica(1, bus)
        two = stack.replica(2, bus, next_url=one.get_base)
        data["ours"] = wrk_series(
            ctx, "ours (2 replicas + bus, durable)", f"{one.set_base}/set", wrk.SET_LUA
        )
        try:
            data["verify"] = verify.replicas_identical(one.get_base, two.get_base)
            ctx.log(f"verified: {data['verify']['rows']} rows identical on replicas 1 and 2")
        except BenchError as exc:
            data["verify"] = {"identical": False, "error": str(exc)}
            stack.keep_logs = True
            failures.append(f"1b: {exc}")
            ctx.log(f"!!! VERIFICATION FAILED: {exc}")
    if ctx.peers:
        with Stack("set2-peer") as stack:
            stack.peers("js")
            data["peer"] = wrk_series(
                ctx, GO_JS, peer_url(PEER_PORTS["js1"]["set"], "/set"), wrk.SET_LUA
            )
            data["peer_verify"] = verify.peers_identical(
                peer_url(PEER_PORTS["js1"]["get"], ""), peer_url(PEER_PORTS["js2"]["get"], "")
            )
            ctx.log(
                f"{GO_JS} replicas identical: {data['peer_verify']['identical']} "
                f"({data['peer_verify']['rows']} rows)"
            )
    else:
        notes.append(no_peer(ctx, "1b"))
    rows, errors = series_rows(
        "1b",
        "2 replicas durable sets",
        data["ours"],
        data.get("peer"),
        TARGETS["two_replicas"],
        GO_JS,
    )
    check = data["verify"]
    peer_check = data.get("peer_verify")
    rows.append(
        Row(
            "1b",
            "replica 2 == replica 1 after load",
            f"{check['rows']} rows identical" if check["identical"] else "DIFFERENT",
            (
                f"{peer_check['rows']} rows, digest "
                f"{'equal' if peer_check['identical'] else 'DIFFERENT'}"
            )
            if peer_check
            else "-",
            "",
            "identical",
            verdict(check["identical"]),
        )
    )
    return {"data": data, "rows": rows, "failures": failures + errors, "notes": notes}


# --- 2 ----------------------------------------------------------------------


def gets(ctx: Ctx) -> dict:
    data, notes = {}, []
    ids = (str(i) for i in range(1, GET_IDS + 1))
    with Stack("get") as stack:
        replica = stack.replica(1, None)
        data["ours_prefill"] = zmqload.pipelined_sets(replica.storage_endpoint, ids)
        if data["ours_prefill"]["errors"]:
            raise BenchError(f"prefill failed: {data['ours_prefill']['first_error']}")
        data["ours"] = wrk_series(ctx, "ours (1 replica)", f"{replica.get_base}/get", wrk.GET_LUA)
    if ctx.peers:
        with Stack("get-peer") as stack:
            stack.peers("plain")
            data["peer_prefill"] = httppipe.prefill(
                PEER_PORTS["plain"]["set"], range(1, GET_IDS + 1)
            )
            get_url = peer_url(PEER_PORTS["plain"]["get"], "/get")
            data["peer"] = wrk_series(ctx, GO, get_url, wrk.GET_LUA)
    else:
        notes.append(no_peer(ctx, "2"))
    with Stack("get-ceiling") as stack:
        ceiling = stack.add(Ceiling(stack.log_dir, workers=DEFAULT_HTTP_WORKERS))
        ceiling.start()
        ceiling.wait_ready()
        data["ceiling"] = wrk_series(ctx, "HTTP ceiling", ceiling.url, CONSTANT_LUA)
    rows, failures = series_rows(
        "2", "1 replica gets", data["ours"], data.get("peer"), TARGETS["one_replica"], GO
    )
    return {
        "data": data,
        "rows": rows + _ceiling_rows(data["ceiling"], data.get("peer")),
        "failures": failures,
        "notes": notes,
    }


def _ceiling_rows(ceiling: list[dict], peer: list[dict] | None) -> list[Row]:
    """How close the HTTP stack alone (a constant answer, no storage actor) gets to the peer:
    the part of measurement 2's gap that no change behind the HTTP layer can close."""
    peer_by_c = {r["connections"]: r for r in peer or []}
    rows = []
    for mine in ceiling:
        theirs = peer_by_c.get(mine["connections"])
        rows.append(
            Row(
                "2.ceil",
                f"  HTTP ceiling (constant answer, {DEFAULT_HTTP_WORKERS} "
                f"workers) c={mine['connections']}",
                rate(mine["rps"]),
                rate(theirs["rps"]) if theirs else "-",
                times(ratio_of(mine["rps"], theirs and theirs["rps"])),
            )
        )
    return rows
