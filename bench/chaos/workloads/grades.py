"""grades under load: `make soak`'s writers (two fields per replica, values that only
grow, each acknowledged value kept) at a steady pace, and a reader per replica."""

from __future__ import annotations

import random

from actors.grades.testing import Replica
from bench.chaos.answers import NO_ANSWER, Answer, Answers
from bench.chaos.workloads.base import PACE_S, Workload
from bench.grades.soak import FIELDS, USERS, Writer

__all__ = ["GradesWorkload"]


class Reader(Workload):
    service = "grades"

    def __init__(self, answers: Answers, replica: Replica, seed: int):
        super().__init__(answers)
        self.replica, self.rng = replica, random.Random(seed)

    def step(self) -> None:
        self.ask(
            f"replica{self.replica.replica_id} reads",
            "get",
            "GET",
            f"{self.replica.get_base}/get",
            params={"user_id": self.rng.choice(USERS)},
        )


class GradesWorkload:
    """Four soak writers and two readers, recorded in ``answers``."""

    def __init__(self, answers: Answers, replicas: list[Replica], seed: int):
        self.writers = [
            Writer(replica, field, self._recorder(answers, replica), pause_s=PACE_S)
            for replica, field in zip(replicas * 2, FIELDS, strict=True)
        ]
        self.readers = [Reader(answers, r, seed + r.replica_id) for r in replicas]

    @staticmethod
    def _recorder(answers: Answers, replica: Replica):
        target = f"replica{replica.replica_id}"

        def record(sent: float, done: float, status: int) -> None:
            answers.add(Answer("grades", target, "set", sent, done, status or NO_ANSWER))

        return record

    def start(self) -> None:
        for thread in [*self.writers, *self.readers]:
            thread.start()

    def stop(self) -> None:
        for writer in self.writers:
            writer.stop_event.set()
        for reader in self.readers:
            reader.stop()
        for writer in self.writers:
            writer.join(timeout=30)
