"""Two "hosts" on one machine, for tests and benches: what one instance cannot reach.

- ``private_tree_argv`` runs a command in its own mount namespace with a fresh tmpfs
  over a shared directory, so the ipc sockets another "host" binds under that directory
  do not exist for it (a separate network namespace alone does not do this: a unix
  socket bound to a path is reachable from every network namespace).
- ``Namespaces`` makes network namespaces joined by veth pairs to a bridge in the root
  namespace, on addresses of a private /24 it owns, and removes all of it at close;
  ``link_down``/``link_up`` cut and restore one namespace's link.
- ``claim_subnet`` is how a /24 is owned: an exclusive flock on a lock file per subnet
  (under /run/lock), held for the Namespaces' life, so two test runs on one machine
  never pick the same one, however their starts interleave. The lock goes with its
  holder's file descriptor, so a killed run leaves nothing held (the file stays, empty
  of meaning).

Both need root (``unshare``, ``ip``); ``namespaces_unavailable()`` says why not.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
from pathlib import Path

__all__ = [
    "Namespaces",
    "SubnetClaim",
    "claim_subnet",
    "namespaces_unavailable",
    "private_tree_argv",
]

PREFIX = "10.213"
"""Every address made here is in 10.213.0.0/16 (private, RFC 1918)."""
IP_TIMEOUT_S = 10.0
"""One `ip` command; they take milliseconds."""
LOCK_DIR = Path("/run/lock")
"""Where the per-subnet lock files live: one place for every process of the machine
(not $TMPDIR, which differs between runs); the namespaces need root, as does this."""
SUBNETS = range(1, 255)


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
            no other Namespaces holds and no interface of this host has an address in,
            claimed at enter; see ``claim_subnet``).
    """

    def __init__(self, tag: str, count: int, subnet: int | None = None):
        assert len(tag) <= 10 and 0 < count < 200 and (subnet is None or subnet in SUBNETS)
        self.tag = tag
        self.count = count
        self.subnet = subnet
        self.names = [f"{tag}-{i}" for i in range(count)]
        self._claim: SubnetClaim | None = None

    @property
    def prefix(self) -> str:
        """``10.213.<subnet>``, once entered (the subnet is claimed then)."""
        if self._claim is None:
            raise RuntimeError(f"Namespaces {self.tag!r} not entered: it holds no subnet yet")
        return f"{PREFIX}.{self._claim.subnet}"

    @property
    def bridge_address(self) -> str:
        return f"{self.prefix}.1"

    def address(self, index: int) -> str:
        return f"{self.prefix}.{index + 2}"

    def __enter__(self) -> Namespaces:
        self._claim = claim_subnet(self.subnet)
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
        """Delete the namespaces (their veth ends go with them) and the bridge, then let
        the subnet go."""
        for i, name in enumerate(self.names):
            _ip("link", "delete", f"{self.tag}-v{i}", check=False)
            _ip("netns", "delete", name, check=False)
        _ip("link", "delete", self.tag, check=False)
        if self._claim is not None:
            self._claim.release()
            self._claim = None

    def exec_argv(self, index: int, argv: list[str]) -> list[str]:
        """argv run inside namespace `index`."""
        return ["ip", "netns", "exec", self.names[index], *argv]

    def link_down(self, index: int) -> None:
        """Cut namespace `index` off: its veth's outer end goes down (packets dropped)."""
        _ip("link", "set", f"{self.tag}-v{index}", "down")

    def link_up(self, index: int) -> None:
        _ip("link", "set", f"{self.tag}-v{index}", "up")


class SubnetClaim:
    """One held 10.213.<subnet>.0/24: the open, flocked lock file; ``release()`` once."""

    def __init__(self, subnet: int, lock_fd: int):
        self.subnet = subnet
        self._lock_fd: int | None = lock_fd

    def release(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the descriptor drops the flock
            self._lock_fd = None


def claim_subnet(subnet: int | None = None, lock_dir: Path = LOCK_DIR) -> SubnetClaim:
    """Hold a /24 of 10.213.0.0/16 that no other claim of this machine holds.

    Args:
        subnet: that one; None: the first free one, skipping those an interface has an
            address in (made by something that takes no claim).
        lock_dir: where the lock files are (tests pass their own).

    Returns:
        The claim; ``release()`` it (or let the process end) to free the subnet.

    Raises:
        RuntimeError: the given subnet is held, or every subnet is.
    """
    candidates = SUBNETS if subnet is None else [subnet]
    for candidate in candidates:
        fd = _try_lock(lock_dir / f"netns-{PREFIX}.{candidate}.lock")
        if fd is None:
            continue
        # NOTE: checked under the lock. A live claimant's bridge has its address only
        # while it holds the lock; one found now is a killed run's leftover bridge (its
        # lock went with it) or something that takes no claim: skip that subnet.
        if subnet is None and f" {PREFIX}.{candidate}." in _addresses():
            os.close(fd)
            continue
        return SubnetClaim(candidate, fd)
    if subnet is not None:
        raise RuntimeError(f"{PREFIX}.{subnet}.0/24 is held by another process")
    raise RuntimeError(f"every {PREFIX}.N.0/24 is in use")


def _try_lock(path: Path) -> int | None:
    """An open descriptor of path holding its exclusive flock, or None when another has it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    return fd


def _addresses() -> str:
    return _ip("-4", "-o", "addr", "show").stdout


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        ["ip", *args], capture_output=True, text=True, timeout=IP_TIMEOUT_S, check=False
    )
    if check and done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")
    return done
