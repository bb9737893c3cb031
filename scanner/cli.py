"""argv → wiring → exit status. The only module that touches ``sys``.

``main(argv, stdout=..., stderr=...)`` is what the tests call; the console
scripts ``scan`` and ``pinaudit`` and ``python -m scanner`` wrap it.
"""

from __future__ import annotations

import argparse
import enum
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TextIO

from scanner import __version__
from scanner.errors import InventoryError, ScannerError
from scanner.model import PinFormat


class ExitStatus(enum.IntEnum):
    """Exit codes (DESIGN §4), for cron and CI."""

    OK = 0
    FINDINGS = 1
    USAGE = 2
    EXPORT_FAILED = 3
    INTERNAL = 70
    INTERRUPTED = 130


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
        help="print the pins of every certificate in a PEM/DER file",
        description="Print position, subject, issuer, expiry and SPKI pin of every "
        "certificate in a PEM (one or more certificates) or DER file.",
    )
    p.add_argument("file", metavar="FILE", help="certificate file (PEM or DER), - for stdin")
    p.add_argument(
        "--format",
        "-f",
        choices=[f.value for f in PinFormat],
        default=PinFormat.OKHTTP.value,
        help='pin spelling: okhttp (sha256/B64, default), hpkp (pin-sha256="B64"), '
        'android (<pin digest="SHA-256">), plain (B64), hex',
    )
    p.set_defaults(func=cmd_pin)


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
    _add_validate(sub)
    _add_pin(sub)
    return parser


# --- commands ---------------------------------------------------------------


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


def cmd_pin(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> ExitStatus:
    from scanner.chain import parse_certificate
    from scanner.errors import CertificateFileError
    from scanner.pins import format_pin
    from scanner.trust import read_certificates

    source = args.file
    try:
        data = sys.stdin.buffer.read() if source == "-" else Path(source).read_bytes()
    except OSError as exc:
        raise CertificateFileError(f"{source}: {exc.strerror}") from None
    fmt = PinFormat(args.format)
    status = ExitStatus.OK
    for position, der in enumerate(read_certificates(data, source)):
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
