"""argv → the command → exit status. The only code that touches ``sys``.

``main(argv, *, stdin, stdout, stderr)`` is what the tests call; the console
scripts ``scan`` and ``pinaudit`` and ``python -m scanner`` wrap it. Each
command is a module of this package with ``add_parser`` and ``run(args,
streams)``; this module maps what they raise to exit codes: a problem the
user can fix is one line and exit 2 (3 for an output that could not be
written), a bug is exit 70 with the trace only under ``--traceback``.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import TextIO

from scanner import __version__
from scanner.cli import demo, import_config, pin, preflight, scan, validate
from scanner.cli.args import HelpShown, Parser, Streams, UsageError
from scanner.errors import ExportError, InventoryError, ScannerError
from scanner.safetext import printable
from scanner.status import ExitStatus

__all__ = ["build_parser", "build_scan_parser", "main", "pinaudit_entry", "scan_entry"]

Command = Callable[..., ExitStatus]


def _global_flags(parser: Parser) -> None:
    parser.add_argument("--version", action="version", version=f"pinaudit {__version__}")
    parser.add_argument(
        "--traceback", action="store_true", help="print the full trace of internal errors"
    )


def build_parser(prog: str = "pinaudit") -> Parser:
    parser = Parser(
        prog=prog,
        description="Audit TLS endpoints against the certificate/public-key pins "
        "their clients enforce.",
    )
    _global_flags(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    scan.add_parser(sub)
    validate.add_parser(sub)
    pin.add_parser(sub)
    import_config.add_parser(sub)
    demo.add_parser(sub)
    preflight.add_parser(sub)
    for action in sub.choices.values():  # `pinaudit scan --traceback` works too
        if not any("--traceback" in a.option_strings for a in action._actions):
            action.add_argument("--traceback", action="store_true", help="print the full trace")
    return parser


def build_scan_parser(prog: str = "scan") -> Parser:
    """The ``scan`` command on its own (the console script ``scan``)."""
    parser = Parser(prog=prog, description=scan.DESCRIPTION)
    _global_flags(parser)
    scan.add_arguments(parser)
    parser.set_defaults(func=scan.run, command="scan")
    return parser


def _report_error(who: str, exc: ScannerError, stderr: TextIO) -> None:
    if isinstance(exc, InventoryError):
        for problem in exc.problems:
            stderr.write(f"{who}: error: {printable(str(problem))}\n")
        count = len(exc.problems)
        stderr.write(f"{who}: {count} problem{'s' if count != 1 else ''}; nothing scanned\n")
    else:
        stderr.write(f"{who}: error: {printable(str(exc))}\n")


def main(
    argv: Sequence[str] | None = None,
    *,
    prog: str = "pinaudit",
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> ExitStatus:
    streams = Streams(
        stdin if stdin is not None else sys.stdin,
        stdout if stdout is not None else sys.stdout,
        stderr if stderr is not None else sys.stderr,
    )
    out, err = streams.stdout, streams.stderr
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = build_scan_parser(prog) if prog == "scan" else build_parser(prog)
    command: str | None = None
    show_trace = "--traceback" in args_list
    try:
        args = parser.parse_args(args_list)
        args.traceback = show_trace  # before or after the command name
        command = args.command
        if command is None:
            parser.print_help(out)
            return ExitStatus.USAGE
        func: Command = args.func
        return ExitStatus(func(args, streams))
    except HelpShown as shown:
        return ExitStatus(shown.status) if shown.status in (0, 2) else ExitStatus.USAGE
    except UsageError as exc:
        err.write(f"{parser.format_usage()}")
        err.write(f"{prog}: error: {exc}\n")
        return ExitStatus.USAGE
    except ExportError as exc:  # writing a result (report, state) failed
        _report_error(_who(prog, command), exc, err)
        return ExitStatus.EXPORT_FAILED
    except ScannerError as exc:
        _report_error(_who(prog, command), exc, err)
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
    except BaseException as exc:  # Ctrl-C arriving inside a trio nursery comes out grouped
        if not _only_interrupts(exc):
            raise
        err.write(f"{prog}: interrupted\n")
        return ExitStatus.INTERRUPTED


def _who(prog: str, command: str | None) -> str:
    return f"{prog} {command}" if command and prog == "pinaudit" else prog


def _only_interrupts(exc: BaseException) -> bool:
    """A KeyboardInterrupt, or an exception group holding nothing else."""
    if isinstance(exc, KeyboardInterrupt):
        return True
    inner = getattr(exc, "exceptions", None)
    return bool(inner) and all(_only_interrupts(e) for e in inner)  # type: ignore[union-attr]


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def pinaudit_entry() -> None:
    sys.exit(int(main(prog="pinaudit")))


def scan_entry() -> None:
    sys.exit(int(main(sys.argv[1:], prog="scan")))
