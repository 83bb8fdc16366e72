"""Launchers of segments for tests and benchmarks: the console command as a real process.

    service = Segments(dsn, log_dir)        # a free 127.0.0.1 port, its own run directory
    service.start(); service.wait_ready()
    service.post("/api/segments", {"slug": "X"}).status_code   # 201
    service.stop()                                          # SIGTERM; exit code
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import requests

from actors.runtime.testing import START_TIMEOUT_S, HarnessError, Proc, free_port, wait_until

__all__ = ["Segments"]

REQUEST_TIMEOUT_S = 10.0


class Segments(Proc):
    """`segments` (supervisor, reaper, gunicorn) on a free port against a DSN."""

    def __init__(self, dsn: str, log_dir: Path, name: str = "segments", port: int | None = None,
                 workers: int = 1, **extra_env):
        self.port = port or free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.session = requests.Session()
        # NOTE: a short private directory (a socket path under pytest's tmp_path would be
        # too long for sun_path), removed by stop(), also after kill9().
        self.run_dir = Path(tempfile.mkdtemp(prefix="segments-test-"))
        env = {**os.environ, "RUN_ADDRESS": f"127.0.0.1:{self.port}", "DATABASE_URI": dsn,
               "SEGMENTS_RUN_DIR": str(self.run_dir), "SEGMENTS_HTTP_WORKERS": str(workers),
               "PYTHONUNBUFFERED": "1", "LOG_LEVEL": os.environ.get("LOG_LEVEL", "INFO"),
               **{k: str(v) for k, v in extra_env.items()}}
        super().__init__(name, [sys.executable, "-m", "actors.segments.cli"], env, log_dir)

    def stop(self, timeout_s: float | None = None) -> int | None:
        """SIGTERM, wait, SIGKILL what is left (see Proc.stop); then remove the run directory."""
        try:
            return super().stop() if timeout_s is None else super().stop(timeout_s)
        finally:
            shutil.rmtree(self.run_dir, ignore_errors=True)

    def ready(self) -> bool:
        try:
            return requests.get(f"{self.base}/readyz", timeout=1.0).status_code == 200
        except requests.RequestException:
            return False

    def wait_ready(self, timeout_s: float = START_TIMEOUT_S) -> None:
        """Wait until GET /readyz is 200; fail with the output if the process exits."""
        wait_until(lambda: self.ready() or not self.running(), timeout_s,
                   f"{self.name} to be ready")
        if not self.running():
            raise self.fail(f"exited with {self.process.returncode} before it was ready")

    def url(self, path: str) -> str:
        return f"{self.base}{path}"

    def get(self, path: str, **kwargs) -> requests.Response:
        return self.session.get(self.url(path), timeout=REQUEST_TIMEOUT_S, **kwargs)

    def post(self, path: str, document=None, **kwargs) -> requests.Response:
        return self.session.post(self.url(path), json=document, timeout=REQUEST_TIMEOUT_S,
                                 **kwargs)

    def delete(self, path: str) -> requests.Response:
        return self.session.delete(self.url(path), timeout=REQUEST_TIMEOUT_S)

    def user_segments(self, user_id: int) -> list[str]:
        response = self.get(f"/api/users/{user_id}/segments")
        if response.status_code != 200:
            raise HarnessError(f"GET user {user_id}: {response.status_code} {response.text}")
        return response.json()["segments"]
