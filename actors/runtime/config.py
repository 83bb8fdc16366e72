"""Helpers for a service's config.py: typed settings, addresses, flags vs environment.

The runtime reads no environment itself: a service's ``config.py`` passes
``os.environ`` (or a test's dict) in. A bad value stops the process at start
with one line naming the variable or flag, instead of a confusing failure later.

The PostgreSQL services share one convention: the listen address comes from
``-a`` or RUN_ADDRESS, the database from ``-d`` or DATABASE_URI (when both are
given the environment wins), and an instance's private files live in one run
dir. ``common_settings`` settles the three once; a service's ``Config`` extends
``ServiceSettings`` with its own fields.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, NamedTuple, ParamSpec
from urllib.parse import urlsplit

from actors.runtime.endpoints import ipc_endpoint

__all__ = [
    "CONFIG_EXIT_STATUS",
    "ConfigError",
    "reports_config_errors",
    "env_int",
    "env_str",
    "Address",
    "parse_address",
    "parse_database_uri",
    "env_wins",
    "service_parser",
    "run_dir_variable",
    "default_run_dir",
    "ServiceSettings",
    "common_settings",
    "redact_uri",
]


CONFIG_EXIT_STATUS = 2
"""A malformed setting: the status every command exits with, as argparse does."""


P = ParamSpec("P")
DEFAULT_DB_WAIT_S = 30
"""Seconds a service's start waits for its database (<PROGRAM>_DB_WAIT_S): a database
started beside it (``make run``) is up in a few."""


class ConfigError(SystemExit):
    """A misconfiguration: exit status 2 and ``<program>: configuration error: ...``.

    NOTE: Python prints a SystemExit's message only when its code is not an int, so
    a main wraps itself in ``reports_config_errors`` to print the line; uncaught,
    it still exits 2.
    """

    def __init__(self, message: str, program: str = ""):
        prefix = f"{program}: " if program else ""
        super().__init__(f"{prefix}configuration error: {message}")
        self.code = CONFIG_EXIT_STATUS


def reports_config_errors(main: Callable[P, int]) -> Callable[P, int]:
    """Decorate a main: a ConfigError prints its one line to stderr and returns 2."""

    @functools.wraps(main)
    def guarded(*args: P.args, **kwargs: P.kwargs) -> int:
        try:
            return main(*args, **kwargs)
        except ConfigError as exc:
            print(exc.args[0], file=sys.stderr, flush=True)
            return CONFIG_EXIT_STATUS

    return guarded


def env_int(
    environ: Mapping[str, str], name: str, default: int, low: int, high: int, program: str = ""
) -> int:
    """An integer setting within [low, high], or ``default`` when unset or blank."""
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not an integer", program) from None
    if not low <= value <= high:
        raise ConfigError(f"{name}={value} is outside {low}..{high}", program)
    return value


def env_str(environ: Mapping[str, str], name: str, default: str) -> str:
    """A string setting, or ``default`` when unset or blank."""
    return environ.get(name, "").strip() or default


class Address(NamedTuple):
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


def parse_address(value: str, name: str, program: str = "") -> Address:
    """``host:port`` (host may be empty for all interfaces, or ``[::1]``).

    Raises:
        ConfigError: naming ``name`` (the flag or variable the value came from).
    """
    text = value.strip()
    if text.startswith(("http://", "https://")):
        text = urlsplit(text).netloc
    host, sep, port_text = text.rpartition(":")
    digits = port_text.isascii() and port_text.isdigit()  # str.isdigit alone takes "²"
    if not sep or not digits or not 0 < int(port_text) < 65536:
        raise ConfigError(f"{name}={value!r} is not host:port (e.g. localhost:8080)", program)
    host = host.strip("[]") or "0.0.0.0"
    if any(c.isspace() or c in "/?#@" for c in host):
        raise ConfigError(f"{name}={value!r}: {host!r} is not a host name", program)
    return Address(host, int(port_text))


def parse_database_uri(value: str, name: str, program: str = "") -> str:
    """A PostgreSQL URI (``postgres://`` or ``postgresql://``), checked for shape only."""
    text = value.strip()
    if not text:
        raise ConfigError(
            f"{name} is not set: give a PostgreSQL URI, e.g. "
            f"postgresql://postgres@127.0.0.1:5433/postgres",
            program,
        )
    parts = urlsplit(text)
    if parts.scheme not in ("postgres", "postgresql") or not (parts.hostname or parts.query):
        raise ConfigError(f"{name}={redact_uri(text)!r} is not a postgresql:// URI", program)
    return text


def redact_uri(uri: str) -> str:
    """The URI with its password replaced by ``***``, for messages and logs."""
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


def env_wins(
    environ: Mapping[str, str], name: str, flag_value: str | None, default: str
) -> tuple[str, str]:
    """The value and where it came from: the variable if set, else the flag, else default."""
    if environ.get(name, "").strip():
        return environ[name].strip(), name
    if flag_value is not None and flag_value.strip():
        return flag_value.strip(), "flag"
    return default, "default"


def service_parser(program: str, description: str, default_address: str) -> argparse.ArgumentParser:
    """An argument parser with the shared ``-a`` and ``-d`` flags; add your own to it."""
    parser = argparse.ArgumentParser(prog=program, description=description)
    parser.add_argument(
        "-a",
        dest="address",
        metavar="HOST:PORT",
        help=f"listen address (RUN_ADDRESS wins; default {default_address})",
    )
    parser.add_argument(
        "-d", dest="database", metavar="URI", help="PostgreSQL URI (DATABASE_URI wins)"
    )
    parser.set_defaults(default_address=default_address)  # for common_settings
    return parser


def run_dir_variable(program: str) -> str:
    """The variable that places ``program``'s run dir, e.g. ``SEGMENTS_RUN_DIR``."""
    return f"{program.upper()}_RUN_DIR"


def default_run_dir(program: str, address: Address) -> Path:
    """``<tempdir>/<program>-<uid>-<host>-<port>``: private to this user and listen address
    (two instances on one machine differ by address), and short enough for ipc:// paths
    (a unix socket path has about 107 bytes)."""
    host = address.host.replace(":", "_")  # an IPv6 host
    return Path(tempfile.gettempdir()) / f"{program}-{os.getuid()}-{host}-{address.port}"


@dataclass(frozen=True)
class ServiceSettings:
    """The settings every PostgreSQL service shares; its ``Config`` extends this class.

    One instance's private files (ipc sockets, metrics files, the supervisor's lock)
    all live in ``run_dir``.
    """

    program: str
    """The service's name: its log name, its variables' prefix (``<PROGRAM>_RUN_DIR``)."""
    address: Address
    """RUN_ADDRESS or -a (the variable wins): where HTTP listens; it also names the run dir."""
    database_uri: str
    """DATABASE_URI or -d (the variable wins): the PostgreSQL URI."""
    database_source: str
    """Where database_uri came from, ``DATABASE_URI`` or ``-d``: named when the database
    stays unreachable."""
    run_dir: Path
    """<PROGRAM>_RUN_DIR if set, else ``default_run_dir(program, address)``: this instance's
    private files."""
    db_wait_s: int
    """<PROGRAM>_DB_WAIT_S (default 30, 0..3600): how long start waits for the database."""

    @property
    def url(self) -> str:
        """The HTTP base URL, as said in the ready line."""
        return f"http://{self.address}"

    def actor_endpoint(self, name: str) -> str:
        """The ipc endpoint in the run dir where the actor child ``name`` serves (its
        ROUTER: nudges from the HTTP workers, the supervisor's liveness Pings)."""
        return ipc_endpoint(self.run_dir, name)

    def shared_fields(self) -> dict[str, Any]:
        """This class's fields by name, for a service's ``Config(**shared_fields(), ...)``."""
        return {field.name: getattr(self, field.name) for field in fields(ServiceSettings)}

    def child_env(self) -> dict[str, str]:
        """The variables a child needs on top of the parent's environment: the settings as
        resolved (a flag becomes its variable), so a child's ``from_env`` reads the same
        values. Every service's ``child_env()`` returns overrides only, never the whole
        environment: its cli.py merges them over ``os.environ``."""
        return {
            "RUN_ADDRESS": str(self.address),
            "DATABASE_URI": self.database_uri,
            run_dir_variable(self.program): str(self.run_dir),
        }


def common_settings(
    parser: argparse.ArgumentParser, environ: Mapping[str, str], argv: Sequence[str] | None
) -> tuple[ServiceSettings, argparse.Namespace]:
    """Parse ``argv`` (None: sys.argv[1:]) with ``parser`` (from ``service_parser``, named
    for the program) and settle the shared settings; the environment wins over a flag.

    Returns:
        The shared settings and every parsed flag (for the service's own).

    Raises:
        ConfigError: a malformed address or DSN, naming the variable or flag it came from.
    """
    program = parser.prog
    args = parser.parse_args(argv)
    address_text, source = env_wins(environ, "RUN_ADDRESS", args.address, args.default_address)
    address = parse_address(address_text, "-a" if source == "flag" else "RUN_ADDRESS", program)
    database_text, source = env_wins(environ, "DATABASE_URI", args.database, "")
    database_source = "-d" if source == "flag" else "DATABASE_URI"
    database_uri = parse_database_uri(database_text, database_source, program)
    run_dir = env_str(environ, run_dir_variable(program), "")
    settings = ServiceSettings(
        program=program,
        address=address,
        database_uri=database_uri,
        database_source=database_source,
        run_dir=Path(run_dir).absolute() if run_dir else default_run_dir(program, address),
        db_wait_s=env_int(
            environ, f"{program.upper()}_DB_WAIT_S", DEFAULT_DB_WAIT_S, 0, 3600, program
        ),
    )
    return settings, args
