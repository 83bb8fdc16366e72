"""grades' replica settings, from the environment: every variable, its default, its check.

A bad value stops the process at start with a message naming the variable,
rather than surfacing later as a confusing failure. A replica takes no flags;
its variables are its own (REPLICA_ID, SETTER_PORT, ..., not RUN_ADDRESS), and its
private files live in ``<GRADES_DATA_DIR>/replica<N>`` beside its snapshots.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from actors.bus.config import (
    DEFAULT_BUS_PUB_URL,
    DEFAULT_BUS_URL,
    DEFAULT_RETAIN_AGE_S,
    DEFAULT_RETAIN_BYTES,
    DEFAULT_RETAIN_SILENT_S,
    NO_BUS,
    retain_settings,
)
from actors.grades.records import MAX_REPLICA_ID
from actors.runtime.config import ConfigError, env_int, env_str
from actors.runtime.endpoints import MAX_IPC_PATH, ipc_endpoint

__all__ = ["ConfigError", "Config", "DEFAULT_STREAM", "DEFAULT_HTTP_WORKERS", "data_dir"]

DEFAULT_STREAM = "grades"
DEFAULT_SNAPSHOT_EVERY_S = 300
"""A replica writes its own snapshot file this often, so the bus may trim its log: a
1M-row snapshot reads the map for ~3 s, so every 5 min costs the storage actor ~1%."""
PROGRAM = "grades"
DEFAULT_HTTP_WORKERS = 2
"""gunicorn workers serving both ports (GRADES_HTTP_WORKERS): one per core here."""


def data_dir(environ: Mapping[str, str]) -> Path:
    """GRADES_DATA_DIR (default ./data), where replicas and the bus keep their files."""
    return Path(env_str(environ, "GRADES_DATA_DIR", "data")).resolve()


@dataclass(frozen=True)
class Config:
    """Everything one replica's processes need; see the README's configuration table."""

    replica_id: int
    """REPLICA_ID (1..MAX_REPLICA_ID, default 1): this replica's number."""
    setter_port: int
    """SETTER_PORT (default 8181, 8383 for replicas but the first): POST /set."""
    getter_port: int
    """GETTER_PORT (default 8080, 8282 for replicas but the first): GET /get, /backup."""
    http_host: str
    """HTTP_HOST (default 127.0.0.1): where both ports listen."""
    next_replica_url: str
    """NEXT_REPLICA_URL (default none): the peer whose backup a new replica restores."""
    bus_url: str
    """BUS_URL: the bus's ROUTER, nats:// servers for JetStream, or none."""
    bus_pub_url: str
    """BUS_PUB_URL: the bus's PUB socket."""
    stream: str
    """GRADES_STREAM (default grades): the log stream the replicas share."""
    run_dir: Path
    """<GRADES_DATA_DIR>/replica<N>: this replica's private files (sockets, snapshots, lock)."""
    storage_endpoint: str
    """STORAGE_ENDPOINT (default ipc://<run_dir>/storage.sock): the storage actor."""
    http_workers: int
    """GRADES_HTTP_WORKERS (default 2): gunicorn workers, each serving both ports."""
    clock_skew_ms: int
    """GRADES_CLOCK_SKEW_MS (default 0): a deliberate clock offset, for tests."""
    curve_dir: str
    """CurveZMQ keys (GRADES_CURVE_DIR, made by `grades keygen`), or "" for none."""
    nats_replicas: int = 1
    """JetStream stream replicas when this replica creates the stream (GRADES_NATS_REPLICAS)."""
    snapshot_every_s: int = 0
    """Seconds between this replica's own snapshot files (GRADES_SNAPSHOT_EVERY_S); 0: none."""
    retain_bytes: int = DEFAULT_RETAIN_BYTES
    """JetStream: purge what every live replica snapshotted while the stream is bigger
    (BUS_RETAIN_BYTES, as the built-in bus; 0: no size limit)."""
    retain_age_s: int = DEFAULT_RETAIN_AGE_S
    """JetStream: purge snapshotted messages older than this (BUS_RETAIN_AGE_S; 0: none)."""
    retain_silent_s: int = DEFAULT_RETAIN_SILENT_S
    """JetStream: a replica silent this long stops holding the stream (BUS_RETAIN_SILENT_S)."""

    @property
    def jetstream(self) -> bool:
        """BUS_URL lists nats:// servers: the JetStream broker, not the built-in bus."""
        return self.bus_url.lower().startswith("nats://")

    @property
    def replicated(self) -> bool:
        """False when BUS_URL=none: a standalone replica, writes neither durable nor shared."""
        return self.bus_url.lower() not in NO_BUS

    @property
    def urls(self) -> dict[str, str]:
        """The HTTP base URL of each port, by role, as said in the ready line."""
        return {
            "setter": f"http://{self.http_host}:{self.setter_port}",
            "getter": f"http://{self.http_host}:{self.getter_port}",
        }

    @classmethod
    def from_env(cls, environ: Mapping[str, str], argv: Sequence[str] | None = None) -> Config:
        """Settings from the environment. A replica takes no flags: ``argv`` (None for
        sys.argv[1:], so a replica's own processes pass ``[]``) must be empty.

        Raises:
            ConfigError: a malformed value, naming its variable.
        """
        argparse.ArgumentParser(prog="grades replica").parse_args(argv)

        def number(name: str, default: int, low: int, high: int) -> int:
            return env_int(environ, name, default, low, high, PROGRAM)

        def text(name: str, default: str) -> str:
            return env_str(environ, name, default)

        replica_id = number("REPLICA_ID", 1, 1, MAX_REPLICA_ID)
        run_dir = data_dir(environ) / f"replica{replica_id}"
        default_setter, default_getter = (8181, 8080) if replica_id == 1 else (8383, 8282)
        endpoint = text("STORAGE_ENDPOINT", f"ipc://{run_dir}/storage.sock")
        if endpoint.startswith("ipc://") and len(endpoint) - len("ipc://") > MAX_IPC_PATH:
            raise ConfigError(f"STORAGE_ENDPOINT path is too long for a unix socket: {endpoint}")
        config = cls(
            replica_id=replica_id,
            setter_port=number("SETTER_PORT", default_setter, 1, 65535),
            getter_port=number("GETTER_PORT", default_getter, 1, 65535),
            http_host=text("HTTP_HOST", "127.0.0.1"),
            next_replica_url=text("NEXT_REPLICA_URL", "").rstrip("/"),
            bus_url=text("BUS_URL", DEFAULT_BUS_URL),
            bus_pub_url=text("BUS_PUB_URL", DEFAULT_BUS_PUB_URL),
            stream=text("GRADES_STREAM", DEFAULT_STREAM),
            run_dir=run_dir,
            storage_endpoint=endpoint,
            http_workers=number("GRADES_HTTP_WORKERS", DEFAULT_HTTP_WORKERS, 1, 64),
            clock_skew_ms=number("GRADES_CLOCK_SKEW_MS", 0, -(10**9), 10**9),
            curve_dir=text("GRADES_CURVE_DIR", ""),
            nats_replicas=number("GRADES_NATS_REPLICAS", _default_nats_replicas(environ), 1, 5),
            snapshot_every_s=number(
                "GRADES_SNAPSHOT_EVERY_S", DEFAULT_SNAPSHOT_EVERY_S, 0, 7 * 24 * 3600
            ),
            **retain_settings(environ, PROGRAM),
        )
        if 0 < config.retain_silent_s <= 2 * config.snapshot_every_s:
            raise ConfigError(
                f"BUS_RETAIN_SILENT_S={config.retain_silent_s} must be over twice "
                f"GRADES_SNAPSHOT_EVERY_S={config.snapshot_every_s}: a live replica reports "
                "its position only that often",
                PROGRAM,
            )
        return config

    @property
    def broker_liveness_endpoint(self) -> str:
        """Where the broker answers its supervisor's Pings (it serves no ROUTER else)."""
        return ipc_endpoint(self.run_dir, "broker")

    def child_env(self) -> dict[str, str]:
        """The variables the replica's children need on top of its environment (overrides
        only, as every service's ``child_env``): the endpoint, id and ports as settled (the
        HTTP workers tell the setter port from the getter port by number)."""
        return {
            "STORAGE_ENDPOINT": self.storage_endpoint,
            "REPLICA_ID": str(self.replica_id),
            "SETTER_PORT": str(self.setter_port),
            "GETTER_PORT": str(self.getter_port),
        }


def _default_nats_replicas(environ: Mapping[str, str]) -> int:
    """One stream replica per listed NATS server, at most 3 (JetStream's usual R3)."""
    urls = [url for url in env_str(environ, "BUS_URL", "").split(",") if url.strip()]
    return max(1, min(3, len(urls)))
