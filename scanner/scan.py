"""The `scan` command's wiring: inventory → engine → reports → exit status.

Shell code: it reads the clock (unless ``--now`` is given), runs trio, and
writes outputs. All judgement happens in the pure core.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timezone
from typing import Any, TextIO

import trio

from scanner.engine import (
    DEFAULT_CONCURRENCY,
    ScanOptions,
    ScanOutcome,
    ensure_open_files,
    run_scan,
)
from scanner.errors import ConfigError, ExportError
from scanner.exporters import jsonreport, table
from scanner.exporters.files import write_atomic
from scanner.exporters.metrics import ScanRecord
from scanner.exporters.prometheus import JobExports
from scanner.inventory import load_inventory, parse_duration
from scanner.model import Endpoint, Severity
from scanner.results import EndpointResult
from scanner.shard import Shard
from scanner.state import advance, load_state, save_state
from scanner.status import ExitStatus
from scanner.trust import TrustStores

_ONLY = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(.*)$")
# The Pushgateway grouping label that keeps the groups of `--shard I/N` apart.
SHARD_LABEL = "shard"


@dataclass(frozen=True)
class ScanRequest:
    inventory: str
    format: str = "table"
    output: str | None = None
    only: tuple[str, ...] = ()
    shard: str | None = None  # --shard I/N: only the endpoints shard I of N owns
    fail_on: str = "critical"
    now: str | None = None
    concurrency: int | None = None
    deadline: str | None = None
    retries: int = 0
    progress: bool = True
    json_copy: str | None = None  # also write the JSON report here (the demo)
    state: str | None = None  # --state FILE: drift since the previous scan
    # Prometheus (README "Prometheus metrics"): one-shot exports of a complete scan ...
    textfile: str | None = None
    push_gateway: str | None = None
    push_job: str | None = None
    grouping: tuple[str, ...] = ()
    # ... or the long-running exporter (scanner/serve.py)
    serve: str | None = None
    interval: str | None = None
    retention: str | None = None
    web_config: str | None = None
    log_format: str | None = None


def parse_now(text: str | None) -> datetime:
    """``--now``: a date (00:00 UTC) or an ISO 8601 time; the clock when absent."""
    if text is None:
        return datetime.now(timezone.utc)
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            day = date.fromisoformat(text)
            return datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ConfigError(f"--now {text!r}: {exc} (expected YYYY-MM-DD or ISO 8601)") from None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def select(endpoints: Sequence[Endpoint], only: Sequence[str]) -> list[Endpoint]:
    """``--only KEY=VALUE`` filters: AND across keys, OR within one key."""
    wanted: dict[str, set[str]] = {}
    for item in only:
        match = _ONLY.match(item)
        if not match:
            raise ConfigError(f"--only {item!r}: expected KEY=VALUE, e.g. team=payments")
        wanted.setdefault(match.group(1), set()).add(match.group(2))

    def value(endpoint: Endpoint, key: str) -> str | None:
        if key == "name":
            return endpoint.name
        if key == "host":
            return endpoint.host
        return endpoint.label_map.get(key)

    chosen = [ep for ep in endpoints if all(value(ep, k) in values for k, values in wanted.items())]
    if only and not chosen:
        raise ConfigError(f"no endpoint matches --only {' '.join(only)}")
    return chosen


def parse_shard(text: str | None) -> Shard | None:
    return Shard.parse(text) if text is not None else None


def shard_grouping(grouping: Sequence[str], shard: Shard | None) -> tuple[str, ...]:
    """Each shard pushes under its own Pushgateway group: ``shard=I`` joins the
    grouping key, unless ``--grouping shard=I`` says so already. Any other
    value would let shards overwrite each other's group, so it is refused."""
    if shard is None:
        return tuple(grouping)
    given = [value for key, _, value in (g.partition("=") for g in grouping) if key == SHARD_LABEL]
    for value in given:
        if value != str(shard.index):
            raise ConfigError(
                f"--grouping {SHARD_LABEL}={value} contradicts --shard {shard}: each shard "
                f"pushes under {SHARD_LABEL}={shard.index} (leave --grouping {SHARD_LABEL} out)"
            )
    return tuple(grouping) if given else (*grouping, f"{SHARD_LABEL}={shard.index}")


def exit_status(results: Sequence[EndpointResult], fail_on: str) -> ExitStatus:
    if fail_on == "never":
        return ExitStatus.OK
    threshold = Severity(fail_on).rank
    worst = max((f.severity.rank for r in results for f in r.findings), default=-1)
    return ExitStatus.FINDINGS if worst >= threshold else ExitStatus.OK


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
                console=table.make_console(stderr),
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
    request: ScanRequest,
    outcome: ScanOutcome,
    now: datetime,
    scanned_at: datetime,
    jsonl: list[str],
) -> str:
    import io

    if request.format == "json":
        doc = jsonreport.report(
            outcome.results, scanned_at=scanned_at, as_of=now, interrupted=outcome.interrupted
        )
        return json.dumps(doc) + "\n"
    if request.format == "jsonl":
        summary = jsonreport.summary_line(outcome.results, scanned_at=scanned_at, as_of=now)
        summary["complete"] = not outcome.interrupted
        return "".join(line + "\n" for line in jsonl) + json.dumps(summary) + "\n"
    buffer = io.StringIO()
    table.render(
        outcome.results, table.make_console(buffer, color=False), interrupted=outcome.interrupted
    )
    return buffer.getvalue()


def _apply_state(
    path: str, outcome: ScanOutcome, scanned_at: datetime, stderr: TextIO
) -> ScanOutcome:
    """Compare with the previous scan's state and save the new one; an
    interrupted scan leaves the state file as it was (all or nothing)."""
    previous, warning = load_state(path)
    if warning:
        stderr.write(f"scan: warning: {warning}\n")
    state, results = advance(previous, outcome.results, scanned_at)
    if not outcome.interrupted:
        save_state(path, state)
    return replace(outcome, results=tuple(results))


def _job_exports(request: ScanRequest, shard: Shard | None) -> JobExports:
    serve_only = (
        ("--interval", request.interval),
        ("--retention", request.retention),
        ("--web-config", request.web_config),
        ("--log-format", request.log_format),
    )
    for flag, value in serve_only:
        if value is not None:
            raise ConfigError(f"{flag} needs --serve")
    grouping = request.grouping
    if request.push_gateway is not None:
        grouping = shard_grouping(grouping, shard)
    return JobExports.from_flags(
        textfile=request.textfile,
        push_gateway=request.push_gateway,
        push_job=request.push_job,
        grouping=grouping,
        environ=os.environ,
    )


def run_scan_command(request: ScanRequest, stdout: TextIO, stderr: TextIO) -> ExitStatus:
    if request.serve is not None:
        from scanner.serve import run_exporter

        return run_exporter(request, stderr)
    shard = parse_shard(request.shard)
    exports = _job_exports(request, shard)
    inventory = load_inventory(request.inventory)
    endpoints = select(inventory.endpoints, request.only)
    exports.check_labels(endpoints)  # before sharding: every shard refuses the same way
    if shard is not None:  # may leave none: an empty shard still exports its (empty) scan
        endpoints = shard.select(endpoints)
    now = parse_now(request.now)
    deadline = parse_duration(request.deadline, "--deadline") if request.deadline else None
    concurrency = request.concurrency or min(DEFAULT_CONCURRENCY, max(1, len(endpoints)))
    if request.retries < 0:
        raise ConfigError("--retries must be 0 or more")
    ensure_open_files(concurrency)
    stores = TrustStores()
    for endpoint in endpoints:
        stores.get(endpoint.trust)
    for store in stores.loaded():
        for warning in store.warnings:
            if "does not parse" in warning or "bad base64" in warning:
                stderr.write(f"scan: warning: {warning}\n")
    options = ScanOptions(concurrency=concurrency, deadline=deadline, retries=request.retries)
    jsonl: list[str] = []
    stream_to = stdout if request.format == "jsonl" and request.output is None else None
    progress = _Progress(len(endpoints), stderr, request.progress)
    sinks = [progress]
    if request.format == "jsonl":
        sinks.append(_jsonl_sink(jsonl, stream_to, now))  # type: ignore[arg-type]
    with progress:
        outcome = trio.run(
            lambda: run_scan(endpoints, now=now, options=options, stores=stores, sinks=sinks)
        )
    scanned_at = datetime.now(timezone.utc)
    if request.state:
        outcome = _apply_state(request.state, outcome, scanned_at, stderr)
    text = _render(request, outcome, now, scanned_at, jsonl)
    if request.json_copy:
        doc = jsonreport.report(
            outcome.results, scanned_at=scanned_at, as_of=now, interrupted=outcome.interrupted
        )
        write_atomic(request.json_copy, json.dumps(doc) + "\n")
    # An interrupted scan never replaces the last complete report (all or
    # nothing, like the metric exports): its partial report goes to stdout.
    output = request.output if not outcome.interrupted else None
    output_failed = False
    if output:
        try:
            write_atomic(output, text)
        except ExportError as exc:  # the scan is done: exit 3, as for the other exports
            stderr.write(f"scan: error: {exc}\n")
            output_failed = True
    elif request.format == "jsonl" and not request.output:
        summary = text.splitlines()[-1]
        stdout.write(summary + "\n")
    elif request.format == "table" and stdout.isatty():
        table.render(outcome.results, table.make_console(stdout), interrupted=outcome.interrupted)
    else:
        stdout.write(text)
    stdout.flush()
    if outcome.interrupted:
        stderr.write(
            f"scan: interrupted: {sum(1 for r in outcome.results if r.attempts)} of "
            f"{len(outcome.results)} endpoints scanned\n"
        )
        if request.output:
            stderr.write(f"scan: {request.output} left as it was (the last complete report)\n")
        return ExitStatus.INTERRUPTED
    if outcome.deadline_hit:
        stderr.write(
            "scan: warning: the global deadline passed; unfinished endpoints are not_scanned\n"
        )
    record = ScanRecord(
        outcome.results,
        now,
        scanned_at,
        outcome.duration,
        shards=shard.count if shard is not None else None,
    )
    if not exports.run(record, stderr) or output_failed:  # after the report: printed either way
        return ExitStatus.EXPORT_FAILED
    return exit_status(outcome.results, request.fail_on)
