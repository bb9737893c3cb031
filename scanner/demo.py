"""`pinaudit demo` and `pinaudit fleet serve`: the simulated fleet for people.

The demo starts the fleet in a child process, writes its inventory, scans it
with the real `scan` pipeline and shows the report; then it checks every
endpoint got the verdict its scenario promises. No internet is needed.
"""

from __future__ import annotations

import json
import signal
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import TextIO

import trio

from scanner.fleet.scenarios import Fleet, build_fleet
from scanner.fleet.server import FleetProcess, serve_sites, write_config
from scanner.scan import ScanRequest, run_scan_command
from scanner.status import ExitStatus


def _mismatches(fleet: Fleet, report: dict[str, object]) -> list[str]:
    expected = fleet.expected()
    problems = []
    endpoints = report["endpoints"]
    assert isinstance(endpoints, list)
    for entry in endpoints:
        want, reason = expected[entry["name"]]
        got = frozenset((f["check"], f["severity"], f["certificate"]) for f in entry["findings"])
        got_reason = entry["error"]["reason"] if entry["error"] else None
        if got != want or got_reason != reason:
            problems.append(
                f"{entry['name']}: expected {sorted(want)} {reason}, got {sorted(got)} {got_reason}"
            )
    return problems


def run_demo(
    directory: str | None, count: int | None, stdout: TextIO, stderr: TextIO
) -> ExitStatus:
    now = datetime.now(timezone.utc)
    base = Path(directory) if directory else Path(tempfile.mkdtemp(prefix="pinaudit-demo-"))
    fleet = build_fleet(now, count)
    stdout.write(
        f"pinaudit demo: serving {len(fleet.endpoints)} simulated endpoints "
        f"({len(fleet.sites)} listeners on 127.1.x.y) in a child process\n"
    )
    config = write_config(fleet.sites, base / "fleet")
    with FleetProcess(config) as served:
        inventory = fleet.write(base, served.listening)
        stdout.write(f"pinaudit demo: inventory {inventory}\n\n")
        stdout.flush()
        report_path = base / "report.json"
        request = ScanRequest(inventory=str(inventory), fail_on="never", json_copy=str(report_path))
        table = run_scan_command(request, stdout, stderr)
    report = json.loads(report_path.read_text())
    problems = _mismatches(fleet, report)
    stdout.write(f"\npinaudit demo: JSON report written to {report_path}\n")
    if problems or table is not ExitStatus.OK:
        for problem in problems:
            stderr.write(f"pinaudit demo: unexpected verdict: {problem}\n")
        return ExitStatus.FINDINGS
    stdout.write(
        f"pinaudit demo: all {len(fleet.endpoints)} endpoints got the verdict their scenario "
        "promises (see scanner/fleet/scenarios.py)\n"
    )
    return ExitStatus.OK


def run_fleet_serve(
    directory: str, count: int | None, base: int, port: int, stdout: TextIO
) -> ExitStatus:
    now = datetime.now(timezone.utc)
    fleet = build_fleet(now, count, base=base, port=port)
    target = Path(directory)

    async def serve() -> ExitStatus:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async with trio.open_nursery() as nursery:
                bound = await nursery.start(serve_sites, fleet.sites)
                inventory = fleet.write(target, bound)
                stdout.write(
                    f"serving {len(fleet.endpoints)} endpoints; inventory: {inventory}\n"
                    f"scan it with: scan --inventory {inventory}\n"
                    "Ctrl-C to stop\n"
                )
                stdout.flush()
                async for signum in signals:  # serve until asked to stop
                    nursery.cancel_scope.cancel()
                    stdout.write("stopped\n")
                    return ExitStatus.INTERRUPTED if signum == signal.SIGINT else ExitStatus.OK
        return ExitStatus.OK  # pragma: no cover - the signal loop only ends by returning

    return trio.run(serve)
