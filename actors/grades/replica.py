"""`grades replica`: one replica's processes, kept running by the runtime's supervisor.

Children, started in this order: the storage actor, the broker actor (unless
BUS_URL=none; the JetStream broker when BUS_URL lists nats:// servers), the
snapshotter (replicated, unless GRADES_SNAPSHOT_EVERY_S=0), and the setter and
getter gunicorn servers. A child that dies is restarted (the
storage actor restores itself); see actors.runtime.supervisor. Once the
storage actor reports ready, the replica says so once, with its URLs.
"""

from __future__ import annotations

import logging
import os
import sys

from actors.grades.config import ReplicaConfig
from actors.grades.messages import Status
from actors.runtime.base import set_title, setup_logging
from actors.runtime.client import Client, RemoteError
from actors.runtime.config import reports_config_errors
from actors.runtime.gunicorn import gunicorn_child
from actors.runtime.supervisor import Child, Supervisor, exclusive_lock

__all__ = ["replica_children", "main"]

STATUS_TIMEOUT_S = 0.5


def replica_children(cfg: ReplicaConfig) -> list[Child]:
    env = {
        **os.environ,
        "STORAGE_ENDPOINT": cfg.storage_endpoint,
        "REPLICA_ID": str(cfg.replica_id),
        "PYTHONUNBUFFERED": "1",
    }
    python = sys.executable
    children = [Child("storage", [python, "-m", "actors.grades.storage"], env)]
    if cfg.replicated:
        broker = "actors.grades.jetstream.broker" if cfg.jetstream else "actors.grades.broker"
        children.append(Child("broker", [python, "-m", broker], env))
        if cfg.snapshot_every_s:
            children.append(Child("snapshotter", [python, "-m", "actors.grades.snapshotter"], env))
    for role, port, workers in (
        ("setter", cfg.setter_port, cfg.setter_workers),
        ("getter", cfg.getter_port, cfg.getter_workers),
    ):
        children.append(
            gunicorn_child(
                role,
                f"web.grades.{role}:get_app()",
                f"{cfg.http_host}:{port}",
                workers,
                env,
                f"grades: {role} replica={cfg.replica_id}",
                metrics_dir=cfg.run_dir / "metrics",
            )
        )
    return children


class ReadyAnnouncer:
    """Asks the storage actor each tick until it is ready, then says so once."""

    def __init__(self, cfg: ReplicaConfig, log: logging.Logger) -> None:
        self.cfg = cfg
        self.log = log
        self.client: Client | None = None
        self.done = False

    def __call__(self) -> None:
        if self.done:
            return
        if self.client is None:
            self.client = Client(self.cfg.storage_endpoint, timeout_s=1.0)
        try:
            status = self.client.call(Status(), timeout_s=STATUS_TIMEOUT_S)
        except RemoteError:
            return
        if status["phase"] != "ready":
            return
        cfg = self.cfg
        self.log.info(
            "replica %d is ready with %d rows: POST http://%s:%d/set, "
            "GET http://%s:%d/get?user_id=..., GET http://%s:%d/backup",
            cfg.replica_id,
            status["rows"],
            cfg.http_host,
            cfg.setter_port,
            cfg.http_host,
            cfg.getter_port,
            cfg.http_host,
            cfg.getter_port,
        )
        self.done = True
        self.client.close()
        self.client = None


@reports_config_errors
def main() -> int:
    config = ReplicaConfig.from_env()
    log = setup_logging(f"replica[{config.replica_id}]")
    set_title(f"grades: replica={config.replica_id} supervisor")
    lock = exclusive_lock(
        config.run_dir / "replica.lock",
        f"grades: replica {config.replica_id} is already running on {config.run_dir} (pid {{pid}})",
    )
    announcer = ReadyAnnouncer(config, log)
    try:
        return Supervisor(
            f"replica[{config.replica_id}]", replica_children(config), on_tick=announcer
        ).run()
    finally:
        if announcer.client is not None:
            announcer.client.close()
        lock.close()


if __name__ == "__main__":
    sys.exit(main())
