"""balances under load: tasks posted with an Idempotency-Key, retried with the same
key until answered, and keys replayed later to see the first answer again."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field

from bench.chaos.answers import Answers
from bench.chaos.workloads.base import Workload

__all__ = ["BalancesWorkload", "Posted", "Replay", "OPENING"]

USERS = 8
OPENING = 1000
REPLAY_SHARE = 0.1
"""Share of steps that send an answered key again."""


@dataclass
class Posted:
    user_id: str
    key: str
    type_: str
    amount: int
    status: int = 0
    """The first real answer (0 while unanswered)."""
    task_id: int | None = None
    answered_at: float = 0.0


@dataclass
class Replay:
    key: str
    first: tuple[int, int | None]
    again: tuple[int, int | None]
    first_answered_at: float
    sent_at: float


@dataclass
class BalanceUser:
    name: str
    user_id: str = ""
    posted: list[Posted] = field(default_factory=list)
    """In the order this client sent them (one at a time per user)."""


class BalancesWorkload(Workload):
    service = "balances"

    def __init__(self, answers: Answers, base: str, seed: int):
        super().__init__(answers)
        self.base = base
        self.rng = random.Random(seed)
        self.users = [BalanceUser(f"chaos-{seed}-{k}") for k in range(USERS)]
        self.replays: list[Replay] = []
        self._keys = 0

    def step(self) -> None:
        user = self.rng.choice(self.users)
        if not user.user_id:
            self._create(user)
            return
        pending = [p for p in user.posted if not p.status or p.status >= 500]
        if pending:  # the same key again until it is answered: a careful client
            self._post(pending[0])
            return
        answered = [p for p in user.posted if p.status == 202]
        if answered and self.rng.random() < REPLAY_SHARE:
            self._replay(self.rng.choice(answered))
            return
        self._keys += 1
        type_ = "write-off" if self.rng.random() < 0.5 else "replenishment"
        posted = Posted(user.user_id, f"chaos-{self._keys}", type_, self.rng.randint(1, 300))
        user.posted.append(posted)
        self._post(posted)

    def _create(self, user: BalanceUser) -> None:
        response = self.ask(
            "balances",
            "create",
            "POST",
            f"{self.base}/api/v1/user/",
            json={"username": user.name, "balance": OPENING},
        )
        if response is not None and response.status_code == 201:
            user.user_id = str(response.json()["id"])
        elif response is not None and response.status_code == 409:
            listed = self.session.get(
                f"{self.base}/api/v1/user/", params={"limit": 1000}, timeout=5
            )
            for row in listed.json() if listed.status_code == 200 else []:
                if row["username"] == user.name:
                    user.user_id = str(row["id"])

    def _send(self, posted: Posted) -> tuple[int, int | None]:
        response = self.ask(
            "balances",
            "task",
            "POST",
            f"{self.base}/api/v1/user/{posted.user_id}/amount/",
            json={"type": posted.type_, "amount": posted.amount},
            headers={"Idempotency-Key": posted.key},
        )
        if response is None:
            return 0, None
        task_id = response.json().get("task_id") if response.status_code == 202 else None
        return response.status_code, task_id

    def _post(self, posted: Posted) -> None:
        status, task_id = self._send(posted)
        if status and status < 500:
            posted.status, posted.task_id, posted.answered_at = status, task_id, time.monotonic()

    def _replay(self, posted: Posted) -> None:
        sent = time.monotonic()
        again = self._send(posted)
        if again[0] and again[0] < 500:
            first = (posted.status, posted.task_id)
            self.replays.append(Replay(posted.key, first, again, posted.answered_at, sent))
