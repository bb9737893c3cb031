"""``scan --serve HOST:PORT``: the long-running exporter.

One trio loop runs the scans, one after the other (a scan starts
``--interval`` after the previous one started, or at once when it overran,
so scans never overlap); a thread serves ``/metrics`` (see
`scanner.exporters.web` for why). When a scan completes, its exposition is
built in full and published with one reference swap: a scrape sees the
previous complete scan or the new one, never a half one. An interrupted
scan publishes nothing.

Signals: SIGHUP reloads the inventory (a bad one is logged, the old one
stays in use and ``pinaudit_inventory_reload_success`` drops to 0; a good
one applies from the next scan); SIGTERM stops cleanly with exit status 0,
SIGINT with 130.
"""

from __future__ import annotations

import logging
import re
import signal
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TextIO

import trio

from scanner import __version__
from scanner.engine import DEFAULT_CONCURRENCY, ScanOptions, ensure_open_files, run_scan
from scanner.errors import ConfigError, ScannerError
from scanner.exporters.metrics import (
    DEFAULT_RETENTION,
    Exposition,
    History,
    ReloadState,
    ScanRecord,
    process_exposition,
    scan_exposition,
)
from scanner.exporters.prometheus import ExpositionCollector
from scanner.exporters.web import MetricsServer, WebConfig, load_web_config, parse_listen
from scanner.inventory import load_inventory, parse_duration
from scanner.logs import configure
from scanner.model import Endpoint
from scanner.results import ResultStatus
from scanner.scan import ScanRequest, parse_shard, select
from scanner.shard import Shard
from scanner.state import EndpointState, advance, load_state, save_state
from scanner.status import ExitStatus
from scanner.trust import TrustStores

DEFAULT_INTERVAL = "5m"
_SPAN = re.compile(r"\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*(ms|s|m|h|d)?\s*")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_span(text: str, flag: str) -> float:
    """Seconds of ``--interval`` / ``--retention``: a number of seconds, or
    500ms / 30s / 5m / 24h / 7d."""
    match = _SPAN.fullmatch(text)
    if not match:
        raise ConfigError(f"{flag} {text!r}: expected a duration such as 30s, 5m, 24h or 7d")
    return float(match.group(1)) * _UNITS[match.group(2)]


@dataclass(frozen=True)
class ExporterSettings:
    inventory: str
    only: tuple[str, ...]
    host: str
    port: int
    interval: float  # seconds between scan starts
    retention: timedelta
    deadline: float | None
    concurrency: int | None
    retries: int
    web: WebConfig | None
    log_format: str
    state: str | None = None  # --state: drift since the previous scan, across cycles
    shard: Shard | None = None  # --shard I/N: scan only what this shard owns

    @classmethod
    def from_request(cls, request: ScanRequest) -> ExporterSettings:
        assert request.serve is not None
        clashing = [
            flag
            for flag, value in (
                ("--output", request.output),
                ("--textfile", request.textfile),
                ("--push-gateway", request.push_gateway),
                ("--now", request.now),
            )
            if value is not None
        ]
        if clashing:
            raise ConfigError(f"{clashing[0]} cannot be combined with --serve")
        host, port = parse_listen(request.serve)
        interval = parse_span(request.interval or DEFAULT_INTERVAL, "--interval")
        if interval <= 0:
            raise ConfigError("--interval must be more than 0")
        retention = (
            timedelta(seconds=parse_span(request.retention, "--retention"))
            if request.retention is not None
            else DEFAULT_RETENTION
        )
        if request.retries < 0:
            raise ConfigError("--retries must be 0 or more")
        return cls(
            inventory=request.inventory,
            only=request.only,
            host=host,
            port=port,
            interval=interval,
            retention=retention,
            deadline=parse_duration(request.deadline, "--deadline") if request.deadline else None,
            concurrency=request.concurrency,
            retries=request.retries,
            web=load_web_config(request.web_config) if request.web_config else None,
            log_format=request.log_format or "auto",
            state=request.state,
            shard=parse_shard(request.shard),
        )


@dataclass(frozen=True)
class Loaded:
    """An inventory ready to scan: endpoints, their trust stores, the options."""

    endpoints: tuple[Endpoint, ...]
    stores: TrustStores
    options: ScanOptions


def load(settings: ExporterSettings) -> Loaded:
    """Load and check everything a scan needs; raises ScannerError, changes nothing."""
    inventory = load_inventory(settings.inventory)
    endpoints = tuple(select(inventory.endpoints, settings.only))
    if settings.shard is not None:
        endpoints = tuple(settings.shard.select(endpoints))
    concurrency = settings.concurrency or min(DEFAULT_CONCURRENCY, max(1, len(endpoints)))
    ensure_open_files(concurrency)
    stores = TrustStores()
    for endpoint in endpoints:
        stores.get(endpoint.trust)
    options = ScanOptions(
        concurrency=concurrency, deadline=settings.deadline, retries=settings.retries
    )
    return Loaded(endpoints, stores, options)


def _now() -> datetime:
    return datetime.now(timezone.utc)


class Exporter:
    """The scan loop and the state a scrape sees."""

    def __init__(self, settings: ExporterSettings, loaded: Loaded, log: logging.Logger) -> None:
        self.settings = settings
        self.loaded = loaded
        self.log = log
        self.collector = ExpositionCollector()
        self.history = History()
        self.scan_families = Exposition()
        self.reload = ReloadState(True, _now())
        self.stop_status = ExitStatus.OK
        self.state: dict[str, EndpointState] = {}
        if settings.state:
            self.state, warning = load_state(settings.state)
            if warning:
                self.log.warning(warning)
        self.publish()

    def publish(self) -> None:
        """Swap in what scrapes see: built completely first, then one assignment."""
        view = process_exposition(__version__, self.reload).merged(self.scan_families)
        self.collector.publish(view)

    def reload_inventory(self) -> None:
        try:
            loaded = load(self.settings)
        except ScannerError as exc:
            self.reload = ReloadState(False, _now())
            self.log.error(
                "inventory reload failed; still scanning the previous inventory",
                extra={"fields": {"inventory": self.settings.inventory, "error": str(exc)}},
            )
        else:
            self.loaded = loaded
            self.reload = ReloadState(True, _now())
            self.log.info(
                "inventory reloaded",
                extra={
                    "fields": {
                        "inventory": self.settings.inventory,
                        "endpoints": len(loaded.endpoints),
                    }
                },
            )
        self.publish()

    async def scan_once(self) -> bool:
        """One complete scan, published; False when it was interrupted (SIGINT)."""
        loaded = self.loaded
        as_of = _now()
        outcome = await run_scan(
            loaded.endpoints, now=as_of, options=loaded.options, stores=loaded.stores
        )
        if outcome.interrupted:
            return False
        finished = _now()
        results = outcome.results
        if self.settings.state:
            self.state, advanced = advance(self.state, results, finished)
            results = tuple(advanced)
            try:
                save_state(self.settings.state, self.state)
            except ScannerError as exc:
                self.log.error("cannot save the state file", extra={"fields": {"error": str(exc)}})
        shards = self.settings.shard.count if self.settings.shard is not None else None
        record = ScanRecord(
            results,
            as_of,
            finished,
            outcome.duration,
            shards=shards,
            interval=self.settings.interval,
        )
        self.scan_families, self.history = scan_exposition(
            record, history=self.history, retention=self.settings.retention
        )
        self.publish()
        counts = {status.value: 0 for status in ResultStatus}
        for result in results:
            counts[result.status.value] += 1
        self.log.info(
            "scan finished",
            extra={
                "fields": {
                    "endpoints": len(outcome.results),
                    **counts,
                    "duration_seconds": round(outcome.duration, 3),
                    "deadline_hit": outcome.deadline_hit,
                }
            },
        )
        return True

    async def scan_loop(self, scope: trio.CancelScope) -> None:
        while True:
            started = trio.current_time()
            if not await self.scan_once():
                self.stop_status = ExitStatus.INTERRUPTED
                scope.cancel()
                return
            await trio.sleep_until(started + self.settings.interval)

    async def run(self) -> None:
        with trio.open_signal_receiver(signal.SIGHUP, signal.SIGTERM, signal.SIGINT) as signals:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self.scan_loop, nursery.cancel_scope)
                async for signum in signals:
                    if signum == signal.SIGHUP:
                        self.log.info("SIGHUP: reloading the inventory")
                        self.reload_inventory()
                        continue
                    self.stop_status = (
                        ExitStatus.OK if signum == signal.SIGTERM else ExitStatus.INTERRUPTED
                    )
                    self.log.info(
                        "stopping", extra={"fields": {"signal": signal.Signals(signum).name}}
                    )
                    nursery.cancel_scope.cancel()
                    return


def run_exporter(request: ScanRequest, stderr: TextIO) -> ExitStatus:
    """Load, listen, then scan and serve until SIGTERM/SIGINT."""
    settings = ExporterSettings.from_request(request)
    loaded = load(settings)
    log = configure(stderr, settings.log_format)
    for store in loaded.stores.loaded():
        for warning in store.warnings:
            if "does not parse" in warning or "bad base64" in warning:  # as `scan` reports them
                log.warning("trust store", extra={"fields": {"warning": warning}})
    exporter = Exporter(settings, loaded, log)
    server = MetricsServer(settings.host, settings.port, exporter.collector, settings.web)
    host, port = server.address
    shown = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    server.start()
    log.info(
        "exporter listening",
        extra={
            "fields": {
                "address": shown,
                "url": f"{server.scheme}://{shown}/metrics",
                "tls": server.scheme == "https",
                "basic_auth": server.authenticated,
                "inventory": settings.inventory,
                "endpoints": len(loaded.endpoints),
                "interval_seconds": settings.interval,
                "version": __version__,
            }
        },
    )
    try:
        trio.run(exporter.run)
    finally:
        server.stop()
    log.info("exporter stopped", extra={"fields": {"status": int(exporter.stop_status)}})
    return exporter.stop_status
