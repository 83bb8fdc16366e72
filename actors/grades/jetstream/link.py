"""The JetStream broker's link to NATS: the connection, and what the stream last said.

``StreamLink.connect()`` retries until a server of BUS_URL answers (nats-py then
reconnects by itself); ``probe()``, run every PROBE_EVERY_S by the broker, asks for the
stream's state, creates the stream the first time it is missing, and keeps ``log_id``,
``first_seq`` and ``last_seq``; ``bus_up`` is "connected, and the stream answered
within STREAM_DEAD_AFTER_S"; ``trim()`` runs retention (retention.py).

The broker hears two things back: ``on_reconnect`` (make the consumer again) and
``on_recreated(old, new)`` (the stream's identity changed under a reader). What to do
about them depends on what storage asked for, which only the broker knows.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext
from nats.js.api import StreamInfo

from actors.grades.config import Config
from actors.grades.jetstream.retention import Trimmer
from actors.grades.jetstream.stream import log_id_of, stream_config, stream_name

__all__ = ["PROBE_EVERY_S", "StreamLink"]

PROBE_EVERY_S = 0.5
"""How often the stream's state is asked for: liveness, its end, its identity."""
PROBE_TIMEOUT_S = 1.0
STREAM_DEAD_AFTER_S = 2.0
"""No answer about the stream for this long: sets are refused (503) until one comes."""
CONNECT_TIMEOUT_S = 2
CONNECT_RETRY_S = 1.0
PING_INTERVAL_S = 1
"""nats-py pings every 120 s by default; a dead node must be noticed within seconds."""
MAX_OUTSTANDING_PINGS = 2
RECONNECT_WAIT_S = 0.2


class StreamLink:
    """One replica's NATS connection and its view of the stream.

    Args:
        config: the replica's settings (BUS_URL, stream, replicas, retention).
        log: the broker's logger.
        on_reconnect: called after nats-py reconnected.
        on_recreated: called with (old, new) log id when the stream was recreated.
    """

    def __init__(
        self,
        config: Config,
        log: logging.Logger,
        on_reconnect: Callable[[], None],
        on_recreated: Callable[[str, str], None],
    ):
        self.config = config
        self.log = log
        self.stream = stream_name(config.stream)
        self._on_reconnect = on_reconnect
        self._on_recreated = on_recreated
        self.nc: NatsClient | None = None
        self.js: JetStreamContext | None = None
        self.stream_ok_at = 0.0  # monotonic time of the last good answer about the stream
        self.log_id = ""
        self.first_seq = 1
        self.last_seq = 0
        self.trimmer = Trimmer(
            config.stream,
            config.retain_bytes,
            config.retain_age_s,
            config.retain_silent_s,
            log,
        )

    async def connect(self) -> None:
        """Connect, retrying every CONNECT_RETRY_S until a server answers."""
        servers = [url.strip() for url in self.config.bus_url.split(",") if url.strip()]
        nc = None
        while nc is None:
            try:
                nc = await nats.connect(
                    servers,
                    name=f"grades-replica-{self.config.replica_id}",
                    connect_timeout=CONNECT_TIMEOUT_S,
                    ping_interval=PING_INTERVAL_S,
                    max_outstanding_pings=MAX_OUTSTANDING_PINGS,
                    allow_reconnect=True,
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=RECONNECT_WAIT_S,
                    disconnected_cb=self._disconnected,
                    reconnected_cb=self._reconnected,
                    error_cb=self._nats_error,
                )
            except (nats.errors.Error, OSError, TimeoutError) as exc:
                self.log.warning("no NATS server answers at %s (%s); trying again", servers, exc)
                await asyncio.sleep(CONNECT_RETRY_S)
        self.nc, self.js = nc, nc.jetstream(timeout=PROBE_TIMEOUT_S)
        self.log.info("connected to NATS %s", _netloc(nc))

    async def close(self, timeout_s: float) -> None:
        if self.nc is not None:
            try:
                await asyncio.wait_for(self.nc.close(), timeout_s)
            except (TimeoutError, nats.errors.Error):
                pass

    def nats(self) -> tuple[NatsClient, JetStreamContext]:
        """The connection and its JetStream context (the probe and consumer run after it)."""
        if self.nc is None or self.js is None:
            raise RuntimeError("not connected to NATS yet")
        return self.nc, self.js

    async def _disconnected(self) -> None:
        self.log.warning("lost the NATS connection; reconnecting")

    async def _reconnected(self) -> None:
        self.log.info("reconnected to NATS %s", _netloc(self.nats()[0]))
        self._on_reconnect()

    async def _nats_error(self, exc: Exception) -> None:
        self.log.warning("NATS: %s", exc)

    @property
    def bus_up(self) -> bool:
        return (
            self.nc is not None
            and self.nc.is_connected
            and time.monotonic() - self.stream_ok_at < STREAM_DEAD_AFTER_S
        )

    async def probe(self) -> None:
        """Ask for the stream's state, creating the stream the first time it is missing."""
        try:
            info: StreamInfo | None = await self.nats()[1].stream_info(self.stream)
        except nats.js.errors.NotFoundError:
            info = await self._create_stream()
        except (nats.errors.Error, TimeoutError) as exc:
            if self.bus_up:
                self.log.warning("stream %s does not answer (%s)", self.stream, exc)
            return
        if info is None:
            return
        was_up = self.bus_up
        self.stream_ok_at = time.monotonic()
        log_id = log_id_of(self.stream, info.created)
        if self.log_id and log_id != self.log_id:
            self._on_recreated(self.log_id, log_id)
        self.log_id = log_id
        self.first_seq, self.last_seq = info.state.first_seq, info.state.last_seq
        if not was_up:
            self.log.info(
                "stream %s is up (last sequence %d, leader %s)",
                self.stream,
                self.last_seq,
                info.cluster.leader if info.cluster else "-",
            )

    async def trim(self) -> None:
        """Purge what every live replica has snapshotted, past the limits (retention.py)."""
        if not self.bus_up or not self.log_id:
            return
        nc, js = self.nats()
        try:
            await self.trimmer.check(nc, js, self.log_id)
        except (nats.errors.Error, TimeoutError) as exc:
            self.log.warning("retention check failed (%s); trying again", exc)

    async def _create_stream(self) -> StreamInfo | None:
        try:
            info = await self.nats()[1].add_stream(
                stream_config(self.config.stream, self.config.nats_replicas)
            )
        except (nats.errors.Error, TimeoutError) as exc:
            self.log.warning("cannot create stream %s yet (%s)", self.stream, exc)
            return None
        self.log.info(
            "created stream %s (%d replicas, file storage)", self.stream, self.config.nats_replicas
        )
        return info


def _netloc(nc: NatsClient) -> str:
    """The server a connection is on, for the log."""
    url = nc.connected_url
    return url.netloc if url is not None else "-"
