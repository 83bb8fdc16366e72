"""The flags every PostgreSQL service's bench shares: --quick, --duration, --rounds, --clients,
--profile.

A service adds its own flags to ``parser(...)`` and calls ``settle(args)`` after
parsing, which fills the durations and rounds a --quick run shortens.
"""

from __future__ import annotations

import argparse

__all__ = ["parser", "settle", "FULL_DURATION_S", "QUICK_DURATION_S"]

FULL_DURATION_S = 10.0
QUICK_DURATION_S = 3.0
FULL_ROUNDS = 2
QUICK_ROUNDS = 1
CLIENTS = 16


def parser(service: str, description: str | None, quick_help: str) -> argparse.ArgumentParser:
    """``python -m bench.run <service>``'s parser with the shared flags."""
    parser = argparse.ArgumentParser(
        prog=f"python -m bench.run {service}",
        description=description,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help=quick_help)
    parser.add_argument("--duration", type=float, help="seconds per run (default 10; quick 3)")
    parser.add_argument("--rounds", type=int, help="alternations per figure (default 2; quick 1)")
    parser.add_argument(
        "--clients",
        type=int,
        default=CLIENTS,
        help="wrk connections = pgbench clients (default 16)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="sample our processes with py-spy while ours is measured: a flame graph per "
        "process role beside the results JSON (bench/README.md, 'Reading a flame graph')",
    )
    return parser


def settle(args: argparse.Namespace) -> argparse.Namespace:
    """Fill --duration and --rounds from --quick when they were not given."""
    args.duration = args.duration or (QUICK_DURATION_S if args.quick else FULL_DURATION_S)
    args.rounds = args.rounds or (QUICK_ROUNDS if args.quick else FULL_ROUNDS)
    return args
