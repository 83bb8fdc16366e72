"""What grades' JetStream stream and its consumers look like, and how positions map.

Kept apart from the broker's event loop (actors.grades.jetstream.broker) so the
mapping and the checks a consumer start needs can be read, and tested, alone.

Positions: JetStream numbers a stream's messages from 1; storage's position is
"the next record not yet applied", from 0. Position p is stream sequence p + 1,
so the position a backup records is the last stream sequence it applied. The
log id is the stream's name and creation time: a recreated stream is another log.
"""

from __future__ import annotations

from datetime import datetime

from nats.js import api

__all__ = [
    "DUPLICATE_WINDOW_S",
    "CONSUMER_HEARTBEAT_S",
    "CONSUMER_INACTIVE_S",
    "stream_name",
    "position_of",
    "log_id_of",
    "stream_config",
    "consumer_config",
    "start_problem",
]

DUPLICATE_WINDOW_S = 120.0
"""A resend with the same Nats-Msg-Id within this window is stored once."""
CONSUMER_HEARTBEAT_S = 1.0
CONSUMER_INACTIVE_S = 10.0
"""The server deletes a consumer nobody listens to after this long (our crash)."""


def stream_name(stream: str) -> str:
    """JetStream stream name of a grades stream ("grades" -> "GRADES")."""
    return stream.upper()


def position_of(stream_seq: int) -> int:
    """Storage's position of the record with this stream sequence."""
    return stream_seq - 1


def log_id_of(name: str, created: datetime | None) -> str:
    """A stream's identity: its name and creation time (a recreated stream differs)."""
    stamp = created.isoformat() if created is not None else "?"
    return f"{name}@{stamp}"


def stream_config(stream: str, replicas: int) -> api.StreamConfig:
    """File storage, ``replicas`` copies, every replica's subject ``<stream>.<id>``."""
    return api.StreamConfig(
        name=stream_name(stream),
        subjects=[f"{stream}.>"],
        storage=api.StorageType.FILE,
        num_replicas=replicas,
        retention=api.RetentionPolicy.LIMITS,
        duplicate_window=DUPLICATE_WINDOW_S,
    )


def consumer_config(stream: str, inbox: str, start_seq: int) -> api.ConsumerConfig:
    """An ephemeral push consumer from ``start_seq``: no acks, idle heartbeats, in memory.

    NOTE: made by us, not by nats-py's js.subscribe, which overwrites filter_subject.
    """
    return api.ConsumerConfig(
        deliver_subject=inbox,
        deliver_policy=api.DeliverPolicy.BY_START_SEQUENCE,
        opt_start_seq=max(1, start_seq),
        ack_policy=api.AckPolicy.NONE,
        filter_subject=f"{stream}.>",
        idle_heartbeat=CONSUMER_HEARTBEAT_S,
        mem_storage=True,
        num_replicas=1,
        inactive_threshold=CONSUMER_INACTIVE_S,
    )


def start_problem(next_seq: int, first_seq: int, last_seq: int) -> str:
    """Why a consumer cannot start at ``next_seq`` of a stream holding first..last.

    JetStream silently starts a consumer elsewhere when the start is below the
    first stored sequence or past the end, so this is checked before every start.

    Returns:
        "" (fine), "gone" (the records before first were purged: refuse), or
        "past_end" (the stream has fewer records than we applied: not our log).
    """
    if next_seq < first_seq and (next_seq > 1 or first_seq > 1):
        return "gone"
    if next_seq > last_seq + 1:
        return "past_end"
    return ""
