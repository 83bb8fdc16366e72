"""Each service's invariants after a chaos run, as ``Finding`` lines for the report.

``plant`` names a fault to plant into a check's input (``--plant``), to show that
the check catches it: a check that never fails proves nothing.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["PLANTS", "Finding"]

PLANTS = ("grades-drop", "gophermart-double-credit", "balances-twice")


class Finding(NamedTuple):
    service: str
    ok: bool
    line: str
