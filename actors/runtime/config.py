"""Helpers for a service's config.py: typed settings, addresses, flags vs environment.

The runtime reads no environment itself: a service's ``config.py`` passes
``os.environ`` (or a test's dict) in. A bad value stops the process at start
with one line naming the variable or flag, instead of a confusing failure later.

The phase-2 services share one convention (from the course seed 003): the
listen address comes from ``-a`` or RUN_ADDRESS, the database from ``-d`` or
DATABASE_URI, and when both are given the environment wins.
"""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import NamedTuple
from urllib.parse import urlsplit

__all__ = [
    "ConfigError",
    "reports_config_errors",
    "env_int",
    "env_str",
    "Address",
    "parse_address",
    "parse_database_uri",
    "env_wins",
    "ServiceArgs",
    "service_parser",
    "parse_service_args",
    "redact_uri",
]


class ConfigError(SystemExit):
    """A misconfiguration: exit status 2 and ``<program>: configuration error: ...``.

    NOTE: Python prints a SystemExit's message only when its code is not an int, so
    a main wraps itself in ``reports_config_errors`` to print the line; uncaught,
    it still exits 2.
    """

    def __init__(self, message: str, program: str = ""):
        prefix = f"{program}: " if program else ""
        super().__init__(f"{prefix}configuration error: {message}")
        self.code = 2


def reports_config_errors(main: Callable[..., int]) -> Callable[..., int]:
    """Decorate a main: a ConfigError prints its one line to stderr and returns 2."""

    @functools.wraps(main)
    def guarded(*args, **kwargs) -> int:
        try:
            return main(*args, **kwargs)
        except ConfigError as exc:
            print(exc.args[0], file=sys.stderr, flush=True)
            return exc.code

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


class ServiceArgs(NamedTuple):
    """What a service's command line gave (None where a flag was absent)."""

    address: str | None
    database: str | None
    extra: argparse.Namespace


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
    return parser


def parse_service_args(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> ServiceArgs:
    args = parser.parse_args(argv)
    return ServiceArgs(args.address, args.database, args)
