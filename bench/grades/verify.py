"""Checks that replicas hold the same data after a load.

Ours: each replica's full map (values and per-field versions) read through its
GET /backup with actors.grades.backup.read_backup, compared row by row. The Go
JetStream peer: its GET /debug/digest (row count and an order-independent hash).
"""

from __future__ import annotations

import time

import requests

from actors.grades.backup import read_backup
from bench.grades.stack import BenchError

BACKUP_TIMEOUT_S = 120.0


def backup_map(get_base: str) -> tuple[dict, dict]:
    """(meta, {user_id: [4 values, 4 versions]}) of one replica."""
    with requests.get(f"{get_base}/backup", stream=True, timeout=BACKUP_TIMEOUT_S) as response:
        if response.status_code != 200:
            raise BenchError(
                f"{get_base}/backup answered {response.status_code}: {response.text[:200]}"
            )
        response.raw.decode_content = False
        meta, batches = read_backup(response.raw)
        rows = {key: row for batch in batches for key, row in batch}
    return meta, rows


def _diff(a: dict, b: dict) -> str:
    missing = [k for k in a if k not in b]
    extra = [k for k in b if k not in a]
    differ = [k for k in a if k in b and a[k] != b[k]]
    sample = (missing or differ or extra)[:3]
    return (
        f"replica 1 has {len(a)} rows, replica 2 has {len(b)}: {len(missing)} missing on "
        f"replica 2, {len(extra)} only on replica 2, {len(differ)} differ "
        f"(e.g. {[(k, a.get(k), b.get(k)) for k in sample]})"
    )


def replicas_identical(get_base_1: str, get_base_2: str, timeout_s: float = 30.0) -> dict:
    """Wait (bounded) until replica 2's map equals replica 1's; BenchError if it never does."""
    deadline = time.monotonic() + timeout_s
    attempts = 0
    while True:
        attempts += 1
        meta1, rows1 = backup_map(get_base_1)
        meta2, rows2 = backup_map(get_base_2)
        if rows1 == rows2 and rows1:
            return {
                "rows": len(rows1),
                "identical": True,
                "attempts": attempts,
                "position_1": meta1["position"],
                "position_2": meta2["position"],
            }
        if time.monotonic() > deadline:
            raise BenchError(
                "replicas differ after the load: "
                + (_diff(rows1, rows2) if rows1 else "replica 1 is empty")
            )
        time.sleep(1.0)


def peers_identical(get_base_1: str, get_base_2: str, timeout_s: float = 30.0) -> dict:
    """The Go JetStream replicas' digests; waits (bounded) for them to agree."""
    deadline = time.monotonic() + timeout_s
    while True:
        one = requests.get(f"{get_base_1}/debug/digest", timeout=10).json()
        two = requests.get(f"{get_base_2}/debug/digest", timeout=10).json()
        if (one["n"], one["digest"]) == (two["n"], two["digest"]):
            return {"rows": one["n"], "identical": True, "digest": one["digest"]}
        if time.monotonic() > deadline:
            return {
                "rows": one["n"],
                "identical": False,
                "detail": f"replica 1 {one}, replica 2 {two}",
            }
        time.sleep(1.0)
