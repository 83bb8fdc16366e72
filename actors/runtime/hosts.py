"""Two "hosts" on one machine, for tests and benches: what one instance cannot reach.

- ``private_tree_argv`` runs a command in its own mount namespace with a fresh tmpfs
  over a shared directory, so the ipc sockets another "host" binds under that directory
  do not exist for it (a separate network namespace alone does not do this: a unix
  socket bound to a path is reachable from every network namespace).
- ``Namespaces`` makes network namespaces joined by veth pairs to a bridge in the root
  namespace, on addresses of a private /24 it owns, and removes all of it at close;
  ``link_down``/``link_up`` cut and restore one namespace's link.

Both need root (``unshare``, ``ip``); ``namespaces_unavailable()`` says why not.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

__all__ = ["Namespaces", "namespaces_unavailable", "private_tree_argv"]

PREFIX = "10.213"
"""Every address made here is in 10.213.0.0/16 (private, RFC 1918)."""
IP_TIMEOUT_S = 10.0
"""One `ip` command; they take milliseconds."""


def private_tree_argv(argv: list[str], root: Path, own: Path) -> list[str]:
    """argv run with a private, empty tmpfs at `root` (then `own`, inside it, created).

    Another process started the same way sees its own tmpfs there: ipc endpoints under
    `root` are private to each, as on two hosts.
    """
    assert Path(own).is_relative_to(root), f"{own} is not inside {root}"
    script = 'mount -t tmpfs -o mode=0755 hosts "$1" && mkdir -p "$2" && shift 2 && exec "$@"'
    return [
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "--",
        "sh",
        "-c",
        script,
        "private-tree",
        str(root),
        str(own),
        *argv,
    ]


def namespaces_unavailable() -> str | None:
    """Why network namespaces cannot be made here, or None when they can."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "the ip command (iproute2) is not installed"
    probe = f"nsprobe-{os.getpid()}"
    made = _ip("netns", "add", probe, check=False)
    if made.returncode != 0:
        return f"ip netns add is not allowed: {made.stderr.strip()}"
    _ip("netns", "delete", probe, check=False)
    return None


class Namespaces:
    """Network namespaces `<tag>-0`, `<tag>-1`, ... each with one veth to bridge `<tag>`.

    The bridge has 10.213.<subnet>.1/24 in the root namespace, namespace i has
    10.213.<subnet>.<i + 2>. Use as a context manager; everything is removed at exit,
    also after a failure half way.

    Args:
        tag: short name (at most 10 characters: interface names are 15 at most).
        count: namespaces to make.
        subnet: the third octet of the private /24 (default: the first 10.213.N.0/24
            no interface of this host has an address in).
    """

    def __init__(self, tag: str, count: int, subnet: int | None = None):
        subnet = _free_subnet() if subnet is None else subnet
        assert len(tag) <= 10 and 0 < count < 200 and 0 <= subnet < 256
        self.tag = tag
        self.count = count
        self.prefix = f"{PREFIX}.{subnet}"
        self.bridge_address = f"{self.prefix}.1"
        self.names = [f"{tag}-{i}" for i in range(count)]

    def address(self, index: int) -> str:
        return f"{self.prefix}.{index + 2}"

    def __enter__(self) -> Namespaces:
        try:
            _ip("link", "add", self.tag, "type", "bridge")
            _ip("addr", "add", f"{self.bridge_address}/24", "dev", self.tag)
            _ip("link", "set", self.tag, "up")
            for i, name in enumerate(self.names):
                outside, inside = f"{self.tag}-v{i}", f"{self.tag}-p{i}"
                _ip("netns", "add", name)
                _ip("link", "add", outside, "type", "veth", "peer", "name", inside)
                _ip("link", "set", inside, "netns", name)
                _ip("link", "set", outside, "master", self.tag)
                _ip("link", "set", outside, "up")
                _ip("-n", name, "addr", "add", f"{self.address(i)}/24", "dev", inside)
                _ip("-n", name, "link", "set", inside, "up")
                _ip("-n", name, "link", "set", "lo", "up")
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Delete the namespaces (their veth ends go with them) and the bridge."""
        for i, name in enumerate(self.names):
            _ip("link", "delete", f"{self.tag}-v{i}", check=False)
            _ip("netns", "delete", name, check=False)
        _ip("link", "delete", self.tag, check=False)

    def exec_argv(self, index: int, argv: list[str]) -> list[str]:
        """argv run inside namespace `index`."""
        return ["ip", "netns", "exec", self.names[index], *argv]

    def link_down(self, index: int) -> None:
        """Cut namespace `index` off: its veth's outer end goes down (packets dropped)."""
        _ip("link", "set", f"{self.tag}-v{index}", "down")

    def link_up(self, index: int) -> None:
        _ip("link", "set", f"{self.tag}-v{index}", "up")


def _free_subnet() -> int:
    used = _ip("-4", "-o", "addr", "show").stdout
    for subnet in range(1, 255):
        if f" {PREFIX}.{subnet}." not in used:
            return subnet
    raise RuntimeError(f"every {PREFIX}.N.0/24 is in use")


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        ["ip", *args], capture_output=True, text=True, timeout=IP_TIMEOUT_S, check=False
    )
    if check and done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")
    return done
