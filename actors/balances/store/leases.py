"""Shard leases: fair split between live workers, renewal, release, takeover."""

from __future__ import annotations

import datetime as dt
from typing import Any

from actors.balances.store.base import (
    OWNER_FORGET_S,
    QUERY_TIMEOUT_S,
    SHARDS,
    connection,
    fetch,
)


def _fair_share(owners: list[str], owner: str) -> int:
    """Shards `owner` should hold when `owners` (sorted) split SHARDS evenly."""
    if owner not in owners:
        return 0
    base, extra = divmod(SHARDS, len(owners))
    return base + (1 if owners.index(owner) < extra else 0)


async def claim_shards(db: Any, owner: str, endpoint: str, lease_s: float) -> list[int]:
    """Heartbeat, renew, and move toward this owner's fair share of the shards.

    Every worker of every instance calls this every lease_s/3 or so. Live owners (seen
    within lease_s) split the shards evenly; an owner above its share releases shards,
    one below claims free or expired ones (SKIP LOCKED, so two claimants never take the
    same shard). A restarted worker with the same owner name gets its leases back at once.

    Returns:
        The shards this owner holds now, sorted.
    """
    lease = dt.timedelta(seconds=lease_s)
    async with connection(db) as conn, conn.transaction():
        await conn.execute(
            "INSERT INTO balances.lease_owners (owner, endpoint, seen_until)"
            " VALUES ($1, $2, now() + $3::interval)"
            " ON CONFLICT (owner) DO UPDATE"
            " SET endpoint = excluded.endpoint, seen_until = excluded.seen_until",
            owner,
            endpoint,
            lease,
            timeout=QUERY_TIMEOUT_S,
        )
        owners = await conn.fetch(
            "SELECT owner FROM balances.lease_owners WHERE seen_until > now() ORDER BY owner",
            timeout=QUERY_TIMEOUT_S,
        )
        share = _fair_share([r["owner"] for r in owners], owner)
        held = await conn.fetch(
            "UPDATE balances.shard_leases SET lease_until = now() + $2::interval"
            " WHERE owner = $1 RETURNING shard",
            owner,
            lease,
            timeout=QUERY_TIMEOUT_S,
        )
        shards = sorted(r["shard"] for r in held)
        if len(shards) > share:
            extra = shards[share:]
            await conn.execute(
                "UPDATE balances.shard_leases SET owner = NULL, lease_until = '-infinity'"
                " WHERE owner = $1 AND shard = ANY($2::int[])",
                owner,
                extra,
                timeout=QUERY_TIMEOUT_S,
            )
            shards = shards[:share]
        elif len(shards) < share:
            got = await conn.fetch(
                "UPDATE balances.shard_leases SET owner = $1, lease_until = now() + $2::interval"
                " WHERE shard IN (SELECT shard FROM balances.shard_leases"
                "   WHERE owner IS NULL OR lease_until <= now()"
                "   ORDER BY shard LIMIT $3 FOR UPDATE SKIP LOCKED)"
                " RETURNING shard",
                owner,
                lease,
                share - len(shards),
                timeout=QUERY_TIMEOUT_S,
            )
            shards = sorted(shards + [r["shard"] for r in got])
        await conn.execute(
            "DELETE FROM balances.lease_owners WHERE seen_until < now() - $1::interval",
            dt.timedelta(seconds=OWNER_FORGET_S),
            timeout=QUERY_TIMEOUT_S,
        )
    return shards


async def release_shards(db: Any, owner: str) -> None:
    """A clean stop: free this owner's shards for the others at once."""
    async with connection(db) as conn, conn.transaction():
        await conn.execute(
            "UPDATE balances.shard_leases SET owner = NULL, lease_until = '-infinity'"
            " WHERE owner = $1",
            owner,
            timeout=QUERY_TIMEOUT_S,
        )
        await conn.execute(
            "DELETE FROM balances.lease_owners WHERE owner = $1", owner, timeout=QUERY_TIMEOUT_S
        )


async def shard_endpoints(db: Any) -> dict[int, str]:
    """shard -> endpoint of the worker holding its unexpired lease (for nudges)."""
    rows = await fetch(
        db,
        "SELECT l.shard, o.endpoint FROM balances.shard_leases l"
        " JOIN balances.lease_owners o ON o.owner = l.owner WHERE l.lease_until > now()",
    )
    return {r["shard"]: r["endpoint"] for r in rows}
