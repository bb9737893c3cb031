"""``scan`` (also ``pinaudit scan``): the main job.

It reads as it runs: flags → settings (checked once), load the plan
(inventory, selection, shard, trust stores), run the engine, then write the
outputs — the report, the state file, the metric exports — each on its own,
so that one that cannot be written does not cost the others. With
``--serve`` the same settings start the long-running exporter instead.
``--proxy-from-env`` and ``--dns-server`` are checked here too: a proxy
variable that is not a proxy URL, or a DNS server that is not an address, is
a usage error before anything is scanned.
"""

from __future__ import annotations

import argparse
import io
import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any, TextIO

import trio

from scanner.cli import options
from scanner.cli.args import Parser, Streams, Subparsers
from scanner.engine import ScanOutcome
from scanner.errors import ConfigError, ExportError
from scanner.exporters import jsonreport
from scanner.exporters.files import write_atomic
from scanner.exporters.metrics import ScanRecord
from scanner.plan import load_plan
from scanner.probe import parse_nameserver
from scanner.proxy import parse_proxy
from scanner.results import EndpointResult
from scanner.settings import (
    DEFAULT_INTERVAL_SECONDS,
    DEFAULT_RETENTION,
    ExporterSettings,
    FailOn,
    JobExportSettings,
    LogFormat,
    LogLevel,
    ReportFormat,
    ReportSettings,
    ScanLimits,
    ScanSettings,
)
from scanner.state import advance, load_state, save_state
from scanner.status import ExitStatus
from scanner.workers import DEFAULT_SHARE, MAX_WORKERS, run_scan, worker_count

__all__ = ["add_arguments", "add_parser", "exit_status", "run", "run_scan_command", "settings"]

HELP = "scan every endpoint of an inventory (the main job)"
DESCRIPTION = (
    "Handshake with every endpoint of the inventory concurrently, compare each served "
    "chain with its pins and expiry thresholds, and report drift."
)


def add_parser(sub: Subparsers[Parser]) -> None:
    parser = sub.add_parser("scan", help=HELP, description=DESCRIPTION)
    add_arguments(parser)
    parser.set_defaults(func=run)


def add_arguments(p: Parser) -> None:
    p.add_argument("--inventory", "-i", required=True, metavar="FILE", help="inventory YAML")
    p.add_argument(
        "--format",
        "-f",
        choices=[f.value for f in ReportFormat],
        default=ReportFormat.TABLE.value,
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
        help="scan only shard I of N (0 <= I < N <= 256): a stable split of the endpoints by "
        "name (rendezvous hashing); pushes under the grouping key shard=I",
    )
    p.add_argument(
        "--fail-on",
        choices=[f.value for f in FailOn],
        default=FailOn.CRITICAL.value,
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
        help=f"handshakes in flight at once, 1..{options.MAX_CONCURRENCY} (default 200)",
    )
    p.add_argument(
        "--deadline",
        metavar="DURATION",
        help="stop the whole scan after this long (e.g. 90s, 5m, 1h); endpoints not scanned "
        "by then are reported as not_scanned",
    )
    p.add_argument(
        "--retries",
        type=int,
        default=0,
        metavar="N",
        help=f"retry transient failures (timeout, reset, closed) up to N times with "
        f"jittered backoff, 0..{options.MAX_RETRIES} (default 0)",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help=f"probe with N processes, 1..{MAX_WORKERS}, each with its share of the endpoints "
        "and of --concurrency; one report (default: the CPUs available, one per "
        f"{DEFAULT_SHARE} endpoints at most)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar, even on a terminal")
    p.add_argument(
        "--proxy-from-env",
        action="store_true",
        help="reach endpoints without a proxy key through HTTPS_PROXY / ALL_PROXY, except "
        "those NO_PROXY names, as curl does",
    )
    p.add_argument(
        "--dns-server",
        metavar="ADDRESS[:PORT]",
        help="the DNS server for CAA lookups (caa: true); default: the system's resolv.conf",
    )
    p.add_argument(
        "--state",
        metavar="FILE",
        help="remember served keys and chains here and report what changed since the "
        "previous scan (key_changed, issuer_changed, chain_changed); written atomically",
    )
    p.add_argument(
        "--allow-empty",
        action="store_true",
        help="scan an inventory without endpoints (exit 0 and empty exports) instead of "
        "refusing it with exit 2",
    )
    _add_prometheus_arguments(p)


def _add_prometheus_arguments(p: Parser) -> None:
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
        f"from {options.PUSH_USERNAME_ENV} and {options.PUSH_PASSWORD_ENV}",
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
        "--web.listen-address",
        dest="serve",
        metavar="HOST:PORT",
        help="scan every --interval and serve /metrics, /-/healthy, /-/ready and "
        "POST /-/reload here (e.g. :9918 or 127.0.0.1:9918); SIGHUP reloads the inventory, "
        "SIGTERM stops",
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
        "--web.config.file",
        dest="web_config",
        metavar="FILE",
        help="TLS (tls_server_config) and basic auth (basic_auth_users, bcrypt hashes) for "
        "/metrics, as Prometheus exporters read it",
    )
    serve.add_argument(
        "--log-format",
        "--log.format",
        dest="log_format",
        choices=[f.value for f in LogFormat],
        help="logs on stderr: one JSON object per line, logfmt as Prometheus writes it, or "
        "text (default auto: text on a terminal, JSON otherwise)",
    )
    serve.add_argument(
        "--probe-config",
        "--probe.config",
        dest="probe_config",
        metavar="FILE",
        help="serve /probe?target=HOST:PORT&module=NAME too (Prometheus chooses the targets): "
        "the modules and the allow-list of hosts and networks it may reach",
    )
    serve.add_argument(
        "--log-level",
        "--log.level",
        dest="log_level",
        choices=[level.value for level in LogLevel],
        help="the least severe log lines written (default info)",
    )


# --- flags → settings ------------------------------------------------------------


def settings(args: argparse.Namespace, environ: Mapping[str, str]) -> ScanSettings:
    """Every flag checked, before anything is loaded or scanned."""
    shard = options.shard(args.shard)
    limits = ScanLimits(
        concurrency=options.concurrency(args.concurrency),
        deadline=options.duration("--deadline", args.deadline),
        retries=options.retries(args.retries),
        processes=options.workers(args.workers),
    )
    serve_only = (
        ("--interval", args.interval),
        ("--retention", args.retention),
        ("--web-config", args.web_config),
        ("--log-format", args.log_format),
        ("--log-level", args.log_level),
        ("--probe-config", args.probe_config),
    )
    exporter = None
    if args.serve is None:
        for flag, value in serve_only:
            if value is not None:
                raise ConfigError(f"{flag} needs --serve")
    else:
        clashing = [
            flag
            for flag, value in (
                ("--output", args.output),
                ("--textfile", args.textfile),
                ("--push-gateway", args.push_gateway),
                ("--now", args.now),
                ("--workers", args.workers),
            )
            if value is not None
        ]
        if clashing:
            raise ConfigError(f"{clashing[0]} cannot be combined with --serve")
        host, port = options.listen(args.serve)
        interval = options.duration("--interval", args.interval)
        retention = options.duration("--retention", args.retention)
        exporter = ExporterSettings(
            host=host,
            port=port,
            interval=DEFAULT_INTERVAL_SECONDS if interval is None else interval,
            retention=DEFAULT_RETENTION if retention is None else timedelta(seconds=retention),
            web_config=args.web_config,
            log_format=LogFormat(args.log_format or LogFormat.AUTO.value),
            log_level=LogLevel(args.log_level or LogLevel.INFO.value),
            probe_config=args.probe_config,
        )
    for flag, path in (
        ("--output", args.output),
        ("--textfile", args.textfile),
        ("--state", args.state),
    ):
        options.check_output(flag, path)
    return ScanSettings(
        inventory=args.inventory,
        selector=options.selector(args.only),
        shard=shard,
        now=options.now(args.now),
        limits=limits,
        state=args.state,
        report=ReportSettings(
            format=ReportFormat(args.format),
            output=args.output,
            progress=not args.no_progress,
        ),
        fail_on=FailOn(args.fail_on),
        exports=JobExportSettings(
            textfile=args.textfile,
            push=options.push_settings(
                args.push_gateway, args.push_job, args.grouping, environ, shard
            ),
        ),
        exporter=exporter,
        allow_empty=args.allow_empty,
        traceback=args.traceback,
        proxy_environment=_proxy_environment(environ) if args.proxy_from_env else None,
        dns_server=_dns_server(args.dns_server),
    )


_PROXY_VARIABLES = ("https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY", "no_proxy", "NO_PROXY")


def _proxy_environment(environ: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """The proxy variables, each proxy URL checked now (a bad one is exit 2)."""
    found = tuple((key, environ[key]) for key in _PROXY_VARIABLES if environ.get(key))
    for key, value in found:
        if "proxy" in key.lower() and not key.lower().startswith("no_"):
            url = value if "://" in value else f"http://{value}"
            try:
                parse_proxy(url)
            except ValueError as exc:
                raise ConfigError(f"--proxy-from-env: {key}: {exc}") from None
    return found


def _dns_server(text: str | None) -> tuple[str, int] | None:
    if text is None:
        return None
    try:
        return parse_nameserver(text)
    except ValueError as exc:
        raise ConfigError(f"--dns-server: {exc}") from None


# --- running ------------------------------------------------------------------


def run(args: argparse.Namespace, streams: Streams) -> ExitStatus:
    return run_scan_command(settings(args, os.environ), streams)


def exit_status(results: Sequence[EndpointResult], fail_on: FailOn) -> ExitStatus:
    threshold = fail_on.threshold
    if threshold is None:
        return ExitStatus.OK
    worst = max((f.severity.rank for r in results for f in r.findings), default=-1)
    return ExitStatus.FINDINGS if worst >= threshold.rank else ExitStatus.OK


def _table() -> Any:
    """The table exporter, imported when a table is wanted: it brings rich,
    whose modules a JSON scan need not hold (memory)."""
    from scanner.exporters import table

    return table


class _Progress:
    """A live bar on stderr, only when stderr is a terminal."""

    def __init__(self, total: int, stderr: TextIO, enabled: bool) -> None:
        self.bar: Any = None
        if enabled and stderr.isatty():
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

            self.bar = Progress(
                "[progress.description]{task.description}",
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=_table().make_console(stderr),
                transient=True,
            )
            self.task = self.bar.add_task("scanning", total=total)

    def __enter__(self) -> _Progress:
        if self.bar is not None:
            self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()

    def __call__(self, result: EndpointResult) -> None:
        if self.bar is not None:
            self.bar.advance(self.task)


def _jsonl_sink(
    lines: list[str], out: TextIO | None, now: datetime
) -> Callable[[EndpointResult], None]:
    def sink(result: EndpointResult) -> None:
        line = json.dumps(jsonreport.endpoint_entry(result, now), sort_keys=False)
        lines.append(line)
        if out is not None:
            out.write(line + "\n")
            out.flush()

    return sink


def _render(
    report: ReportSettings,
    outcome: ScanOutcome,
    now: datetime,
    scanned_at: datetime,
    jsonl: list[str],
) -> Iterable[str]:
    if report.format is ReportFormat.JSON:  # written entry by entry (flat memory)
        return jsonreport.report_text(
            outcome.results, scanned_at=scanned_at, as_of=now, interrupted=outcome.interrupted
        )
    if report.format is ReportFormat.JSONL:
        summary = jsonreport.summary_line(outcome.results, scanned_at=scanned_at, as_of=now)
        summary["complete"] = not outcome.interrupted
        return ["".join(line + "\n" for line in jsonl) + json.dumps(summary) + "\n"]
    buffer = io.StringIO()
    table = _table()
    table.render(
        outcome.results, table.make_console(buffer, color=False), interrupted=outcome.interrupted
    )
    return [buffer.getvalue()]


def run_scan_command(settings: ScanSettings, streams: Streams) -> ExitStatus:
    """parse (done) → load → run → write the outputs → exit status."""
    stdout, stderr = streams.stdout, streams.stderr
    if settings.exporter is not None:
        from scanner.serve import run_exporter

        return run_exporter(settings, stderr)
    plan = load_plan(settings)
    for warning in plan.warnings:
        stderr.write(f"scan: warning: {warning}\n")
    now = settings.now or datetime.now(timezone.utc)
    report = settings.report
    jsonl: list[str] = []
    streaming = report.format is ReportFormat.JSONL and report.output is None
    progress = _Progress(len(plan.endpoints), stderr, report.progress)
    sinks: list[Callable[[EndpointResult], None]] = [progress]
    if report.format is ReportFormat.JSONL:
        sinks.append(_jsonl_sink(jsonl, stdout if streaming else None, now))
    with progress:
        processes = worker_count(
            settings.limits.processes, len(plan.endpoints), plan.options.concurrency
        )
        outcome = trio.run(
            lambda: run_scan(
                plan.endpoints,
                now=now,
                options=plan.options,
                stores=plan.stores,
                sinks=sinks,
                workers=processes,
            )
        )
    scanned_at = datetime.now(timezone.utc)
    failed = False  # an output that could not be written: exit 3, the others still written
    if settings.state:
        outcome, state_ok = _apply_state(settings.state, outcome, scanned_at, stderr)
        failed |= not state_ok
    text = _render(report, outcome, now, scanned_at, jsonl)
    if report.json_copy:
        copy = jsonreport.report_text(
            outcome.results, scanned_at=scanned_at, as_of=now, interrupted=outcome.interrupted
        )
        failed |= not _write(report.json_copy, copy, stderr)
    # An interrupted scan never replaces the last complete report (all or
    # nothing, like the metric exports): its partial report goes to stdout.
    output = report.output if not outcome.interrupted else None
    if output:
        failed |= not _write(output, text, stderr)
    elif streaming:
        stdout.write("".join(text).splitlines()[-1] + "\n")  # the lines went out as they came
    elif report.format is ReportFormat.TABLE and stdout.isatty():
        table = _table()
        table.render(outcome.results, table.make_console(stdout), interrupted=outcome.interrupted)
    else:
        for piece in text:
            stdout.write(piece)
    stdout.flush()
    for name, trace in outcome.internal_errors:
        if settings.traceback:
            stderr.write(f"scan: internal error while judging {name}:\n{trace}")
    if outcome.interrupted:
        done = sum(1 for r in outcome.results if r.attempts)
        stderr.write(f"scan: interrupted: {done} of {len(outcome.results)} endpoints scanned\n")
        if report.output:
            stderr.write(f"scan: {report.output} left as it was (the last complete report)\n")
        return ExitStatus.INTERRUPTED
    if outcome.deadline_hit:
        stderr.write(
            "scan: warning: the global deadline passed; unfinished endpoints are not_scanned\n"
        )
    record = ScanRecord(outcome.results, now, scanned_at, outcome.duration, shards=settings.shards)
    if settings.exports:  # prometheus_client is imported only for them (memory)
        from scanner.exporters.prometheus import run_job_exports

        failed |= not run_job_exports(settings.exports, record, stderr)  # after the report
    if outcome.internal_errors:
        names = ", ".join(name for name, _ in outcome.internal_errors[:5])
        stderr.write(
            f"scan: internal error (a bug) while judging {len(outcome.internal_errors)} "
            f"endpoint(s): {names}; the rest of the scan is complete"
            + ("" if settings.traceback else "; run again with --traceback for details")
            + "\n"
        )
        return ExitStatus.INTERNAL
    if failed:
        return ExitStatus.EXPORT_FAILED
    return exit_status(outcome.results, settings.fail_on)


def _write(path: str, text: str | Iterable[str], stderr: TextIO) -> bool:
    try:
        write_atomic(path, text)
    except ExportError as exc:
        stderr.write(f"scan: error: {exc}\n")
        return False
    return True


def _apply_state(
    path: str, outcome: ScanOutcome, scanned_at: datetime, stderr: TextIO
) -> tuple[ScanOutcome, bool]:
    """Compare with the previous scan's state and save the new one; an
    interrupted scan leaves the state file as it was (all or nothing). A state
    that cannot be saved is reported; the other outputs are written anyway."""
    previous, warning = load_state(path)
    if warning:
        stderr.write(f"scan: warning: {warning}\n")
    state, results = advance(previous, outcome.results, scanned_at)
    saved = True
    if not outcome.interrupted:
        try:
            save_state(path, state)
        except ExportError as exc:
            stderr.write(f"scan: error: --state {exc}\n")
            saved = False
    return replace(outcome, results=tuple(results)), saved
