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

from actors.runtime.testing import HttpService, free_port

__all__ = ["Accrual"]


class Accrual(HttpService):
    """`accrual` (supervisor, gunicorn) on a free port against a DSN."""

    def __init__(
        self,
        dsn: str,
        log_dir: Path,
        name: str = "accrual",
        port: int | None = None,
        workers: int = 1,
        **extra_env: object,
    ):
        port = port or free_port()
        env = {
            **os.environ,
            "DATABASE_URI": dsn,
            "ACCRUAL_RUN_DIR": str(Path(log_dir) / f"run-{name}-{port}"),
            "ACCRUAL_WORKERS": str(workers),
            "PYTHONUNBUFFERED": "1",
            "LOG_LEVEL": os.environ.get("LOG_LEVEL", "INFO"),
            **{k: str(v) for k, v in extra_env.items()},
        }
        super().__init__(name, [sys.executable, "-m", "actors.accrual.cli"], env, log_dir, port)
