"""The grades HTTP workers' clients of the storage actor and the bus (and the JSON of a
record the storage actor answers with).

One AsyncClient per worker process, made in ``get_app()`` and connected
lazily inside the worker's event loop (never in gunicorn's master).
"""

from __future__ import annotations

import os
from typing import Any

import msgspec

from actors.bus.config import DEFAULT_BUS_URL, NO_BUS
from actors.grades.records import FIELDS
from actors.runtime.client import AsyncClient
from actors.runtime.security import Curve

__all__ = ["STORE_TIMEOUT_S", "store_from_env", "bus_from_env", "record_json"]

STORE_TIMEOUT_S = 5.0
"""Longer than the storage actor's own publish timeout, so it answers first."""

_encode = msgspec.json.encode


def record_json(row: list[Any]) -> bytes:
    """{"result": record} from a storage row [user_id, 4 values]."""
    record = {"user_id": row[0]}
    record.update(zip(FIELDS, row[1:5]))
    return _encode({"result": record})


def _curve() -> Curve | None:
    return Curve.load(os.environ.get("GRADES_CURVE_DIR"))


def bus_from_env() -> AsyncClient | None:
    """A client of the bus (for its stats), or None for a standalone replica."""
    url = os.environ.get("BUS_URL", DEFAULT_BUS_URL).strip()
    if url.lower() in NO_BUS:
        return None
    return AsyncClient(url, STORE_TIMEOUT_S, curve=_curve(), peer="bus")


def store_from_env() -> AsyncClient:
    """The per-worker client; it connects lazily inside the worker's loop."""
    endpoint = os.environ.get("STORAGE_ENDPOINT")
    if not endpoint:
        raise RuntimeError("STORAGE_ENDPOINT is not set (grades replica sets it)")
    return AsyncClient(endpoint, STORE_TIMEOUT_S, curve=_curve(), peer="storage actor")
