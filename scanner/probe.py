"""The only network code: resolve, connect, TLS handshake, capture the served chain.

This module knows TLS and sockets and nothing about pins, trust or policy. It
never validates what it receives: the chain is captured exactly as served (DER,
in order) and judged offline by the pure core.

A failure of one target is a value (`ProbeFailure`), never an exception: a
nursery child raising would cancel its siblings. Every foreign exception is
translated in one place, `classify`. Cancellation (`trio.Cancelled`,
`KeyboardInterrupt`) is never caught.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import re
import socket
import ssl
import sys
import warnings
from collections.abc import Sequence
from typing import Any, cast

import trio

# The value types live in the shared model (the pure core reads them); they
# are re-exported here for callers of the probe.
from scanner.model import Observation, Phase, ProbeErrorKind, ProbeFailure

__all__ = [
    "ALPN_PROTOCOLS",
    "FOREIGN_EXCEPTIONS",
    "Observation",
    "Phase",
    "ProbeErrorKind",
    "ProbeFailure",
    "ProbeResult",
    "classify",
    "make_client_context",
    "probe",
    "probe_address",
    "probe_addresses",
    "resolve",
    "served_chain",
]

# Seconds granted to closing a connection after a completed handshake.
CLOSE_GRACE_SECONDS = 0.5

# OpenSSL's SSL_OP_LEGACY_SERVER_CONNECT (the `ssl` module only names it from 3.12).
_OP_LEGACY_SERVER_CONNECT = 0x4

ALPN_PROTOCOLS = ("h2", "http/1.1")


ProbeResult = Observation | ProbeFailure


# --------------------------------------------------------------------------- context


def make_client_context(
    *, client_cert: str | None = None, client_key: str | None = None
) -> ssl.SSLContext:
    """The one client context shared by every probe of a scan.

    Nothing is verified here (no CA store is loaded: loading one costs a large
    share of each handshake's CPU, and the chain is validated offline anyway).
    TLS 1.0 and 1.1 stay allowed and the OpenSSL security level is 0 so that
    old or weakly configured servers still complete a handshake and their
    chain can be audited; weak keys and signatures are findings of the core,
    not handshake failures. Servers without secure renegotiation (RFC 5746)
    are accepted for the same reason.
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TLSVersion.TLSv1 is deprecated
        try:
            ctx.minimum_version = ssl.TLSVersion.TLSv1
        except (ValueError, ssl.SSLError):  # pragma: no cover - OpenSSL built without it
            ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.options |= _OP_LEGACY_SERVER_CONNECT
    ctx.set_alpn_protocols(list(ALPN_PROTOCOLS))
    if client_cert is not None:
        ctx.load_cert_chain(client_cert, client_key)
    return ctx


# --------------------------------------------------------------------------- chain


def served_chain(ssl_object: ssl.SSLObject) -> tuple[bytes, ...]:
    """The certificates the peer sent, DER, in the order sent, unverified.

    Python 3.13 made ``get_unverified_chain`` public; before that it exists
    only on the private ``_sslobj`` (3.10-3.12), returning ``_ssl.Certificate``
    objects rather than bytes.
    """
    if sys.version_info >= (3, 13):
        items: Sequence[object] | None = ssl_object.get_unverified_chain()
    else:
        items = cast(Any, ssl_object)._sslobj.get_unverified_chain()
    return tuple(_der_of(item) for item in items or ())


def _der_of(item: object) -> bytes:
    if isinstance(item, bytes):
        return item
    import _ssl

    return cast(Any, item).public_bytes(_ssl.ENCODING_DER)  # type: ignore[no-any-return]


def _ssl_object_of(stream: trio.SSLStream[trio.SocketStream]) -> ssl.SSLObject:
    """The one place that reaches into trio's SSLStream for its SSLObject."""
    return stream._ssl_object


# --------------------------------------------------------------------------- classify

# OpenSSL reason mnemonics of received alerts: SSLV3_ALERT_HANDSHAKE_FAILURE,
# TLSV1_ALERT_PROTOCOL_VERSION, TLSV13_ALERT_CERTIFICATE_REQUIRED, and the
# RFC 6066 ones without "ALERT": TLSV1_UNRECOGNIZED_NAME, ...
_ALERT_REASON = re.compile(r"^(?:SSLV3_ALERT|TLSV13_ALERT|TLSV1_ALERT|TLSV1)_([A-Z_]+)$")
# The same, from OpenSSL's message text when Python has no mnemonic for it.
_ALERT_TEXT = re.compile(r"\b(?:sslv3|tlsv13|tlsv1) (?:alert )?([a-z][a-z ]*[a-z])")
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

# The exceptions a probe translates; anything else is a bug and propagates.
FOREIGN_EXCEPTIONS: tuple[type[Exception], ...] = (
    OSError,  # includes ssl.SSLError, socket.gaierror, ConnectionError, TimeoutError
    trio.BrokenResourceError,
    trio.ClosedResourceError,
    trio.TooSlowError,
    UnicodeError,  # a name that cannot be IDNA-encoded (a ValueError: listed first)
    ValueError,  # arguments ssl refuses: an empty SNI name, one with a leading dot
    OverflowError,  # a port outside 0-65535
)


def _ssl_kind(exc: ssl.SSLError) -> tuple[ProbeErrorKind, str | None]:
    if isinstance(exc, (ssl.SSLEOFError, ssl.SSLZeroReturnError)):
        return ProbeErrorKind.CLOSED, None
    reason = exc.reason or ""
    alert = _alert_name(reason, str(exc))
    if alert is not None:
        return ProbeErrorKind.TLS_ALERT, alert
    if reason in _NOT_TLS_REASONS:
        return ProbeErrorKind.NOT_TLS, None
    if reason in _VERSION_REASONS or "no protocols available" in str(exc):
        return ProbeErrorKind.TLS_VERSION, None
    if reason in _CLOSED_REASONS:
        return ProbeErrorKind.CLOSED, None
    return ProbeErrorKind.PROTOCOL_ERROR, None


def _alert_name(reason: str, message: str) -> str | None:
    match = _ALERT_REASON.match(reason)
    if match:
        return match.group(1).lower()
    if not reason:
        text = _ALERT_TEXT.search(message)
        if text:
            return text.group(1).replace(" ", "_")
    return None


def _os_kind(exc: OSError) -> ProbeErrorKind:
    if isinstance(exc, ConnectionRefusedError):
        return ProbeErrorKind.REFUSED
    if isinstance(exc, (ConnectionResetError, ConnectionAbortedError, BrokenPipeError)):
        return ProbeErrorKind.RESET
    if isinstance(exc, TimeoutError):
        return ProbeErrorKind.TIMEOUT
    if exc.errno in _UNREACHABLE_ERRNOS:
        return ProbeErrorKind.UNREACHABLE
    return ProbeErrorKind.OS_ERROR


def _kind_of(exc: BaseException) -> tuple[ProbeErrorKind, str | None]:
    """The table: one foreign exception (already unwrapped) → kind and alert."""
    if isinstance(exc, (socket.gaierror, socket.herror, UnicodeError)):
        return ProbeErrorKind.DNS, None
    if isinstance(exc, ssl.SSLError):  # before OSError: SSLError is one
        return _ssl_kind(exc)
    if isinstance(exc, OSError):
        return _os_kind(exc), None
    if isinstance(exc, trio.TooSlowError):
        return ProbeErrorKind.TIMEOUT, None
    if isinstance(exc, (ValueError, OverflowError)):
        return ProbeErrorKind.OS_ERROR, None  # refused arguments, like EINVAL
    # A broken or closed stream with no underlying cause: the peer went away.
    return ProbeErrorKind.CLOSED, None


def _unwrap(exc: BaseException) -> BaseException:
    """trio raises BrokenResourceError *from* the socket or SSL error: use the cause."""
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
    kind, alert = _kind_of(cause)
    if kind is ProbeErrorKind.TIMEOUT:
        where = phase.value if phase is not None else "probe"
        detail = f"timed out during {where}"
    else:
        detail = _describe(cause)
    return ProbeFailure(kind, detail, address=address, alert=alert, phase=phase)


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return text if text else type(exc).__name__


# --------------------------------------------------------------------------- probing


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


async def _connect(address: str, port: int) -> trio.SocketStream:
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
    return trio.SocketStream(sock)


async def _close(stream: trio.abc.AsyncResource | None) -> None:
    """Close promptly: no waiting for the peer's close_notify, bounded in time."""
    if stream is None:
        return
    with trio.move_on_after(CLOSE_GRACE_SECONDS) as scope:
        # The chain is already captured: how the peer hangs up is irrelevant.
        with contextlib.suppress(*FOREIGN_EXCEPTIONS):
            await stream.aclose()
    if scope.cancelled_caught:
        await trio.aclose_forcefully(stream)


async def _probe_until(
    address: str, port: int, server_hostname: str | None, ctx: ssl.SSLContext, deadline: float
) -> ProbeResult:
    phase = Phase.CONNECT
    tcp: trio.SocketStream | None = None
    tls: trio.SSLStream[trio.SocketStream] | None = None
    try:
        with trio.fail_at(deadline):
            started = trio.current_time()
            tcp = await _connect(address, port)
            connected = trio.current_time()
            phase = Phase.HANDSHAKE
            tls = trio.SSLStream(tcp, ctx, server_hostname=server_hostname, https_compatible=True)
            await tls.do_handshake()
            finished = trio.current_time()
            ssl_object = _ssl_object_of(tls)
            cipher = ssl_object.cipher()
            return Observation(
                address=address,
                port=port,
                served=served_chain(ssl_object),
                tls_version=ssl_object.version() or "",
                cipher=cipher[0] if cipher else "",
                alpn=ssl_object.selected_alpn_protocol(),
                connect_seconds=connected - started,
                handshake_seconds=finished - connected,
            )
    except FOREIGN_EXCEPTIONS as exc:
        return classify(exc, address=address, phase=phase)
    finally:
        await _close(tls if tls is not None else tcp)


async def probe_address(
    address: str,
    port: int,
    server_hostname: str | None,
    ctx: ssl.SSLContext,
    *,
    timeout: float,
) -> ProbeResult:
    """Connect to one IP address and handshake, sending `server_hostname` as SNI
    (None: no SNI). `timeout` bounds connect + handshake together."""
    return await _probe_until(address, port, server_hostname, ctx, trio.current_time() + timeout)


async def probe(
    host: str,
    port: int,
    sni: str | None,
    ctx: ssl.SSLContext,
    *,
    timeout: float,
    all_addresses: bool = False,
) -> list[ProbeResult]:
    """Resolve `host` and probe its first address, or every address concurrently.

    `timeout` bounds DNS + connect + handshake. The result has one element per
    probed address, in resolver order; a name that does not resolve gives one
    `ProbeFailure` of kind DNS (or TIMEOUT when the lookup ran out of time).
    """
    deadline = trio.current_time() + timeout
    try:
        with trio.fail_at(deadline):
            addresses = await resolve(host, port)
    except FOREIGN_EXCEPTIONS as exc:
        return [classify(exc, phase=Phase.DNS)]
    if not addresses:
        return [ProbeFailure(ProbeErrorKind.DNS, f"{host} has no address", phase=Phase.DNS)]
    targets = addresses if all_addresses else addresses[:1]
    return await _probe_each(targets, port, sni, ctx, deadline)


async def probe_addresses(
    addresses: Sequence[str],
    port: int,
    sni: str | None,
    ctx: ssl.SSLContext,
    *,
    timeout: float,
) -> list[ProbeResult]:
    """Probe IP addresses concurrently, sharing one deadline; results in the given order."""
    return await _probe_each(addresses, port, sni, ctx, trio.current_time() + timeout)


async def _probe_each(
    addresses: Sequence[str],
    port: int,
    sni: str | None,
    ctx: ssl.SSLContext,
    deadline: float,
) -> list[ProbeResult]:
    results: list[ProbeResult | None] = [None] * len(addresses)

    async def one(index: int, address: str) -> None:
        results[index] = await _probe_until(address, port, sni, ctx, deadline)

    async with trio.open_nursery() as nursery:
        for index, address in enumerate(addresses):
            nursery.start_soon(one, index, address)
    return [result for result in results if result is not None]
