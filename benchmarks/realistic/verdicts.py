"""Check a pinaudit JSON report against what the realistic fleet promises, so
the benchmark measures a correct scan.

    python benchmarks/realistic/verdicts.py REPORT.json   # via realistic_bench --check
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from benchmarks.realistic.fleet import Endpoint


@dataclass(frozen=True)
class GroupVerdict:
    group: str
    expected_status: str
    expected_checks: tuple[tuple[str, str], ...]
    endpoints: int
    statuses: Mapping[str, int]
    wrong: int
    example: str | None  # first endpoint whose verdict differs, with what it got

    def line(self) -> str:
        statuses = " ".join(f"{k}={v}" for k, v in sorted(self.statuses.items()))
        checks = ", ".join(f"{c}/{s}" for c, s in self.expected_checks) or "-"
        mark = "ok " if self.wrong == 0 else "BAD"
        text = (
            f"  {mark} {self.group:<18} {self.endpoints:>6}  expect {self.expected_status:<5} "
            f"got {statuses:<24} checks {checks}"
        )
        return text + (f"\n      e.g. {self.example}" if self.example else "")


def findings_of(entry: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((f["check"], f["severity"]) for f in entry.get("findings", ())))


def check_report(
    report: Mapping[str, Any], endpoints: Sequence[Endpoint]
) -> tuple[list[GroupVerdict], dict[str, int]]:
    """Per group: how many endpoints got exactly the promised status and
    findings (check + severity, info included). Also the expected summary."""
    by_name = {e["name"]: e for e in report["endpoints"]}
    groups: dict[str, list[Endpoint]] = {}
    for ep in endpoints:
        groups.setdefault(ep.group.name, []).append(ep)
    verdicts = []
    for name, members in groups.items():
        group = members[0].group
        statuses: Counter[str] = Counter()
        wrong, example = 0, None
        for ep in members:
            entry = by_name.get(ep.name)
            if entry is None:
                wrong += 1
                example = example or f"{ep.name}: missing from the report"
                continue
            statuses[entry["status"]] += 1
            got = findings_of(entry)
            if entry["status"] != group.status or got != group.expected:
                wrong += 1
                example = example or f"{ep.name}: {entry['status']} {list(got)}"
        verdicts.append(
            GroupVerdict(
                name, group.status, group.expected, len(members), dict(statuses), wrong, example
            )
        )
    expected = Counter(ep.group.status for ep in endpoints)
    summary = {"endpoints": len(endpoints), "ok": expected["ok"], "drift": expected["drift"]}
    summary["error"] = 0
    return verdicts, summary


def render(report: Mapping[str, Any], endpoints: Sequence[Endpoint]) -> tuple[bool, str]:
    verdicts, summary = check_report(report, endpoints)
    got = {k: report["summary"].get(k) for k in ("endpoints", "ok", "drift", "error")}
    good = all(v.wrong == 0 for v in verdicts) and got == summary
    lines = [
        f"verdicts {'as promised' if good else 'NOT as promised'}: "
        f"summary {got} (expected {summary})",
        *(v.line() for v in verdicts),
    ]
    return good, "\n".join(lines)
