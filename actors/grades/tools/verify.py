"""``grades verify``: do replicas hold the same data? Compares their /backup.

The first replica's backup is read into memory (one tuple per user); every
other replica's backup is streamed and compared with it row by row, so at
most one map (and the set of keys seen) is held at a time. By default the
four values are compared; with ``versions`` the four per-field versions too
(two replicas that applied the same writes have the same versions; a
``grades load`` copy has the same values but new versions).

Backups are taken one after the other: on a cluster that is being written
to, a difference may just be a write that had not reached every replica yet.
Run it on a quiet cluster, or run it again.
"""

from __future__ import annotations

import http.client
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TextIO

from actors.grades.backup import BackupError, Row, read_backup
from actors.grades.records import FIELDS
from actors.grades.tools.remote import ToolError, endpoint, open_url

__all__ = ["DEFAULT_SHOW", "PairReport", "Verifier"]

DEFAULT_SHOW = 20
READ_TIMEOUT_S = 60.0
"""Longest wait for a replica to connect or to send the next chunk of its backup."""
VERSION_COLUMNS = tuple(f"{name}_version" for name in FIELDS)


def _project(with_versions: bool) -> Callable[[list[int]], tuple[int, ...]]:
    """row (4 values, 4 versions) -> the tuple that is compared."""
    width = 2 * len(FIELDS) if with_versions else len(FIELDS)
    return lambda row: tuple(row[:width])


@dataclass
class PairReport:
    """The comparison of one replica with the reference."""

    reference: str
    other: str
    rows: int = 0
    """Rows in the other replica's backup."""
    same: int = 0
    only_reference: int = 0
    only_other: int = 0
    differ: int = 0
    samples: list[str] = field(default_factory=list)
    """The first differences, one line each."""

    @property
    def differences(self) -> int:
        return self.only_reference + self.only_other + self.differ


def _format_record(columns: tuple[str, ...], record: tuple[int, ...]) -> str:
    return " ".join(f"{name}={value}" for name, value in zip(columns, record))


def _format_difference(columns: tuple[str, ...], a: tuple[int, ...], b: tuple[int, ...]) -> str:
    return ", ".join(f"{name} {x} != {y}" for name, x, y in zip(columns, a, b) if x != y)


class Verifier:
    """Compares replicas' backups and writes a report; see the module docstring."""

    def __init__(
        self,
        urls: list[str],
        with_versions: bool = False,
        show: int = DEFAULT_SHOW,
        out: TextIO | None = None,
    ):
        """Set up a comparison; nothing is fetched until run().

        Args:
            urls: getter URLs, at least two; the first is the reference.
            with_versions: compare the per-field versions too.
            show: how many differences to print per compared pair.
            out: where the report goes (stdout if None).
        """
        self.urls = urls
        self.show = show
        self.out = out
        self.columns = FIELDS + (VERSION_COLUMNS if with_versions else ())
        self._project = _project(with_versions)

    def _print(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def _batches(self, url: str) -> Iterator[list[Row]]:
        source = endpoint(url, "/backup")
        with open_url(source, READ_TIMEOUT_S) as response:
            try:
                meta, batches = read_backup(response)
                self._print(
                    f"{url}: backup of replica {meta['replica_id']}, "
                    f"{meta['rows']:,} rows at log position {meta['position']}"
                )
                yield from batches
            except BackupError as exc:
                raise ToolError(f"{source}: {exc}") from None
            except (OSError, http.client.HTTPException) as exc:
                raise ToolError(f"{source}: download interrupted: {exc!r}") from None

    def _reference(self, url: str) -> dict[str, tuple[int, ...]]:
        project = self._project
        return {key: project(row) for batch in self._batches(url) for key, row in batch}

    def _sample(self, report: PairReport, text: str) -> None:
        if len(report.samples) < self.show:
            report.samples.append(text)

    def _compare(self, reference: dict[str, tuple[int, ...]], ref_url: str, url: str) -> PairReport:
        report = PairReport(ref_url, url)
        project, columns, seen = self._project, self.columns, set()
        for batch in self._batches(url):
            for key, row in batch:
                report.rows += 1
                seen.add(key)
                mine, theirs = project(row), reference.get(key)
                if theirs is None:
                    report.only_other += 1
                    self._sample(report, f"only on {url}: {key!r} {_format_record(columns, mine)}")
                elif mine == theirs:
                    report.same += 1
                else:
                    report.differ += 1
                    self._sample(
                        report, f"differs: {key!r}: {_format_difference(columns, theirs, mine)}"
                    )
        for key, record in reference.items():
            if key not in seen:
                report.only_reference += 1
                self._sample(report, f"missing on {url}: {key!r} {_format_record(columns, record)}")
        return report

    def _print_report(self, report: PairReport) -> None:
        self._print(
            f"{report.reference} vs {report.other}: {report.same:,} identical, "
            f"{report.only_reference:,} missing on {report.other}, "
            f"{report.only_other:,} only on {report.other}, {report.differ:,} differ"
        )
        if report.differ:
            self._print(f"  (differs: field {report.reference} != {report.other})")
        for line in report.samples:
            self._print(f"  {line}")
        if report.differences > len(report.samples):
            self._print(f"  ... and {report.differences - len(report.samples):,} more")

    def run(self) -> list[PairReport]:
        """Compare every replica with the first; print as it goes.

        Returns:
            One report per replica after the first.

        Raises:
            ToolError: a replica unreachable, an HTTP error, a damaged backup.
        """
        reference = self._reference(self.urls[0])
        reports = []
        for url in self.urls[1:]:
            report = self._compare(reference, self.urls[0], url)
            self._print_report(report)
            reports.append(report)
        what = "values and versions" if len(self.columns) > len(FIELDS) else "values"
        total = sum(r.differences for r in reports)
        if total:
            self._print(f"verify: DIFFERENT: {total:,} differences ({what})")
        else:
            self._print(
                f"verify: IDENTICAL: {len(self.urls)} replicas, {len(reference):,} rows ({what})"
            )
        return reports
