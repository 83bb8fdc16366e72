"""segments under load: users' segments added (some for a few seconds) and removed,
and read back; every 2xx change and read is kept, with wall-clock times, for the
history checks."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass

from bench.chaos.answers import Answers
from bench.chaos.workloads.base import Workload

__all__ = ["Change", "SegmentsWorkload", "SLUGS", "MAX_TTL_S"]

SLUGS = tuple(f"CHAOS_{k}" for k in range(5))
USERS = range(1001, 1031)
MAX_TTL_S = 3


@dataclass
class Change:
    user_id: int
    add: list[str]
    ttl: dict[str, int]
    """Slug -> ttl_seconds of the adds that expire."""
    remove: list[str]
    sent: float
    """Wall-clock seconds (time.time()), comparable with the history's timestamps."""
    done: float
    status: int
    segments: list[str] | None
    """The active segments the answer named (2xx only)."""


class SegmentsWorkload(Workload):
    service = "segments"

    def __init__(self, answers: Answers, base: str, seed: int):
        super().__init__(answers)
        self.base = base
        self.rng = random.Random(seed)
        self.created: set[str] = set()
        self.changes: list[Change] = []
        """Every change sent, answered or not; reads are kept as changes adding nothing."""

    def step(self) -> None:
        missing = [slug for slug in SLUGS if slug not in self.created]
        if missing:
            response = self.ask(
                "segments", "create", "POST", f"{self.base}/api/segments", json={"slug": missing[0]}
            )
            if response is not None and response.status_code in (201, 409):
                self.created.add(missing[0])
            return
        user_id = self.rng.choice(USERS)
        if self.rng.random() < 0.3:
            self._read(user_id)
            return
        picked = self.rng.sample(SLUGS, self.rng.randint(1, 3))
        split = self.rng.randint(0, len(picked))
        add, remove = picked[:split], picked[split:]
        ttl = {slug: self.rng.randint(1, MAX_TTL_S) for slug in add if self.rng.random() < 0.4}
        items = [{"slug": s, "ttl_seconds": ttl[s]} if s in ttl else s for s in add]
        sent = time.time()
        response = self.ask(
            "segments",
            "change",
            "POST",
            f"{self.base}/api/users/{user_id}/segments",
            json={"add": items, "remove": remove},
        )
        self._keep(Change(user_id, add, ttl, remove, sent, time.time(), 0, None), response)

    def _read(self, user_id: int) -> None:
        sent = time.time()
        response = self.ask("segments", "read", "GET", f"{self.base}/api/users/{user_id}/segments")
        self._keep(Change(user_id, [], {}, [], sent, time.time(), 0, None), response)

    def _keep(self, change: Change, response) -> None:
        if response is not None:
            change.status = response.status_code
            if 200 <= response.status_code < 300:
                change.segments = response.json()["segments"]
        self.changes.append(change)
