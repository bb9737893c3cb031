"""argv → wiring → exit status. The only module that touches ``sys``.

``main(argv, stdout=..., stderr=...)`` is what the tests call; the console
scripts ``scan`` and ``pinaudit`` and ``python -m scanner`` wrap it.
"""

from __future__ import annotations

import argparse
import re
import sys
import traceback
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TextIO

from scanner import __version__
from scanner.errors import ExportError, InventoryError, ScannerError
from scanner.model import Pin, PinFormat
from scanner.policy import ClientPolicy
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
        "--shard",
        metavar="I/N",
        help="scan only shard I of N (0 <= I < N): a stable split of the endpoints by name "
        "(rendezvous hashing); pushes under the grouping key shard=I",
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
    p.add_argument(
        "--state",
        metavar="FILE",
        help="remember served keys and chains here and report what changed since the "
        "previous scan (key_changed, issuer_changed, chain_changed); written atomically",
    )
    _add_prometheus_flags(p)
    p.set_defaults(func=cmd_scan)


def _add_prometheus_flags(p: _Parser) -> None:
    job = p.add_argument_group(
        "Prometheus, one-shot (with any --format; a complete scan only, exit 3 when it fails)"
    )
    job.add_argument(
        "--textfile",
        metavar="PATH",
        help="write the metrics for node_exporter's textfile collector (atomically); "
        "name it *.prom",
    )
    job.add_argument(
        "--push-gateway",
        metavar="URL",
        help="push the metrics to this Pushgateway, replacing the group (PUT); basic auth "
        "from PINAUDIT_PUSH_USERNAME and PINAUDIT_PUSH_PASSWORD",
    )
    job.add_argument(
        "--push-job", metavar="NAME", help="job label of the pushed group (default: pinaudit)"
    )
    job.add_argument(
        "--grouping",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="another grouping-key label of the pushed group, e.g. region=eu (repeatable; "
        "--shard I/N adds shard=I)",
    )
    serve = p.add_argument_group("Prometheus exporter (long-running)")
    serve.add_argument(
        "--serve",
        metavar="HOST:PORT",
        help="scan every --interval and serve /metrics here (e.g. :9918 or 127.0.0.1:9918); "
        "SIGHUP reloads the inventory, SIGTERM stops",
    )
    serve.add_argument(
        "--interval",
        metavar="DURATION",
        help="time between the starts of two scans (default 5m; 30s, 5m, 1h)",
    )
    serve.add_argument(
        "--retention",
        metavar="DURATION",
        help="keep exporting the last good chain facts of a failing endpoint this long "
        "(default 24h)",
    )
    serve.add_argument(
        "--web-config",
        metavar="FILE",
        help="TLS (tls_server_config) and basic auth (basic_auth_users, bcrypt hashes) for "
        "/metrics, as Prometheus exporters read it",
    )
    serve.add_argument(
        "--log-format",
        choices=("auto", "json", "text"),
        help="logs on stderr: one JSON object per line, or text (default auto: text on a "
        "terminal, JSON otherwise)",
    )


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


def _add_preflight(sub: argparse._SubParsersAction[_Parser]) -> None:
    p = sub.add_parser(
        "preflight",
        help="is it safe to deploy this chain, key or CA? (exit 0 safe, 1 would break)",
        description="Judge a chain, a key or a CA that is not deployed yet against the "
        "pin-sets of the inventory's endpoints, before anyone deploys it. Nothing is "
        "contacted over the network.",
    )
    p.add_argument("--inventory", "-i", required=True, metavar="FILE", help="inventory YAML")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument(
        "--chain", metavar="NEW.pem", help="the new chain, leaf first, as it will be served"
    )
    what.add_argument(
        "--key-only",
        metavar="NEW_KEY.pem",
        help="only the next leaf key (public key, private key or CSR): is it pinned in "
        "advance, or would CA pins carry it?",
    )
    what.add_argument(
        "--ca",
        metavar="NEW_CA.pem",
        help="what if we switch CA: which pin-sets already pin this CA's key or its "
        "issuers' (the file may hold the CA and its issuers; the trust store supplies more)",
    )
    p.add_argument(
        "--endpoint", action="append", default=[], metavar="NAME", help="only this endpoint"
    )
    p.add_argument(
        "--host",
        action="append",
        default=[],
        metavar="NAME",
        help="only endpoints for this host or SNI",
    )
    p.add_argument("--now", metavar="DATE", help="judge as of this date (default: now)")
    p.set_defaults(func=cmd_preflight)


def _add_import(sub: argparse._SubParsersAction[_Parser]) -> None:
    from scanner.importers import KINDS

    p = sub.add_parser(
        "import",
        help="print the inventory equivalent to a client's pin configuration",
        description="Read a client pin configuration (Android network-security-config, OkHttp "
        "CertificatePinner source or list, TrustKit, iOS NSPinnedDomains, HPKP headers, "
        "Chromium static pins) and print an inventory with the same pins, host rules and "
        "expiry, and one endpoint per exact host. What the client itself would reject is "
        "kept (errors:) and printed as warnings.",
    )
    p.add_argument("kind", choices=KINDS, help="the kind of file")
    p.add_argument("file", metavar="FILE", help="the configuration file")
    p.add_argument("--name", help="pin-set name (default: the file's stem)")
    p.add_argument(
        "--pins",
        metavar="FILE",
        help="chromium: the .pins file (default: FILE with the suffix .pins)",
    )
    p.set_defaults(func=cmd_import)


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
    _add_import(sub)
    _add_demo_and_fleet(sub)
    _add_preflight(sub)
    return parser


# --- commands ---------------------------------------------------------------


def cmd_scan(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> ExitStatus:
    from scanner.scan import ScanRequest, run_scan_command

    request = ScanRequest(
        inventory=args.inventory,
        format=args.format,
        output=args.output,
        only=tuple(args.only),
        shard=args.shard,
        fail_on=args.fail_on,
        now=args.now,
        concurrency=args.concurrency,
        deadline=args.deadline,
        retries=args.retries,
        progress=not args.no_progress,
        state=args.state,
        textfile=args.textfile,
        push_gateway=args.push_gateway,
        push_job=args.push_job,
        grouping=tuple(args.grouping),
        serve=args.serve,
        interval=args.interval,
        retention=args.retention,
        web_config=args.web_config,
        log_format=args.log_format,
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


def cmd_preflight(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> ExitStatus:
    from scanner.errors import CertificateFileError, ConfigError
    from scanner.inventory import load_inventory
    from scanner.preflight import (
        Verdict,
        ca_lineage,
        preflight_ca,
        preflight_chain,
        preflight_key,
        public_key_spki,
    )
    from scanner.scan import parse_now
    from scanner.trust import TrustStores, load_certificate, read_certificates

    inventory = load_inventory(args.inventory)
    endpoints = [
        e
        for e in inventory.endpoints
        if (not args.endpoint or e.name in args.endpoint)
        and (not args.host or e.host in args.host or e.sni in args.host)
    ]
    if not endpoints:
        raise ConfigError("no endpoint of the inventory matches --endpoint/--host")
    now = parse_now(args.now)
    stores = TrustStores()
    source = args.chain or args.key_only or args.ca
    try:
        data = Path(source).read_bytes()
    except OSError as exc:
        raise CertificateFileError(f"{source}: {exc.strerror}") from None
    if args.chain:
        results = preflight_chain(endpoints, read_certificates(data, source), stores.get, now)
    elif args.key_only:
        ca_keys: dict[Pin, str] = {}
        for endpoint in endpoints:
            ca_keys.update(stores.get(endpoint.trust).known_keys)
        results = preflight_key(endpoints, public_key_spki(data, source), ca_keys, now)
    else:
        certs = []
        for der in read_certificates(data, source):
            try:
                certs.append(load_certificate(der)[0])
            except ValueError as exc:
                raise CertificateFileError(
                    f"{source}: a certificate does not parse: {exc}"
                ) from None
        anchors = [a for e in endpoints for a in stores.get(e.trust).anchors]
        results = preflight_ca(endpoints, ca_lineage(certs[0], certs[1:] + anchors), now)
    width = max(len(r.endpoint.name) for r in results)
    labels = {Verdict.SAFE: "SAFE", Verdict.BREAKS: "BREAKS", Verdict.NOT_PINNED: "NOT PINNED"}
    for result in results:
        stdout.write(
            f"{labels[result.verdict]:<10}  {result.endpoint.name:<{width}}  {result.reason}\n"
        )
    breaks = sum(1 for r in results if r.verdict is Verdict.BREAKS)
    safe = sum(1 for r in results if r.verdict is Verdict.SAFE)
    stdout.write(
        f"{len(results)} endpoint{'s' if len(results) != 1 else ''}: {safe} safe, "
        f"{breaks} would break, {len(results) - safe - breaks} not pinned\n"
    )
    return ExitStatus.FINDINGS if breaks else ExitStatus.OK


def cmd_validate(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> ExitStatus:
    from scanner.inventory import load_inventory

    inventory = load_inventory(args.inventory)
    _client_warnings(inventory.policies.values(), "pinaudit validate", stderr)
    pinsets = len(inventory.pinsets) + len(inventory.policies)
    files = len(inventory.files)
    stdout.write(
        f"{args.inventory}: OK: {len(inventory.endpoints)} endpoint"
        f"{'s' if len(inventory.endpoints) != 1 else ''}, {pinsets} pin-set"
        f"{'s' if pinsets != 1 else ''}, {files} file{'s' if files != 1 else ''}\n"
    )
    return ExitStatus.OK


def _client_warnings(policies: Iterable[ClientPolicy], who: str, stderr: TextIO) -> None:
    """What a client would reject in its own configuration, and what it accepts but
    is worth knowing: warnings, the inventory itself is fine."""
    for policy in policies:
        for problem in policy.problems:
            stderr.write(
                f"{who}: warning: {problem}: pinset {policy.name!r}: {policy.client.value} "
                "rejects this configuration (CONFIG_ERROR)\n"
            )
        for rule in policy.rules:
            for problem in rule.problems:
                stderr.write(
                    f"{who}: warning: {problem}: pinset {policy.name!r}: {policy.client.value} "
                    f"ignores this rule for {rule.host} (CONFIG_ERROR)\n"
                )
        for note in policy.notes:
            stderr.write(f"{who}: note: {note}\n")


def cmd_import(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> ExitStatus:
    from scanner.importers import read_policy
    from scanner.importers._common import stem_name
    from scanner.inventory_clients import inventory_text

    name = args.name or stem_name(args.file)
    if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*", name) or name in ("inline", "auto"):
        raise UsageError(f"--name {name!r}: must match [A-Za-z0-9_][A-Za-z0-9_.-]*")
    if args.pins is not None and args.kind != "chromium":
        raise UsageError("--pins is for the chromium kind only")
    policy = read_policy(args.kind, args.file, name=name, pins_path=args.pins)
    _client_warnings([policy], "pinaudit import", stderr)
    command = " ".join(["pinaudit import", args.kind, args.file])
    stdout.write(inventory_text(policy, command=command))
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


def _pin_of_key(data: bytes, source: str, fmt: PinFormat, stdout: TextIO) -> ExitStatus:
    """The pin of a public key, private key or CSR (a key to pin in advance)."""
    from scanner.pins import format_pin, pins_of_spki
    from scanner.preflight import public_key_spki

    pin = pins_of_spki(public_key_spki(data, source))[0]
    stdout.write(f"0  public key from {source}\n   pin:     {format_pin(pin, fmt)}\n")
    return ExitStatus.OK


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
        if b"-----BEGIN" in data and b"CERTIFICATE-----" not in data.replace(b"REQUEST", b""):
            return _pin_of_key(data, source, PinFormat(args.format), stdout)
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
    except ExportError as exc:  # the scan ran; writing a result (report, state) failed
        _report_error(prog, command, exc, err)
        return ExitStatus.EXPORT_FAILED
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
    except BaseException as exc:  # Ctrl-C arriving inside a trio nursery comes out grouped
        if not _only_interrupts(exc):
            raise
        err.write(f"{prog}: interrupted\n")
        return ExitStatus.INTERRUPTED


def _only_interrupts(exc: BaseException) -> bool:
    """A KeyboardInterrupt, or an exception group holding nothing else."""
    if isinstance(exc, KeyboardInterrupt):
        return True
    inner = getattr(exc, "exceptions", None)
    return bool(inner) and all(_only_interrupts(e) for e in inner)  # type: ignore[union-attr]


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
