"""The machine's PostgreSQL: where its binaries are and, under root, whom they run as.

`PostgresServer` asks this module two things it cannot choose itself: which
`postgres`/`initdb`/`psql` to run (the highest Debian version, else PATH), and, since
PostgreSQL refuses to run as root, which unprivileged user runs them and owns the data
directory (`RunAs`).
"""

from __future__ import annotations

import os
import pwd
import shutil
import stat
from pathlib import Path
from typing import Any

__all__ = [
    "PostgresError",
    "PostgresNotFound",
    "RunAs",
    "pg_bin_dir",
    "psql_binary",
]

DEBIAN_BIN_GLOB = "/usr/lib/postgresql/*/bin"
REQUIRED_BINARIES = ("postgres", "initdb")
UNPRIVILEGED_USERS = ("postgres", "nobody")


class PostgresError(RuntimeError):
    """The server could not be initialised, started or stopped; the message says why."""


class PostgresNotFound(PostgresError):
    """The PostgreSQL server binaries are not installed."""


def pg_bin_dir(bin_dir: str | Path | None = None) -> Path:
    """Find the directory holding `postgres` and `initdb`.

    Args:
        bin_dir: use this directory; else the highest `/usr/lib/postgresql/<N>/bin`,
            else the directory of `postgres` on PATH (symlinks resolved).

    Returns:
        The directory.

    Raises:
        PostgresNotFound: no such directory, naming `make install`.
    """
    if bin_dir is not None:
        candidates = [Path(bin_dir)]
    else:
        versions = sorted(Path("/").glob(DEBIAN_BIN_GLOB.lstrip("/")), key=_version_key)
        candidates = list(reversed(versions))
        on_path = shutil.which("postgres")
        if on_path:
            candidates.append(Path(os.path.realpath(on_path)).parent)
    for candidate in candidates:
        if all(os.access(candidate / name, os.X_OK) for name in REQUIRED_BINARIES):
            return candidate
    where = str(bin_dir) if bin_dir is not None else f"{DEBIAN_BIN_GLOB} or PATH"
    raise PostgresNotFound(
        f"PostgreSQL server binaries ({', '.join(REQUIRED_BINARIES)}) not found in {where}; "
        "run `make install` (scripts/install-postgres.sh installs them)"
    )


def _version_key(path: Path) -> tuple[int, str]:
    name = path.parent.name
    return (int(name), name) if name.isdigit() else (-1, name)


def psql_binary(bin_dir: Path) -> str:
    """psql beside the server binaries, else on PATH.

    Raises:
        PostgresNotFound: neither has one.
    """
    local = bin_dir / "psql"
    found = str(local) if os.access(local, os.X_OK) else shutil.which("psql")
    if not found:
        raise PostgresNotFound("psql not found; run `make install`")
    return found


class RunAs:
    """Under root, the user initdb and postgres run as (`postgres`, else `nobody`);
    as anyone else, that user themself: every method is then a no-op.

    Raises:
        PostgresError: under root, when neither user exists.
    """

    def __init__(self) -> None:
        self.user = _unprivileged_user() if os.geteuid() == 0 else None

    def popen_kwargs(self) -> dict[str, Any]:
        """Popen's user/group arguments (Any: they are splatted into its overloads)."""
        if self.user is None:
            return {}
        return {"user": self.user.pw_uid, "group": self.user.pw_gid, "extra_groups": []}

    def chown(self, path: Path) -> None:
        if self.user is not None:
            os.chown(path, self.user.pw_uid, self.user.pw_gid)

    def own_data_dir(self, data_dir: Path) -> None:
        """Hand the data directory (mode 0700) to the server's user, its parents o+x."""
        if self.user is None:
            return
        uid, gid = self.user.pw_uid, self.user.pw_gid
        if data_dir.stat().st_uid != uid:
            self.chown(data_dir)
            for root, dirs, files in os.walk(data_dir):
                for name in dirs + files:
                    os.lchown(os.path.join(root, name), uid, gid)
        data_dir.chmod(0o700)  # postgres refuses a group- or world-readable one
        for parent in data_dir.parents:
            mode = parent.stat().st_mode
            if not mode & stat.S_IXOTH:
                parent.chmod(stat.S_IMODE(mode) | stat.S_IXOTH)


def _unprivileged_user() -> pwd.struct_passwd:
    for name in UNPRIVILEGED_USERS:
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise PostgresError(
        "running as root, and neither a `postgres` nor a `nobody` user exists to run PostgreSQL as"
    )
