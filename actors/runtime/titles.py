"""Process titles: what ``ps`` shows for each process, ``<service>: <role>``.

Its own module, beside base.py, so that a supervisor can name itself before it has
imported ZeroMQ: a supervisor starts its children first, and what it imports before
that delays every one of them.
"""

from __future__ import annotations

__all__ = ["set_title"]


def set_title(title: str) -> None:
    """Name the process for ps/top, e.g. '<service>: <role>'."""
    try:
        import setproctitle
    except ImportError:  # pragma: no cover - installed with the project
        return
    setproctitle.setproctitle(title)
