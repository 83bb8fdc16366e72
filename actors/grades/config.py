"""Configuration from the environment: every variable, its default, its check.

A bad value stops the process at start with a message naming the variable,
rather than surfacing later as a confusing failure.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from actors.bus.config import DEFAULT_BUS_PUB_URL, DEFAULT_BUS_URL, NO_BUS
from actors.grades.records import MAX_REPLICA_ID
from actors.runtime.config import ConfigError, env_int, env_str
from actors.runtime.endpoints import MAX_IPC_PATH

__all__ = ["ConfigError", "ReplicaConfig", "DEFAULT_STREAM", "DEFAULT_HTTP_WORKERS", "data_dir"]

DEFAULT_STREAM = "grades"
DEFAULT_SNAPSHOT_EVERY_S = 300
"""A replica writes its own snapshot file this often, so the bus may trim its log: a
1M-row snapshot reads the map for ~3 s, so every 5 min costs the storage actor ~1%."""
PROGRAM = "grades"


def _int(name: str, default: int, low: int, high: int) -> int:
    return env_int(os.environ, name, default, low, high, PROGRAM)


def _str(name: str, default: str) -> str:
    return env_str(os.environ, name, default)


def data_dir() -> Path:
    """GRADES_DATA_DIR (default ./data), where replicas and the bus keep their files."""
    return Path(_str("GRADES_DATA_DIR", "data")).resolve()


DEFAULT_HTTP_WORKERS = 2
"""gunicorn workers per port (SETTER_WORKERS, GETTER_WORKERS): one per core here."""


@dataclass(frozen=True)
class ReplicaConfig:
    """Everything one replica's processes need; see the README's configuration table."""

    replica_id: int
    setter_port: int
    getter_port: int
    http_host: str
    next_replica_url: str
    bus_url: str
    bus_pub_url: str
    stream: str
    run_dir: Path
    storage_endpoint: str
    setter_workers: int
    getter_workers: int
    clock_skew_ms: int
    curve_dir: str
    """CurveZMQ keys (GRADES_CURVE_DIR, made by `grades keygen`), or "" for none."""
    nats_replicas: int = 1
    """JetStream stream replicas when this replica creates the stream (GRADES_NATS_REPLICAS)."""
    snapshot_every_s: int = 0
    """Seconds between this replica's own snapshot files (GRADES_SNAPSHOT_EVERY_S); 0: none."""

    @property
    def jetstream(self) -> bool:
        """BUS_URL lists nats:// servers: the JetStream broker, not the built-in bus."""
        return self.bus_url.lower().startswith("nats://")

    @property
    def replicated(self) -> bool:
        """False when BUS_URL=none: a standalone replica, writes neither durable nor shared."""
        return self.bus_url.lower() not in NO_BUS

    @classmethod
    def from_env(cls) -> "ReplicaConfig":
        replica_id = _int("REPLICA_ID", 1, 1, MAX_REPLICA_ID)
        run_dir = data_dir() / f"replica{replica_id}"
        default_setter, default_getter = (8181, 8080) if replica_id == 1 else (8383, 8282)
        endpoint = _str("STORAGE_ENDPOINT", f"ipc://{run_dir}/storage.sock")
        if endpoint.startswith("ipc://") and len(endpoint) - len("ipc://") > MAX_IPC_PATH:
            raise ConfigError(f"STORAGE_ENDPOINT path is too long for a unix socket: {endpoint}")
        return cls(
            replica_id=replica_id,
            setter_port=_int("SETTER_PORT", default_setter, 1, 65535),
            getter_port=_int("GETTER_PORT", default_getter, 1, 65535),
            http_host=_str("HTTP_HOST", "127.0.0.1"),
            next_replica_url=_str("NEXT_REPLICA_URL", "").rstrip("/"),
            bus_url=_str("BUS_URL", DEFAULT_BUS_URL),
            bus_pub_url=_str("BUS_PUB_URL", DEFAULT_BUS_PUB_URL),
            stream=_str("GRADES_STREAM", DEFAULT_STREAM),
            run_dir=run_dir,
            storage_endpoint=endpoint,
            setter_workers=_int("SETTER_WORKERS", DEFAULT_HTTP_WORKERS, 1, 64),
            getter_workers=_int("GETTER_WORKERS", DEFAULT_HTTP_WORKERS, 1, 64),
            clock_skew_ms=_int("GRADES_CLOCK_SKEW_MS", 0, -(10**9), 10**9),
            curve_dir=_str("GRADES_CURVE_DIR", ""),
            nats_replicas=_int("GRADES_NATS_REPLICAS", _default_nats_replicas(), 1, 5),
            snapshot_every_s=_int(
                "GRADES_SNAPSHOT_EVERY_S", DEFAULT_SNAPSHOT_EVERY_S, 0, 7 * 24 * 3600
            ),
        )


def _default_nats_replicas() -> int:
    """One stream replica per listed NATS server, at most 3 (JetStream's usual R3)."""
    urls = [url for url in _str("BUS_URL", "").split(",") if url.strip()]
    return max(1, min(3, len(urls)))
