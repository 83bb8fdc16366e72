"""The one in-process HTTP client of the app tests: a falcon ASGI app served by
``falcon.testing.ASGIConductor`` on the event loop its pool belongs to.

Every PostgreSQL service's app tests use it (the conftests wrap it in a ``client``
fixture, the root conftest in ``client_of``). It lives in tests/, not in
``actors/runtime/testing.py``, because it is HTTP-side and nothing in actors/ imports
falcon.
"""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Any

import falcon.asgi
from falcon import testing

__all__ = ["AnyApp", "AppClient"]

AnyApp = falcon.asgi.App[falcon.asgi.Request, falcon.asgi.Response]
"""A service's app, as its create_app(...) returns it."""


class AppClient:
    """Requests to ``app`` in process, each run to completion on ``loop``.

    The conductor is entered once, so the app has one lifespan like a gunicorn worker:
    startup before the first request, shutdown at ``close()`` (balances' shutdown closes
    its pool and nudger; entering per request would close them after every request).
    Use it as a context manager, or call ``close()``.

    Args:
        app: the app under test (a service's ``create_app(...)``).
        loop: the module's event loop (the ``loop`` fixture), the one the app's pool
            opens on.
    """

    def __init__(self, app: AnyApp, loop: asyncio.Runner) -> None:
        self.app = app
        self.loop = loop
        self._conductor = testing.ASGIConductor(app)
        loop.run(self._conductor.__aenter__())
        self._open = True

    def request(self, method: str, path: str, **kwargs: Any) -> testing.Result:
        """One request; kwargs as falcon's ``simulate_request`` (json, body, headers...)."""
        result = self.loop.run(self._conductor.simulate_request(method, path, **kwargs))
        assert isinstance(result, testing.Result)  # not a stream: simulate_request buffers
        return result

    def get(self, path: str, **kwargs: Any) -> testing.Result:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, document: Any = None, **kwargs: Any) -> testing.Result:
        """POST ``document`` as JSON (if given), or the kwargs' body."""
        if document is not None:
            kwargs["json"] = document
        return self.request("POST", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> testing.Result:
        return self.request("DELETE", path, **kwargs)

    def close(self) -> None:
        """Run the app's lifespan shutdown (once)."""
        if self._open:
            self._open = False
            self.loop.run(self._conductor.__aexit__(None, None, None))

    def __enter__(self) -> AppClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
