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

from actors.runtime.testing import HarnessError, HttpService, free_port

__all__ = ["Segments"]

REQUEST_TIMEOUT_S = 10.0


class Segments(HttpService):
    """`segments` (supervisor, reaper, gunicorn) on a free port against a DSN."""

    def __init__(
        self,
        dsn: str,
        log_dir: Path,
        name: str = "segments",
        port: int | None = None,
        workers: int = 1,
        **extra_env: object,
    ):
        port = port or free_port()
        # NOTE: a short private directory (a socket path under pytest's tmp_path would be
        # too long for sun_path), removed by stop(), also after kill9().
        self.run_dir = Path(tempfile.mkdtemp(prefix="segments-test-"))
        env = {
            **os.environ,
            "DATABASE_URI": dsn,
            "SEGMENTS_RUN_DIR": str(self.run_dir),
            "SEGMENTS_HTTP_WORKERS": str(workers),
            "PYTHONUNBUFFERED": "1",
            "LOG_LEVEL": os.environ.get("LOG_LEVEL", "INFO"),
            **{k: str(v) for k, v in extra_env.items()},
        }
        super().__init__(name, [sys.executable, "-m", "actors.segments.cli"], env, log_dir, port)

    def stop(self, timeout_s: float | None = None) -> int | None:
        """SIGTERM, wait, SIGKILL what is left (see Proc.stop); then remove the run directory."""
        try:
            return super().stop() if timeout_s is None else super().stop(timeout_s)
        finally:
            shutil.rmtree(self.run_dir, ignore_errors=True)

    def user_segments(self, user_id: int) -> list[str]:
        response = self.get(f"/api/users/{user_id}/segments")
        if response.status_code != 200:
            raise HarnessError(f"GET user {user_id}: {response.status_code} {response.text}")
        segments: list[str] = response.json()["segments"]
        return segments
