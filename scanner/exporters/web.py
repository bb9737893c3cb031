"""The exporter's HTTP side: ``/metrics``, the lifecycle endpoints
(``/-/healthy``, ``/-/ready``, ``POST /-/reload``) and a small ``/`` page,
with optional TLS, client certificates and basic auth configured the way
Prometheus exporters do it (a web-config YAML file in exporter-toolkit's
format: ``tls_server_config``, ``basic_auth_users`` with bcrypt hashes).

The server is h11 (python-hyper's HTTP/1.1 state machine: the maintained,
sans-I/O parser that hypercorn and httpcore build on) driven by trio in a
thread of its own, beside the scan's trio loop. Why not the alternatives:

- ``http.server`` (what this used to be): a thread and a descriptor per
  connection with no cap, a per-read timeout that a client trickling one byte
  at a time never trips, tracebacks on every reset connection;
- cheroot: a thread per active request (a slow client pins one) and no
  deadline for the whole request head; waitress: no TLS; hypercorn / uvicorn:
  ASGI servers with their own TLS setup (no certificate reload, no client
  certificate policy like exporter-toolkit's), no cap on open connections.

With trio every connection is a task, not a thread, and the limits are a few
lines each: at most ``max_connections`` open at once (more are closed at
accept: the exporter may refuse a scrape, but its descriptors stay free for
the scan), one deadline for the TLS handshake plus the request line and
headers (``head_timeout``, however slowly the bytes come), an idle timeout
between keep-alive requests, bounded heads and bodies, and a client that
resets its connection costs one structured log line.

The HTTP loop runs in its own thread so that a scrape never waits for the
scan's loop, and the only state shared with it is one reference to an
immutable exposition, swapped atomically (`ExpositionCollector.publish`),
plus the lifecycle callbacks (`Lifecycle`).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import gzip
import hashlib
import html
import logging
import os
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

import bcrypt
import h11
import trio
import yaml
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder, gzip_accepted
from prometheus_client.metrics_core import Metric

from scanner import __version__
from scanner.errors import ConfigError, WebConfigError
from scanner.exporters.prometheus import ExpositionCollector

_WEB_KEYS = ("tls_server_config", "basic_auth_users")
_TLS_KEYS = ("cert_file", "key_file", "client_ca_file", "client_auth_type", "min_version")
# exporter-toolkit's client_auth_type values that Python's TLS can enforce
CLIENT_AUTH = {
    "NoClientCert": ssl.CERT_NONE,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
# ... and those it cannot: OpenSSL as Python exposes it verifies every client
# certificate it asks for (and exporter-toolkit calls these insecure anyway)
_UNVERIFIED_CLIENT_AUTH = ("RequestClientCert", "RequireAnyClientCert", "RequireClientCert")
_MIN_VERSIONS = {"TLS12": ssl.TLSVersion.TLSv1_2, "TLS13": ssl.TLSVersion.TLSv1_3}
_BCRYPT_PREFIXES = (b"$2a$", b"$2b$", b"$2y$")
_BCRYPT_MAX_PASSWORD = 72  # bytes: bcrypt ignores the rest; longer passwords are refused
_AUTH_CACHE_SIZE = 1024
# Reached without basic auth (the kubelet's probes cannot send a password);
# they reveal nothing but "up" and "scanned at least once".
HEALTH_PATHS = ("/-/healthy", "/-/ready")
RELOAD_PATH = "/-/reload"
RELOAD_TIMEOUT_SECONDS = 120.0  # the scan loop applies a reload between its own steps
PROBE_TIMEOUT_SECONDS = 120.0  # a hard stop above the module's own timeout
TLS_CHECK_SECONDS = 1.0  # the certificate files are stat()ed at most this often

log = logging.getLogger("pinaudit.web")

__all__ = [
    "HEALTH_PATHS",
    "AlwaysUp",
    "BasicAuth",
    "Lifecycle",
    "Limits",
    "MetricsServer",
    "Prober",
    "Response",
    "TlsFiles",
    "TlsReloader",
    "WebConfig",
    "load_web_config",
    "log",
]


@dataclass(frozen=True)
class Limits:
    """What one client can take from the exporter's HTTP side."""

    max_connections: int = 32  # open at once; more are closed when accepted
    head_timeout: float = 10.0  # TLS handshake + request line + headers, in total
    idle_timeout: float = 15.0  # between two requests of a keep-alive connection
    send_timeout: float = 30.0  # to write one response to a slow reader
    max_head_bytes: int = 16 * 1024  # request line and headers
    max_body_bytes: int = 16 * 1024  # nothing here reads a body; bounded anyway
    max_requests: int = 1000  # per connection


@dataclass(frozen=True)
class TlsFiles:
    cert_file: str
    key_file: str
    client_ca_file: str | None = None
    client_auth_type: str = "NoClientCert"
    min_version: str = "TLS12"

    def paths(self) -> tuple[str, ...]:
        return (self.cert_file, self.key_file) + (
            (self.client_ca_file,) if self.client_ca_file else ()
        )


@dataclass(frozen=True)
class WebConfig:
    """What a web-config file asks for; empty means plain HTTP, no auth."""

    source: str
    tls: TlsFiles | None = None
    users: Mapping[str, bytes] = field(default_factory=dict, repr=False)

    def ssl_context(self) -> ssl.SSLContext | None:
        return build_ssl_context(self.tls, self.source) if self.tls is not None else None


def build_ssl_context(tls: TlsFiles, source: str) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = _MIN_VERSIONS[tls.min_version]
    try:
        ctx.load_cert_chain(tls.cert_file, tls.key_file)
    except (OSError, ssl.SSLError) as exc:
        raise WebConfigError(
            f"{source}: tls_server_config: cannot load {tls.cert_file} / "
            f"{tls.key_file}: {_detail(exc)}"
        ) from None
    ctx.verify_mode = CLIENT_AUTH[tls.client_auth_type]
    if tls.client_ca_file:
        try:
            ctx.load_verify_locations(cafile=tls.client_ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise WebConfigError(
                f"{source}: tls_server_config: client_ca_file {tls.client_ca_file}: {_detail(exc)}"
            ) from None
    return ctx


def _detail(exc: BaseException) -> str:
    detail = getattr(exc, "strerror", None) or getattr(exc, "reason", None) or str(exc)
    return str(detail)


def _mapping(value: object, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise WebConfigError(f"{where}: expected a mapping")
    return value


def _unknown(keys: Mapping[str, Any], allowed: tuple[str, ...], where: str) -> None:
    for key in keys:
        if key not in allowed:
            raise WebConfigError(
                f"{where}: {key!r} is not supported by pinaudit (supported: {', '.join(allowed)})"
            )


def _tls_files(section: dict[str, Any], base: Path, where: str) -> TlsFiles:
    _unknown(section, _TLS_KEYS, where)
    files: list[str] = []
    for key in ("cert_file", "key_file"):
        value = section.get(key)
        if not isinstance(value, str) or not value:
            raise WebConfigError(f"{where}: {key} is required (a file path)")
        files.append(str(base / value))
    ca = section.get("client_ca_file")
    if ca is not None and (not isinstance(ca, str) or not ca):
        raise WebConfigError(f"{where}: client_ca_file must be a file path")
    auth = section.get("client_auth_type") or "NoClientCert"
    if auth in _UNVERIFIED_CLIENT_AUTH:
        raise WebConfigError(
            f"{where}: client_auth_type {auth} (a client certificate taken without "
            "verifying it) is not supported by pinaudit: use RequireAndVerifyClientCert "
            "(or VerifyClientCertIfGiven) with client_ca_file"
        )
    if auth not in CLIENT_AUTH:
        raise WebConfigError(
            f"{where}: client_auth_type {auth!r}: expected one of {', '.join(CLIENT_AUTH)}"
        )
    if ca and auth == "NoClientCert":  # exporter-toolkit refuses this too
        raise WebConfigError(
            f"{where}: client_ca_file is set but client_auth_type is NoClientCert: set "
            "client_auth_type: RequireAndVerifyClientCert"
        )
    if auth != "NoClientCert" and not ca:
        raise WebConfigError(f"{where}: client_auth_type {auth} needs client_ca_file")
    version = section.get("min_version") or "TLS12"
    if version not in _MIN_VERSIONS:
        raise WebConfigError(
            f"{where}: min_version {version!r}: expected one of {', '.join(_MIN_VERSIONS)}"
        )
    return TlsFiles(files[0], files[1], str(base / ca) if ca else None, auth, version)


def load_web_config(path: str) -> WebConfig:
    """Read and check a web-config file; relative paths are relative to it."""
    source = Path(path)
    try:
        text = source.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        detail = exc.strerror if isinstance(exc, OSError) else str(exc)
        raise WebConfigError(f"{path}: cannot read web config: {detail}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else path
        problem = getattr(exc, "problem", None) or "not valid YAML"
        raise WebConfigError(f"{where}: {problem}") from None
    top = _mapping(data, path)
    _unknown(top, _WEB_KEYS, path)
    tls: TlsFiles | None = None
    if top.get("tls_server_config") is not None:
        where = f"{path}: tls_server_config"
        tls = _tls_files(_mapping(top["tls_server_config"], where), source.parent, where)
    users: dict[str, bytes] = {}
    where = f"{path}: basic_auth_users"
    for user, hashed in _mapping(top.get("basic_auth_users"), where).items():
        if not user or ":" in user:
            raise WebConfigError(f"{where}: {user!r}: a user name must be non-empty, without ':'")
        if not isinstance(hashed, str) or not _is_bcrypt(hashed.encode()):
            raise WebConfigError(f"{where}: {user}: expected a bcrypt hash ($2y$…, $2b$…)")
        users[user] = hashed.encode()
    config = WebConfig(path, tls, users)
    config.ssl_context()  # fail now, not at the first scrape
    return config


def _is_bcrypt(hashed: bytes) -> bool:
    if not hashed.startswith(_BCRYPT_PREFIXES):
        return False
    try:
        bcrypt.checkpw(b"", hashed)
    except ValueError:
        return False
    return True


class TlsReloader:
    """The serving TLS context, rebuilt when one of its files changes.

    cert-manager (and any renewal that rewrites the files, or swaps the
    symlinks of a Kubernetes Secret volume) replaces the certificate while
    the exporter runs; like exporter-toolkit, which reads the files at every
    handshake, new connections get the new certificate. The files are
    stat()ed at most once per `check_every` seconds; a change that does not
    load (a key written before its certificate) keeps the previous context
    and is logged once."""

    def __init__(
        self,
        tls: TlsFiles,
        source: str,
        *,
        check_every: float = TLS_CHECK_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._tls = tls
        self._source = source
        self._check_every = check_every
        self._clock = clock
        self._signature = self._stat()
        self._context = build_ssl_context(tls, source)
        self._checked = clock()
        self._failed: tuple[object, ...] | None = None

    def _stat(self) -> tuple[object, ...]:
        found: list[object] = []
        for path in self._tls.paths():
            try:
                st = os.stat(path)
            except OSError as exc:
                found.append(exc.errno)
            else:
                found.append((st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns))
        return tuple(found)

    def context(self) -> ssl.SSLContext:
        now = self._clock()
        if now - self._checked < self._check_every:
            return self._context
        self._checked = now
        signature = self._stat()
        if signature in (self._signature, self._failed):
            return self._context
        try:
            context = build_ssl_context(self._tls, self._source)
        except WebConfigError as exc:
            self._failed = signature
            log.error(
                "web TLS files changed but do not load; still serving the previous certificate",
                extra={"fields": {"error": str(exc)}},
            )
            return self._context
        self._context, self._signature, self._failed = context, signature, None
        log.info(
            "web TLS certificate reloaded", extra={"fields": {"cert_file": self._tls.cert_file}}
        )
        return context


class BasicAuth:
    """Checks ``Authorization: Basic`` against bcrypt hashes. bcrypt is slow by
    design, so a verified (user, password) is remembered as a SHA-256 digest;
    unknown users cost the same bcrypt check as known ones."""

    def __init__(self, users: Mapping[str, bytes]) -> None:
        if not users:
            raise ValueError("no users")
        self._users = dict(users)
        self._decoy = next(iter(self._users.values()))
        self._verified: set[bytes] = set()
        self._lock = threading.Lock()

    def check(self, header: str | None) -> bool:
        if not header:
            return False
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return False
        user, sep, password = decoded.partition(":")
        secret = password.encode()
        if not sep or len(secret) > _BCRYPT_MAX_PASSWORD:
            return False
        digest = hashlib.sha256(user.encode() + b"\0" + secret).digest()
        with self._lock:
            if digest in self._verified:
                return True
        hashed = self._users.get(user)
        matched = bcrypt.checkpw(secret, hashed if hashed is not None else self._decoy)
        if not (matched and hashed is not None):
            return False
        with self._lock:
            if len(self._verified) >= _AUTH_CACHE_SIZE:
                self._verified.clear()
            self._verified.add(digest)
        return True


class Lifecycle(Protocol):
    """What the exporter tells the lifecycle endpoints. `health` and
    `readiness` are called on the HTTP thread and must not block; `reload`
    is called from a worker thread and may block until the scan loop has
    applied it."""

    def health(self) -> tuple[bool, str]: ...

    def readiness(self) -> tuple[bool, str]: ...

    def reload(self) -> tuple[bool, str]: ...


class Prober(Protocol):
    """Answers ``/probe?target=…&module=…`` (blackbox_exporter's multi-target
    pattern) on the HTTP side's loop; `scrape_timeout` is Prometheus'
    X-Prometheus-Scrape-Timeout-Seconds when it sent one."""

    async def probe(
        self, params: Mapping[str, Sequence[str]], scrape_timeout: float | None
    ) -> Response: ...


class AlwaysUp:
    """The lifecycle of a server without a scan loop (tests, embedding)."""

    def health(self) -> tuple[bool, str]:
        return True, "healthy"

    def readiness(self) -> tuple[bool, str]:
        return True, "ready"

    def reload(self) -> tuple[bool, str]:
        return False, "nothing to reload"


_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>pinaudit exporter</title></head>
<body><h1>pinaudit exporter</h1>
<p>TLS pin audit of the endpoints of an inventory, version {version}.</p>
<ul>
<li><a href="/metrics">Metrics</a></li>
<li><a href="/-/healthy">Health</a> (the scan loop is alive) and
<a href="/-/ready">readiness</a> (a first scan completed)</li>
</ul>
</body></html>
"""


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: tuple[tuple[str, str], ...] = ()

    @classmethod
    def text(cls, status: int, text: str, *headers: tuple[str, str]) -> Response:
        return cls(status, text.encode(), headers=headers)


class _Snapshot:
    """What prometheus_client's encoders need of a registry."""

    def __init__(self, metrics: Iterable[Metric]) -> None:
        self._metrics = tuple(metrics)

    def collect(self) -> Iterator[Metric]:
        yield from self._metrics


def _restricted(metrics: Iterable[Metric], names: set[str]) -> Iterator[Metric]:
    """``name[]`` filtering: the families with a sample of one of `names`."""
    for metric in metrics:
        samples = [s for s in metric.samples if s.name in names]
        if samples:
            kept = Metric(metric.name, metric.documentation, metric.type, metric.unit)
            kept.samples = samples
            yield kept


class _MetricsBodies:
    """/metrics bodies: the scan's exposition (rendered and gzipped once per
    published scan, in ExpositionCollector.bake) followed by the live
    families of `live` (process, platform: new at every scrape). gzip
    members concatenate into one valid stream (RFC 1952 §2.2), so the cached
    part is never compressed twice."""

    def __init__(self, collector: ExpositionCollector, live: CollectorRegistry | None) -> None:
        self.collector = collector
        self.live = live
        self._gzipped: tuple[bytes | None, bytes] = (None, b"")

    def body(self, accept: str, accept_encoding: str, names: set[str]) -> tuple[str, bool, bytes]:
        encoder, content_type = choose_encoder(accept)
        compressed = gzip_accepted(accept_encoding)
        live = list(self.live.collect()) if self.live is not None else []
        if names:
            every = [*self.collector.collect(), *live]
            body = encoder(_Snapshot(_restricted(every, names)))
            return content_type, compressed, gzip.compress(body) if compressed else body
        _, _, scan = self.collector.bake(accept, None)
        tail = encoder(_Snapshot(live)) if live else b""
        if live and content_type.startswith("application/openmetrics-text"):
            scan = scan.removesuffix(b"# EOF\n")  # one EOF, at the very end
        if not compressed:
            return content_type, False, scan + tail
        cached, gzipped = self._gzipped
        if cached is not scan:
            gzipped = gzip.compress(scan)
            self._gzipped = (scan, gzipped)
        return content_type, True, gzipped + (gzip.compress(tail) if tail else b"")


def _join(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class _Limited:
    """Log a line at most once per `every` seconds (a flood of refused
    connections must not become a flood of log lines)."""

    def __init__(self, every: float = 60.0) -> None:
        self.every = every
        self.last = -every
        self.suppressed = 0

    def due(self) -> bool:
        now = time.monotonic()
        if now - self.last >= self.every:
            self.last = now
            return True
        self.suppressed += 1
        return False


class MetricsServer:
    """Serves a collector, the lifecycle endpoints and the landing page over
    HTTP(S) from a thread of its own running a trio loop."""

    def __init__(
        self,
        host: str,
        port: int,
        collector: ExpositionCollector,
        web: WebConfig | None = None,
        *,
        lifecycle: Lifecycle | None = None,
        live: CollectorRegistry | None = None,
        prober: Prober | None = None,
        limits: Limits = Limits(),
    ) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
            sock.listen(128)
        except OSError as exc:
            sock.close()
            raise ConfigError(
                f"cannot listen on {_join(host, port)}: {exc.strerror or exc}"
            ) from None
        self._sock = sock
        self._bodies = _MetricsBodies(collector, live)
        self._lifecycle: Lifecycle = lifecycle if lifecycle is not None else AlwaysUp()
        self._prober = prober
        self._limits = limits
        self._tls = (
            TlsReloader(web.tls, web.source) if web is not None and web.tls is not None else None
        )
        self._auth = BasicAuth(web.users) if web is not None and web.users else None
        self._thread: threading.Thread | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._scope: trio.CancelScope | None = None
        self._started = threading.Event()
        self._open = 0
        self._refused = _Limited()
        self._worker = trio.CapacityLimiter(2)  # bcrypt, rendering: off the HTTP loop

    @property
    def address(self) -> tuple[str, int]:
        name = self._sock.getsockname()
        return str(name[0]), int(name[1])

    @property
    def scheme(self) -> str:
        return "https" if self._tls is not None else "http"

    @property
    def authenticated(self) -> bool:
        return self._auth is not None

    def start(self) -> None:
        self._thread = threading.Thread(
            target=trio.run, args=(self._serve,), name="pinaudit-http", daemon=True
        )
        self._thread.start()
        self._started.wait(10)

    def stop(self) -> None:
        if self._thread is not None:
            if self._token is not None and self._scope is not None:
                with contextlib.suppress(trio.RunFinishedError):
                    trio.from_thread.run_sync(self._scope.cancel, trio_token=self._token)
            self._thread.join(10)
            self._thread = None
        self._sock.close()

    # --- the loop -------------------------------------------------------------------

    async def _serve(self) -> None:
        listener = trio.SocketListener(trio.socket.from_stdlib_socket(self._sock))
        async with trio.open_nursery() as nursery:
            self._scope = nursery.cancel_scope
            self._token = trio.lowlevel.current_trio_token()
            self._started.set()
            while True:
                try:
                    stream = await listener.accept()
                except OSError as exc:  # EMFILE and friends: the scan's descriptors come first
                    if self._refused.due():
                        log.warning(
                            "http: cannot accept a connection",
                            extra={"fields": {"error": _detail(exc)}},
                        )
                    await trio.sleep(0.1)
                    continue
                if self._open >= self._limits.max_connections:
                    with contextlib.suppress(OSError):  # reset: no TIME_WAIT left behind
                        stream.socket.setsockopt(
                            socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                        )
                    await stream.aclose()
                    if self._refused.due():
                        log.warning(
                            "http: connection limit reached; refusing connections",
                            extra={
                                "fields": {
                                    "max_connections": self._limits.max_connections,
                                    "refused_since_last_line": self._refused.suppressed + 1,
                                }
                            },
                        )
                        self._refused.suppressed = 0
                    continue
                self._open += 1
                nursery.start_soon(self._connection, stream)

    async def _connection(self, tcp: trio.SocketStream) -> None:
        try:
            peer = tcp.socket.getpeername()
            client = _join(str(peer[0]), int(peer[1]))
        except OSError:
            client = "?"
        stream: trio.abc.Stream = tcp
        phase = "tls handshake" if self._tls is not None else "request head"
        # one deadline for the handshake and the first request's line and headers
        deadline = trio.current_time() + self._limits.head_timeout
        try:
            if self._tls is not None:
                stream = trio.SSLStream(
                    tcp, self._tls.context(), server_side=True, https_compatible=True
                )
                with trio.move_on_at(deadline) as shaking:
                    await stream.do_handshake()
                if shaking.cancelled_caught:
                    raise _Timeout(phase)
            phase = "request"
            await self._requests(stream, client, deadline)
        except _Timeout as exc:
            log.info(
                "http: client too slow, connection closed",
                extra={"fields": {"client": client, "phase": exc.phase}},
            )
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            # a reset, a TLS alert, a client that went away: one line, no traceback
            cause = exc.__cause__ or exc
            log.info(
                "http: connection reset",
                extra={
                    "fields": {
                        "client": client,
                        "phase": phase,
                        "error": f"{type(cause).__name__}: {_detail(cause)}"[:200],
                    }
                },
            )
        finally:
            self._open -= 1
            with trio.move_on_after(1), contextlib.suppress(Exception):
                await stream.aclose()

    async def _requests(self, stream: trio.abc.Stream, client: str, deadline: float) -> None:
        """Serve requests until the client closes, misbehaves or goes idle.
        `deadline` bounds the first request's head and body; each later one
        must arrive within idle_timeout and be complete head_timeout after."""
        limits = self._limits
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=limits.max_head_bytes)
        for served in range(limits.max_requests):
            try:
                received: tuple[h11.Request, bytes] | None = None
                with trio.move_on_at(deadline):
                    received = await _read_request(conn, stream, limits.max_body_bytes)
                    if received is None:
                        return
                if received is None:  # the deadline passed first
                    waiting, _ = conn.trailing_data
                    if served and conn.their_state is h11.IDLE and not waiting:
                        return  # an idle keep-alive connection: closed quietly
                    raise _Timeout("request head")
            except h11.RemoteProtocolError as exc:
                await self._send_error(conn, stream, exc.error_status_hint, str(exc), client)
                return
            request, body = received
            response = await self._respond(request, body)
            with trio.move_on_after(limits.send_timeout) as sending:
                await _send(conn, stream, request, response)
            if sending.cancelled_caught:
                raise _Timeout("response")
            if conn.our_state is h11.MUST_CLOSE or conn.their_state is h11.MUST_CLOSE:
                return
            try:
                conn.start_next_cycle()
            except h11.LocalProtocolError:
                return
            deadline = trio.current_time() + limits.idle_timeout + limits.head_timeout

    async def _send_error(
        self, conn: h11.Connection, stream: trio.abc.Stream, status: int, why: str, client: str
    ) -> None:
        log.info(
            "http: bad request",
            extra={"fields": {"client": client, "status": status, "error": why}},
        )
        if conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
            body = f"{status} bad request\n".encode()
            with trio.move_on_after(self._limits.send_timeout):
                await _send(
                    conn,
                    stream,
                    None,
                    Response(status, body, headers=(("Connection", "close"),)),
                )

    # --- routes ---------------------------------------------------------------------

    async def _respond(self, request: h11.Request, body: bytes) -> Response:
        method = request.method.decode("ascii", "replace")
        target = request.target.decode("ascii", "replace")
        parts = urlsplit(target)
        path = parts.path
        headers: dict[str, str] = {}
        for name, value in request.headers:
            key = name.decode("ascii", "replace").lower()
            text = value.decode("latin-1")
            headers[key] = f"{headers[key]}, {text}" if key in headers else text
        if path in HEALTH_PATHS:
            if method not in ("GET", "HEAD"):
                return Response.text(
                    405, "Only GET or HEAD requests allowed.\n", ("Allow", "GET, HEAD")
                )
            ok, why = (
                self._lifecycle.health() if path == "/-/healthy" else self._lifecycle.readiness()
            )
            return Response.text(200 if ok else 503, f"{why}\n")
        if self._auth is not None and not await trio.to_thread.run_sync(
            self._auth.check, headers.get("authorization"), limiter=self._worker
        ):
            return Response.text(
                401, "Unauthorized\n", ("WWW-Authenticate", 'Basic realm="pinaudit"')
            )
        if path == RELOAD_PATH:
            if method not in ("POST", "PUT"):
                return Response.text(
                    405, "Only POST or PUT requests allowed.\n", ("Allow", "POST, PUT")
                )
            with trio.move_on_after(RELOAD_TIMEOUT_SECONDS):
                ok, why = await trio.to_thread.run_sync(
                    self._lifecycle.reload, abandon_on_cancel=True
                )
                return Response.text(200 if ok else 500, f"{why}\n")
            return Response.text(503, "the scan loop did not take the reload in time\n")
        if method not in ("GET", "HEAD"):
            return Response.text(
                405, "Only GET or HEAD requests allowed.\n", ("Allow", "GET, HEAD")
            )
        if path == "/metrics":
            names = set(parse_qs(parts.query).get("name[]", []))
            content_type, compressed, data = await trio.to_thread.run_sync(
                self._bodies.body,
                headers.get("accept", ""),
                headers.get("accept-encoding", ""),
                names,
                limiter=self._worker,
            )
            extra = (("Content-Encoding", "gzip"),) if compressed else ()
            return Response(200, data, content_type, extra)
        if path == "/probe":
            if self._prober is None:
                return Response.text(404, "no probe modules: start with --probe.config FILE\n")
            try:
                timeout: float | None = float(headers["x-prometheus-scrape-timeout-seconds"])
            except (KeyError, ValueError):
                timeout = None
            with trio.move_on_after(PROBE_TIMEOUT_SECONDS):
                return await self._prober.probe(parse_qs(parts.query), timeout)
            return Response.text(504, "the probe did not finish in time\n")
        if path == "/":
            page = _PAGE.format(version=html.escape(__version__))
            return Response(200, page.encode(), "text/html; charset=utf-8")
        return Response.text(404, "not found: try /metrics\n")


class _Timeout(Exception):
    def __init__(self, phase: str) -> None:
        super().__init__(phase)
        self.phase = phase


async def _next_event(conn: h11.Connection, stream: trio.abc.Stream) -> h11.Event:
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            if conn.they_are_waiting_for_100_continue:
                raise h11.RemoteProtocolError("Expect: 100-continue is not supported", 417)
            conn.receive_data(bytes(await stream.receive_some(8192)))
            continue
        if not isinstance(event, h11.Event):  # PAUSED: a request pipelined behind another
            raise h11.RemoteProtocolError("pipelined requests are not supported", 400)
        return event


async def _read_request(
    conn: h11.Connection, stream: trio.abc.Stream, limit: int
) -> tuple[h11.Request, bytes] | None:
    """The next request and its body; None when the client closed cleanly."""
    event = await _next_event(conn, stream)
    if isinstance(event, h11.ConnectionClosed):
        return None
    if not isinstance(event, h11.Request):
        raise h11.RemoteProtocolError(f"unexpected {type(event).__name__}", 400)
    return event, await _read_body(conn, stream, limit)


async def _read_body(conn: h11.Connection, stream: trio.abc.Stream, limit: int) -> bytes:
    data = b""
    while True:
        event = await _next_event(conn, stream)
        if isinstance(event, h11.Data):
            data += event.data
            if len(data) > limit:
                raise h11.RemoteProtocolError("request body too large", 413)
        elif isinstance(event, h11.EndOfMessage):
            return data
        elif isinstance(event, h11.ConnectionClosed):
            raise h11.RemoteProtocolError("connection closed in the request body", 400)


async def _send(
    conn: h11.Connection,
    stream: trio.abc.Stream,
    request: h11.Request | None,
    response: Response,
) -> None:
    head = request is not None and request.method == b"HEAD"
    headers = [
        ("Content-Type", response.content_type),
        ("Content-Length", str(len(response.body))),
        ("Server", f"pinaudit/{__version__}"),
        *response.headers,
    ]
    await stream.send_all(conn.send(h11.Response(status_code=response.status, headers=headers)))
    if response.body and not head:
        await stream.send_all(conn.send(h11.Data(data=response.body)))
    await stream.send_all(conn.send(h11.EndOfMessage()))
