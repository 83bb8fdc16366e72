"""The one place that knows how a service's actor child is started and watched.

An actor beside a service's HTTP server (a poller, a reaper, a worker) runs as
``python -m <module> [args]`` under the service's supervisor, and serves a ROUTER at
``settings.actor_endpoint(name)`` in the instance's run dir. The supervisor pings it
there (actors.runtime.liveness): a process that stops answering while it uses no CPU
(stopped, deadlocked) is killed and restarted, as if it had died.
"""

from __future__ import annotations

import sys

from actors.runtime.config import ServiceSettings
from actors.runtime.liveness import LivenessProbe
from actors.runtime.supervisor import Child

__all__ = ["actor_child"]


def actor_child(
    settings: ServiceSettings, name: str, module: str, env: dict[str, str], *args: str
) -> Child:
    """The supervised actor ``name`` (``python -m module *args``), probed for liveness
    through the ROUTER its serve loop binds at ``settings.actor_endpoint(name)``."""
    probe = LivenessProbe(settings.actor_endpoint(name))
    return Child(name, [sys.executable, "-m", module, *args], env, liveness=probe)
