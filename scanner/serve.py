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
import signal
from datetime import datetime, timezone
from typing import TextIO

import trio

from scanner import __version__
from scanner.engine import run_scan
from scanner.errors import ScannerError
from scanner.exporters.metrics import (
    Exposition,
    History,
    ReloadState,
    ScanRecord,
    process_exposition,
    scan_exposition,
)
from scanner.exporters.prometheus import ExpositionCollector
from scanner.exporters.web import MetricsServer, load_web_config
from scanner.logs import configure
from scanner.plan import ScanPlan, load_plan
from scanner.results import ResultStatus
from scanner.settings import ScanSettings
from scanner.state import EndpointState, advance, load_state, save_state
from scanner.status import ExitStatus

__all__ = ["Exporter", "run_exporter"]


def _now() -> datetime:
    return datetime.now(timezone.utc)


class Exporter:
    """The scan loop and the state a scrape sees."""

    def __init__(self, settings: ScanSettings, loaded: ScanPlan, log: logging.Logger) -> None:
        assert settings.exporter is not None
        self.settings = settings
        self.exporter = settings.exporter
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
            loaded = load_plan(self.settings)
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
        record = ScanRecord(
            results,
            as_of,
            finished,
            outcome.duration,
            shards=self.settings.shards,
            interval=self.exporter.interval,
        )
        self.scan_families, self.history = scan_exposition(
            record, history=self.history, retention=self.exporter.retention
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
            await trio.sleep_until(started + self.exporter.interval)

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


def run_exporter(settings: ScanSettings, stderr: TextIO) -> ExitStatus:
    """Load, listen, then scan and serve until SIGTERM/SIGINT."""
    exporter_settings = settings.exporter
    assert exporter_settings is not None
    web = load_web_config(exporter_settings.web_config) if exporter_settings.web_config else None
    loaded = load_plan(settings)
    log = configure(stderr, exporter_settings.log_format.value)
    for warning in loaded.warnings:  # as `scan` reports them
        log.warning("trust store", extra={"fields": {"warning": warning}})
    exporter = Exporter(settings, loaded, log)
    server = MetricsServer(exporter_settings.host, exporter_settings.port, exporter.collector, web)
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
                "interval_seconds": exporter_settings.interval,
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
