"""grades: every acknowledged write on both replicas, the replicas identical
(``make soak``'s comparison of the replicas' /backup maps)."""

from __future__ import annotations

from actors.grades.testing import Replica
from bench.chaos.checks import Finding
from bench.chaos.workloads.grades import GradesWorkload
from bench.grades.soak import FIELDS, converge, lost_writes

__all__ = ["check_grades"]


def check_grades(replicas: list[Replica], workload: GradesWorkload, plant: str) -> list[Finding]:
    maps = converge(replicas)
    acked = sum(len(w.acked) for w in workload.writers)
    if plant == "grades-drop":  # replica 2 lost one acknowledged write
        writer = next(w for w in workload.writers if w.acked)
        user, value = next(iter(writer.acked.items()))
        maps[1][user] = [*maps[1][user]]
        maps[1][user][FIELDS.index(writer.field)] = value - 1
    lost = lost_writes(workload.writers, maps)
    identical = all(m == maps[0] for m in maps)
    writes = sum(w.counts["ok"] for w in workload.writers)
    findings = [
        Finding(
            "grades",
            not lost,
            f"acknowledged writes on both replicas: {writes} acknowledged, the latest of each of "
            f"{acked} user fields checked, {len(lost)} missing",
        ),
        Finding(
            "grades",
            identical,
            f"replicas identical: {'yes' if identical else 'NO'} ({len(maps[0])} rows)",
        ),
    ]
    for field, user, value, index in lost[:5]:
        findings.append(
            Finding("grades", False, f"  lost: {user}.{field}={value} not on replica {index + 1}")
        )
    return findings
