"""prometheus_client wiring of the metric contract: a collector that serves
the last published `Exposition`, and the two one-shot job exports, the
node_exporter textfile and the Pushgateway.

Thin on purpose: every sample and value is decided by the pure
`scanner.exporters.metrics`; this module only hands it to prometheus_client
and does the blocking I/O. Exports run after ``trio.run`` has returned, never
inside the event loop.
"""

from __future__ import annotations

import gzip
import os
import platform
import time
import urllib.error
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TextIO

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import (
    basic_auth_handler,
    choose_encoder,
    gzip_accepted,
    push_to_gateway,
)
from prometheus_client.metrics_core import GaugeMetricFamily, Metric

from scanner import __version__
from scanner.errors import ExportError, PushError
from scanner.exporters.files import write_atomic
from scanner.exporters.metrics import BuildInfo, Exposition, ScanRecord, job_exposition
from scanner.settings import JobExportSettings, PushSettings

__all__ = [
    "PUSH_ATTEMPTS",
    "PUSH_BACKOFF_SECONDS",
    "PUSH_TIMEOUT_SECONDS",
    "REVISION_ENV",
    "ExpositionCollector",
    "build_info",
    "push",
    "registry_for",
    "render_text",
    "run_job_exports",
    "write_textfile",
]

PUSH_ATTEMPTS = 3  # one push and two retries
PUSH_BACKOFF_SECONDS = 0.5  # before the first retry, doubled after each
PUSH_TIMEOUT_SECONDS = 10.0  # per attempt


class ExpositionCollector:
    """A prometheus_client collector over an immutable `Exposition`.

    `publish` builds the prometheus_client families once and swaps them in,
    with the exposition, as one tuple in one reference assignment; `collect`
    reads that reference once. A scrape therefore sees one complete
    exposition, never parts of two (and the families are never mutated after
    publication, so scrapes in several threads share them safely)."""

    def __init__(self, exposition: Exposition | None = None) -> None:
        self._current: tuple[Exposition, tuple[Metric, ...]] = (Exposition(), ())
        # Rendered bodies of the current snapshot, per (content type, gzip): scrapes
        # between two scans share one rendering instead of each taking the GIL
        # from the scan loop to render the same text again.
        self._baked: tuple[object, dict[tuple[str, bool], bytes]] = (None, {})
        self.publish(exposition if exposition is not None else Exposition())

    @property
    def exposition(self) -> Exposition:
        return self._current[0]

    def publish(self, exposition: Exposition) -> None:
        metrics = []
        for family in exposition.families:
            metric = GaugeMetricFamily(family.name, family.help, labels=family.label_names)
            for values, value in family.samples:
                metric.add_metric(values, value)
            metrics.append(metric)
        self._current = (exposition, tuple(metrics))

    def describe(self) -> Iterable[Metric]:
        return ()  # names change with the inventory: nothing to reserve up front

    def collect(self) -> Iterator[Metric]:
        _, metrics = self._current  # read once
        yield from metrics

    def bake(self, accept: str | None, accept_encoding: str | None) -> tuple[str, bool, bytes]:
        """(content type, gzipped, body) of the current snapshot for a scrape's
        Accept headers, rendered once per snapshot and format."""
        current = self._current  # read once: body and snapshot always match
        encoder, content_type = choose_encoder(accept or "")
        compressed = gzip_accepted(accept_encoding or "")
        owner, bodies = self._baked
        if owner is not current:
            bodies = {}
            self._baked = (current, bodies)
        body = bodies.get((content_type, compressed))
        if body is None:
            body = encoder(_Snapshot(current[1]))
            if compressed:
                body = gzip.compress(body)
            bodies[(content_type, compressed)] = body
        return content_type, compressed, body


class _Snapshot:
    """What the encoders need of a registry: the metrics of one snapshot."""

    def __init__(self, metrics: tuple[Metric, ...]) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        yield from self._metrics


def registry_for(collector: ExpositionCollector) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return registry


def render_text(exposition: Exposition) -> bytes:
    """The Prometheus text format (0.0.4) of an exposition."""
    return generate_latest(registry_for(ExpositionCollector(exposition)))


def write_textfile(path: str, exposition: Exposition) -> None:
    """node_exporter textfile-collector output, written atomically (temporary
    file beside it, fsync, rename): a reader sees the old file or the new one."""
    write_atomic(path, render_text(exposition))


# --- Pushgateway ------------------------------------------------------------


def _reason(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        inner = exc.reason
        if isinstance(inner, OSError) and inner.strerror:
            return inner.strerror.lower()
        return str(inner)
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return str(exc) or type(exc).__name__


def _retryable(exc: BaseException) -> bool:
    """Connection problems and server errors are retried; a 4xx will not change."""
    if isinstance(exc, urllib.error.HTTPError):
        return exc.code >= 500 or exc.code == 429
    return not isinstance(exc, ValueError)  # a malformed URL will not get better


def push(
    target: PushSettings,
    exposition: Exposition,
    *,
    sleep: Callable[[float], None] = time.sleep,
    attempts: int = PUSH_ATTEMPTS,
    backoff: float = PUSH_BACKOFF_SECONDS,
    timeout: float = PUSH_TIMEOUT_SECONDS,
) -> None:
    """PUT the exposition as the target's group, replacing every metric the
    group held (an endpoint removed from the inventory disappears). Retries
    connection failures and 5xx; raises PushError when every attempt failed."""
    registry = registry_for(ExpositionCollector(exposition))

    def handler(
        url: str, method: str, timeout: float | None, headers: list[tuple[str, str]], data: bytes
    ) -> Callable[[], None]:
        return basic_auth_handler(
            url, method, timeout, headers, data, target.username, target.password
        )

    pause = backoff
    for attempt in range(1, attempts + 1):
        try:
            push_to_gateway(
                target.url,
                job=target.job,
                registry=registry,
                grouping_key=dict(target.grouping),
                timeout=timeout,
                handler=handler,
            )
            return
        except (OSError, ValueError) as exc:  # URLError and HTTPError are OSErrors
            if attempt == attempts or not _retryable(exc):
                tries = f" after {attempt} attempts" if attempt > 1 else ""
                raise PushError(
                    f"push to {target.describe()} failed{tries}: {_reason(exc)}"
                ) from None
        sleep(pause)
        pause *= 2


REVISION_ENV = "PINAUDIT_REVISION"  # set by the image build (deploy/Dockerfile ARG REVISION)


def build_info(environ: Mapping[str, str] | None = None) -> BuildInfo:
    """pinaudit_build_info's labels: the version, the source revision the image
    was built from (unknown elsewhere), the Python version running it."""
    env = os.environ if environ is None else environ
    revision = env.get(REVISION_ENV, "").strip()[:64] or "unknown"
    return BuildInfo(__version__, revision, platform.python_version())


# --- the one-shot job exports of `scan` ---------------------------------------


def run_job_exports(
    exports: JobExportSettings,
    scan: ScanRecord,
    stderr: TextIO,
    *,
    prog: str = "scan",
    sleep: Callable[[float], None] = time.sleep,
) -> bool:
    """Export a complete scan (textfile, Pushgateway); report each failure on
    one line. True when all succeeded."""
    if not exports:
        return True
    exposition = job_exposition(scan, build_info())
    ok = True
    if exports.textfile is not None:
        try:
            write_textfile(exports.textfile, exposition)
        except ExportError as exc:
            stderr.write(f"{prog}: error: --textfile {exc}\n")
            ok = False
    if exports.push is not None:
        try:
            push(exports.push, exposition, sleep=sleep)
        except ExportError as exc:
            stderr.write(f"{prog}: error: {exc}\n")
            ok = False
    return ok
