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
import re
import time
import urllib.error
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO
from urllib.parse import urlsplit

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import (
    basic_auth_handler,
    choose_encoder,
    gzip_accepted,
    push_to_gateway,
)
from prometheus_client.metrics_core import GaugeMetricFamily, Metric

from scanner import __version__
from scanner.errors import ConfigError, ExportError, PushError
from scanner.exporters.files import write_atomic
from scanner.exporters.metrics import Exposition, ScanRecord, job_exposition, own_label_names
from scanner.inventory import RESERVED_LABELS
from scanner.model import Endpoint

PUSH_USERNAME_ENV = "PINAUDIT_PUSH_USERNAME"
PUSH_PASSWORD_ENV = "PINAUDIT_PUSH_PASSWORD"
DEFAULT_PUSH_JOB = "pinaudit"
PUSH_ATTEMPTS = 3  # one push and two retries
PUSH_BACKOFF_SECONDS = 0.5  # before the first retry, doubled after each
PUSH_TIMEOUT_SECONDS = 10.0  # per attempt
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


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


@dataclass(frozen=True)
class PushTarget:
    url: str
    job: str = DEFAULT_PUSH_JOB
    grouping: tuple[tuple[str, str], ...] = ()
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    attempts: int = PUSH_ATTEMPTS
    backoff: float = PUSH_BACKOFF_SECONDS
    timeout: float = PUSH_TIMEOUT_SECONDS

    def describe(self) -> str:
        group = "".join(f"/{k}/{v}" for k, v in (("job", self.job), *self.grouping))
        return f"{self.url}/metrics{group}"


def parse_push_target(
    url: str, job: str | None, grouping: Sequence[str], environ: Mapping[str, str]
) -> PushTarget:
    """Check ``--push-gateway``, ``--push-job`` and ``--grouping``, and take basic
    auth credentials from the environment (never from the command line)."""
    normalised = url if "://" in url else f"http://{url}"
    parts = urlsplit(normalised)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"--push-gateway {url!r}: expected http(s)://HOST[:PORT][/PATH]")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ConfigError(
            f"--push-gateway {url!r}: no query, fragment or credentials in the URL "
            f"(set {PUSH_USERNAME_ENV} and {PUSH_PASSWORD_ENV} for basic auth)"
        )
    job = DEFAULT_PUSH_JOB if job is None else job
    if not job:
        raise ConfigError("--push-job must not be empty")
    pairs: list[tuple[str, str]] = []
    for item in grouping:
        key, sep, value = item.partition("=")
        if not sep or not _LABEL_NAME.fullmatch(key) or key.startswith("__"):
            raise ConfigError(f"--grouping {item!r}: expected KEY=VALUE with KEY a label name")
        if key == "job":
            raise ConfigError("--grouping job=…: the job is set with --push-job")
        if key in own_label_names() | RESERVED_LABELS:
            raise ConfigError(f"--grouping {key}=…: {key!r} is a label pinaudit sets itself")
        if any(key == k for k, _ in pairs):
            raise ConfigError(f"--grouping {key}=… given twice")
        pairs.append((key, value))
    username = environ.get(PUSH_USERNAME_ENV)
    password = environ.get(PUSH_PASSWORD_ENV)
    if (username is None) != (password is None):
        raise ConfigError(
            f"set both {PUSH_USERNAME_ENV} and {PUSH_PASSWORD_ENV} for Pushgateway basic auth, "
            "or neither"
        )
    return PushTarget(
        url=normalised.rstrip("/"),
        job=job,
        grouping=tuple(pairs),
        username=username,
        password=password,
    )


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
    target: PushTarget,
    exposition: Exposition,
    *,
    sleep: Callable[[float], None] = time.sleep,
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

    pause = target.backoff
    for attempt in range(1, target.attempts + 1):
        try:
            push_to_gateway(
                target.url,
                job=target.job,
                registry=registry,
                grouping_key=dict(target.grouping),
                timeout=target.timeout,
                handler=handler,
            )
            return
        except (OSError, ValueError) as exc:  # URLError and HTTPError are OSErrors
            if attempt == target.attempts or not _retryable(exc):
                tries = f" after {attempt} attempts" if attempt > 1 else ""
                raise PushError(
                    f"push to {target.describe()} failed{tries}: {_reason(exc)}"
                ) from None
        sleep(pause)
        pause *= 2


# --- the one-shot job exports of `scan` ---------------------------------------


@dataclass(frozen=True)
class JobExports:
    """``--textfile`` and ``--push-gateway`` of one `scan` run."""

    textfile: str | None = None
    push: PushTarget | None = None

    @property
    def any(self) -> bool:
        return self.textfile is not None or self.push is not None

    @classmethod
    def from_flags(
        cls,
        *,
        textfile: str | None,
        push_gateway: str | None,
        push_job: str | None,
        grouping: Sequence[str],
        environ: Mapping[str, str],
    ) -> JobExports:
        """Validated before anything is scanned: a bad flag exits 2."""
        if push_gateway is None and (push_job is not None or grouping):
            raise ConfigError("--push-job and --grouping need --push-gateway")
        if textfile is not None:
            parent = Path(textfile).parent
            if not parent.is_dir():
                raise ConfigError(f"--textfile {textfile}: directory {parent} does not exist")
        target = (
            parse_push_target(push_gateway, push_job, grouping, environ)
            if push_gateway is not None
            else None
        )
        return cls(textfile=textfile, push=target)

    def check_labels(self, endpoints: Sequence[Endpoint]) -> None:
        """A grouping label that an inventory label also names would clash in
        the Pushgateway (it refuses such pushes)."""
        if self.push is None:
            return
        inventory_keys = {key for ep in endpoints for key, _ in ep.labels}
        for key, _ in self.push.grouping:
            if key in inventory_keys:
                raise ConfigError(f"--grouping {key}=…: {key!r} is also an inventory label")

    def run(
        self,
        scan: ScanRecord,
        stderr: TextIO,
        *,
        prog: str = "scan",
        sleep: Callable[[float], None] = time.sleep,
    ) -> bool:
        """Export a complete scan; report each failure on one line. True when all
        succeeded."""
        if not self.any:
            return True
        exposition = job_exposition(scan, __version__)
        ok = True
        if self.textfile is not None:
            try:
                write_textfile(self.textfile, exposition)
            except ExportError as exc:
                stderr.write(f"{prog}: error: --textfile {exc}\n")
                ok = False
        if self.push is not None:
            try:
                push(self.push, exposition, sleep=sleep)
            except ExportError as exc:
                stderr.write(f"{prog}: error: {exc}\n")
                ok = False
        return ok
