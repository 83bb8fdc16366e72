"""Launchers of gophermart for tests and benchmarks: the console command as a real
process on a free 127.0.0.1 port, with a requests session that keeps its token.

    service = Gophermart(dsn, accrual_url, log_dir)   # its own port and run directory
    service.start(); service.wait_ready()
    service.register("alice", "secret")               # the session now sends the token
    service.upload("12345678903").status_code         # 202
    service.stop()                                    # SIGTERM; exit code
"""

from __future__ import annotations

import itertools
import os
import sys
import time
import uuid
from pathlib import Path

import requests

from actors.runtime.testing import HarnessError, HttpService, free_port
from actors.shared.luhn import checksum_digit

__all__ = ["SECRET", "Gophermart", "new_login", "new_number"]

REQUEST_TIMEOUT_S = 10.0
SECRET = "tests-and-benches-secret-0123456789"
"""One secret for every instance a test starts, so a token works on all of them."""


_numbers = itertools.count(1)


def new_number() -> str:
    """An order number no test has used (time-based, Luhn-valid)."""
    prefix = f"4{int(time.time() * 1000) % 10**12:012d}{next(_numbers):04d}"
    return prefix + checksum_digit(prefix)


def new_login() -> str:
    return f"proc-{uuid.uuid4().hex[:12]}"


class Gophermart(HttpService):
    """`gophermart` (supervisor, poller, gunicorn) on a free port against a DSN."""

    def __init__(
        self,
        dsn: str,
        accrual_url: str,
        log_dir: Path,
        name: str = "gophermart",
        port: int | None = None,
        workers: int = 1,
        **extra_env: object,
    ):
        port = port or free_port()
        run_dir = Path(log_dir) / f"run-{name}-{port}"  # removed with the logs
        env = {
            **os.environ,
            "DATABASE_URI": dsn,
            "ACCRUAL_SYSTEM_ADDRESS": accrual_url,
            "GOPHERMART_SECRET": SECRET,
            "GOPHERMART_RUN_DIR": str(run_dir),
            "GOPHERMART_WORKERS": str(workers),
            "PYTHONUNBUFFERED": "1",
            "LOG_LEVEL": os.environ.get("LOG_LEVEL", "INFO"),
            **{k: str(v) for k, v in extra_env.items()},
        }
        super().__init__(name, [sys.executable, "-m", "actors.gophermart.cli"], env, log_dir, port)

    def register(self, login: str, password: str) -> str:
        """Register; the session keeps the cookie and sends the header from now on."""
        response = self.post("/api/user/register", {"login": login, "password": password})
        if response.status_code != 200:
            raise HarnessError(f"register {login}: {response.status_code} {response.text}")
        token: str = response.headers["Authorization"]
        self.session.headers["Authorization"] = token
        return token

    def upload(self, number: str) -> requests.Response:
        return self.post(
            "/api/user/orders", data=number.encode(), headers={"Content-Type": "text/plain"}
        )
