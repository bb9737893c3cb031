"""``pinaudit demo`` and ``pinaudit fleet serve``: the simulated fleet for people.

The demo starts the fleet in a child process, writes its inventory, scans it
with the real `scan` pipeline and shows the report; then it checks every
endpoint got the verdict its scenario promises. No internet is needed.
"""

from __future__ import annotations

import argparse
import json
import signal
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import trio

from scanner.cli.args import Parser, Streams, Subparsers, UsageError
from scanner.cli.scan import run_scan_command
from scanner.settings import FailOn, ReportSettings, ScanSettings
from scanner.status import ExitStatus

if TYPE_CHECKING:
    from scanner.fleet.scenarios import Fleet

# The simulated fleet (its PKI, its servers) is imported by the commands that
# use it, not by every run of the CLI: `scan` need not hold its modules.

__all__ = ["add_parser", "run_demo", "run_fleet_serve"]


def add_parser(sub: Subparsers[Parser]) -> None:
    p = sub.add_parser(
        "demo",
        help="serve the simulated fleet, scan it and show the report (no internet needed)",
        description="Start the simulated fleet in a child process on 127.1.x.y, write its "
        "inventory, scan it and show the report; then check every endpoint got the verdict "
        "its scenario promises.",
    )
    p.add_argument(
        "--dir", metavar="DIR", help="where to write inventory and report (default: a new temp dir)"
    )
    p.add_argument("--count", type=int, metavar="N", help="endpoints (default: one per scenario)")
    p.set_defaults(func=_demo)
    fleet = sub.add_parser("fleet", help="the simulated fleet")
    fleet_sub = fleet.add_subparsers(dest="fleet_command", metavar="ACTION", parser_class=Parser)
    serve = fleet_sub.add_parser(
        "serve",
        help="serve the simulated fleet in the foreground and write its inventory",
        description="Serve every scenario of the simulated fleet on loopback addresses "
        "127.BASE.x.y until Ctrl-C, and write inventory.yaml and trust.pem to DIR, e.g. to "
        "test alerting end to end.",
    )
    serve.add_argument("--dir", required=True, metavar="DIR", help="where to write inventory.yaml")
    serve.add_argument(
        "--count", type=int, metavar="N", help="endpoints (default: one per scenario)"
    )
    serve.add_argument(
        "--base", type=int, default=1, metavar="B", help="address block 127.B.x.y (default 1)"
    )
    serve.add_argument(
        "--port",
        type=int,
        default=0,
        metavar="PORT",
        help="listen port (default: a free port per listener)",
    )
    serve.set_defaults(func=_fleet_serve)


def _count(value: int | None) -> int | None:
    if value is not None and not 1 <= value <= 62_500:
        raise UsageError("--count must be 1..62500 (250 addresses in each of 250 blocks)")
    return value


def _demo(args: argparse.Namespace, streams: Streams) -> ExitStatus:
    return run_demo(args.dir, _count(args.count), streams)


def _fleet_serve(args: argparse.Namespace, streams: Streams) -> ExitStatus:
    if args.fleet_command is None:
        raise UsageError("fleet: name an action: serve")
    if not 1 <= args.base <= 254:
        raise UsageError("--base must be 1..254")
    if not 0 <= args.port <= 65535:
        raise UsageError("--port must be 0..65535")
    return run_fleet_serve(args.dir, _count(args.count), args.base, args.port, streams.stdout)


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


def run_demo(directory: str | None, count: int | None, streams: Streams) -> ExitStatus:
    stdout, stderr = streams.stdout, streams.stderr
    now = datetime.now(timezone.utc)
    base = Path(directory) if directory else Path(tempfile.mkdtemp(prefix="pinaudit-demo-"))
    from scanner.fleet.scenarios import build_fleet
    from scanner.fleet.server import FleetProcess, write_config

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
        settings = ScanSettings(
            inventory=str(inventory),
            fail_on=FailOn.NEVER,
            report=ReportSettings(json_copy=str(report_path)),
        )
        table = run_scan_command(settings, streams)
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
    from scanner.fleet.scenarios import build_fleet
    from scanner.fleet.server import serve_sites

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
