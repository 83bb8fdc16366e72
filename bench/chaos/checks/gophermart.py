"""gophermart: every PROCESSED order credited exactly once, each balance equal to
credits minus withdrawals and never negative, every 200 withdrawal listed once."""

from __future__ import annotations

from collections import Counter
from typing import Any

import requests

from actors.runtime.testing import wait_until
from bench.chaos.checks import Finding
from bench.chaos.workloads.gophermart import REWARD, Account, GophermartWorkload

__all__ = ["check_gophermart"]

FINAL_TIMEOUT_S = 90.0
FINAL = ("PROCESSED", "INVALID")


def _get(base: str, path: str, account: Account) -> Any:
    response = requests.get(f"{base}{path}", headers={"Authorization": account.token}, timeout=10)
    if response.status_code == 204:
        return []
    response.raise_for_status()
    return response.json()


def _final_orders(base: str, account: Account) -> list[dict[str, Any]]:
    accepted = {n for n, status in account.uploaded.items() if status in (200, 202)}

    def final() -> list[dict[str, Any]] | None:
        try:
            orders: list[dict[str, Any]] = _get(base, "/api/user/orders", account)
        except requests.RequestException:
            return None  # restarting after the last kill: ask again
        listed = {o["number"] for o in orders}
        done = all(o["status"] in FINAL for o in orders) and accepted <= listed
        return orders if done else None

    return wait_until(final, FINAL_TIMEOUT_S, f"{account.login}'s orders to be final", 0.5)


def check_gophermart(base: str, workload: GophermartWorkload, plant: str) -> list[Finding]:
    problems: list[str] = []
    processed = credited_wrong = withdrawn_ok = 0
    for account in workload.accounts:
        if not account.token:
            continue
        orders = _final_orders(base, account)
        balance = _get(base, "/api/user/balance", account)
        listed = _get(base, "/api/user/withdrawals", account)
        done = [o for o in orders if o["status"] == "PROCESSED"]
        processed += len(done)
        credited_wrong += sum(1 for o in done if o.get("accrual") != REWARD)
        if plant == "gophermart-double-credit" and done:
            balance["current"] += done[0]["accrual"]  # the first order credited twice
            plant = ""
        credits = sum(o.get("accrual", 0) for o in done)
        spent = sum(w["sum"] for w in listed)
        if round(balance["current"] + balance["withdrawn"], 2) != round(credits, 2):
            problems.append(
                f"{account.login}: current {balance['current']} + withdrawn "
                f"{balance['withdrawn']} != credits of {len(done)} PROCESSED orders {credits}"
            )
        if round(balance["withdrawn"], 2) != round(spent, 2) or balance["current"] < 0:
            problems.append(
                f"{account.login}: balance {balance} but its withdrawals sum to {spent}"
            )
        times = Counter(w["order"] for w in listed)
        for number, status in account.withdrawals.items():
            if status == 200:
                withdrawn_ok += 1
                if times[number] != 1:
                    problems.append(
                        f"{account.login}: 200 withdrawal {number} listed {times[number]} times"
                    )
            elif status != 0 and times[number]:
                problems.append(
                    f"{account.login}: withdrawal {number} answered {status} but listed"
                )
    return [
        Finding(
            "gophermart",
            not credited_wrong and not any("credits" in p for p in problems),
            f"PROCESSED orders credited exactly once: {processed} orders, "
            f"{credited_wrong} with a wrong accrual",
        ),
        Finding(
            "gophermart",
            not any("balance" in p for p in problems),
            "balance = credits - withdrawals >= 0 for every user",
        ),
        Finding(
            "gophermart",
            not any("listed" in p for p in problems),
            f"200 withdrawals listed exactly once: {withdrawn_ok}",
        ),
        *[Finding("gophermart", False, f"  {p}") for p in problems[:8]],
    ]
