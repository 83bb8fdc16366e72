"""Log lines of every process: one line per event, plain or JSON.

LOG_FORMAT=plain (default) prints ``time level name: message``; LOG_FORMAT=json
prints one JSON object per line with ``ts``, ``level``, ``logger``, ``msg`` and
any ``extra`` fields (such as ``request_id``), for log shippers.
"""

from __future__ import annotations

import json
import logging
import os
import sys

__all__ = ["setup_logging", "JsonFormatter"]

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}",
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        line.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def setup_logging(name: str) -> logging.Logger:
    """Configure the root logger from LOG_LEVEL and LOG_FORMAT; returns ``name``'s logger."""
    handler = logging.StreamHandler(sys.stderr)
    if os.environ.get("LOG_FORMAT", "plain").lower() == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(os.environ.get("LOG_LEVEL", "INFO").upper())
    return logging.getLogger(name)
