"""``scan --serve HOST:PORT``: the long-running exporter.

One trio loop runs the scans, one after the other (a scan starts
``--interval`` after the previous one started, or at once when it overran,
so scans never overlap); a thread serves ``/metrics`` (see
`scanner.exporters.web` for why). When a scan completes, its exposition is
built in full and published with one reference swap: a scrape sees the
previous complete scan or the new one, never a half one. An interrupted
scan publishes nothing.

Signals: SIGHUP (or ``POST /-/reload``) reloads the inventory (a bad one is
logged, the old one stays in use and ``pinaudit_config_last_reload_successful``
drops to 0; a good one applies from the next scan); SIGTERM stops cleanly with
exit status 0, SIGINT with 130.

Lifecycle: a heartbeat task in the scan's trio loop stamps the time every
second. ``/-/healthy`` fails when that stamp is older than
`UNRESPONSIVE_SECONDS` (the loop is blocked: CPU-bound work that never
yields) or when the current scan has run past its bound (`stuck_after`:
``--deadline``, else two intervals, plus a grace), so a liveness probe
restarts an exporter whose scan loop is stuck; ``/-/ready`` answers 200 once
the first scan completed.
"""

from __future__ import annotations

import contextlib
import logging
import resource
import signal
import time
from datetime import datetime, timezone
from typing import TextIO

import trio
from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector

from scanner import __version__
from scanner.engine import FD_HEADROOM, ensure_open_files, open_descriptors, run_scan
from scanner.errors import ConfigError, ScannerError
from scanner.exporters.metrics import (
    BuildInfo,
    Exposition,
    History,
    ReloadState,
    ScanRecord,
    process_exposition,
    scan_exposition,
)
from scanner.exporters.prometheus import ExpositionCollector, build_info
from scanner.exporters.web import Limits, MetricsServer, load_web_config
from scanner.logs import configure
from scanner.plan import ScanPlan, load_plan
from scanner.results import ResultStatus
from scanner.settings import ScanSettings
from scanner.state import EndpointState, advance, load_state, save_state
from scanner.status import ExitStatus
from scanner.targets import Prober, load_probe_config

__all__ = ["HEARTBEAT_SECONDS", "UNRESPONSIVE_SECONDS", "Exporter", "run_exporter"]

HEARTBEAT_SECONDS = 1.0  # how often the scan loop stamps its heartbeat
UNRESPONSIVE_SECONDS = 30.0  # a heartbeat older than this: /-/healthy fails
STUCK_GRACE_SECONDS = 300.0  # on top of a scan's own bound


def _now() -> datetime:
    return datetime.now(timezone.utc)


def stuck_after(settings: ScanSettings) -> float:
    """How long one scan may run before /-/healthy calls the loop stuck: its
    --deadline, else two intervals (it would be stale by then anyway), plus a
    grace period."""
    assert settings.exporter is not None
    bound = settings.limits.deadline or 2 * settings.exporter.interval
    return bound + max(STUCK_GRACE_SECONDS, settings.exporter.interval)


class Exporter:
    """The scan loop, the state a scrape sees, and what the lifecycle endpoints
    report (`health`, `readiness`, `reload`: the web.Lifecycle protocol)."""

    def __init__(
        self,
        settings: ScanSettings,
        loaded: ScanPlan,
        log: logging.Logger,
        *,
        build: BuildInfo | None = None,
        unresponsive_after: float = UNRESPONSIVE_SECONDS,
        stuck_after_seconds: float | None = None,
    ) -> None:
        assert settings.exporter is not None
        self.settings = settings
        self.exporter = settings.exporter
        self.loaded = loaded
        self.log = log
        self.build = build if build is not None else BuildInfo(__version__)
        self.collector = ExpositionCollector()
        self.history = History()
        self.scan_families = Exposition()
        started = _now()
        self.reload_state = ReloadState(True, started, started)
        self.stop_status = ExitStatus.OK
        self.state: dict[str, EndpointState] = {}
        self.unresponsive_after = unresponsive_after
        self.stuck_after = (
            stuck_after_seconds if stuck_after_seconds is not None else stuck_after(settings)
        )
        # read by the HTTP thread: plain attributes, each assignment atomic
        self.heartbeat = time.monotonic()
        self.scan_started: float | None = None
        self.scans = 0
        self.token: trio.lowlevel.TrioToken | None = None
        if settings.state:
            self.state, warning = load_state(settings.state)
            if warning:
                self.log.warning(warning)
        self.publish()

    def publish(self) -> None:
        """Swap in what scrapes see: built completely first, then one assignment."""
        view = process_exposition(self.build, self.reload_state).merged(self.scan_families)
        self.collector.publish(view)

    # --- the lifecycle endpoints (HTTP thread) ------------------------------------

    def health(self) -> tuple[bool, str]:
        now = time.monotonic()
        silent = now - self.heartbeat
        if silent > self.unresponsive_after:
            return False, (
                f"unhealthy: the scan loop has not run for {silent:.0f} s "
                f"(limit {self.unresponsive_after:.0f} s)"
            )
        started = self.scan_started
        if started is not None and now - started > self.stuck_after:
            return False, (
                f"unhealthy: the current scan has run for {now - started:.0f} s "
                f"(limit {self.stuck_after:.0f} s)"
            )
        return True, "pinaudit exporter is healthy."

    def readiness(self) -> tuple[bool, str]:
        if self.scans == 0:
            return False, "not ready: the first scan has not completed yet"
        return True, "pinaudit exporter is ready."

    def reload(self) -> tuple[bool, str]:
        """POST /-/reload, from a worker thread: the scan loop applies it."""
        token = self.token
        if token is None:
            return False, "the scan loop is not running"
        try:
            return trio.from_thread.run_sync(self.reload_inventory, trio_token=token)
        except trio.RunFinishedError:
            return False, "the exporter is stopping"

    # --- the scan loop ----------------------------------------------------------------

    def reload_inventory(self) -> tuple[bool, str]:
        try:
            loaded = load_plan(self.settings)
        except ScannerError as exc:
            self.reload_state = ReloadState(False, _now(), self.reload_state.last_success)
            self.log.error(
                "inventory reload failed; still scanning the previous inventory",
                extra={"fields": {"inventory": self.settings.inventory, "error": str(exc)}},
            )
            self.publish()
            return False, f"failed to reload the inventory: {exc}"
        self.loaded = loaded
        at = _now()
        self.reload_state = ReloadState(True, at, at)
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
        return True, f"inventory reloaded: {len(loaded.endpoints)} endpoints"

    async def beat(self) -> None:
        while True:
            self.heartbeat = time.monotonic()
            await trio.sleep(HEARTBEAT_SECONDS)

    async def scan_once(self) -> bool:
        """One complete scan, published; False when it was interrupted (SIGINT)."""
        loaded = self.loaded
        as_of = _now()
        self.scan_started = time.monotonic()
        try:
            outcome = await run_scan(
                loaded.endpoints, now=as_of, options=loaded.options, stores=loaded.stores
            )
        finally:
            self.scan_started = None
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
        self.scans += 1
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
                self.token = trio.lowlevel.current_trio_token()
                nursery.start_soon(self.beat)
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


def http_limits(concurrency: int) -> Limits:
    """The HTTP side's connection cap, within the descriptors the scan leaves:
    the open-files limit is raised for both when the hard limit allows, and
    the cap shrinks to fit otherwise, so scrapes can never take the sockets
    the scan needs (a refused scrape is a scrape error; a starved probe would
    be a wrong `endpoint_up 0`)."""
    wanted = Limits().max_connections
    with contextlib.suppress(ConfigError):  # a lower hard limit: fit the cap into it
        ensure_open_files(concurrency + wanted)
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    left = soft - open_descriptors() - concurrency - FD_HEADROOM
    if left < 1:
        raise ConfigError(
            f"no open files left for the HTTP server beside --concurrency {concurrency} "
            f"(limit {soft}): raise the limit (ulimit -n) or lower --concurrency"
        )
    return Limits(max_connections=min(wanted, left))


def live_collectors() -> CollectorRegistry:
    """process_* (memory, CPU, open descriptors against their limit) and
    python_* (platform, garbage collector): read at every scrape."""
    registry = CollectorRegistry(auto_describe=True)
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry


def run_exporter(settings: ScanSettings, stderr: TextIO) -> ExitStatus:
    """Load, listen, then scan and serve until SIGTERM/SIGINT."""
    exporter_settings = settings.exporter
    assert exporter_settings is not None
    web = load_web_config(exporter_settings.web_config) if exporter_settings.web_config else None
    probes = (
        load_probe_config(exporter_settings.probe_config)
        if exporter_settings.probe_config
        else None
    )
    loaded = load_plan(settings)
    limits = http_limits(loaded.options.concurrency)
    log = configure(stderr, exporter_settings.log_format.value, exporter_settings.log_level.value)
    for warning in loaded.warnings:  # as `scan` reports them
        log.warning("trust store", extra={"fields": {"warning": warning}})
    build = build_info()
    exporter = Exporter(settings, loaded, log, build=build)
    server = MetricsServer(
        exporter_settings.host,
        exporter_settings.port,
        exporter.collector,
        web,
        lifecycle=exporter,
        live=live_collectors(),
        limits=limits,
        prober=Prober(probes) if probes is not None else None,
    )
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
                "max_connections": limits.max_connections,
                "probe_modules": sorted(probes.modules) if probes is not None else [],
                "version": build.version,
                "revision": build.revision,
            }
        },
    )
    try:
        trio.run(exporter.run)
    finally:
        server.stop()
    log.info("exporter stopped", extra={"fields": {"status": int(exporter.stop_status)}})
    return exporter.stop_status
