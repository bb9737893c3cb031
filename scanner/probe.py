"""The only network code: resolve, connect (through a proxy), STARTTLS, TLS
handshake, capture the served chain and what the server stapled.

This module knows TLS and sockets and nothing about pins, trust or policy. It
never validates what it receives: the chain is captured exactly as served (DER,
in order) and judged offline by the pure core, and so are the stapled OCSP
response and the SCTs of the TLS extension.

TLS is pyOpenSSL on the OpenSSL that `cryptography` bundles, driven on a
non-blocking socket by ``trio.lowlevel.wait_readable`` / ``wait_writable``:
it is the only Python binding that can request an OCSP staple (and, through
the same OpenSSL, the SCT extension), and it measured the cheapest handshake
(benchmarks/handshake_bench.py, docs/protocols.md).

A failure of one target is a value (`ProbeFailure`), never an exception: a
nursery child raising would cancel its siblings. Every foreign exception is
translated in one place, `classify`. Cancellation (`trio.Cancelled`,
`KeyboardInterrupt`) is never caught.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import os
import re
import socket
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import trio
from OpenSSL import SSL
from OpenSSL._util import ffi as _ffi
from OpenSSL._util import lib as _lib

from scanner.caa import MAX_RECORDS as MAX_CAA_RECORDS
from scanner.caa import CaaLookup, CaaRecord, climb
from scanner.ct import tls_extension_scts
from scanner.dialogue import (
    MAX_DIALOGUE_BYTES,
    Dialogue,
    DialogueError,
    Ended,
    Refused,
    Send,
    Unexpected,
    take,
)

# The value types live in the shared model (the pure core reads them); they
# are re-exported here for callers of the probe.
from scanner.inventory.files import client_pair_problem
from scanner.model import Observation, Phase, ProbeErrorKind, ProbeFailure
from scanner.proxy import Proxy, connect_dialogue, parse_proxy
from scanner.starttls import Starttls
from scanner.starttls import dialogue as starttls_dialogue

__all__ = [
    "ALPN_PROTOCOLS",
    "FOREIGN_EXCEPTIONS",
    "ClientContext",
    "Observation",
    "Phase",
    "ProbeErrorKind",
    "ProbeFailure",
    "ProbeResult",
    "Proxy",
    "Starttls",
    "classify",
    "lookup_caa",
    "make_client_context",
    "parse_nameserver",
    "parse_proxy",
    "probe",
    "probe_address",
    "probe_addresses",
    "resolve",
    "tls_library",
]

ALPN_PROTOCOLS = ("h2", "http/1.1")
TLS_VERSIONS = {
    "TLSv1": SSL.TLS1_VERSION,
    "TLSv1.1": SSL.TLS1_1_VERSION,
    "TLSv1.2": SSL.TLS1_2_VERSION,
    "TLSv1.3": SSL.TLS1_3_VERSION,
}
_EXT_SIGNED_CERTIFICATE_TIMESTAMP = 18  # RFC 6962 §3.3.1
_HANDSHAKE = 22  # TLS record content type
_SERVER_HELLO, _CERTIFICATE = 2, 11  # handshake message types
_MAX_CAPTURED_MESSAGE = 256 * 1024  # OpenSSL itself refuses a Certificate over 100 KiB
_RECV_BYTES = 16 * 1024

ProbeResult = Observation | ProbeFailure


def tls_library() -> str:
    """The TLS library the probe runs on, e.g. "OpenSSL 3.5.1 1 Jul 2025"."""
    return SSL.OpenSSL_version(SSL.OPENSSL_VERSION).decode("ascii", "replace")


# --------------------------------------------------------------------------- context


class _Capture:
    """What one handshake delivered besides the chain (filled by callbacks)."""

    __slots__ = ("certificate", "ocsp", "server_hello")

    def __init__(self) -> None:
        self.ocsp: bytes | None = None
        self.server_hello: bytes | None = None
        self.certificate: bytes | None = None


class ClientContext:
    """The TLS client configuration shared by every probe of a scan.

    Nothing is verified here (no CA store is loaded: loading one costs a large
    share of each handshake's CPU, and the chain is validated offline anyway).
    TLS 1.0 and 1.1 stay allowed and the OpenSSL security level is 0 so that
    old or weakly configured servers still complete a handshake and their
    chain can be audited; weak keys and signatures are findings of the core,
    not handshake failures. Servers without secure renegotiation (RFC 5746)
    are accepted for the same reason.

    Two OpenSSL contexts at most: the plain one, and (built on first use) one
    that also asks for SCTs in the TLS extension and watches the handshake
    messages that carry them, so that probes not asking pay nothing for it.
    """

    def __init__(
        self,
        *,
        client_cert: str | None = None,
        client_key: str | None = None,
        minimum_version: str = "TLSv1",
        maximum_version: str | None = None,
    ) -> None:
        for version in (minimum_version, maximum_version):
            if version is not None and version not in TLS_VERSIONS:
                raise ValueError(f"unknown TLS version {version!r} (one of {list(TLS_VERSIONS)})")
        self.client_cert = client_cert
        self.client_key = client_key
        self.minimum_version = minimum_version
        self.maximum_version = maximum_version
        self._captures: dict[int, _Capture] = {}
        self._on_message = _ffi.callback(
            "void(int, int, int, const void *, size_t, SSL *, void *)", self._message
        )
        self._plain = self._build(scts=False)
        self._with_scts: SSL.Context | None = None

    def _build(self, *, scts: bool) -> SSL.Context:
        ctx = SSL.Context(SSL.TLS_CLIENT_METHOD)
        ctx.set_verify(SSL.VERIFY_NONE)
        ctx.set_cipher_list(b"DEFAULT:@SECLEVEL=0")
        ctx.set_min_proto_version(TLS_VERSIONS[self.minimum_version])
        if self.maximum_version is not None:
            ctx.set_max_proto_version(TLS_VERSIONS[self.maximum_version])
        ctx.set_options(SSL.OP_LEGACY_SERVER_CONNECT)
        ctx.set_mode(SSL.MODE_RELEASE_BUFFERS)
        ctx.set_alpn_protos([p.encode("ascii") for p in ALPN_PROTOCOLS])
        ctx.set_ocsp_client_callback(_on_ocsp)
        if self.client_cert is not None:
            # Checked first: OpenSSL's own errors for these files say little
            # ("system lib"), and an encrypted key would prompt on the terminal.
            problem = client_pair_problem(self.client_cert, self.client_key)
            if problem is not None:
                raise ValueError(problem)
            try:
                ctx.use_certificate_chain_file(self.client_cert)
                ctx.use_privatekey_file(self.client_key or self.client_cert)
            except SSL.Error as exc:
                raise ValueError(f"OpenSSL refuses the client certificate or key: {exc}") from None
        if scts:
            # An empty signed_certificate_timestamp extension in the ClientHello
            # asks for the list; the server answers in the ServerHello (TLS 1.2)
            # or in the leaf's CertificateEntry (TLS 1.3), read by _message.
            null = _ffi.NULL
            added = _lib.SSL_CTX_add_client_custom_ext(
                ctx._context, _EXT_SIGNED_CERTIFICATE_TIMESTAMP, null, null, null, null, null
            )
            if added != 1:  # pragma: no cover - an OpenSSL that handles SCTs itself
                raise RuntimeError("this OpenSSL refuses the SCT extension as a custom one")
            _lib.SSL_CTX_set_msg_callback(ctx._context, self._on_message)
        return ctx

    def openssl_context(self, *, scts: bool) -> SSL.Context:
        if not scts:
            return self._plain
        if self._with_scts is None:
            self._with_scts = self._build(scts=True)
        return self._with_scts

    def _message(  # the signature of OpenSSL's msg_callback
        self,
        write_p: int,
        _version: int,
        content_type: int,
        buf: Any,
        length: int,
        ssl: Any,
        _: Any,
    ) -> None:
        """OpenSSL's message callback: keep the ServerHello and the Certificate
        message of the connections that asked (bounded copies; never raises)."""
        if write_p or content_type != _HANDSHAKE or not 4 <= length <= _MAX_CAPTURED_MESSAGE:
            return
        capture = self._captures.get(int(_ffi.cast("uintptr_t", ssl)))
        if capture is None:
            return
        kind = _ffi.cast("const unsigned char *", buf)[0]
        if kind == _SERVER_HELLO:
            capture.server_hello = bytes(_ffi.buffer(buf, length))
        elif kind == _CERTIFICATE and capture.certificate is None:
            capture.certificate = bytes(_ffi.buffer(buf, length))

    @contextlib.contextmanager
    def capturing(self, conn: SSL.Connection, capture: _Capture) -> Iterator[None]:
        key = int(_ffi.cast("uintptr_t", conn._ssl))
        self._captures[key] = capture
        try:
            yield
        finally:
            del self._captures[key]


def _on_ocsp(conn: SSL.Connection, data: bytes, _: object) -> bool:
    capture = conn.get_app_data()
    if isinstance(capture, _Capture):
        capture.ocsp = bytes(data)
    return True  # never fail the handshake over the staple: it is judged offline


def make_client_context(
    *,
    client_cert: str | None = None,
    client_key: str | None = None,
    minimum_version: str = "TLSv1",
    maximum_version: str | None = None,
) -> ClientContext:
    """The one client context shared by every probe of a scan (see `ClientContext`)."""
    return ClientContext(
        client_cert=client_cert,
        client_key=client_key,
        minimum_version=minimum_version,
        maximum_version=maximum_version,
    )


# --------------------------------------------------------------------------- chain


def served_chain(conn: SSL.Connection) -> tuple[bytes, ...]:
    """The certificates the peer sent, DER, in the order sent, unverified.

    On a client, OpenSSL's peer chain is the Certificate message as received
    (leaf first); each certificate keeps its received encoding.
    """
    stack = _lib.SSL_get_peer_cert_chain(conn._ssl)
    if stack == _ffi.NULL:
        return ()
    chain: list[bytes] = []
    bio = _lib.BIO_new(_lib.BIO_s_mem())
    try:
        pointer = _ffi.new("char **")
        for index in range(_lib.sk_X509_num(stack)):
            if _lib.i2d_X509_bio(bio, _lib.sk_X509_value(stack, index)) != 1:
                raise SSL.Error([("pinaudit", "", "cannot encode a served certificate")])
            size = _lib.BIO_get_mem_data(bio, pointer)
            buffer = _ffi.new("char[]", size)
            _lib.BIO_read(bio, buffer, size)  # drains the BIO for the next one
            chain.append(_ffi.buffer(buffer, size)[:])
    finally:
        _lib.BIO_free(bio)
    return tuple(chain)


# --------------------------------------------------------------------------- classify

# OpenSSL reason mnemonics of received alerts: TLS_ALERT_HANDSHAKE_FAILURE
# (SSLV3_ALERT_... before OpenSSL 4), TLSV1_ALERT_PROTOCOL_VERSION,
# TLSV13_ALERT_CERTIFICATE_REQUIRED, and the RFC 6066 ones without "ALERT":
# TLSV1_UNRECOGNIZED_NAME, TLSV1_BAD_CERTIFICATE_STATUS_RESPONSE, ...
_ALERT_REASON = re.compile(r"^(?:TLS_ALERT|SSLV3_ALERT|TLSV13_ALERT|TLSV1_ALERT|TLSV1)_([A-Z_]+)$")
_NOT_TLS_REASONS = frozenset(
    {
        "WRONG_VERSION_NUMBER",
        "PACKET_LENGTH_TOO_LONG",
        "RECORD_LENGTH_MISMATCH",
        "HTTP_REQUEST",
        "HTTPS_PROXY_REQUEST",
        "UNKNOWN_PROTOCOL",
    }
)
_VERSION_REASONS = frozenset(
    {
        "UNSUPPORTED_PROTOCOL",
        "NO_PROTOCOLS_AVAILABLE",
        "VERSION_TOO_LOW",
        "VERSION_TOO_HIGH",
        "WRONG_SSL_VERSION",
    }
)
_CLOSED_REASONS = frozenset({"UNEXPECTED_EOF_WHILE_READING"})
_UNREACHABLE_ERRNOS = frozenset(
    {errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ENETDOWN, errno.EHOSTDOWN}
)
# OpenSSL's library names, as Python's ssl module spells them in its messages.
_LIBRARIES = {"SSL routines": "SSL", "asn1 encoding routines": "ASN1", "X509 routines": "X509"}

# The exceptions a probe translates; anything else is a bug and propagates.
FOREIGN_EXCEPTIONS: tuple[type[Exception], ...] = (
    OSError,  # includes socket.gaierror, ConnectionError, TimeoutError
    SSL.Error,  # every pyOpenSSL failure (SysCallError, ZeroReturnError, ...)
    DialogueError,  # a STARTTLS or proxy dialogue that could not go on
    trio.BrokenResourceError,
    trio.ClosedResourceError,
    trio.TooSlowError,
    UnicodeError,  # a name that cannot be IDNA-encoded (a ValueError: listed first)
    ValueError,  # arguments refused: an empty SNI name, one with a leading dot
    OverflowError,  # a port outside 0-65535
)


def _openssl_error(exc: SSL.Error) -> tuple[str, str]:
    """(mnemonic, detail) of a pyOpenSSL error, in the spelling of Python's ssl
    module: ``[SSL: WRONG_VERSION_NUMBER] wrong version number``."""
    entries = [e for e in (exc.args[0] if exc.args else ()) if isinstance(e, tuple) and len(e) == 3]
    if not entries:
        return "", str(exc) or "TLS error"
    library, _, reason = next((e for e in entries if e[0] == "SSL routines"), entries[0])
    mnemonic = re.sub(r"[^A-Z0-9]+", "_", str(reason).upper()).strip("_")
    short = _LIBRARIES.get(str(library), str(library).split(" ")[0].upper() or "SSL")
    return mnemonic, f"[{short}: {mnemonic}] {reason}"


def _tls_kind(exc: SSL.Error) -> tuple[ProbeErrorKind, str | None, str]:
    if isinstance(exc, SSL.ZeroReturnError):
        return ProbeErrorKind.CLOSED, None, "the peer closed the TLS connection"
    if isinstance(exc, SSL.SysCallError):
        code = (*exc.args, None)[0]
        if isinstance(code, int) and code > 0:
            error = OSError(code, os.strerror(code))
            return _os_kind(error), None, str(error)
        # OpenSSL saw the connection end where a record was due (its
        # UNEXPECTED_EOF_WHILE_READING, reported as a syscall error here)
        return ProbeErrorKind.CLOSED, None, "[SSL: UNEXPECTED_EOF_WHILE_READING] unexpected eof"
    mnemonic, detail = _openssl_error(exc)
    match = _ALERT_REASON.match(mnemonic)
    if match:
        return ProbeErrorKind.TLS_ALERT, match.group(1).lower(), detail
    if mnemonic in _NOT_TLS_REASONS:
        return ProbeErrorKind.NOT_TLS, None, detail
    if mnemonic in _VERSION_REASONS:
        return ProbeErrorKind.TLS_VERSION, None, detail
    if mnemonic in _CLOSED_REASONS:
        return ProbeErrorKind.CLOSED, None, detail
    return ProbeErrorKind.PROTOCOL_ERROR, None, detail


def _os_kind(exc: OSError) -> ProbeErrorKind:
    if isinstance(exc, ConnectionRefusedError) or exc.errno == errno.ECONNREFUSED:
        return ProbeErrorKind.REFUSED
    if isinstance(exc, (ConnectionResetError, ConnectionAbortedError, BrokenPipeError)):
        return ProbeErrorKind.RESET
    if exc.errno in (errno.ECONNRESET, errno.ECONNABORTED, errno.EPIPE):
        return ProbeErrorKind.RESET
    if isinstance(exc, TimeoutError) or exc.errno == errno.ETIMEDOUT:
        return ProbeErrorKind.TIMEOUT
    if exc.errno in _UNREACHABLE_ERRNOS:
        return ProbeErrorKind.UNREACHABLE
    return ProbeErrorKind.OS_ERROR


def _dialogue_kind(exc: DialogueError, phase: Phase | None) -> ProbeErrorKind:
    if isinstance(exc, Ended):
        return ProbeErrorKind.CLOSED
    if isinstance(exc, Refused):
        if phase is Phase.PROXY:
            return ProbeErrorKind.PROXY_REFUSED
        return ProbeErrorKind.STARTTLS_REFUSED
    return ProbeErrorKind.PROTOCOL_ERROR


def _kind_of(
    exc: BaseException, phase: Phase | None
) -> tuple[ProbeErrorKind, str | None, str | None]:
    """The table: one foreign exception (already unwrapped) → kind, alert, detail."""
    if isinstance(exc, (socket.gaierror, socket.herror, UnicodeError)):
        return ProbeErrorKind.DNS, None, None
    if isinstance(exc, SSL.Error):
        return _tls_kind(exc)
    if isinstance(exc, DialogueError):
        return _dialogue_kind(exc, phase), None, None
    if isinstance(exc, OSError):
        return _os_kind(exc), None, None
    if isinstance(exc, trio.TooSlowError):
        return ProbeErrorKind.TIMEOUT, None, None
    if isinstance(exc, (ValueError, OverflowError)):
        return ProbeErrorKind.OS_ERROR, None, None  # refused arguments, like EINVAL
    # A broken or closed stream with no underlying cause: the peer went away.
    return ProbeErrorKind.CLOSED, None, None


def _unwrap(exc: BaseException) -> BaseException:
    """trio raises BrokenResourceError *from* the socket error: use the cause."""
    for _ in range(8):  # bounded: cause chains are short
        if not isinstance(exc, (trio.BrokenResourceError, trio.ClosedResourceError)):
            break
        if exc.__cause__ is None:
            break
        exc = exc.__cause__
    return exc


def classify(
    exc: BaseException, *, address: str | None = None, phase: Phase | None = None
) -> ProbeFailure:
    """Translate one foreign exception into a `ProbeFailure` (the only such place)."""
    if not isinstance(exc, Exception):
        raise exc  # Cancelled, KeyboardInterrupt, SystemExit: never swallowed
    cause = _unwrap(exc)
    kind, alert, detail = _kind_of(cause, phase)
    if kind is ProbeErrorKind.TIMEOUT:
        where = phase.value if phase is not None else "probe"
        detail = f"timed out during {where}"
    elif detail is None:
        detail = _describe(cause)
    return ProbeFailure(kind, detail, address=address, alert=alert, phase=phase)


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return text if text else type(exc).__name__


# --------------------------------------------------------------------------- sockets


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _is_special_invalid(host: str) -> bool:
    return host.rstrip(".").rpartition(".")[2].lower() == "invalid"


def _family_of(address: str) -> int:
    return socket.AF_INET6 if ":" in address else socket.AF_INET


async def resolve(host: str, port: int, *, family: int = 0) -> list[str]:
    """Addresses of `host` for TCP, IPv4 and IPv6, deduplicated, resolver order kept.

    IP literals are returned as they are without a lookup (empty when they do
    not match `family`). Raises `socket.gaierror` when the name does not resolve.
    Names under ``.invalid`` fail at once without a query: they never resolve
    (RFC 6761 §6.4 asks resolver libraries to answer them negatively, and
    glibc would send them to the configured name server all the same).
    """
    if _is_ip_literal(host):
        return [host] if family in (0, _family_of(host)) else []
    if _is_special_invalid(host):
        raise socket.gaierror(socket.EAI_NONAME, f"{host}: .invalid names never resolve (RFC 6761)")
    infos = await trio.socket.getaddrinfo(host, port, family=family, type=socket.SOCK_STREAM)
    addresses: list[str] = []
    for info in infos:
        address = str(info[4][0])
        if address not in addresses:
            addresses.append(address)
    return addresses


class _Socket(Protocol):
    def fileno(self) -> int: ...
    def close(self) -> None: ...
    async def send(self, data: bytes, /) -> int: ...
    async def recv(self, size: int, /) -> bytes: ...


async def _connect(address: str, port: int) -> trio.socket.SocketType:
    infos = await trio.socket.getaddrinfo(
        address, port, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST
    )
    family, type_, proto, _, sockaddr = infos[0]
    sock = trio.socket.socket(family, type_, proto)
    try:
        await sock.connect(sockaddr)
    except BaseException:
        sock.close()
        raise
    return sock


async def _converse(sock: _Socket, dialogue: Dialogue, buffer: bytearray) -> None:
    """Run a plain-text dialogue on `sock`. `buffer` holds bytes received and
    not yet consumed: they carry over to the next dialogue (a proxy's answer
    and the server's greeting can arrive in one read)."""
    received = 0
    try:
        want = next(dialogue)
        while True:
            reply = b""
            if isinstance(want, Send):
                view = memoryview(want.data)
                while view:
                    view = view[await sock.send(view) :]  # type: ignore[arg-type]
            else:
                answer = take(buffer, want, eof=False)
                while answer is None:
                    data = await sock.recv(_RECV_BYTES)
                    received += len(data)
                    if received > MAX_DIALOGUE_BYTES:
                        raise Unexpected(f"more than {MAX_DIALOGUE_BYTES} bytes before TLS")
                    buffer += data
                    answer = take(buffer, want, eof=not data)
                reply = answer
            want = dialogue.send(reply)
    except StopIteration:
        return


async def _handshake(conn: SSL.Connection, sock: _Socket) -> None:
    while True:
        try:
            conn.do_handshake()
            return
        except SSL.WantReadError:
            await trio.lowlevel.wait_readable(sock)
        except SSL.WantWriteError:
            await trio.lowlevel.wait_writable(sock)


def _close(sock: _Socket | None) -> None:
    """Close at once, without a close_notify: the chain is already captured,
    and SSL_shutdown measured a fifth of the probe's CPU per handshake
    (benchmarks/handshake_bench.py). Servers see a TCP close, as from a
    client that went away."""
    if sock is not None:
        sock.close()


def _sni(name: str | None) -> bytes | None:
    """The SNI bytes for `name`, as Python's ssl module would send them: none
    for an IP literal (RFC 6066 §3), IDNA 2003 for the rest."""
    if name is None:
        return None
    if not name or name.startswith("."):
        raise ValueError("server_hostname cannot be an empty string or start with a leading dot.")
    if _is_ip_literal(name):
        return None
    return name.encode("idna")


# --------------------------------------------------------------------------- probing


@dataclass(frozen=True)
class _Options:
    starttls: Starttls | None = None
    proxy: Proxy | None = None
    ocsp: bool = False
    scts: bool = False


def _name_proxy(failure: ProbeFailure, proxy: Proxy) -> ProbeFailure:
    if str(proxy) in failure.detail:
        return failure
    return ProbeFailure(
        failure.kind,
        f"proxy {proxy}: {failure.detail}",
        address=failure.address,
        alert=failure.alert,
        phase=failure.phase,
    )


async def _probe_until(
    target: str,
    port: int,
    server_hostname: str | None,
    ctx: ClientContext,
    *,
    deadline: float,
    options: _Options,
) -> ProbeResult:
    """Probe one target: an IP address, or a name the proxy resolves."""
    phase = Phase.CONNECT
    sock: Any = None
    conn: SSL.Connection | None = None
    proxy = options.proxy
    try:
        with trio.fail_at(deadline):
            started = trio.current_time()
            buffer = bytearray()
            if proxy is None:
                sock = await _connect(target, port)
            else:
                addresses = await resolve(proxy.host, proxy.port)
                if not addresses:
                    raise socket.gaierror(socket.EAI_NONAME, f"{proxy.host} has no address")
                sock = await _connect(addresses[0], proxy.port)
                phase = Phase.PROXY
                await _converse(sock, connect_dialogue(proxy, target, port), buffer)
            connected = trio.current_time()
            if options.starttls is not None:
                phase = Phase.STARTTLS
                local = sock.getsockname()[0]
                opening = starttls_dialogue(
                    options.starttls, server_name=server_hostname or target, client_address=local
                )
                await _converse(sock, opening, buffer)
            if buffer:
                raise Unexpected(
                    f"{len(buffer)} bytes arrived before the TLS handshake started (refused: "
                    "they would be read as the server's TLS answer)"
                )
            phase = Phase.HANDSHAKE
            sni = _sni(server_hostname)
            conn = SSL.Connection(ctx.openssl_context(scts=options.scts), sock)
            capture = _Capture()
            conn.set_app_data(capture)
            conn.set_connect_state()
            if sni is not None:
                conn.set_tlsext_host_name(sni)
            if options.ocsp:
                conn.request_ocsp()
            if options.scts:
                with ctx.capturing(conn, capture):
                    await _handshake(conn, sock)
            else:
                await _handshake(conn, sock)
            finished = trio.current_time()
            # Interned: the same few versions, ciphers and protocols on every endpoint.
            version = sys.intern(conn.get_protocol_version_name())
            tls_scts = None
            if options.scts:
                tls_scts = tls_extension_scts(
                    capture.server_hello, capture.certificate, tls13=version == "TLSv1.3"
                )
            return Observation(
                address=target,
                port=port,
                served=served_chain(conn),
                tls_version=version,
                cipher=sys.intern(conn.get_cipher_name() or ""),
                alpn=sys.intern(conn.get_alpn_proto_negotiated().decode("ascii", "replace"))
                or None,
                connect_seconds=connected - started,
                handshake_seconds=finished - connected,
                ocsp_response=(capture.ocsp or b"") if options.ocsp else None,
                tls_scts=tls_scts,
                starttls=options.starttls.value if options.starttls is not None else None,
                proxy=str(proxy) if proxy is not None else None,
            )
    except FOREIGN_EXCEPTIONS as exc:
        failure = classify(exc, address=target, phase=phase)
        if proxy is not None and phase in (Phase.CONNECT, Phase.PROXY):
            failure = _name_proxy(failure, proxy)
        return failure
    finally:
        _close(sock)


def _options(
    starttls: Starttls | str | None, proxy: Proxy | str | None, ocsp: bool, scts: bool
) -> _Options:
    return _Options(
        starttls=Starttls(starttls) if starttls is not None else None,
        proxy=parse_proxy(proxy) if isinstance(proxy, str) else proxy,
        ocsp=ocsp,
        scts=scts,
    )


async def probe_address(
    address: str,
    port: int,
    server_hostname: str | None,
    ctx: ClientContext,
    *,
    timeout: float,
    starttls: Starttls | str | None = None,
    proxy: Proxy | str | None = None,
    ocsp: bool = False,
    scts: bool = False,
) -> ProbeResult:
    """Connect to one IP address and handshake, sending `server_hostname` as SNI
    (None: no SNI). `timeout` bounds connect + handshake together. Through a
    proxy, `address` is what the proxy is asked to connect to (a name is fine
    for ``http://`` and ``socks5h://`` proxies). `starttls` speaks that
    protocol's opening first; `ocsp` asks for a stapled OCSP response and
    `scts` for the SCT list of the TLS extension."""
    options = _options(starttls, proxy, ocsp, scts)
    deadline = trio.current_time() + timeout
    return await _probe_until(
        address, port, server_hostname, ctx, deadline=deadline, options=options
    )


async def probe(
    host: str,
    port: int,
    sni: str | None,
    ctx: ClientContext,
    *,
    timeout: float,
    all_addresses: bool = False,
    starttls: Starttls | str | None = None,
    proxy: Proxy | str | None = None,
    ocsp: bool = False,
    scts: bool = False,
) -> list[ProbeResult]:
    """Resolve `host` and probe its first address, or every address concurrently.

    `timeout` bounds DNS + connect + handshake. The result has one element per
    probed address, in resolver order; a name that does not resolve gives one
    `ProbeFailure` of kind DNS (or TIMEOUT when the lookup ran out of time).
    Through an ``http://`` or ``socks5h://`` proxy the proxy resolves the name:
    one probe, whose ``address`` is the name. Other keywords: `probe_address`.
    """
    options = _options(starttls, proxy, ocsp, scts)
    deadline = trio.current_time() + timeout
    if options.proxy is not None and options.proxy.resolves_names:
        return [await _probe_until(host, port, sni, ctx, deadline=deadline, options=options)]
    try:
        with trio.fail_at(deadline):
            addresses = await resolve(host, port)
    except FOREIGN_EXCEPTIONS as exc:
        return [classify(exc, phase=Phase.DNS)]
    if not addresses:
        return [ProbeFailure(ProbeErrorKind.DNS, f"{host} has no address", phase=Phase.DNS)]
    targets = addresses if all_addresses else addresses[:1]
    return await _probe_each(targets, port, sni, ctx, deadline=deadline, options=options)


async def probe_addresses(
    addresses: Sequence[str],
    port: int,
    sni: str | None,
    ctx: ClientContext,
    *,
    timeout: float,
    starttls: Starttls | str | None = None,
    proxy: Proxy | str | None = None,
    ocsp: bool = False,
    scts: bool = False,
) -> list[ProbeResult]:
    """Probe IP addresses concurrently, sharing one deadline; results in the given order."""
    options = _options(starttls, proxy, ocsp, scts)
    deadline = trio.current_time() + timeout
    return await _probe_each(addresses, port, sni, ctx, deadline=deadline, options=options)


async def _probe_each(
    addresses: Sequence[str],
    port: int,
    sni: str | None,
    ctx: ClientContext,
    *,
    deadline: float,
    options: _Options,
) -> list[ProbeResult]:
    results: list[ProbeResult | None] = [None] * len(addresses)

    async def one(index: int, address: str) -> None:
        results[index] = await _probe_until(
            address, port, sni, ctx, deadline=deadline, options=options
        )

    async with trio.open_nursery() as nursery:
        for index, address in enumerate(addresses):
            nursery.start_soon(one, index, address)
    return [result for result in results if result is not None]


# --------------------------------------------------------------------------- CAA


def parse_nameserver(text: str) -> tuple[str, int]:
    """``ADDRESS``, ``ADDRESS:PORT`` or ``[IPv6]:PORT`` → (address, port);
    ValueError when the address is not an IP address or the port not 1-65535."""
    host, port = text.strip(), 53
    if host.startswith("["):
        host, _, rest = host[1:].partition("]")
        if rest:
            port = _port(rest.removeprefix(":"))
    elif host.count(":") == 1:
        host, _, rest = host.partition(":")
        port = _port(rest)
    if not _is_ip_literal(host):
        raise ValueError(f"a DNS server is an IP address (with :PORT if not 53), not {text!r}")
    return host, port


def _port(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ValueError(f"port {text!r} is not a number in 1-65535")
    return int(text)


async def lookup_caa(
    name: str, *, nameserver: tuple[str, int] | None = None, timeout: float = 5.0
) -> CaaLookup:
    """The relevant CAA record set of `name` (RFC 8659 §3): query the name,
    then each parent up to the TLD, until a non-empty set answers. An
    NXDOMAIN or an empty answer climbs; any other DNS failure (SERVFAIL,
    REFUSED, timeout) is the lookup's error: "no CAA" is never assumed.
    `nameserver` is (address, port); None reads the system's resolv.conf."""
    import dns.asyncresolver
    import dns.exception
    import dns.resolver

    resolver = dns.asyncresolver.Resolver(configure=nameserver is None)
    if nameserver is not None:
        resolver.nameservers = [nameserver[0]]
        resolver.port = nameserver[1]
    resolver.lifetime = timeout
    candidate = name
    try:
        with trio.fail_after(timeout):
            for level in climb(name)[:16]:  # bounded: 16 labels is plenty
                candidate = level
                # An alias answers with its target's set; a resolver that
                # returns the CNAME alone (a stub, or local data) is chased here.
                for _ in range(8):
                    try:
                        answer = await resolver.resolve(candidate, "CAA", raise_on_no_answer=False)
                    except dns.resolver.NXDOMAIN:
                        break
                    if answer.rrset:
                        records = tuple(
                            CaaRecord(
                                int(r.flags),
                                bytes(r.tag).decode("ascii", "replace").lower(),
                                bytes(r.value).decode("utf-8", "replace"),
                            )
                            for r in list(answer.rrset)[:MAX_CAA_RECORDS]
                        )
                        owner = level if candidate == level else f"{level} -> {candidate}"
                        return CaaLookup(name, owner, records)
                    # dnspython follows the CNAMEs the response holds: where
                    # they end without a CAA set, ask the end of the chain.
                    target = str(answer.canonical_name).rstrip(".").lower()
                    if target == candidate.lower():
                        break
                    candidate = target
    except trio.TooSlowError:
        return CaaLookup(name, None, error=f"{candidate}: timed out after {timeout:g}s")
    except dns.exception.DNSException as exc:
        return CaaLookup(name, None, error=f"{candidate}: {str(exc)[:200]}")
    return CaaLookup(name, None)
