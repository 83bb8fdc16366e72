"""Launchers of NATS JetStream nodes for grades' tests and benchmarks: one nats-server
(``NatsNode``) and a cluster of them (``NatsCluster``), with the stream's state and
leader read from their HTTP monitoring. ``actors.grades.testing.Cluster`` starts them
for a replica pair on JetStream; partition tests place them in network namespaces.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import requests

from actors.grades.jetstream.node import nats_server_binary, node_config
from actors.runtime.testing import START_TIMEOUT_S, Proc, free_port, wait_until

__all__ = ["NatsCluster", "NatsNode"]


class NatsNode(Proc):
    """One nats-server of a JetStream cluster, its config and store under ``home``.

    ``host`` is the address the others and the replicas reach it at; ``netns`` runs
    it inside a network namespace (``ip netns exec``), for partition tests.
    """

    def __init__(
        self,
        index: int,
        home: Path,
        log_dir: Path,
        sync: str,
        host: str = "127.0.0.1",
        listen_host: str = "127.0.0.1",
        netns: str = "",
    ):
        self.index = index
        self.home = home
        self.sync = sync
        self.host, self.listen_host = host, listen_host
        self.port, self.cluster_port, self.monitor_port = free_port(), free_port(), free_port()
        self.url = f"nats://{host}:{self.port}"
        self.conf = home / f"node{index}.conf"
        prefix = ["ip", "netns", "exec", netns] if netns else []
        super().__init__(
            f"nats{index}",
            [*prefix, nats_server_binary(), "-c", str(self.conf)],
            dict(os.environ),
            log_dir,
        )
        self.ok_codes.add(1)  # nats-server exits 1 after a clean shutdown on SIGTERM

    def write_config(self, peers: list["NatsNode"]) -> None:
        store = self.home / f"node{self.index}"
        store.mkdir(parents=True, exist_ok=True)
        self.conf.write_text(
            node_config(
                self.index,
                [p.host for p in peers],
                str(store),
                self.sync,
                [p.port for p in peers],
                [p.cluster_port for p in peers],
                self.monitor_port,
                listen_host=self.listen_host,
                monitor_host=self.listen_host,
            )
        )

    def healthy(self) -> bool:
        """/healthz: the server is up and its JetStream is ready (meta leader known)."""
        try:
            return (
                requests.get(
                    f"http://{self.host}:{self.monitor_port}/healthz", timeout=1
                ).status_code
                == 200
            )
        except requests.RequestException:
            return False

    def wait_up(self, timeout_s: float = START_TIMEOUT_S) -> None:
        wait_until(
            lambda: self.healthy() or not self.running(), timeout_s, f"{self.name} to be healthy"
        )
        if not self.running():
            raise self.fail("exited at start")


class NatsCluster:
    """Three (or ``size``) nats-server nodes clustered on loopback; ``url`` lists them all."""

    def __init__(self, nodes: list[NatsNode]):
        self.nodes = nodes
        self.url = ",".join(node.url for node in nodes)
        self.pub_url = ""

    def node(self, server_name: str) -> NatsNode:
        """The node called ``grades-natsN``."""
        return next(n for n in self.nodes if f"grades-nats{n.index}" == server_name)

    def start(self, *nodes: NatsNode) -> None:
        """Start the given nodes (default all) and wait until each is healthy."""
        for node in nodes or self.nodes:
            node.start()
        for node in nodes or self.nodes:
            node.wait_up()

    # The built-in Bus's interface, so a test may take either: the whole cluster down/up.
    def kill9(self) -> None:
        for node in self.nodes:
            node.kill9()

    def wait_listening(self, timeout_s: float = START_TIMEOUT_S) -> None:
        for node in self.nodes:
            node.wait_up(timeout_s)

    def running(self) -> bool:
        return any(node.running() for node in self.nodes)

    def _stream_details(self, stream: str) -> Iterator[dict[str, Any]]:
        """The stream's entry in each running node's /jsz (HTTP monitoring), as it answers."""
        for node in self.nodes:
            if not node.running():
                continue
            try:
                info: dict[str, Any] = requests.get(
                    f"http://{node.host}:{node.monitor_port}/jsz",
                    params={"streams": "true"},
                    timeout=1,
                ).json()
            except (requests.RequestException, ValueError):
                continue
            for account in info.get("account_details") or []:
                for entry in account.get("stream_detail") or []:
                    if entry.get("name") == stream:
                        yield entry

    def stream_state(self, stream: str = "GRADES") -> dict[str, Any]:
        """The stream's state (messages, bytes, first_seq, last_seq) as a node reports it."""

        def state() -> dict[str, Any] | None:
            found = (e["state"] for e in self._stream_details(stream) if e.get("state"))
            return next(found, None)

        result: dict[str, Any] = wait_until(state, START_TIMEOUT_S, f"stream {stream}'s state")
        return result

    def current_stream_leader(self, stream: str = "GRADES") -> NatsNode | None:
        """The node leading the stream's raft group as a node reports it now; None if none."""
        for entry in self._stream_details(stream):
            name = (entry.get("cluster") or {}).get("leader")
            if name:
                return self.node(name)
        return None

    def stream_leader(self, stream: str = "GRADES") -> NatsNode:
        """The node leading the stream's raft group, waiting until one does."""
        return wait_until(
            lambda: self.current_stream_leader(stream),
            START_TIMEOUT_S,
            f"stream {stream} to have a leader",
        )
