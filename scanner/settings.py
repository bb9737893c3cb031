"""Typed, validated settings of a run. Pure values.

The command line (``scanner.cli``) turns argv into these once, checking every
flag and its range there; everything below it (the scan plan, the engine, the
exporter loop, the exports) takes them as they are and never sees a flag.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from scanner.model import Endpoint, Severity
from scanner.shard import Shard

__all__ = [
    "DEFAULT_CONCURRENCY",
    "DEFAULT_INTERVAL_SECONDS",
    "DEFAULT_PUSH_JOB",
    "DEFAULT_RETENTION",
    "ExporterSettings",
    "FailOn",
    "JobExportSettings",
    "LogFormat",
    "LogLevel",
    "PushSettings",
    "ReportFormat",
    "ReportSettings",
    "ScanLimits",
    "ScanSettings",
    "Selector",
]

DEFAULT_CONCURRENCY = 200
DEFAULT_INTERVAL_SECONDS = 300.0
DEFAULT_RETENTION = timedelta(hours=24)
DEFAULT_PUSH_JOB = "pinaudit"


class ReportFormat(str, enum.Enum):
    TABLE = "table"  # for people, grouped by severity
    JSON = "json"  # one document
    JSONL = "jsonl"  # one line per endpoint as results arrive, then a summary line


class FailOn(str, enum.Enum):
    """The severity from which a finished scan exits 1."""

    CRITICAL = "critical"
    WARNING = "warning"
    NEVER = "never"

    @property
    def threshold(self) -> Severity | None:
        return None if self is FailOn.NEVER else Severity(self.value)


class LogFormat(str, enum.Enum):
    AUTO = "auto"  # text on a terminal, JSON otherwise
    JSON = "json"
    LOGFMT = "logfmt"  # as Prometheus and its exporters write it
    TEXT = "text"


class LogLevel(str, enum.Enum):
    DEBUG = "debug"
    INFO = "info"
    WARN = "warn"
    ERROR = "error"


@dataclass(frozen=True)
class Selector:
    """``--only KEY=VALUE`` filters: AND across keys, OR within one key. A key
    is an inventory label, or ``name`` / ``host``."""

    terms: tuple[tuple[str, frozenset[str]], ...] = ()

    @staticmethod
    def value(endpoint: Endpoint, key: str) -> str | None:
        if key == "name":
            return endpoint.name
        if key == "host":
            return endpoint.host
        return endpoint.label_map.get(key)

    def matches(self, endpoint: Endpoint) -> bool:
        return all(self.value(endpoint, key) in values for key, values in self.terms)

    def select(self, endpoints: Iterable[Endpoint]) -> list[Endpoint]:
        return [endpoint for endpoint in endpoints if self.matches(endpoint)]

    def __bool__(self) -> bool:
        return bool(self.terms)

    def __str__(self) -> str:
        return " ".join(f"--only {k}={v}" for k, values in self.terms for v in sorted(values))


@dataclass(frozen=True)
class ScanLimits:
    """How hard one scan works: handshakes in flight, the whole scan's deadline,
    retries of transient failures."""

    concurrency: int | None = None  # None: DEFAULT_CONCURRENCY, or fewer endpoints
    deadline: float | None = None  # seconds
    retries: int = 0
    processes: int | None = None  # --workers; None: the CPUs available (scanner.workers)

    def workers(self, endpoints: int) -> int:
        return self.concurrency or min(DEFAULT_CONCURRENCY, max(1, endpoints))


@dataclass(frozen=True)
class PushSettings:
    """Where and how a one-shot job pushes its metrics (a Pushgateway group)."""

    url: str  # http(s)://HOST[:PORT][/PATH], no trailing slash
    job: str = DEFAULT_PUSH_JOB
    grouping: tuple[tuple[str, str], ...] = ()
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    def describe(self) -> str:
        group = "".join(f"/{k}/{v}" for k, v in (("job", self.job), *self.grouping))
        return f"{self.url}/metrics{group}"


@dataclass(frozen=True)
class JobExportSettings:
    """The one-shot exports of a complete scan."""

    textfile: str | None = None
    push: PushSettings | None = None

    def __bool__(self) -> bool:
        return self.textfile is not None or self.push is not None


@dataclass(frozen=True)
class ReportSettings:
    format: ReportFormat = ReportFormat.TABLE
    output: str | None = None  # None: stdout
    progress: bool = True  # a bar on stderr, only when it is a terminal
    json_copy: str | None = None  # also write the JSON report here (the demo)


@dataclass(frozen=True)
class ExporterSettings:
    """The long-running exporter (``scan --serve``)."""

    host: str
    port: int
    interval: float = DEFAULT_INTERVAL_SECONDS  # seconds between the starts of two scans
    retention: timedelta = DEFAULT_RETENTION
    web_config: str | None = None
    log_format: LogFormat = LogFormat.AUTO
    log_level: LogLevel = LogLevel.INFO
    probe_config: str | None = None  # --probe.config: /probe modules and allow-list


@dataclass(frozen=True)
class ScanSettings:
    """One ``scan`` invocation, every flag checked."""

    inventory: str
    selector: Selector = Selector()
    shard: Shard | None = None
    now: datetime | None = None  # None: the clock at the start of each scan
    limits: ScanLimits = ScanLimits()
    state: str | None = None
    report: ReportSettings = ReportSettings()
    fail_on: FailOn = FailOn.CRITICAL
    exports: JobExportSettings = JobExportSettings()
    exporter: ExporterSettings | None = None  # --serve
    allow_empty: bool = False
    traceback: bool = False
    # --proxy-from-env: the proxy variables of the environment (https_proxy,
    # HTTPS_PROXY, all_proxy, ALL_PROXY, no_proxy, NO_PROXY), applied as curl
    # does to endpoints without a proxy key; None: not asked
    proxy_environment: tuple[tuple[str, str], ...] | None = None
    dns_server: tuple[str, int] | None = None  # --dns-server, for CAA lookups

    @property
    def shards(self) -> int | None:
        return self.shard.count if self.shard is not None else None
