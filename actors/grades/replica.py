"""`grades replica`: one replica's processes, kept running by the runtime's supervisor.

Children, started in this order: the storage actor, the broker actor (unless
BUS_URL=none; the JetStream broker when BUS_URL lists nats:// servers), and one
gunicorn whose workers serve both the setter and the getter port (web.grades.app
routes a request by the port it came in on); once the replica is ready, the
snapshotter (replicated, unless GRADES_SNAPSHOT_EVERY_S=0). A child that dies is restarted (the
storage actor restores itself), and so is a storage actor or broker that stops answering
its supervisor's Pings (actors.runtime.liveness); see actors.runtime.supervisor. Once the
storage actor reports ready and both ports answer HTTP, the replica says so once:
``grades is ready on http://<setter> and http://<getter> (replica N with R rows)``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from actors.grades.config import PROGRAM, Config
from actors.runtime.config import reports_config_errors
from actors.runtime.gunicorn import gunicorn_child
from actors.runtime.liveness import LivenessProbe
from actors.runtime.logs import setup_logging
from actors.runtime.ready import ReadyAnnouncer
from actors.runtime.supervisor import Child, Supervisor, exclusive_lock
from actors.runtime.titles import set_title

if TYPE_CHECKING:
    from actors.runtime.client import Client

# NOTE: the storage client (ZeroMQ, msgpack, asyncio) is imported by StorageReady's first
# call, once the children run: what the supervisor imports before it starts them delays
# every one of them (a fresh replica's start, issue 18).

__all__ = ["replica_children", "main"]

STATUS_TIMEOUT_S = 0.5


def replica_children(cfg: Config, ready: Callable[[], bool] | None = None) -> list[Child]:
    """The replica's children; the snapshotter starts once ``ready()`` says so (its first
    snapshot follows readiness anyway), keeping its start off a fresh replica's CPU."""
    env = {**os.environ, **cfg.child_env(), "PYTHONUNBUFFERED": "1"}
    python = sys.executable
    children = [
        Child(
            "storage",
            [python, "-m", "actors.grades.storage"],
            env,
            liveness=LivenessProbe(cfg.storage_endpoint, cfg.curve_dir),
        )
    ]
    if cfg.replicated:
        broker = "actors.grades.jetstream.broker" if cfg.jetstream else "actors.grades.broker"
        probe = LivenessProbe(cfg.broker_liveness_endpoint, cfg.curve_dir)
        children.append(Child("broker", [python, "-m", broker], env, liveness=probe))
        if cfg.snapshot_every_s:
            children.append(
                Child(
                    "snapshotter",
                    [python, "-m", "actors.grades.snapshotter"],
                    env,
                    start_when=ready,
                )
            )
    children.append(
        gunicorn_child(
            "http",
            "web.grades.app:get_app()",
            [f"{cfg.http_host}:{cfg.setter_port}", f"{cfg.http_host}:{cfg.getter_port}"],
            cfg.http_workers,
            env,
            f"grades: http replica={cfg.replica_id}",
            metrics_dir=cfg.run_dir / "metrics",
            preload=True,
        )
    )
    return children


class StorageReady:
    """The replica's own readiness check: the storage actor has restored (phase ready)."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.client: Client | None = None

    def __call__(self) -> str | None:
        """None while the storage actor is not ready; else ``replica N with R rows``."""
        from actors.grades.messages import Status
        from actors.runtime.client import Client, RemoteError

        if self.client is None:
            self.client = Client(self.cfg.storage_endpoint, timeout_s=1.0)
        try:
            status = self.client.call(Status(), timeout_s=STATUS_TIMEOUT_S)
        except RemoteError:
            return None
        if status["phase"] != "ready":
            return None
        self.close()
        return (
            f"replica {self.cfg.replica_id} with {status['rows']} rows: POST /set on the"
            " first, GET /get?user_id=... and /backup on the second"
        )

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None


@reports_config_errors
def main() -> int:
    config = Config.from_env(os.environ, [])
    log = setup_logging(f"replica[{config.replica_id}]")
    set_title(f"grades: replica={config.replica_id} supervisor")
    lock = exclusive_lock(
        config.run_dir / "replica.lock",
        f"grades: replica {config.replica_id} is already running on {config.run_dir} (pid {{pid}})",
    )
    storage_ready = StorageReady(config)
    urls = config.urls
    announcer = ReadyAnnouncer(PROGRAM, [urls["setter"], urls["getter"]], log, storage_ready)
    children = replica_children(config, ready=lambda: announcer.done)
    try:
        return Supervisor(f"replica[{config.replica_id}]", children, on_tick=announcer).run()
    finally:
        storage_ready.close()
        lock.close()


if __name__ == "__main__":
    sys.exit(main())
