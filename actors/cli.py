"""The `grades` command: `grades bus`, `grades replica`, `grades status`."""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request

__all__ = ["main"]


def _status(urls: list[str]) -> int:
    worst = 0
    for url in urls:
        try:
            with urllib.request.urlopen(f"{url.rstrip('/')}/readyz", timeout=3) as response:
                body = json.load(response)
        except urllib.error.HTTPError as exc:
            body = json.load(exc)
        except (urllib.error.URLError, OSError) as exc:
            body = {"ready": False, "phase": "unreachable", "reason": str(exc)}
        worst = worst or (0 if body.get("ready") else 1)
        print(f"{url}: " + ", ".join(f"{k}={v}" for k, v in body.items()))
    return worst


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="grades", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("bus", help="run the bus and its persisted log")
    commands.add_parser("replica", help="run one replica (configured by environment)")
    status = commands.add_parser("status", help="print each replica's state")
    status.add_argument("urls", nargs="*", default=["http://127.0.0.1:8080",
                                                    "http://127.0.0.1:8282"],
                        help="getter URLs (default: the two dev replicas)")
    args = parser.parse_args(argv)
    if args.command == "bus":
        from actors import bus
        return bus.main()
    if args.command == "replica":
        from actors import supervisor
        return supervisor.main()
    return _status(args.urls)


if __name__ == "__main__":
    sys.exit(main())
