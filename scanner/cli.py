"""argv → wiring → exit status. The only module that touches ``sys``.

``main(argv, stdout=..., stderr=...)`` is what the tests call; the console
scripts ``scan`` and ``pinaudit`` and ``python -m scanner`` wrap it.
"""

from __future__ import annotations

import argparse
import re
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TextIO

from scanner import __version__
from scanner.errors import InventoryError, ScannerError
from scanner.model import PinFormat
from scanner.status import ExitStatus


class UsageError(ScannerError):
    """Bad arguments: exit 2."""


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of exiting, so main() owns the exit code."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message)

    def exit(self, status: int = 0, message: str | None = None) -> None:  # type: ignore[override]
        if message:
            raise UsageError(message.strip())
        raise _HelpShown(status)


class _HelpShown(Exception):
    def __init__(self, status: int) -> None:
        self.status = status


Command = Callable[[argparse.Namespace, TextIO, TextIO], ExitStatus]


def _add_validate(sub: argparse._SubParsersAction[_Parser]) -> None:
    p = sub.add_parser(
        "validate",
        help="load an inventory and report every problem (exit 0 or 2)",
        description="Load an inventory with its includes and report every problem "
        "with file:line:column. Nothing is scanned.",
    )
    p.add_argument("--inventory", "-i", required=True, metavar="FILE", help="inventory YAML")
    p.set_defaults(func=cmd_validate)


def _add_pin(sub: argparse._SubParsersAction[_Parser]) -> None:
    p = sub.add_parser(
        "pin",
        help="print the pins of every certificate in a file or served by a host",
        description="Print position, subject, issuer, expiry and SPKI pin of every "
        "certificate in a PEM (one or more certificates) or DER file, or of the chain a "
        "live server sends, in the order sent.",
    )
    p.add_argument(
        "file",
        metavar="FILE|HOST[:PORT]",
        help="certificate file (PEM or DER), - for stdin, or a live server (port 443 by default)",
    )
    p.add_argument(
        "--sni", metavar="NAME", help="server name to send to a live server (default: the host)"
    )
    p.add_argument(
        "--timeout", type=float, default=10.0, metavar="SECONDS", help="live server timeout"
    )
    p.add_argument(
        "--format",
        "-f",
        choices=[f.value for f in PinFormat],
        default=PinFormat.OKHTTP.value,
        help='pin spelling: okhttp (sha256/B64, default), hpkp (pin-sha256="B64"), '
        'android (<pin digest="SHA-256">), plain (B64), hex',
    )
    p.set_defaults(func=cmd_pin)


def _add_scan(sub: argparse._SubParsersAction[_Parser]) -> None:
    p = sub.add_parser(
        "scan",
        help="scan every endpoint of an inventory (the main job)",
        description="Handshake with every endpoint of the inventory concurrently, compare "
        "each served chain with its pins and expiry thresholds, and report drift.",
    )
    p.add_argument("--inventory", "-i", required=True, metavar="FILE", help="inventory YAML")
    p.add_argument(
        "--format",
        "-f",
        choices=("table", "json", "jsonl"),
        default="table",
        help="table (default, for people), json (one document), jsonl (one line per "
        "endpoint as results arrive, then a summary line)",
    )
    p.add_argument(
        "--output",
        "-o",
        metavar="FILE",
        help="write the report here (atomically) instead of stdout",
    )
    p.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="scan only endpoints whose label KEY is VALUE (repeat: AND across keys, "
        "OR within a key); KEY may also be name or host",
    )
    p.add_argument(
        "--fail-on",
        choices=("critical", "warning", "never"),
        default="critical",
        help="exit 1 when a finding is at or above this severity (default: critical)",
    )
    p.add_argument(
        "--now",
        metavar="DATE",
        help="judge expiry and pin-set dates as of this date (YYYY-MM-DD, 00:00 UTC) or "
        "time (ISO 8601): 'what breaks on that date?'",
    )
    p.add_argument(
        "--concurrency",
        "-c",
        type=int,
        default=None,
        metavar="N",
        help="handshakes in flight at once (default 200)",
    )
    p.add_argument(
        "--deadline",
        metavar="DURATION",
        help="stop the whole scan after this long (e.g. 90s, 5m); endpoints not scanned by "
        "then are reported as not_scanned",
    )
    p.add_argument(
        "--retries",
        type=int,
        default=0,
        metavar="N",
        help="retry transient failures (timeout, reset, closed) up to N times with "
        "jittered backoff (default 0)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar, even on a terminal")
    p.set_defaults(func=cmd_scan)


def _add_demo_and_fleet(sub: argparse._SubParsersAction[_Parser]) -> None:
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
    p.set_defaults(func=cmd_demo)
    fleet = sub.add_parser("fleet", help="the simulated fleet")
    fleet_sub = fleet.add_subparsers(dest="fleet_command", metavar="ACTION", parser_class=_Parser)
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
    serve.set_defaults(func=cmd_fleet_serve)


def build_parser(prog: str = "pinaudit") -> _Parser:
    parser = _Parser(
        prog=prog,
        description="Audit TLS endpoints against the certificate/public-key pins "
        "their clients enforce.",
    )
    parser.add_argument("--version", action="version", version=f"pinaudit {__version__}")
    parser.add_argument(
        "--traceback", action="store_true", help="print the full trace of internal errors"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    _add_scan(sub)
    _add_validate(sub)
    _add_pin(sub)
    _add_demo_and_fleet(sub)
    return parser


# --- commands ---------------------------------------------------------------


def cmd_scan(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> ExitStatus:
    from scanner.scan import ScanRequest, run_scan_command

    request = ScanRequest(
        inventory=args.inventory,
        format=args.format,
        output=args.output,
        only=tuple(args.only),
        fail_on=args.fail_on,
        now=args.now,
        concurrency=args.concurrency,
        deadline=args.deadline,
        retries=args.retries,
        progress=not args.no_progress,
    )
    return ExitStatus(run_scan_command(request, stdout, stderr))


def cmd_demo(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> ExitStatus:
    from scanner.demo import run_demo

    return run_demo(args.dir, args.count, stdout, stderr)


def cmd_fleet_serve(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> ExitStatus:
    from scanner.demo import run_fleet_serve

    if not 1 <= args.base <= 254:
        raise UsageError("--base must be 1..254")
    return run_fleet_serve(args.dir, args.count, args.base, args.port, stdout)


def cmd_validate(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> ExitStatus:
    from scanner.inventory import load_inventory

    inventory = load_inventory(args.inventory)
    pinsets = len(inventory.pinsets)
    files = len(inventory.files)
    stdout.write(
        f"{args.inventory}: OK: {len(inventory.endpoints)} endpoint"
        f"{'s' if len(inventory.endpoints) != 1 else ''}, {pinsets} pin-set"
        f"{'s' if pinsets != 1 else ''}, {files} file{'s' if files != 1 else ''}\n"
    )
    return ExitStatus.OK


_HOST_PORT = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.:-]+?)(?::(\d{1,5}))?$")


def _live_chain(target: str, sni: str | None, timeout: float) -> list[bytes]:
    """The chain served at HOST[:PORT] (default port 443)."""
    import trio

    from scanner.errors import CertificateFileError
    from scanner.inventory import is_ip_address
    from scanner.model import ProbeFailure
    from scanner.probe import make_client_context, probe

    match = _HOST_PORT.match(target)
    if not match:
        raise CertificateFileError(f"{target}: neither a file nor HOST[:PORT]")
    host = match.group(1).strip("[]")
    port = int(match.group(2) or 443)
    if not 1 <= port <= 65535:
        raise UsageError(f"{target}: port must be 1..65535")
    server_name = sni if sni is not None else (None if is_ip_address(host) else host)
    ctx = make_client_context()
    results = trio.run(lambda: probe(host, port, server_name, ctx, timeout=timeout))
    first = results[0]
    if isinstance(first, ProbeFailure):
        where = f" ({first.address})" if first.address else ""
        raise CertificateFileError(f"{target}{where}: {first.kind.value}: {first.detail}")
    return list(first.served)


def cmd_pin(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> ExitStatus:
    from scanner.chain import parse_certificate
    from scanner.errors import CertificateFileError
    from scanner.pins import format_pin
    from scanner.trust import read_certificates

    source = args.file
    path = Path(source)
    if source == "-" or path.exists():
        try:
            data = sys.stdin.buffer.read() if source == "-" else path.read_bytes()
        except OSError as exc:
            raise CertificateFileError(f"{source}: {exc.strerror}") from None
        ders = read_certificates(data, source)
    else:
        ders = _live_chain(source, args.sni, args.timeout)
    fmt = PinFormat(args.format)
    status = ExitStatus.OK
    for position, der in enumerate(ders):
        try:
            facts = parse_certificate(der)
        except ValueError as exc:
            stdout.write(f"{position}  <certificate does not parse: {exc}>\n")
            status = ExitStatus.FINDINGS
            continue
        stdout.write(
            f"{position}  {facts.subject}\n"
            f"   issuer:  {facts.issuer}\n"
            f"   expires: {facts.not_after:%Y-%m-%dT%H:%M:%SZ}\n"
            f"   pin:     {format_pin(facts.spki_sha256, fmt)}\n"
        )
    return status


# --- entry points -----------------------------------------------------------


def _report_error(prog: str, command: str | None, exc: ScannerError, stderr: TextIO) -> None:
    who = f"{prog} {command}" if command and prog == "pinaudit" else prog
    if isinstance(exc, InventoryError):
        for problem in exc.problems:
            stderr.write(f"{who}: error: {problem}\n")
        count = len(exc.problems)
        stderr.write(f"{who}: {count} problem{'s' if count != 1 else ''}; nothing scanned\n")
    else:
        stderr.write(f"{who}: error: {exc}\n")


def main(
    argv: Sequence[str] | None = None,
    *,
    prog: str = "pinaudit",
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> ExitStatus:
    out = stdout if stdout is not None else sys.stdout
    err = stderr if stderr is not None else sys.stderr
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(prog)
    command: str | None = None
    show_trace = "--traceback" in args_list
    try:
        args = parser.parse_args(args_list)
        command = args.command
        if command is None:
            parser.print_help(out)
            return ExitStatus.USAGE
        func: Command = args.func
        return func(args, out, err)
    except _HelpShown as shown:
        return ExitStatus(shown.status) if shown.status in (0, 2) else ExitStatus.USAGE
    except UsageError as exc:
        err.write(f"{parser.format_usage()}")
        err.write(f"{prog}: error: {exc}\n")
        return ExitStatus.USAGE
    except ScannerError as exc:
        _report_error(prog, command, exc, err)
        return ExitStatus.USAGE
    except KeyboardInterrupt:
        err.write(f"{prog}: interrupted\n")
        return ExitStatus.INTERRUPTED
    except BrokenPipeError:
        # the reader went away (`pinaudit pin … | head`): not an error of ours
        _silence_stdout()
        return ExitStatus.OK
    except Exception as exc:
        err.write(f"{prog}: internal error: {type(exc).__name__}: {exc}\n")
        if show_trace:
            err.write(traceback.format_exc())
        else:
            err.write(f"{prog}: this is a bug; run again with --traceback for details\n")
        return ExitStatus.INTERNAL


def _silence_stdout() -> None:
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def pinaudit_entry() -> None:
    sys.exit(int(main(prog="pinaudit")))


def scan_entry() -> None:
    sys.exit(int(main(["scan", *sys.argv[1:]], prog="scan")))
