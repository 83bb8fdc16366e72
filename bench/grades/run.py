"""grades' benchmarks: every measurement of bench/README.md, one after the other, then a table.

    .venv/bin/python -m bench.run grades                  # everything, ~10 s per wrk run
    .venv/bin/python -m bench.run grades --quick          # smoke: 3 s per run, 200k-row backup
    .venv/bin/python -m bench.run grades --only set2,lag  # a subset (names or ids)
    .venv/bin/python -m bench.run grades --no-peers       # ours only

Writes bench/results/<timestamp>.json with every figure. Exits 1 if a measurement
could not run or found a fault (a replica missing writes, errors under load); a
missed target is reported in the table, not in the exit status.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import time
import traceback
from pathlib import Path

from actors.runtime.testing import HarnessError
from bench import charts, deps, machine, report
from bench.grades import context, measures, stack

BENCH = Path(__file__).resolve().parents[1]
RESULTS = BENCH / "results"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run grades",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 3 s per run, 1 s warmups, 200k-row backup"
    )
    parser.add_argument(
        "--only",
        default="",
        help="comma-separated subset: "
        + ", ".join(f"{name} ({info[0]})" for name, info in measures.MEASUREMENTS.items()),
    )
    parser.add_argument(
        "--duration", type=float, help="seconds per measured run (default 10, --quick 3)"
    )
    parser.add_argument(
        "--peers",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also measure the Go peers and JetStream (default: yes)",
    )
    parser.add_argument(
        "--rows",
        type=int,
        help="records for the backup/restore measurement (default 1000000, --quick 200000)",
    )
    parser.add_argument(
        "--concurrency", default="16,32,64", help="wrk connections per HTTP run (default 16,32,64)"
    )
    parser.add_argument(
        "--keep-logs",
        action="store_true",
        help="keep every process log in /tmp/grades-bench-logs-<time>/ (logs "
        "of a measurement that fails are always kept there)",
    )
    parser.add_argument(
        "--max-quiet-wait",
        type=float,
        default=None,
        help="seconds to wait for other load on the machine to stop before "
        "each measurement (default 30, --quick 5)",
    )
    args = parser.parse_args(argv)
    args.duration = args.duration or (3.0 if args.quick else 10.0)
    args.rows = args.rows or (200_000 if args.quick else context.FULL_ROWS)
    if args.max_quiet_wait is None:
        args.max_quiet_wait = 5.0 if args.quick else 30.0
    try:
        args.concurrencies = [int(c) for c in args.concurrency.split(",") if c.strip()]
    except ValueError:
        parser.error(f"--concurrency: not a list of integers: {args.concurrency!r}")
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in names if n not in measures.MEASUREMENTS and n not in measures.ALIASES]
    if unknown:
        parser.error(
            f"--only: unknown {unknown}; choose from "
            f"{', '.join(measures.MEASUREMENTS)} or {', '.join(measures.ALIASES)}"
        )
    chosen = {measures.ALIASES.get(n, n) for n in names}
    args.selected = [n for n in measures.MEASUREMENTS if not chosen or n in chosen]
    if args.duration <= 0 or args.rows <= 0 or not args.concurrencies:
        parser.error("--duration, --rows and --concurrency must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    print(
        f"grades bench: {', '.join(args.selected)}; {args.duration:g} s per run, "
        f"connections {args.concurrencies}, peers {'on' if args.peers else 'off'}",
        flush=True,
    )

    stack.LOGS.update(dir=f"/tmp/grades-bench-logs-{stamp}", always=args.keep_logs)
    found = deps.ensure(peers=args.peers)
    for note in found.notes:
        print(f"[deps] {note}", flush=True)
    ctx = context.Ctx(
        duration=args.duration,
        warmup=1.0,
        concurrencies=args.concurrencies,
        rows=args.rows,
        peers=args.peers and found.peers,
        nats_py=found.nats_py,
        peers_note=(
            "disabled with --no-peers"
            if not args.peers
            else "; ".join(found.notes) or "Go or NATS not available"
        ),
    )

    rows: list[report.Row] = []
    notes: list[str] = list(found.notes)
    failures: list[str] = []
    contention: dict[str, float] = {}  # measurement id -> cores others used meanwhile
    foreign: set[str] = set()
    record = {
        "started_at": stamp,
        "args": {k: v for k, v in vars(args).items()},
        "machine": machine.describe(),
        "deps": vars(found),
        "targets": context.TARGETS,
        "measurements": {},
    }
    for name in args.selected:
        id_, title, run, needs_wrk = measures.MEASUREMENTS[name]
        print(f"\n[{id_}] {title}", flush=True)
        if needs_wrk and not found.wrk:
            notes.append(f"{id_}: skipped, wrk is not installed")
            print("  skipped: wrk is not installed", flush=True)
            continue
        quiet = machine.wait_quiet(args.max_quiet_wait)
        if not quiet["quiet"]:
            foreign.update(quiet["foreign"])
            print(
                f"  warning: the machine is {quiet['busy_pct']:.0f}% busy with other work "
                f"(waited {quiet['waited_s']:.0f} s): "
                f"{'; '.join(quiet['foreign'][:3]) or 'unknown processes'}",
                flush=True,
            )
        began = time.monotonic()
        others = machine.ForeignCpu()
        others.start()
        try:
            result = run(ctx)
        except Exception as exc:  # noqa: BLE001 - one broken measurement must not end the run
            message = str(exc) if isinstance(exc, HarnessError) else f"{type(exc).__name__}: {exc}"
            failures.append(f"{id_}: {message}")
            rows.append(report.Row(id_, title, "ERROR", result=report.FAIL))
            record["measurements"][name] = {"error": message, "traceback": traceback.format_exc()}
            print(f"  ERROR: {message}", flush=True)
            continue
        others_cores = others.cores()
        contention[id_] = others_cores
        print(
            f"  other processes used {others_cores:.2f} of {machine.describe()['cpus']} "
            f"cores meanwhile",
            flush=True,
        )
        ctx.results[name] = result["data"]
        rows.extend(result["rows"])
        notes.extend(result["notes"])
        failures.extend(result["failures"])
        record["measurements"][name] = {
            "id": id_,
            "title": title,
            "machine_before": quiet,
            "others_cores": round(others_cores, 2),
            "seconds": round(time.monotonic() - began, 1),
            **result["data"],
        }

    busy = {k: v for k, v in contention.items() if v >= machine.BUSY_CORES}
    if busy:
        notes.insert(
            0,
            "other work shared the machine (cores it used during each "
            "measurement: "
            + ", ".join(f"{k} {v:.1f}" for k, v in busy.items())
            + "): those figures, ours and the peers' alike, are lower and noisier"
            + (f"; e.g. {'; '.join(sorted(foreign)[:3])}" if foreign else ""),
        )
    table = report.render(rows)
    elapsed = time.monotonic() - started
    print(f"\n{table}\n")
    for note in notes:
        print(f"note: {note}")
    for failure in failures:
        print(f"FAILED: {failure}")
    record.update(
        table=[r.as_dict() for r in rows],
        table_text=table,
        notes=notes,
        failures=failures,
        seconds=round(elapsed, 1),
    )
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"{stamp}.json"
    out.write_text(json.dumps(record, indent=1, default=str))
    charts.save_beside(out, record)
    print(
        f"\n{len(args.selected)} measurements in {elapsed:.0f} s; results in "
        f"{out.relative_to(BENCH.parent)}"
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
