"""The bus process's settings: where it listens and where its log lives.

BUS_URL and BUS_PUB_URL are shared with the replicas that connect to it; the
log lives in BUS_LOG_DIR, by default ``<GRADES_DATA_DIR>/bus`` (the bus was
grades' first, and a checkout's cluster keeps all its files in one place).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from actors.bus.log import SEGMENT_BYTES
from actors.runtime.config import ConfigError, env_int, env_str

__all__ = ["BusConfig", "retain_settings", "DEFAULT_BUS_URL", "DEFAULT_BUS_PUB_URL", "NO_BUS"]

DEFAULT_BUS_URL = "tcp://127.0.0.1:5555"
DEFAULT_BUS_PUB_URL = "tcp://127.0.0.1:5556"
NO_BUS = ("", "none", "off")
DEFAULT_RETAIN_BYTES = 1 << 30
"""Segments every replica's snapshot covers are deleted while a stream is over 1 GiB."""
DEFAULT_RETAIN_AGE_S = 7 * 86400
DEFAULT_RETAIN_SILENT_S = 86400
"""A consumer not heard from for a day stops holding the log back (it reports every
GRADES_SNAPSHOT_EVERY_S, 5 min by default; a day outlasts any planned maintenance)."""
PROGRAM = "grades bus"


def retain_settings(environ: Mapping[str, str], program: str) -> dict[str, int]:
    """BUS_RETAIN_BYTES, _AGE_S and _SILENT_S as keyword arguments: read the same way by
    the bus and by grades' JetStream trimmer, which applies the same rules to its stream."""
    ten_years = 10 * 365 * 86400
    return {
        "retain_bytes": env_int(
            environ, "BUS_RETAIN_BYTES", DEFAULT_RETAIN_BYTES, 0, 1 << 50, program
        ),
        "retain_age_s": env_int(
            environ, "BUS_RETAIN_AGE_S", DEFAULT_RETAIN_AGE_S, 0, ten_years, program
        ),
        "retain_silent_s": env_int(
            environ, "BUS_RETAIN_SILENT_S", DEFAULT_RETAIN_SILENT_S, 0, ten_years, program
        ),
    }


@dataclass(frozen=True)
class BusConfig:
    """The bus process: where it listens and where its logs live."""

    bus_url: str
    bus_pub_url: str
    log_dir: Path
    curve_dir: str
    """CurveZMQ keys (GRADES_CURVE_DIR), or "" for none."""
    retain_bytes: int = DEFAULT_RETAIN_BYTES
    """BUS_RETAIN_BYTES: trim a stream's snapshotted segments while it is bigger (0: off)."""
    retain_age_s: int = DEFAULT_RETAIN_AGE_S
    """BUS_RETAIN_AGE_S: delete snapshotted segments older than this (0: off)."""
    retain_silent_s: int = DEFAULT_RETAIN_SILENT_S
    """BUS_RETAIN_SILENT_S: a consumer silent this long stops holding the floor (0: never)."""
    segment_bytes: int = SEGMENT_BYTES
    """BUS_SEGMENT_BYTES: roll to a new segment file past this size."""

    @classmethod
    def from_env(cls) -> "BusConfig":
        bus_url = env_str(os.environ, "BUS_URL", DEFAULT_BUS_URL)
        if bus_url.lower() in NO_BUS:
            raise ConfigError("BUS_URL=none makes no sense for the bus itself", PROGRAM)
        data_dir = Path(env_str(os.environ, "GRADES_DATA_DIR", "data"))
        return cls(
            bus_url=bus_url,
            bus_pub_url=env_str(os.environ, "BUS_PUB_URL", DEFAULT_BUS_PUB_URL),
            log_dir=Path(env_str(os.environ, "BUS_LOG_DIR", str(data_dir / "bus"))).resolve(),
            curve_dir=env_str(os.environ, "GRADES_CURVE_DIR", ""),
            **retain_settings(os.environ, PROGRAM),
            segment_bytes=env_int(
                os.environ, "BUS_SEGMENT_BYTES", SEGMENT_BYTES, 4096, 1 << 32, PROGRAM
            ),
        )
