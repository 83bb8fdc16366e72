"""Launchers of accrual for tests and benchmarks: the console command as a real process.

    accrual = Accrual(dsn, log_dir, ACCRUAL_DELAY_MS=200)
    accrual.start(); accrual.wait_ready()
    accrual.post("/api/goods", {"match": "Bork", "reward": 5, "reward_type": "%"})
    accrual.stop()
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import requests

from actors.runtime.testing import START_TIMEOUT_S, Proc, free_port, wait_until

__all__ = ["Accrual"]

REQUEST_TIMEOUT_S = 10.0


class Accrual(Proc):
    """`accrual` (supervisor, gunicorn) on a free port against a DSN."""

    def __init__(self, dsn: str, log_dir: Path, name: str = "accrual", port: int | None = None,
                 workers: int = 1, **extra_env):
        self.port = port or free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.session = requests.Session()
        env = {**os.environ, "RUN_ADDRESS": f"127.0.0.1:{self.port}", "DATABASE_URI": dsn,
               "ACCRUAL_RUN_DIR": str(Path(log_dir) / f"run-{name}-{self.port}"),
               "ACCRUAL_WORKERS": str(workers), "PYTHONUNBUFFERED": "1",
               "LOG_LEVEL": os.environ.get("LOG_LEVEL", "INFO"),
               **{k: str(v) for k, v in extra_env.items()}}
        super().__init__(name, [sys.executable, "-m", "actors.accrual.cli"], env, log_dir)

    def ready(self) -> bool:
        try:
            return requests.get(f"{self.base}/readyz", timeout=1.0).status_code == 200
        except requests.RequestException:
            return False

    def wait_ready(self, timeout_s: float = START_TIMEOUT_S) -> None:
        wait_until(lambda: self.ready() or not self.running(), timeout_s,
                   f"{self.name} to be ready")
        if not self.running():
            raise self.fail(f"exited with {self.process.returncode} before it was ready")

    def post(self, path: str, document=None, **kwargs) -> requests.Response:
        return self.session.post(f"{self.base}{path}", json=document,
                                 timeout=REQUEST_TIMEOUT_S, **kwargs)

    def get(self, path: str, **kwargs) -> requests.Response:
        return self.session.get(f"{self.base}{path}", timeout=REQUEST_TIMEOUT_S, **kwargs)
