"""The loop every workload runs: one step, a short pause, until told to stop."""

from __future__ import annotations

import threading

import requests

from bench.chaos.answers import REQUEST_TIMEOUT_S, Answers

__all__ = ["PACE_S", "REQUEST_TIMEOUT_S", "Workload"]

PACE_S = 0.02
"""Pause between a client's requests: steady load that leaves the 2 cores to the services."""


class Workload(threading.Thread):
    """A client thread of one service: ``setup()`` once, then ``step()`` until stopped."""

    service = ""

    def __init__(self, answers: Answers):
        super().__init__(name=f"chaos-{self.service}", daemon=True)
        self.answers = answers
        self.session = requests.Session()
        self.stop_event = threading.Event()
        self.error: BaseException | None = None

    def ask(self, target: str, what: str, method: str, url: str, **kwargs: object):
        """One request through the session, recorded; the response or None."""
        kwargs.setdefault("timeout", REQUEST_TIMEOUT_S)
        response = self.answers.ask(
            self.service,
            target,
            what,
            lambda: self.session.request(method, url, **kwargs),  # type: ignore[arg-type]
        )
        if response is None:
            self.session = requests.Session()  # a broken keep-alive connection is dropped
        return response

    def run(self) -> None:
        try:
            while not self.stop_event.is_set():
                self.step()
                self.stop_event.wait(PACE_S)
        except BaseException as exc:  # shown in the report: a workload bug, not an outage
            self.error = exc
            raise

    def step(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        self.stop_event.set()
        self.join(timeout=2 * REQUEST_TIMEOUT_S)
