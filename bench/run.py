"""`make bench`: each service's benchmarks, one after the other.

    .venv/bin/python -m bench.run                       # every service
    .venv/bin/python -m bench.run grades --quick        # one service, with its own flags
    .venv/bin/python -m bench.run --quick               # every service, smoke runs

Each service's runner is ``bench/<service>/run.py`` with ``main(argv) -> int``;
it prints its table with ratios against its yardstick measured in the same
run and writes JSON under bench/results/. Exits non-zero if any runner did.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

SERVICES = ("grades", "gophermart", "segments", "balances")
BENCH = Path(__file__).resolve().parent


def _runner(service: str):
    if not (BENCH / service / "run.py").exists():
        return None
    return importlib.import_module(f"bench.{service}.run")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in SERVICES:
        runner = _runner(argv[0])
        if runner is None:
            print(f"bench: {argv[0]} has no benchmarks yet", file=sys.stderr)
            return 2
        return runner.main(argv[1:])
    if argv and not argv[0].startswith("-"):
        print(
            f"bench: unknown service {argv[0]!r}; choose from {', '.join(SERVICES)}",
            file=sys.stderr,
        )
        return 2
    status = 0
    for service in SERVICES:
        runner = _runner(service)
        if runner is None:
            continue
        print(f"\n===== {service} =====", flush=True)
        # grades' flags are its own; the others share --quick only
        status |= runner.main(argv if service == "grades" else [a for a in argv if a == "--quick"])
    return status


if __name__ == "__main__":
    sys.exit(main())
