"""grades on NATS JetStream instead of the built-in bus: the broker, the stream, the nodes.

- ``broker``: the broker actor with a JetStream stream as the log; replica.py runs it
  as ``python -m actors.grades.jetstream.broker`` when BUS_URL lists nats:// servers
  (not imported here, so running it as a module finds it not yet imported).
- ``link``: the broker's NATS connection and the stream's last answer (up, identity,
  end), probed every half second; retention runs on it.
- ``stream``: what the stream and its consumers look like, and how positions map.
- ``node``: nats-server configuration files and running one node (``grades nats-node``,
  ``grades nats-config``, the test and bench harness); re-exported here, it needs no
  nats-py.
- ``testing``: nats-server nodes and clusters for tests and benches (``NatsNode``,
  ``NatsCluster``; actors.grades.testing re-exports them).
"""

from actors.grades.jetstream.node import (
    DEFAULT_SYNC,
    nats_server_binary,
    node_config,
    print_configs,
    run_loopback_node,
)

__all__ = [
    "DEFAULT_SYNC",
    "nats_server_binary",
    "node_config",
    "print_configs",
    "run_loopback_node",
]
