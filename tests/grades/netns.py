"""Network namespaces for the grades tests: "hosts" the test makes and removes itself.

Every address is private (10.213.x.y for a node cut off from loopback, 10.214.x.y
for two hosts on a bridge), made by the test and deleted in a ``finally``; nothing
else is ever a target. Needs root and iproute2: ``require_netns`` skips the test,
with the reason, where the machine does not allow namespaces.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NamedTuple

import pytest

__all__ = ["IP_TIMEOUT_S", "Host", "ip", "ip_quiet", "require_netns", "two_hosts"]

IP_TIMEOUT_S = 10


def ip(*args: str) -> None:
    """``ip ARGS``, failing loudly with what ip said."""
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=IP_TIMEOUT_S)


def ip_quiet(*args: str) -> None:
    """``ip ARGS`` for cleanup: whatever is already gone stays gone."""
    subprocess.run(["ip", *args], capture_output=True, timeout=IP_TIMEOUT_S)


def require_netns(what: str) -> None:
    """Skip the calling test unless this process may make network namespaces."""
    if os.geteuid() != 0 or not shutil.which("ip"):
        pytest.skip(f"{what} needs root and iproute2 (ip netns)")


class Host(NamedTuple):
    """One namespace on the bridge: its name, address, and the bridge's end of its link."""

    netns: str
    address: str
    link: str
    """The host-side veth: ``ip link set <link> down`` cuts this "host" off."""


@contextmanager
def two_hosts() -> Iterator[tuple[Host, Host]]:
    """Two namespaces on a bridge in the test's namespace, 10.214.<random>.1 and .2/24.

    The test reaches both over the bridge (10.214.<random>.254); cutting one
    host's link cuts it off from the other and from the test at once.
    """
    tag = secrets.token_hex(3)  # interface names stay under 15 characters
    octet = 16 + secrets.randbelow(200)
    bridge = f"gbr{tag}"
    hosts = [Host(f"gh{tag}{k}", f"10.214.{octet}.{k}", f"gh{tag}{k}o") for k in (1, 2)]
    try:
        ip("netns", "add", hosts[0].netns)
    except subprocess.CalledProcessError as exc:
        pytest.skip(f"cannot make a network namespace here: {exc.stderr.strip()}")
    try:
        ip("netns", "add", hosts[1].netns)
        ip("link", "add", bridge, "type", "bridge")
        ip("addr", "add", f"10.214.{octet}.254/24", "dev", bridge)
        ip("link", "set", bridge, "up")
        for host in hosts:
            inside = f"{host.netns}i"
            ip("link", "add", host.link, "type", "veth", "peer", "name", inside)
            ip("link", "set", inside, "netns", host.netns)
            ip("link", "set", host.link, "master", bridge)
            ip("link", "set", host.link, "up")
            in_ns = ("netns", "exec", host.netns, "ip")
            ip(*in_ns, "addr", "add", f"{host.address}/24", "dev", inside)
            ip(*in_ns, "link", "set", inside, "up")
            ip(*in_ns, "link", "set", "lo", "up")
        yield hosts[0], hosts[1]
    finally:
        for host in hosts:
            ip_quiet("link", "del", host.link)
            ip_quiet("netns", "del", host.netns)
        ip_quiet("link", "del", bridge)
