"""One service's benchmark run: rows, notes, failures; the table and the JSON file.

out = Results("gophermart", vars(args))
out.rows += [...]; out.note("..."); out.data["withdraw"] = {...}
return out.finish()        # prints the table, writes bench/results/<service>-<time>.json
                           # and its chart, <service>-<time>.png
"""

from __future__ import annotations

import datetime
import json
import time
from pathlib import Path

from bench import charts, machine, report

__all__ = ["RESULTS", "Results"]

RESULTS = Path(__file__).resolve().parents[1] / "results"


class Results:
    def __init__(self, service: str, args: dict):
        self.service = service
        self.started = time.monotonic()
        self.stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        self.rows: list[report.Row] = []
        self.notes: list[str] = []
        self.failures: list[str] = []
        self.data: dict = {}
        self.args = args
        self.profile_dir = RESULTS / f"{service}-{self.stamp}-profile"
        """Where a --profile run's flame graphs go, beside the results JSON."""
        self.others = machine.ForeignCpu()
        self.others.start()
        self.load_before = machine.wait_quiet(0.0)

    def note(self, text: str) -> None:
        self.notes.append(text)
        print(f"  note: {text}", flush=True)

    def fail(self, text: str) -> None:
        self.failures.append(text)
        self.rows.append(report.Row("!", text[:60], "ERROR", result=report.FAIL))
        print(f"  ERROR: {text}", flush=True)

    def finish(self) -> int:
        """Print the table and notes, write the JSON; 1 if anything failed, else 0."""
        elapsed = time.monotonic() - self.started
        others = self.others.cores()
        if others >= machine.BUSY_CORES:
            self.notes.insert(
                0,
                f"other work used {others:.1f} of {machine.describe()['cpus']}"
                " cores during this run: absolute figures are lower and "
                "noisier; the ratios compare runs that shared that load",
            )
        table = report.render(self.rows)
        print(f"\n{table}\n")
        for note in self.notes:
            print(f"note: {note}")
        for failure in self.failures:
            print(f"FAILED: {failure}")
        record = {
            "service": self.service,
            "started_at": self.stamp,
            "args": self.args,
            "machine": machine.describe(),
            "load_before": self.load_before,
            "others_cores": round(others, 2),
            "measurements": self.data,
            "profile": str(self.profile_dir) if self.profile_dir.exists() else None,
            "table": [r.as_dict() for r in self.rows],
            "table_text": table,
            "notes": self.notes,
            "failures": self.failures,
            "seconds": round(elapsed, 1),
        }
        RESULTS.mkdir(exist_ok=True)
        out = RESULTS / f"{self.service}-{self.stamp}.json"
        out.write_text(json.dumps(record, indent=1, default=str))
        charts.save_beside(out, record)
        print(
            f"\n{self.service} bench: {elapsed:.0f} s; results in "
            f"{out.relative_to(RESULTS.parents[1])}",
            flush=True,
        )
        return 1 if self.failures else 0
