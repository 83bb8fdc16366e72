"""Every answer every client of a chaos run got, with when it was asked and answered."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import NamedTuple

import requests

__all__ = ["NO_ANSWER", "Answer", "Answers", "REQUEST_TIMEOUT_S"]

NO_ANSWER = 0
"""The status recorded when the connection failed or timed out."""
REQUEST_TIMEOUT_S = 5.0
"""A request unanswered this long counts as no answer (its outcome is unknown)."""


class Answer(NamedTuple):
    service: str
    """Which service was asked (``grades`` for both replicas)."""
    target: str
    """Which instance: ``replica1``, ``replica2``, or the service's name."""
    what: str
    """The operation, e.g. ``set``, ``upload``, ``withdraw``."""
    sent: float
    """time.monotonic() when the request was sent."""
    done: float
    """time.monotonic() when the answer (or the failure) came."""
    status: int
    """HTTP status, or NO_ANSWER."""


class Answers:
    """The run's log of answers, appended to by every workload thread."""

    def __init__(self) -> None:
        self.items: list[Answer] = []
        self.latest_ok: dict[tuple[str, str], float] = {}
        """(service, target) -> when the latest request answered 2xx was sent."""
        self._lock = threading.Lock()

    def ask(
        self, service: str, target: str, what: str, request: Callable[[], requests.Response]
    ) -> requests.Response | None:
        """Send ``request`` and record its answer; None when there was none."""
        sent = time.monotonic()
        try:
            response: requests.Response | None = request()
        except requests.RequestException:
            response = None
        status = response.status_code if response is not None else NO_ANSWER
        self.add(Answer(service, target, what, sent, time.monotonic(), status))
        return response

    def add(self, answer: Answer) -> None:
        """Record an answer a client got by its own means (grades' soak writers)."""
        with self._lock:
            self.items.append(answer)
            if 200 <= answer.status < 300:
                key = (answer.service, answer.target)
                self.latest_ok[key] = max(self.latest_ok.get(key, 0.0), answer.sent)

    def ok_since(self, service: str, target: str, at: float) -> bool:
        """Whether a request sent at or after ``at`` was answered 2xx."""
        return self.latest_ok.get((service, target), -1.0) >= at

    def of(self, service: str) -> list[Answer]:
        with self._lock:
            return [a for a in self.items if a.service == service]
