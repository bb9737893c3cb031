"""Simulated fleet: trio TLS servers listening on many loopback (address, port) pairs.

Each `Site` is one listener with one `Behaviour`. ``tls`` sites serve a
configured chain, byte for byte and in the configured order (OpenSSL sends the
leaf, then the other certificates of the chain file in file order, without
rebuilding or reordering), optionally a different chain per SNI name. The
other behaviours model broken endpoints: silent, tarpit, reset, plain HTTP,
immediate close, and below TLS (hand-built records, `scanner.fleet.faults`):
endless data, a close mid-handshake, an alert, a Certificate message whose
DER is garbage or truncated, and a blackhole that never completes a connect.

Thousands of endpoints fit in one process by binding many 127.x.y.z addresses
(any 127/8 address is local on Linux without configuration).

Used in-process by the tests (``await nursery.start(serve_sites, sites)``) and
as a separate process by the demo and the benchmarks
(``python -m scanner.fleet.server --config fleet.json``, see `FleetProcess`).
"""

from __future__ import annotations

import argparse
import contextlib
import enum
import hashlib
import json
import os
import resource
import select
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TypeVar

import trio

from scanner.fleet import faults
from scanner.fleet.pki import Issued

__all__ = [
    "CONNECTION_LIFETIME_SECONDS",
    "HANDSHAKE_SECONDS",
    "HTTP_200",
    "HTTP_400",
    "LISTEN_BACKLOG",
    "MAX_READS",
    "READY_TIMEOUT_SECONDS",
    "READ_SECONDS",
    "TARPIT_HEADER",
    "TARPIT_MAX_BYTES",
    "Behaviour",
    "Credential",
    "FleetProcess",
    "Handler",
    "Site",
    "TlsConfig",
    "load_config",
    "main",
    "raise_nofile_limit",
    "serve_sites",
    "write_config",
]

# Every connection is bounded: no simulated server holds a client forever.
CONNECTION_LIFETIME_SECONDS = 120.0
HANDSHAKE_SECONDS = 10.0
READ_SECONDS = 10.0
TARPIT_MAX_BYTES = 120  # one per second
MAX_READS = 64  # receive_some calls while draining a connection
LISTEN_BACKLOG = 1024
READY_TIMEOUT_SECONDS = 30.0

HTTP_400 = (
    b"HTTP/1.1 400 Bad Request\r\n"
    b"Content-Type: text/plain\r\n"
    b"Content-Length: 12\r\n"
    b"Connection: close\r\n\r\n"
    b"Bad Request\n"
)
HTTP_200 = (
    b"HTTP/1.1 200 OK\r\n"
    b"Content-Type: text/plain\r\n"
    b"Content-Length: 15\r\n"
    b"Connection: close\r\n\r\n"
    b"pinaudit fleet\n"
)
# A TLS handshake record header announcing 16 KiB: a client waits for the body.
TARPIT_HEADER = b"\x16\x03\x03\x40\x00"


class Behaviour(str, enum.Enum):
    """What a listener does with each connection."""

    TLS = "tls"  # complete a handshake serving the configured chain
    SILENT = "silent"  # accept, read, never answer
    TARPIT = "tarpit"  # a TLS record header, then one byte of garbage per second
    RESET = "reset"  # read the ClientHello, then reset (SO_LINGER 0)
    HTTP = "http"  # read the ClientHello, answer a plain HTTP 400, close
    CLOSE = "close"  # close (FIN) right after accept, without answering
    # Below TLS, hand-built records (scanner/fleet/faults.py):
    ENDLESS = "endless"  # an endless stream of HelloRequest records, never a ServerHello
    MIDCLOSE = "midclose"  # ServerHello, half a Certificate message, then FIN
    ALERT = "alert"  # a fatal handshake_failure alert instead of a ServerHello
    GARBAGE_CERT = "garbagecert"  # a Certificate message whose certificate is not DER
    TRUNCATED_CERT = "truncatedcert"  # ... whose certificate DER is cut in half
    BLACKHOLE = "blackhole"  # never accept, accept queue kept full: SYNs are dropped


@dataclass(frozen=True)
class Credential:
    """A private key and the chain to serve: the leaf first, then the rest in
    the order they are to be sent (any order, any extra certificates)."""

    chain_pem: bytes
    key_pem: bytes

    @classmethod
    def of(cls, leaf: Issued, *chain: Issued) -> Credential:
        return cls(b"".join(c.pem for c in (leaf, *chain)), leaf.key_pem())


@dataclass(frozen=True)
class TlsConfig:
    """How a ``tls`` site handshakes. Hashable: one server context per distinct value."""

    credential: Credential  # served when SNI is absent or names no entry of `sni`
    sni: tuple[tuple[str, Credential], ...] = ()  # (server name, credential)
    sni_strict: bool = False  # unknown SNI names get an unrecognized_name alert
    min_version: ssl.TLSVersion | None = None
    max_version: ssl.TLSVersion | None = None
    alpn: tuple[str, ...] = ()  # protocols the server accepts; () = no ALPN
    ciphers: str | None = None  # OpenSSL cipher string for TLS <= 1.2; None = default
    client_ca: bytes | None = None  # PEM: demand a client certificate issued by these CAs


@dataclass(frozen=True)
class Site:
    """One listener. Port 0 picks a free port (see `serve_sites`)."""

    address: str
    port: int
    behaviour: Behaviour = Behaviour.TLS
    tls: TlsConfig | None = field(default=None)

    def __post_init__(self) -> None:
        if self.behaviour is Behaviour.TLS and self.tls is None:
            raise ValueError(f"{self.address}:{self.port}: a tls site needs a TlsConfig")


# --------------------------------------------------------------------------- contexts


def raise_nofile_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit; return the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class _ContextCache:
    """Server contexts, one per distinct TlsConfig (plus one per SNI entry), built eagerly
    so the PEM files they are loaded from can be deleted before serving starts."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._by_config: dict[TlsConfig, ssl.SSLContext] = {}

    def get(self, config: TlsConfig) -> ssl.SSLContext:
        if config not in self._by_config:
            self._by_config[config] = self._build(config)
        return self._by_config[config]

    def _build(self, config: TlsConfig) -> ssl.SSLContext:
        ctx = self._plain(config, config.credential)
        if config.sni or config.sni_strict:
            by_name = {name.lower(): self._plain(config, cred) for name, cred in config.sni}
            ctx.sni_callback = _sni_switch(by_name, strict=config.sni_strict)
        return ctx

    def _plain(self, config: TlsConfig, credential: Credential) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        # No session tickets: the fleet handshakes once per connection, cheaply.
        ctx.num_tickets = 0
        if config.ciphers is not None:
            ctx.set_ciphers(config.ciphers)
        elif config.min_version is not None and config.min_version < ssl.TLSVersion.TLSv1_2:
            ctx.set_ciphers("DEFAULT:@SECLEVEL=0")  # TLS 1.0/1.1 need SHA-1 in the handshake
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # TLSv1 / TLSv1_1
            if config.min_version is not None:
                ctx.minimum_version = config.min_version
            if config.max_version is not None:
                ctx.maximum_version = config.max_version
        if config.alpn:
            ctx.set_alpn_protocols(list(config.alpn))
        if config.client_ca is not None:
            ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.load_verify_locations(cadata=config.client_ca.decode("ascii"))
        chain, key = _write_credential(credential, self._directory)
        ctx.load_cert_chain(chain, key)
        return ctx


def _write_credential(credential: Credential, directory: Path) -> tuple[Path, Path]:
    """Write the chain and key as PEM files named by their content."""
    digest = hashlib.sha256(credential.chain_pem + credential.key_pem).hexdigest()[:24]
    chain = directory / f"{digest}.chain.pem"
    key = directory / f"{digest}.key.pem"
    chain.write_bytes(credential.chain_pem)
    key.write_bytes(credential.key_pem)
    key.chmod(0o600)
    return chain, key


def _sni_switch(
    by_name: dict[str, ssl.SSLContext], *, strict: bool
) -> Callable[[ssl.SSLObject, str | None, ssl.SSLContext], int | None]:
    def switch(ssl_object: ssl.SSLObject, name: str | None, _ctx: ssl.SSLContext) -> int | None:
        chosen = by_name.get(name.lower()) if name else None
        if chosen is not None:
            ssl_object.context = chosen
            return None
        if strict and name:
            return ssl.ALERT_DESCRIPTION_UNRECOGNIZED_NAME
        return None

    return switch


# --------------------------------------------------------------------------- behaviours

Handler = Callable[[trio.SocketStream], Awaitable[None]]
_T = TypeVar("_T")
_CONNECTION_ERRORS = (OSError, trio.BrokenResourceError, trio.ClosedResourceError)


async def _drain(stream: trio.abc.ReceiveStream) -> None:
    """Read and discard until EOF, bounded in reads and time."""
    with trio.move_on_after(READ_SECONDS):
        for _ in range(MAX_READS):
            if not await stream.receive_some():
                return


async def _read_once(stream: trio.abc.ReceiveStream) -> bytes:
    with trio.move_on_after(READ_SECONDS):
        return bytes(await stream.receive_some())
    return b""


class _ServerTls:
    """Server side of TLS over a trio stream, driven through memory BIOs.

    Unlike `trio.SSLStream`, this sends what OpenSSL queued before raising,
    so a failed handshake reaches the client as the TLS alert a real server
    sends (protocol_version, unrecognized_name, ...) instead of a bare close.
    """

    def __init__(self, stream: trio.SocketStream, ctx: ssl.SSLContext) -> None:
        self._stream = stream
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._tls = ctx.wrap_bio(self._incoming, self._outgoing, server_side=True)

    async def handshake(self) -> None:
        await self._until_done(self._tls.do_handshake)

    async def receive(self) -> bytes:
        return await self._until_done(lambda: self._tls.read(16384))

    async def send(self, data: bytes) -> None:
        self._tls.write(data)
        await self._flush()

    async def _until_done(self, step: Callable[[], _T]) -> _T:
        for _ in range(MAX_READS):
            try:
                result = step()
            except ssl.SSLWantReadError:
                await self._flush()
                await self._feed()
                continue
            except ssl.SSLError:
                await self._flush()  # the alert, if OpenSSL queued one
                raise
            await self._flush()
            return result
        raise trio.TooSlowError(f"TLS step not done after {MAX_READS} reads")

    async def _feed(self) -> None:
        data = await self._stream.receive_some()
        if data:
            self._incoming.write(data)
        else:
            self._incoming.write_eof()

    async def _flush(self) -> None:
        pending = self._outgoing.read()
        if pending:
            await self._stream.send_all(pending)


def _tls_handler(ctx: ssl.SSLContext) -> Handler:
    async def handle(stream: trio.SocketStream) -> None:
        tls = _ServerTls(stream, ctx)
        with trio.fail_after(HANDSHAKE_SECONDS):
            await tls.handshake()
        with trio.move_on_after(READ_SECONDS):
            if await tls.receive():  # a request: answer it (curl, browsers)
                await tls.send(HTTP_200)

    return handle


async def _silent(stream: trio.SocketStream) -> None:
    with trio.move_on_after(CONNECTION_LIFETIME_SECONDS / 2):
        for _ in range(MAX_READS):
            if not await stream.receive_some():
                return


async def _tarpit(stream: trio.SocketStream) -> None:
    await stream.send_all(TARPIT_HEADER)
    for _ in range(TARPIT_MAX_BYTES):
        await trio.sleep(1)
        await stream.send_all(b"\x00")


async def _reset(stream: trio.SocketStream) -> None:
    await _read_once(stream)
    stream.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    await stream.aclose()


async def _http(stream: trio.SocketStream) -> None:
    await _read_once(stream)
    await stream.send_all(HTTP_400)
    await stream.send_eof()
    await _drain(stream)


async def _close(stream: trio.SocketStream) -> None:
    # FIN at once, then read what the client sends: closing with unread data
    # would make the kernel send a reset instead of a clean close.
    await stream.send_eof()
    await _drain(stream)


_SIMPLE_HANDLERS: dict[Behaviour, Handler] = {
    Behaviour.SILENT: _silent,
    Behaviour.TARPIT: _tarpit,
    Behaviour.RESET: _reset,
    Behaviour.HTTP: _http,
    Behaviour.CLOSE: _close,
    Behaviour.ENDLESS: faults.endless,
    Behaviour.MIDCLOSE: faults.midclose,
    Behaviour.ALERT: faults.alert_handshake_failure,
    Behaviour.GARBAGE_CERT: faults.garbage_certificate,
    Behaviour.TRUNCATED_CERT: faults.truncated_certificate,
}


def _handler_for(site: Site, contexts: _ContextCache) -> Handler:
    if site.behaviour is Behaviour.TLS:
        assert site.tls is not None  # checked by Site
        return _tls_handler(contexts.get(site.tls))
    if site.behaviour is Behaviour.BLACKHOLE:
        return _close  # never called: a blackhole accepts nothing (see serve_sites)
    return _SIMPLE_HANDLERS[site.behaviour]


def _guarded(handler: Handler) -> Handler:
    """One misbehaving client never takes the listener down."""

    async def handle(stream: trio.SocketStream) -> None:
        try:
            with trio.move_on_after(CONNECTION_LIFETIME_SECONDS):
                await handler(stream)
        except (*_CONNECTION_ERRORS, trio.TooSlowError):  # ssl.SSLError is an OSError
            pass  # the client went away or misbehaved: its problem, not the server's
        finally:
            await trio.aclose_forcefully(stream)

    return handle


# --------------------------------------------------------------------------- serving


async def _bind(address: str, port: int) -> trio.SocketListener:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = trio.socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        await sock.bind((address, port))
        sock.listen(LISTEN_BACKLOG)
    except BaseException:
        sock.close()
        raise
    return trio.SocketListener(sock)


async def serve_sites(
    sites: Sequence[Site],
    *,
    task_status: trio.TaskStatus[list[tuple[str, int]]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Bind every site, report the bound (address, port) pairs in site order
    (ports chosen for port-0 sites included), then serve until cancelled."""
    raise_nofile_limit()
    with tempfile.TemporaryDirectory(prefix="pinaudit-fleet-") as tmp:
        contexts = _ContextCache(Path(tmp))
        handlers = [_guarded(_handler_for(site, contexts)) for site in sites]
    listeners: list[trio.SocketListener] = []
    try:
        for site in sites:
            listeners.append(await _bind(site.address, site.port))
        bound = [_bound_address(listener) for listener in listeners]
        async with trio.open_nursery() as nursery:
            for site, handler, listener in zip(sites, handlers, listeners, strict=True):
                if site.behaviour is Behaviour.BLACKHOLE:
                    listener.socket.listen(0)
                    nursery.start_soon(faults.blackhole, listener)
                else:
                    nursery.start_soon(trio.serve_listeners, handler, [listener])
            task_status.started(bound)
    finally:
        for listener in listeners:
            await trio.aclose_forcefully(listener)


def _bound_address(listener: trio.SocketListener) -> tuple[str, int]:
    name = listener.socket.getsockname()
    return str(name[0]), int(name[1])


# --------------------------------------------------------------------------- config file

_VERSIONS = {v.name: v for v in ssl.TLSVersion}


def write_config(sites: Iterable[Site], directory: Path) -> Path:
    """Write `sites` as ``fleet.json`` plus PEM files in `directory`; return the config path."""
    directory.mkdir(parents=True, exist_ok=True)
    entries = [_site_entry(site, directory) for site in sites]
    path = directory / "fleet.json"
    path.write_text(json.dumps({"sites": entries}, indent=1))
    return path


def _site_entry(site: Site, directory: Path) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "address": site.address,
        "port": site.port,
        "behaviour": site.behaviour.value,
    }
    if site.tls is not None:
        tls = site.tls
        entry.update(_credential_entry(tls.credential, directory))
        entry["sni"] = {name: _credential_entry(cred, directory) for name, cred in tls.sni}
        entry["sni_strict"] = tls.sni_strict
        entry["min_version"] = tls.min_version.name if tls.min_version else None
        entry["max_version"] = tls.max_version.name if tls.max_version else None
        entry["alpn"] = list(tls.alpn)
        entry["ciphers"] = tls.ciphers
        entry["client_ca"] = tls.client_ca.decode("ascii") if tls.client_ca else None
    return entry


def _credential_entry(credential: Credential, directory: Path) -> dict[str, str]:
    chain, key = _write_credential(credential, directory)
    return {"chain": chain.name, "key": key.name}


def load_config(path: Path) -> list[Site]:
    """Read a config written by `write_config` (PEM paths relative to the file)."""
    data = json.loads(path.read_text())
    return [_site_of(entry, path.parent) for entry in data["sites"]]


def _site_of(entry: dict[str, Any], base: Path) -> Site:
    tls = None
    if "chain" in entry:
        sni = tuple((name, _credential_of(c, base)) for name, c in entry.get("sni", {}).items())
        tls = TlsConfig(
            credential=_credential_of(entry, base),
            sni=sni,
            sni_strict=bool(entry.get("sni_strict", False)),
            min_version=_VERSIONS[entry["min_version"]] if entry.get("min_version") else None,
            max_version=_VERSIONS[entry["max_version"]] if entry.get("max_version") else None,
            alpn=tuple(entry.get("alpn", ())),
            ciphers=entry.get("ciphers"),
            client_ca=entry["client_ca"].encode("ascii") if entry.get("client_ca") else None,
        )
    return Site(entry["address"], int(entry["port"]), Behaviour(entry["behaviour"]), tls)


def _credential_of(entry: dict[str, Any], base: Path) -> Credential:
    return Credential((base / entry["chain"]).read_bytes(), (base / entry["key"]).read_bytes())


# --------------------------------------------------------------------------- process


async def _serve_and_announce(sites: Sequence[Site], out: IO[str]) -> None:
    async with trio.open_nursery() as nursery:
        bound = await nursery.start(serve_sites, sites)
        out.write(json.dumps({"listening": bound}) + "\n")
        out.flush()


def main(argv: Sequence[str], *, stdout: IO[str]) -> int:
    """``python -m scanner.fleet.server --config FILE``: serve until terminated.

    Prints one JSON line ``{"listening": [[address, port], ...]}`` once every
    listener is bound."""
    parser = argparse.ArgumentParser(prog="python -m scanner.fleet.server")
    parser.add_argument("--config", required=True, type=Path, help="fleet.json")
    args = parser.parse_args(argv)
    sites = load_config(args.config)
    with contextlib.suppress(KeyboardInterrupt):
        trio.run(_serve_and_announce, sites, stdout)
    return 0


class FleetProcess:
    """A fleet served by a child process, for benchmarks and demos::

    with FleetProcess(write_config(sites, tmp)) as fleet:
        fleet.listening  # [(address, port), ...] in site order
    """

    def __init__(self, config: Path, *, ready_timeout: float = READY_TIMEOUT_SECONDS) -> None:
        self.config = config
        self.ready_timeout = ready_timeout
        self.listening: list[tuple[str, int]] = []
        self._process: subprocess.Popen[str] | None = None

    def __enter__(self) -> FleetProcess:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        command = [sys.executable, "-m", "scanner.fleet.server", "--config", str(self.config)]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self._process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)
        try:
            self.listening = self._wait_ready(self._process)
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self, process: subprocess.Popen[str]) -> list[tuple[str, int]]:
        assert process.stdout is not None
        readable, _, _ = select.select([process.stdout], [], [], self.ready_timeout)
        line = process.stdout.readline() if readable else ""
        if not line:
            raise RuntimeError(f"fleet server did not start (exit status {process.poll()})")
        return [(str(a), int(p)) for a, p in json.loads(line)["listening"]]

    def stop(self, *, grace: float = 5.0) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(grace)
        if process.stdout is not None:
            process.stdout.close()


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:], stdout=sys.stdout))
