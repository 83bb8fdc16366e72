"""The `grades` command: run the bus or a replica, and the operator tools.

    grades bus                                   run the bus and its log
    grades replica                               run one replica (configured by environment)
    grades keygen DIR                            make CurveZMQ keys (for GRADES_CURVE_DIR)
    grades status [URL ...] [--bus URL]          each replica's readiness, as a table,
                                                 and which replicas hold the log back
    grades retire N [--bus URL]                  replica N stops holding the log back
    grades backup --from URL [-o FILE]           save a replica's backup
    grades load FILE --to URL                    POST /set every row of a backup or CSV
    grades verify URL1 URL2 [...]                compare replicas' data
    grades nats-config --hosts H1,H2,H3          print JetStream node configs for real hosts
    grades nats-node N                           run node N of a loopback JetStream cluster

This module only parses arguments and maps outcomes to exit statuses; each
tool lives in its own actors/tool_*.py module. Exit statuses: 0 success;
1 the tool ran and found a problem (a difference, failed rows, a replica not
ready); 2 it could not do its job (unreachable, HTTP error, bad file or
arguments); 130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING

from actors.grades.tools.outcome import EXIT_ERROR, EXIT_FAILED, EXIT_OK, ToolError
from actors.runtime.config import reports_config_errors

__all__ = ["main"]

EXIT_INTERRUPTED = 130
if TYPE_CHECKING:  # argparse gives what add_subparsers returns no public name
    Commands = argparse._SubParsersAction[argparse.ArgumentParser]


def _add_status(commands: Commands) -> None:
    from actors.grades.tools.status import DEFAULT_URLS

    parser = commands.add_parser(
        "status", help="print each replica's state as a table; exit 1 if any is not ready"
    )
    parser.add_argument(
        "urls",
        nargs="*",
        default=list(DEFAULT_URLS),
        metavar="URL",
        help="getter URLs (default: the two dev replicas)",
    )
    _add_log_options(parser, silent=True)


def _add_log_options(parser: argparse.ArgumentParser, silent: bool = False) -> None:
    from actors.bus.config import DEFAULT_RETAIN_SILENT_S

    parser.add_argument(
        "--bus",
        default=os.environ.get("BUS_URL", ""),
        metavar="URL",
        help="the log: the bus's tcp:// URL or nats:// servers (default: $BUS_URL; "
        "status without it shows no log section)",
    )
    parser.add_argument(
        "--stream",
        default=os.environ.get("GRADES_STREAM", "grades"),
        help="the log stream (default: $GRADES_STREAM or %(default)s)",
    )
    if not silent:
        return
    parser.add_argument(
        "--silent-s",
        type=int,
        default=int(os.environ.get("BUS_RETAIN_SILENT_S", DEFAULT_RETAIN_SILENT_S)),
        help="JetStream: when a replica counts as silent, as the brokers' "
        "BUS_RETAIN_SILENT_S (default: $BUS_RETAIN_SILENT_S or %(default)s)",
    )


def _add_retire(commands: Commands) -> None:
    parser = commands.add_parser(
        "retire",
        help="replica N no longer holds the log back (it is gone for good); "
        "exit 1 if the log did not know it",
    )
    parser.add_argument("replica_id", type=_positive, metavar="N")
    _add_log_options(parser)


def _add_backup(commands: Commands) -> None:
    parser = commands.add_parser("backup", help="save a replica's GET /backup to a file")
    parser.add_argument(
        "--from",
        dest="source",
        required=True,
        metavar="URL",
        help="the replica's getter URL, e.g. http://127.0.0.1:8080",
    )
    parser.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="file to write (default: the name the replica suggests, "
        "grades-replicaN-<time>.csv.gz)",
    )


def _add_load(commands: Commands) -> None:
    from actors.grades.tools import load as tool_load

    parser = commands.add_parser(
        "load",
        help="POST /set every row of a backup or CSV file (new versions: "
        "a write through the API, not a restore)",
    )
    parser.add_argument(
        "file",
        help="a backup (.csv.gz from grades backup) or a CSV with "
        "a user_id column and any of the four fields",
    )
    parser.add_argument(
        "--to",
        dest="target",
        required=True,
        metavar="URL",
        help="the replica's setter URL, e.g. http://127.0.0.1:8181",
    )
    parser.add_argument(
        "--user",
        default=os.environ.get("GRADES_USER"),
        help="Basic auth user (default: $GRADES_USER)",
    )
    parser.add_argument(
        "--password",
        default=os.environ.get("GRADES_PASSWORD"),
        help="Basic auth password (default: $GRADES_PASSWORD; prefer it, "
        "a command line is visible to other users)",
    )
    parser.add_argument(
        "--connections",
        type=_positive,
        default=tool_load.DEFAULT_CONNECTIONS,
        help="requests in flight (default: %(default)s)",
    )
    parser.add_argument(
        "--attempts",
        type=_positive,
        default=tool_load.DEFAULT_ATTEMPTS,
        help="tries per row on 503/502/504/connection errors (default: %(default)s)",
    )
    parser.add_argument(
        "--max-failures",
        type=int,
        default=tool_load.DEFAULT_MAX_FAILURES,
        help="stop after more rows than this failed (default: %(default)s)",
    )


def _add_verify(commands: Commands) -> None:
    from actors.grades.tools.verify import DEFAULT_SHOW

    parser = commands.add_parser(
        "verify",
        help="compare replicas' backups; exit 0 if identical, 1 if they differ, 2 on errors",
    )
    parser.add_argument(
        "urls",
        nargs="+",
        metavar="URL",
        help="getter URLs, at least two; the first is the reference",
    )
    parser.add_argument(
        "--versions",
        action="store_true",
        help="compare the per-field versions too, not only the values",
    )
    parser.add_argument(
        "--show",
        type=int,
        default=DEFAULT_SHOW,
        metavar="N",
        help="print the first N differences per replica (default: %(default)s)",
    )


def _add_nats(commands: Commands) -> None:
    from actors.grades.jetstream import DEFAULT_SYNC

    sync_help = (
        f"jetstream sync_interval: always = fsync before every ack, or a duration "
        f"such as 2m (default: $NATS_SYNC or {DEFAULT_SYNC})"
    )
    sync = os.environ.get("NATS_SYNC", DEFAULT_SYNC)
    config = commands.add_parser(
        "nats-config", help="print a nats-server config per host of a JetStream cluster for grades"
    )
    config.add_argument("--hosts", required=True, help="comma-separated node addresses")
    config.add_argument(
        "--store",
        default="/var/lib/nats/jetstream",
        help="JetStream store directory on each host (default: %(default)s)",
    )
    config.add_argument("--sync", default=sync, help=sync_help)
    node = commands.add_parser(
        "nats-node",
        help="run node N (1-3) of a JetStream cluster on "
        "loopback, files under $GRADES_DATA_DIR/nats",
    )
    node.add_argument("index", type=int, metavar="N")
    node.add_argument("--sync", default=sync, help=sync_help)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a positive integer")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="grades",
        description=__doc__.split("\n")[0],
        epilog="exit statuses: 0 ok, 1 problem found, 2 error, 130 interrupted",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("bus", help="run the bus and its persisted log")
    commands.add_parser("replica", help="run one replica (configured by environment)")
    keygen = commands.add_parser(
        "keygen",
        help="create CurveZMQ keypairs in DIR and "
        "authorize the client key (then set GRADES_CURVE_DIR=DIR)",
    )
    keygen.add_argument("directory", metavar="DIR")
    _add_status(commands)
    _add_retire(commands)
    _add_backup(commands)
    _add_load(commands)
    _add_verify(commands)
    _add_nats(commands)
    return parser


def _status(args: argparse.Namespace) -> int:
    from actors.grades.tools import retention
    from actors.grades.tools.status import print_status

    ready = print_status(args.urls)
    if args.bus:
        state = retention.log_state(args.bus, args.stream, args.silent_s, _curve_dir())
        print(retention.render_log(args.stream, state))
    return EXIT_OK if ready else EXIT_FAILED


def _retire(args: argparse.Namespace) -> int:
    from actors.grades.tools import retention

    if not args.bus:
        raise ToolError("no log to ask: set BUS_URL or pass --bus")
    name = retention.consumer_name(args.replica_id)
    if not retention.retire_replica(args.bus, args.stream, args.replica_id, _curve_dir()):
        print(f"grades retire: the log {args.bus} has no consumer {name}", file=sys.stderr)
        return EXIT_FAILED
    print(f"retired {name}: it no longer holds stream {args.stream!r} of {args.bus} back")
    return EXIT_OK


def _curve_dir() -> str:
    return os.environ.get("GRADES_CURVE_DIR", "")


def _backup(args: argparse.Namespace) -> int:
    from actors.grades.tools.backup import save_backup
    from actors.grades.tools.progress import Progress, format_bytes

    progress = Progress("backup", format_bytes)
    saved = save_backup(args.source, args.output, progress)
    meta = saved.meta
    progress.finish(
        f"; {saved.path}: {meta['rows']:,} rows of replica {meta['replica_id']} "
        f"at log position {meta['position']}"
    )
    return EXIT_OK


def _load(args: argparse.Namespace) -> int:
    from actors.grades.tools import load as tool_load
    from actors.grades.tools.progress import Progress, format_rows
    from actors.grades.tools.rows import RowFile

    if not args.user or args.password is None:
        raise ToolError(
            "no credentials: set GRADES_USER and GRADES_PASSWORD (or pass --user and --password)"
        )
    target = tool_load.SetTarget.from_url(args.target, args.user, args.password)
    options = tool_load.LoadOptions(args.connections, args.attempts, args.max_failures)
    with RowFile(args.file) as source:
        tool_load.check_reachable(target)
        print(
            f"load: {args.file} ({source.kind}: {', '.join(source.fields) or 'no fields'}) "
            f"-> {target.url}, {options.connections} connections",
            file=sys.stderr,
        )
        progress = Progress("load", format_rows)
        result = tool_load.load_rows(source.rows(), target, options, progress)
    progress.finish()
    for line in result.failures:
        print(f"load: failed: {line}", file=sys.stderr)
    if result.stopped:
        print(f"load: STOPPED: {result.stopped}", file=sys.stderr)
    print(
        f"loaded {result.loaded:,} rows, {result.failed:,} failures, "
        f"{result.seconds:.2f} s, {result.rows_per_s:,.0f} rows/s"
    )
    return EXIT_OK if result.ok else EXIT_FAILED


def _verify(args: argparse.Namespace) -> int:
    from actors.grades.tools.verify import Verifier

    if len(args.urls) < 2:
        raise ToolError("give at least two replica URLs to compare")
    reports = Verifier(args.urls, args.versions, max(0, args.show)).run()
    return EXIT_FAILED if any(report.differences for report in reports) else EXIT_OK


_TOOLS = {"status": _status, "retire": _retire, "backup": _backup, "load": _load, "verify": _verify}


@reports_config_errors
def main(argv: list[str] | None = None) -> int:
    """Run one `grades` command; returns its exit status."""
    args = _parser().parse_args(argv)
    if args.command == "bus":
        from actors.bus import server as bus

        return bus.main()
    if args.command == "replica":
        from actors.grades import replica

        return replica.main()
    if args.command in ("nats-config", "nats-node"):
        from actors.grades.jetstream import node as natsnode

        if args.command == "nats-node":
            from actors.grades.config import data_dir

            return natsnode.run_loopback_node(args.index, data_dir(os.environ), args.sync)
        hosts = [host.strip() for host in args.hosts.split(",") if host.strip()]
        natsnode.print_configs(hosts, args.store, args.sync)
        return EXIT_OK
    if args.command == "keygen":
        from actors.runtime import security

        print(f"GRADES_CURVE_DIR={security.keygen(args.directory).resolve()}")
        return EXIT_OK
    try:
        return _TOOLS[args.command](args)
    except ToolError as exc:
        print(f"grades {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(f"grades {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
