"""The exporter's HTTP side: ``/metrics`` and a small ``/`` page, with optional
TLS and basic auth configured the way Prometheus exporters do it (a
``--web-config`` YAML file with ``tls_server_config`` and
``basic_auth_users`` holding bcrypt hashes).

Why a stdlib ``ThreadingHTTPServer`` in its own thread beside the trio loop,
and not an HTTP server inside trio:

- chain analysis and auditing are synchronous CPU work on the trio thread;
  scrapes answered by their own threads get their turn while a large scan
  keeps the loop busy, without adding checkpoints to the engine;
- prometheus_client's ``MetricsHandler`` already does content negotiation
  (OpenMetrics), gzip and ``name[]`` filtering: no hand-written HTTP parser
  faces the network;
- the only state the threads share is one reference to an immutable
  exposition, swapped atomically (`ExpositionCollector.publish`).

TLS handshakes run in each connection's thread (not in the accept loop), so
a client that stalls its handshake holds up nobody else; every connection
has a timeout.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import html
import logging
import socket
import ssl
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import bcrypt
import yaml
from prometheus_client.exposition import MetricsHandler

from scanner import __version__
from scanner.errors import ConfigError, WebConfigError
from scanner.exporters.prometheus import ExpositionCollector, registry_for

__all__ = [
    "CONNECTION_TIMEOUT_SECONDS",
    "BasicAuth",
    "MetricsServer",
    "TlsFiles",
    "WebConfig",
    "load_web_config",
    "log",
]

CONNECTION_TIMEOUT_SECONDS = 30.0  # TLS handshake, then each read of a request
_WEB_KEYS = ("tls_server_config", "basic_auth_users")
_TLS_KEYS = ("cert_file", "key_file")
_BCRYPT_PREFIXES = (b"$2a$", b"$2b$", b"$2y$")
_BCRYPT_MAX_PASSWORD = 72  # bytes: bcrypt ignores the rest; longer passwords are refused
_AUTH_CACHE_SIZE = 1024

log = logging.getLogger("pinaudit.web")


@dataclass(frozen=True)
class TlsFiles:
    cert_file: str
    key_file: str


@dataclass(frozen=True)
class WebConfig:
    """What a ``--web-config`` file asks for; empty means plain HTTP, no auth."""

    source: str
    tls: TlsFiles | None = None
    users: Mapping[str, bytes] = field(default_factory=dict, repr=False)

    def ssl_context(self) -> ssl.SSLContext | None:
        if self.tls is None:
            return None
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            ctx.load_cert_chain(self.tls.cert_file, self.tls.key_file)
        except (OSError, ssl.SSLError) as exc:
            detail = getattr(exc, "strerror", None) or getattr(exc, "reason", None) or str(exc)
            raise WebConfigError(
                f"{self.source}: tls_server_config: cannot load {self.tls.cert_file} / "
                f"{self.tls.key_file}: {detail}"
            ) from None
        return ctx


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
        section = _mapping(top["tls_server_config"], where)
        _unknown(section, _TLS_KEYS, where)
        files: list[str] = []
        for key in _TLS_KEYS:
            value = section.get(key)
            if not isinstance(value, str) or not value:
                raise WebConfigError(f"{where}: {key} is required (a file path)")
            files.append(str(source.parent / value))
        tls = TlsFiles(*files)
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


_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>pinaudit exporter</title></head>
<body><h1>pinaudit exporter</h1>
<p>TLS pin audit of the endpoints of an inventory, version {version}.</p>
<p><a href="/metrics">Metrics</a></p>
</body></html>
"""


class _Handler(MetricsHandler):
    server: _Server
    collector: ExpositionCollector
    timeout = CONNECTION_TIMEOUT_SECONDS
    server_version = f"pinaudit/{__version__}"
    sys_version = ""

    def do_GET(self) -> None:
        if not self._authorised():
            return
        path = urlsplit(self.path).path
        if path == "/metrics" and "name[]" not in self.path:
            content_type, compressed, body = self.collector.bake(
                self.headers.get("Accept"), self.headers.get("Accept-Encoding")
            )
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            if compressed:
                self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        elif path == "/metrics":
            super().do_GET()
        elif path == "/":
            self._send(
                200, "text/html; charset=utf-8", _PAGE.format(version=html.escape(__version__))
            )
        else:
            self._send(404, "text/plain; charset=utf-8", "not found: try /metrics\n")

    def _authorised(self) -> bool:
        auth = self.server.auth
        if auth is None or auth.check(self.headers.get("Authorization")):
            return True
        self.send_response(401)
        self.send_header("WWW-Authenticate", 'Basic realm="pinaudit"')
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        body = b"Unauthorized\n"
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        return False

    def _send(self, status: int, content_type: str, text: str) -> None:
        body = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug(format % args, extra={"fields": {"client": self.client_address[0]}})


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    auth: BasicAuth | None = None
    tls: ssl.SSLContext | None = None

    def finish_request(self, request: Any, client_address: Any) -> None:
        if self.tls is None:
            super().finish_request(request, client_address)
            return
        request.settimeout(CONNECTION_TIMEOUT_SECONDS)
        try:
            wrapped = self.tls.wrap_socket(request, server_side=True)
        except (OSError, ssl.SSLError) as exc:
            log.debug("TLS handshake failed", extra={"fields": {"error": str(exc)}})
            return
        try:
            super().finish_request(wrapped, client_address)
        finally:
            wrapped.close()


class _Server6(_Server):
    address_family = socket.AF_INET6


class MetricsServer:
    """Serves a collector over HTTP(S) from a background thread."""

    def __init__(
        self, host: str, port: int, collector: ExpositionCollector, web: WebConfig | None = None
    ) -> None:
        handler = type(
            "Handler", (_Handler,), {"registry": registry_for(collector), "collector": collector}
        )
        server_class = _Server6 if ":" in host else _Server
        try:
            self._server = server_class((host, port), handler)
        except OSError as exc:
            raise ConfigError(
                f"cannot listen on {_join(host, port)}: {exc.strerror or exc}"
            ) from None
        self._server.tls = web.ssl_context() if web is not None else None
        self._server.auth = BasicAuth(web.users) if web is not None and web.users else None
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        name = self._server.server_address
        return str(name[0]), int(name[1])

    @property
    def scheme(self) -> str:
        return "https" if self._server.tls is not None else "http"

    @property
    def authenticated(self) -> bool:
        return self._server.auth is not None

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="pinaudit-http", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.server_close()


def _join(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
