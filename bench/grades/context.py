"""What every grades measurement gets: the run's settings (`Ctx`), the targets its
verdicts hold figures against, and the peers' names; measures.py lists the measurements."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["FULL_ROWS", "GO", "GO_JS", "TARGETS", "Ctx", "no_peer", "peer_url"]

GO = "go-grades"
GO_JS = "go-grades-js"
TARGETS = {
    "one_replica": 0.35,
    "two_replicas": 0.6,
    "lag_p99_ms": 10.0,
    "bus": 1.0,
    "backup_s": 3.0,
    "restore_s": 5.0,
    "getter_rss_mb": 50.0,
    "bytes_per_user": 200.0,
    "restore_to_backup": 1.3,
    "restore_peak_rss": 1.3,
}
FULL_ROWS = 1_000_000


@dataclass
class Ctx:
    """One run's settings (run.py's flags), and each measurement's data once it ran (3
    drives 80% of 1b's best rate)."""

    duration: float
    warmup: float
    concurrencies: list[int]
    rows: int
    peers: bool
    nats_py: bool
    peers_note: str = ""
    results: dict = field(default_factory=dict)  # measurement name -> its "data"

    def log(self, message: str) -> None:
        print(f"  {message}", flush=True)


def peer_url(port: int, path: str) -> str:
    """A Go peer's URL (they listen on fixed loopback ports, stack.PEER_PORTS)."""
    return f"http://127.0.0.1:{port}{path}"


def no_peer(ctx: Ctx, what: str) -> str:
    note = f"{what}: peer skipped ({ctx.peers_note})"
    ctx.log(note)
    return note
