"""Backup and restore of a large replica, with memory sampled while they run.

1. Prefill: bus + replica 1 (replicated), N records through pipelined Set
   messages to its storage actor; its RSS before and after gives bytes per user.
2. Backup: GET /backup read to the end (gunzipped on the fly to count its
   lines, no CSV parsing), while the getter worker's RSS is sampled; then the
   same in the packed form a restoring replica asks for (read to the end, not
   decoded), for the record: the restore is held against the CSV's time.
3. Restore: replica 2 starts with NEXT_REPLICA_URL = replica 1's getter; the
   time from its launch until /readyz is 200, while its storage actor's RSS is
   sampled; its RSS once ready is the steady figure the peak is held against.

Beside the times, CPU seconds: the backup's producers (replica 1's storage actor
and HTTP workers) while it streams, and the restoring storage actor from its
start to ready. On a shared machine the seconds swing with others' load; the
CPU a side needs much less.
"""

from __future__ import annotations

import re
import threading
import time
import zlib

import psutil
import requests

from actors.grades import backup_packed
from bench.common.cpu import cpu_seconds
from bench.grades import zmqload
from bench.grades.stack import BenchError, Stack, wait_until

MB = 1024 * 1024
RESTORE_TIMEOUT_S = 180.0
"""For 1M rows; scaled up with the rows."""
SETTLE_S = 0.5


class RssSampler(threading.Thread):
    """Samples the summed RSS of what `find()` returns every `every_s`, keeps the peak."""

    def __init__(self, find, every_s: float = 0.02):
        super().__init__(daemon=True)
        self.find = find
        self.every_s = every_s
        self.peak = 0
        self.first = 0
        self.samples = 0
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            total = 0
            try:
                for proc in self.find():
                    total += proc.memory_info().rss
            except psutil.NoSuchProcess:
                pass
            if total:
                self.samples += 1
                self.first = self.first or total
                self.peak = max(self.peak, total)
            self._halt.wait(self.every_s)

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=5)


def _rss(procs) -> int:
    return sum(p.memory_info().rss for p in procs)


def _read_backup(get_base: str) -> dict:
    """Download /backup to its end; count its lines while gunzipping."""
    inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
    lines = compressed = 0
    header = b""
    started = time.perf_counter()
    with requests.get(f"{get_base}/backup", stream=True, timeout=60) as response:
        if response.status_code != 200:
            raise BenchError(f"/backup answered {response.status_code}: {response.text[:200]}")
        for chunk in response.raw.stream(1 << 16, decode_content=False):
            compressed += len(chunk)
            text = inflate.decompress(chunk)
            if len(header) < 4096:
                header += text[:4096]
            lines += text.count(b"\n")
        lines += inflate.flush().count(b"\n")
    elapsed = time.perf_counter() - started
    meta = dict(pair.split("=", 1) for pair in header.split(b"\n", 1)[0].decode().split(","))
    return {
        "seconds": elapsed,
        "rows": lines - 2,
        "meta_rows": int(meta["rows"]),
        "gzip_bytes": compressed,
    }


def _read_packed_backup(get_base: str) -> dict:
    """Download /backup in the packed form (as a restoring replica asks) to its end."""
    received = 0
    started = time.perf_counter()
    headers = {"Accept": backup_packed.MEDIA_TYPE}
    with requests.get(f"{get_base}/backup", headers=headers, stream=True, timeout=60) as response:
        if response.headers.get("Content-Type") != backup_packed.MEDIA_TYPE:
            raise BenchError(f"/backup did not pack: {response.status_code}")
        for chunk in response.raw.stream(1 << 20, decode_content=False):
            received += len(chunk)
    return {"seconds": time.perf_counter() - started, "bytes": received}


def measure(stack: Stack, rows: int) -> dict:
    bus = stack.bus()
    replica1 = stack.replica(1, bus)
    time.sleep(SETTLE_S)
    storage1_empty = replica1.child("storage").memory_info().rss
    fill = zmqload.pipelined_sets(
        replica1.storage_endpoint, (str(i) for i in range(1, rows + 1)), window=1000
    )
    if fill["errors"]:
        raise BenchError(f"prefill: {fill['errors']} Sets failed: {fill['first_error']}")
    wait_until(
        lambda: replica1.readyz()[1].get("rows") == rows, 30, f"replica 1 to hold {rows} rows"
    )
    storage1_full = replica1.child("storage").memory_info().rss

    # --- backup ------------------------------------------------------------
    getters = replica1.workers()
    if not getters:
        raise replica1.fail("no getter worker process found")
    time.sleep(0.5)
    getter_before = _rss(getters)
    sampler = RssSampler(lambda: replica1.workers())
    producers = [replica1.child("storage"), *getters]
    producers_cpu = cpu_seconds(producers)
    sampler.start()
    try:
        backup = _read_backup(replica1.get_base)
    finally:
        sampler.stop()
    backup_cpu_s = cpu_seconds(producers) - producers_cpu
    if backup["rows"] != rows or backup["meta_rows"] != rows:
        raise BenchError(
            f"the backup holds {backup['rows']} rows "
            f"(header says {backup['meta_rows']}), expected {rows}"
        )
    getter_after = _rss(replica1.workers())
    packed = _read_packed_backup(replica1.get_base)

    # --- restore -----------------------------------------------------------
    started = time.monotonic()
    replica2 = stack.replica(2, bus, next_url=replica1.get_base, wait=False)
    storage_sampler = RssSampler(lambda: replica2.role("storage"))
    storage_sampler.start()
    try:
        replica2.wait_ready(timeout_s=RESTORE_TIMEOUT_S * max(1.0, rows / 1_000_000))
        restore_s = time.monotonic() - started
    finally:
        storage_sampler.stop()
    storage2_ready = replica2.child("storage").memory_info().rss
    storage2_cpu_s = cpu_seconds([replica2.child("storage")])
    status = replica2.readyz()[1]
    if status.get("rows") != rows:
        raise BenchError(f"replica 2 restored {status.get('rows')} rows, expected {rows}")
    logged = re.search(r"restore: (\d+) rows loaded in ([\d.]+) s", replica2.output())
    return {
        "rows": rows,
        "prefill": fill,
        "backup_s": backup["seconds"],
        "backup_rows_per_s": rows / backup["seconds"],
        "backup_gzip_mb": backup["gzip_bytes"] / MB,
        "packed_backup_s": packed["seconds"],
        "packed_backup_mb": packed["bytes"] / MB,
        "getter_rss_before_mb": getter_before / MB,
        "getter_rss_peak_mb": sampler.peak / MB,
        "getter_rss_after_mb": getter_after / MB,
        "getter_rss_growth_mb": max(0, sampler.peak - getter_before) / MB,
        "getter_rss_samples": sampler.samples,
        "restore_s": restore_s,
        "restore_rows_per_s": rows / restore_s,
        "restore_load_s_logged": float(logged.group(2)) if logged else None,
        "storage1_rss_empty_mb": storage1_empty / MB,
        "storage1_rss_full_mb": storage1_full / MB,
        "bytes_per_user": (storage1_full - storage1_empty) / rows,
        "restore_to_backup": restore_s / backup["seconds"],
        "restore_to_packed_backup": restore_s / packed["seconds"],
        "backup_cpu_s": backup_cpu_s,
        "storage2_cpu_s": storage2_cpu_s,
        "restore_cpu_to_backup_cpu": storage2_cpu_s / backup_cpu_s,
        "storage2_rss_peak_mb": storage_sampler.peak / MB,
        "storage2_rss_ready_mb": storage2_ready / MB,
        "storage2_peak_to_ready": storage_sampler.peak / storage2_ready,
        "storage2_rss_samples": storage_sampler.samples,
    }
