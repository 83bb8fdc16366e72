"""Test and bench helpers for balances: the in-order replay, launchers (later)."""

from __future__ import annotations

from typing import NamedTuple

from actors.balances.store import MAX_MONEY, SCHEMA_DIR, WRITE_OFF

__all__ = ["SCHEMA_DIR", "Replayed", "replay"]



class Replayed(NamedTuple):
    balance: int
    """The balance after every task, applied in order."""
    outcomes: list[tuple[str, int | None]]
    """Per task: ("done", balance_after) or ("cancelled", None)."""


def replay(balance: int, tasks: list[tuple[str, int]]) -> Replayed:
    """What applying (type, amount) tasks strictly in order must give."""
    outcomes: list[tuple[str, int | None]] = []
    for type_, amount in tasks:
        new = balance - amount if type_ == WRITE_OFF else balance + amount
        if 0 <= new <= MAX_MONEY:
            balance = new
            outcomes.append(("done", new))
        else:
            outcomes.append(("cancelled", None))
    return Replayed(balance, outcomes)
