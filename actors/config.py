"""Configuration from the environment: every variable, its default, its check.

A bad value stops the process at start with a message naming the variable,
rather than surfacing later as a confusing failure.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from actors.records import MAX_REPLICA_ID

__all__ = ["ConfigError", "ReplicaConfig", "BusConfig", "DEFAULT_STREAM"]

DEFAULT_STREAM = "grades"
DEFAULT_BUS_URL = "tcp://127.0.0.1:5555"
DEFAULT_BUS_PUB_URL = "tcp://127.0.0.1:5556"
NO_BUS = ("", "none", "off")


class ConfigError(SystemExit):
    """A misconfiguration; exits with status 2 and the message."""

    def __init__(self, message: str):
        super().__init__(f"grades: configuration error: {message}")
        self.code = 2


def _int(name: str, default: int, low: int, high: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not an integer") from None
    if not low <= value <= high:
        raise ConfigError(f"{name}={value} is outside {low}..{high}")
    return value


def _str(name: str, default: str) -> str:
    return os.environ.get(name, "").strip() or default


def _data_dir() -> Path:
    return Path(_str("GRADES_DATA_DIR", "data")).resolve()


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

    @property
    def replicated(self) -> bool:
        """False when BUS_URL=none: a standalone replica, writes neither durable nor shared."""
        return self.bus_url.lower() not in NO_BUS

    @classmethod
    def from_env(cls) -> "ReplicaConfig":
        replica_id = _int("REPLICA_ID", 1, 1, MAX_REPLICA_ID)
        run_dir = _data_dir() / f"replica{replica_id}"
        default_setter, default_getter = (8181, 8080) if replica_id == 1 else (8383, 8282)
        endpoint = _str("STORAGE_ENDPOINT", f"ipc://{run_dir}/storage.sock")
        if endpoint.startswith("ipc://") and len(endpoint) - 6 > 100:
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
            setter_workers=_int("SETTER_WORKERS", 2, 1, 64),
            getter_workers=_int("GETTER_WORKERS", 2, 1, 64),
            clock_skew_ms=_int("GRADES_CLOCK_SKEW_MS", 0, -(10**9), 10**9),
        )


@dataclass(frozen=True)
class BusConfig:
    """The bus process: where it listens and where its logs live."""

    bus_url: str
    bus_pub_url: str
    log_dir: Path

    @classmethod
    def from_env(cls) -> "BusConfig":
        bus_url = _str("BUS_URL", DEFAULT_BUS_URL)
        if bus_url.lower() in NO_BUS:
            raise ConfigError("BUS_URL=none makes no sense for the bus itself")
        return cls(
            bus_url=bus_url,
            bus_pub_url=_str("BUS_PUB_URL", DEFAULT_BUS_PUB_URL),
            log_dir=Path(_str("BUS_LOG_DIR", str(_data_dir() / "bus"))).resolve(),
        )
