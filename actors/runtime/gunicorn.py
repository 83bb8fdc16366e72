"""The one place that knows how an HTTP child is started: gunicorn on http/.

``http/`` is not a package (it shares its name with the standard library's):
gunicorn gets it with ``--pythonpath`` and imports ``web.<service>.app``
from there, so nothing else ever puts it on ``sys.path``.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from actors.runtime.config import ServiceSettings
from actors.runtime.supervisor import Child

__all__ = ["HTTP_DIR", "WORKER_CLASS", "gunicorn_argv", "gunicorn_child", "http_child"]

HTTP_DIR = Path(__file__).resolve().parents[2] / "http"
WORKER_CLASS = "web.common.worker.Worker"
BIND_RETRIES_S = 5
"""gunicorn tries a taken port five times, a second apart, before it exits 1."""
QUICK_DEATH_S = BIND_RETRIES_S + 3
"""So a gunicorn that cannot bind counts as failing to start, not as a crash."""
GRACEFUL_TIMEOUT_S = 3
"""honcho SIGKILLs after 5 s; the supervisor allows its children 4 s."""


def gunicorn_argv(
    app: str,
    bind: str | Sequence[str],
    workers: int,
    title: str,
    backlog: int = 2048,
    pythonpath: tuple[Path, ...] = (),
    preload: bool = False,
) -> list[str]:
    """The gunicorn command line every HTTP server runs with: the worker class, the
    timeouts and the log level; ``http/`` (and ``pythonpath``) on its import path.
    ``bind`` is one address or several, all served by the same workers.

    With ``preload`` the master imports the app and calls its factory once, and each
    worker is forked with it loaded: a worker starts (and restarts) in milliseconds
    instead of importing everything itself. The app must then open no socket, pool or
    ZeroMQ context in its factory (LAYOUT rule 5: all of those open lazily in the worker).
    """
    path = ",".join(str(p) for p in (HTTP_DIR, *pythonpath))
    binds = [bind] if isinstance(bind, str) else list(bind)
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "--worker-class",
        WORKER_CLASS,
        "--pythonpath",
        path,
        "--workers",
        str(workers),
        *(flag for address in binds for flag in ("--bind", address)),
        "--graceful-timeout",
        str(GRACEFUL_TIMEOUT_S),
        "--timeout",
        "30",
        "--keep-alive",
        "5",
        "--backlog",
        str(backlog),
        "--log-level",
        "warning",
        "--no-control-socket",
        *(["--preload"] if preload else []),
        "--name",
        title,
        app,
    ]


def gunicorn_child(
    name: str,
    app: str,
    bind: str | Sequence[str],
    workers: int,
    env: dict[str, str],
    title: str,
    backlog: int = 2048,
    metrics_dir: Path | None = None,
    preload: bool = False,
) -> Child:
    """A supervised gunicorn serving ``app`` (e.g. ``web.segments.app:get_app()``).

    With ``metrics_dir``, the workers count HTTP metrics into prometheus_client's
    multiprocess files there (wiped now: a previous run's files would lie).

    Raises:
        SystemExit: http/ is missing (a broken checkout), said in one line.
    """
    module = app.split(":", 1)[0]
    if not (HTTP_DIR / Path(*module.split("."))).with_suffix(".py").exists():
        raise SystemExit(f"cannot find the HTTP app {module} under {HTTP_DIR}")
    if metrics_dir is not None:
        shutil.rmtree(metrics_dir, ignore_errors=True)
        Path(metrics_dir).mkdir(parents=True)
        env = {**env, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
    argv = gunicorn_argv(app, bind, workers, title, backlog=backlog, preload=preload)
    return Child(name, argv, env, quick_death_s=QUICK_DEATH_S)


def http_child(settings: ServiceSettings, app: str, workers: int, env: dict[str, str]) -> Child:
    """The service's gunicorn serving ``app`` on its address, titled
    ``<program>: http <address>``, its metrics files in the run dir, the app preloaded
    (one import in the master, not one per worker: see ``gunicorn_argv``)."""
    return gunicorn_child(
        "http",
        app=app,
        bind=str(settings.address),
        workers=workers,
        env=env,
        title=f"{settings.program}: http {settings.address}",
        metrics_dir=settings.run_dir / "metrics",
        preload=True,
    )
