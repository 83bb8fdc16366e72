"""balances: every 202 task final exactly once, applied in acceptance order, each
balance equal to the in-order replay, none negative; a replayed Idempotency-Key
gives the first answer, also after a kill."""

from __future__ import annotations

from collections import Counter
from typing import Any

from actors.balances.testing import Balances, replay
from bench.chaos.checks import Finding
from bench.chaos.killer import Kill
from bench.chaos.workloads.balances import OPENING, BalancesWorkload

__all__ = ["check_balances"]


def check_balances(
    service: Balances, workload: BalancesWorkload, kills: list[Kill], plant: str
) -> list[Finding]:
    problems: list[tuple[str, str]] = []
    accepted = 0
    for user in workload.users:
        if not user.user_id:
            continue
        tasks: list[dict[str, Any]] = service.wait_final(user.user_id)
        if plant == "balances-twice":  # the first applied task applied once more
            first = next((k for k, t in enumerate(tasks) if t["status"] == "done"), None)
            if first is not None:
                tasks.insert(first + 1, dict(tasks[first]))
                plant = ""
        expected = replay(OPENING, [(t["type"], t["amount"]) for t in tasks])
        got = [(t["status"], t.get("balance_after")) for t in tasks]
        if got != expected.outcomes:
            problems.append(
                ("replay", f"user {user.user_id}: outcomes differ from the in-order replay")
            )
        if service.balance(user.user_id) != expected.balance:
            problems.append(
                ("replay", f"user {user.user_id}: balance differs from the in-order replay")
            )
        if any((t.get("balance_after") or 0) < 0 for t in tasks):
            problems.append(("replay", f"user {user.user_id}: a negative balance"))
        times = Counter(t["task_id"] for t in tasks)
        ids = [p.task_id for p in user.posted if p.status == 202]
        accepted += len(ids)
        twice = [i for i in ids if times[i] != 1]
        if twice or any(n > 1 for n in times.values()):
            problems.append(
                ("once", f"user {user.user_id}: tasks listed other than once: {twice[:3]}")
            )
        if ids != sorted(ids, key=int):
            problems.append(("once", f"user {user.user_id}: 202 task ids not in acceptance order"))
    wrong = [r for r in workload.replays if r.again != r.first]
    after_kill = [
        r
        for r in workload.replays
        if any(
            r.first_answered_at < k.at < r.sent_at
            for k in kills
            if k.victim.service in ("balances", "postgres")
        )
    ]
    return [
        Finding(
            "balances",
            not any(tag == "once" for tag, _ in problems),
            f"202 tasks final exactly once, in acceptance order: {accepted}",
        ),
        Finding(
            "balances",
            not any(tag == "replay" for tag, _ in problems),
            "outcomes and balances = in-order replay, none negative",
        ),
        Finding(
            "balances",
            not wrong,
            f"Idempotency-Key replays gave the first answer: {len(workload.replays) - len(wrong)} "
            f"of {len(workload.replays)} ({len(after_kill)} across a balances or postgres kill)",
        ),
        *[Finding("balances", False, f"  {p}") for _, p in problems[:8]],
    ]
