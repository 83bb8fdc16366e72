"""The HTTP ceiling: the stack's fastest possible answer, a yardstick for every service.

A falcon.asgi app with one route answering a constant JSON, served by gunicorn with
the worker class, flags and worker count every service's HTTP child has
(actors.runtime.gunicorn). No database, no ZeroMQ, no middleware: what a service's
route costs beyond this is its own work.

    ceiling = Ceiling(log_dir, workers=2); ceiling.start(); ceiling.wait_ready()
    wrk.run(ceiling.url, CONSTANT_LUA, 16, 10)

gunicorn imports ``bench.common.ceiling:app`` with ``--pythonpath http,<checkout>``.
"""

from __future__ import annotations

import os
from pathlib import Path

import falcon.asgi
import requests

from actors.runtime.gunicorn import gunicorn_argv
from actors.runtime.testing import ROOT, START_TIMEOUT_S, Proc, free_port, wait_until

__all__ = ["BODY", "CONSTANT_LUA", "Ceiling", "app"]

BODY = b'{"current":729.98,"withdrawn":0}'
"""About the size of a small service answer."""
CONSTANT_LUA = Path(__file__).resolve().parent / "lua" / "constant.lua"


class _Constant:
    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        resp.data = BODY
        resp.content_type = falcon.MEDIA_JSON


app = falcon.asgi.App()
app.add_route("/", _Constant())


class Ceiling(Proc):
    """gunicorn serving `app` on a free port, with the services' worker settings."""

    def __init__(self, log_dir: Path, workers: int, name: str = "ceiling"):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        # NOTE: the same command line as every service's HTTP child; the app is outside
        # http/, so the checkout goes on gunicorn's import path too.
        argv = gunicorn_argv(
            "bench.common.ceiling:app",
            f"127.0.0.1:{self.port}",
            workers,
            "bench: ceiling",
            pythonpath=(ROOT,),
        )
        super().__init__(name, argv, {**os.environ, "PYTHONUNBUFFERED": "1"}, log_dir)

    def _answers(self) -> bool:
        try:
            return requests.get(self.url, timeout=1.0).content == BODY
        except requests.RequestException:
            return False

    def wait_ready(self, timeout_s: float = START_TIMEOUT_S) -> None:
        wait_until(
            lambda: self._answers() or not self.running(), timeout_s, "the HTTP ceiling to answer"
        )
        if not self.running():
            raise self.fail("exited before it answered")
