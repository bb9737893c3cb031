#!/usr/bin/env python3
"""Write pinaudit's alert rules with your parameters, for a plain rules file.

    python3 render-rules.py --certificate-warning-days 21 --tls-minimum-version 1.3 \\
        --runbook-base-url https://wiki.example.com/pinaudit/runbook.md \\
        > /etc/prometheus/rules/pinaudit.yml
    promtool check rules /etc/prometheus/rules/pinaudit.yml

Reads pinaudit-rules.yml (beside this script, or the file given) and changes
only the parameters named below, keeping every comment and expression; any
parameter not given keeps the file's value. Only the Python standard library
is needed. The Kustomize component deploy/kubernetes/components/alerting sets
the same parameters on the PrometheusRule (docs/deploy.md).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

RULES = Path(__file__).resolve().parent / "pinaudit-rules.yml"
# parameter -> the recording rule holding it (a constant the alerts read)
CONSTANTS = {
    "certificate_warning_days": "pinaudit:certificate_warning_days",
    "certificate_critical_days": "pinaudit:certificate_critical_days",
    "pinset_warning_days": "pinaudit:pinset_warning_days",
    "scan_interval_seconds": "pinaudit:scan_interval_seconds",
}
# parameter -> the recording rule holding it, for parameters that are one of a
# few values rather than a count (written as PromQL number literals)
CHOICES = {
    "tls_minimum_version": ("pinaudit:tls_minimum_version", ("1.0", "1.1", "1.2", "1.3")),
}
LIMITS = {  # a range per constant: a typo (3650 days, 0 s) is refused, not shipped
    "certificate_warning_days": (1, 3650),
    "certificate_critical_days": (1, 3650),
    "pinset_warning_days": (1, 3650),
    "scan_interval_seconds": (1, 30 * 86400),
}
_RUNBOOK = re.compile(r"^(\s*runbook_url: )(\S+?)(#\S+)$", re.MULTILINE)
_EXPORTER_JOB = re.compile(r'(\bup\{job=")([^"]*)("\})')
_URL = re.compile(r"https?://[^\s#\"'{}]+")
_JOB = re.compile(r'[^"\\\n]+')


class ParameterError(ValueError):
    pass


def _constant(text: str, record: str, value: int | str) -> str:
    pattern = re.compile(
        rf'^(\s*- record: {re.escape(record)}\n\s*expr: )"\d+(?:\.\d+)?"$', re.MULTILINE
    )
    new, count = pattern.subn(lambda m: f'{m.group(1)}"{value}"', text)
    if count != 1:
        raise ParameterError(f"{record}: not found once in the rules file (found {count})")
    return new


def constants(text: str) -> dict[str, int]:
    """The parameter values a rules file holds now."""
    found = {}
    for name, record in CONSTANTS.items():
        match = re.search(
            rf'^\s*- record: {re.escape(record)}\n\s*expr: "(\d+)"$', text, re.MULTILINE
        )
        if match is None:
            raise ParameterError(f"{record}: not found in the rules file")
        found[name] = int(match.group(1))
    return found


def choices(text: str) -> dict[str, str]:
    """The values of the CHOICES parameters a rules file holds now."""
    found = {}
    for name, (record, _) in CHOICES.items():
        match = re.search(
            rf'^\s*- record: {re.escape(record)}\n\s*expr: "(\d+\.\d+)"$', text, re.MULTILINE
        )
        if match is None:
            raise ParameterError(f"{record}: not found in the rules file")
        found[name] = match.group(1)
    return found


def render(
    text: str,
    values: dict[str, int],
    runbook_base_url: str | None = None,
    exporter_job: str | None = None,
    chosen: dict[str, str] | None = None,
) -> str:
    """`text` (pinaudit-rules.yml) with the given parameters replaced."""
    merged = {**constants(text), **values}
    choices(text)  # present, whether or not they change
    chosen = chosen or {}
    for name, value in chosen.items():
        allowed = CHOICES[name][1]
        if value not in allowed:
            raise ParameterError(f"{name} {value!r}: must be one of {', '.join(allowed)}")
    for name, value in values.items():
        low, high = LIMITS[name]
        if not low <= value <= high:
            raise ParameterError(f"{name} {value}: must be {low}..{high}")
    if merged["certificate_critical_days"] >= merged["certificate_warning_days"]:
        raise ParameterError(
            "certificate_critical_days must be less than certificate_warning_days "
            f"({merged['certificate_critical_days']} >= {merged['certificate_warning_days']})"
        )
    for name, value in values.items():
        text = _constant(text, CONSTANTS[name], value)
    for name, choice in chosen.items():
        text = _constant(text, CHOICES[name][0], choice)
    if runbook_base_url is not None:
        if not _URL.fullmatch(runbook_base_url):
            raise ParameterError(
                f"runbook base URL {runbook_base_url!r}: expected http(s)://… without '#', "
                "quotes, braces or spaces (each alert adds #its-anchor)"
            )
        text, count = _RUNBOOK.subn(lambda m: m.group(1) + runbook_base_url + m.group(3), text)
        if count == 0:
            raise ParameterError("no runbook_url in the rules file")
    if exporter_job is not None:
        if not _JOB.fullmatch(exporter_job):
            raise ParameterError(
                f"exporter job {exporter_job!r}: no quotes, backslashes or newlines"
            )
        text, count = _EXPORTER_JOB.subn(lambda m: m.group(1) + exporter_job + m.group(3), text)
        if count != 1:
            raise ParameterError(f'up{{job="…"}}: not found once in the rules file ({count})')
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("rules", nargs="?", default=str(RULES), help="default: %(default)s")
    for name in CONSTANTS:
        parser.add_argument("--" + name.replace("_", "-"), type=int, dest=name, metavar="N")
    for name, (_, allowed) in CHOICES.items():
        parser.add_argument("--" + name.replace("_", "-"), dest=name, choices=allowed)
    parser.add_argument("--runbook-base-url", metavar="URL")
    parser.add_argument("--exporter-job", metavar="JOB", help="the exporter's scrape job")
    args = parser.parse_args(argv)
    values = {name: getattr(args, name) for name in CONSTANTS if getattr(args, name) is not None}
    chosen = {name: getattr(args, name) for name in CHOICES if getattr(args, name) is not None}
    try:
        text = Path(args.rules).read_text(encoding="utf-8")
        sys.stdout.write(render(text, values, args.runbook_base_url, args.exporter_job, chosen))
    except (OSError, ParameterError) as exc:
        print(f"render-rules: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
