"""Fleet servers that misbehave below TLS: raw TCP handlers and hand-built records.

A TLS library refuses to send a Certificate message whose DER is garbage, or
to hang up half-way through one, so these handlers speak the TLS 1.2 record
layer themselves. Up to and including the Certificate message a TLS 1.2
handshake is plaintext, and easy to build with `struct`:

- ``endless``: after the ClientHello, an endless stream of handshake records
  full of HelloRequest messages, which a client in the middle of a handshake
  must ignore; it never gets a ServerHello and never runs out of input.
- ``midclose``: a ServerHello and the first half of a Certificate message,
  then a clean close (FIN).
- ``alert``: a fatal ``handshake_failure`` alert instead of a ServerHello.
- ``garbagecert``: a ServerHello and a Certificate message whose certificate
  is bytes that are not DER.
- ``truncatedcert``: the same with the first half of a real certificate's DER.
- ``blackhole``: a listener that never accepts and whose accept queue is kept
  full, so the kernel drops every SYN: a connect that never completes, on
  loopback (a routable but unreachable address would leave the machine).

Every handler is bounded in bytes and time (`scanner.fleet.server` adds a
lifetime to every connection). Nothing here imports the server module: it
maps `Behaviour` values to these handlers.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import socket
import struct
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import trio
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from scanner.fleet.pki import Issued, _der

__all__ = [
    "ALERT",
    "BLACKHOLE_FILLERS",
    "CERTIFICATE",
    "CLIENT_HELLO",
    "CLIENT_HELLO_MAX",
    "ENDLESS_MAX_BYTES",
    "ENDLESS_PAUSE",
    "FATAL",
    "GARBAGE_DER",
    "HANDSHAKE",
    "HANDSHAKE_FAILURE",
    "HELLO_REQUEST",
    "MAX_RECORD",
    "READ_SECONDS",
    "SERVER_HELLO",
    "TLS12",
    "ClientHello",
    "alert",
    "alert_handshake_failure",
    "blackhole",
    "certificate_message",
    "duplicate_basic_constraints",
    "endless",
    "garbage_certificate",
    "handshake_message",
    "midclose",
    "parse_client_hello",
    "read_client_hello",
    "record",
    "sample_certificate",
    "san_with_trailing_byte",
    "server_hello",
    "truncated_certificate",
    "with_duplicate_extension",
    "with_negative_serial",
]

# Record content types and handshake message types (RFC 5246 §6.2.1, §7.4).
HANDSHAKE = 22
ALERT = 21
CLIENT_HELLO = 1
SERVER_HELLO = 2
CERTIFICATE = 11
HELLO_REQUEST = 0
TLS12 = 0x0303
MAX_RECORD = 1 << 14
FATAL = 2
HANDSHAKE_FAILURE = 40

# Cipher suites a hand-built ServerHello picks from, best first, among those
# offered: ECDHE-RSA / ECDHE-ECDSA / RSA with AES-128-GCM, then CBC.
_SUITES = (0xC02F, 0xC02B, 0x009C, 0xC013, 0xC009, 0x002F)
_RENEGOTIATION_INFO = 0xFF01
_SCSV = 0x00FF

READ_SECONDS = 10.0
CLIENT_HELLO_MAX = 1 << 16  # bytes read while waiting for a whole ClientHello
# An endless stream: one 16 KiB record every ENDLESS_PAUSE seconds (~3 MB/s, so
# that it costs the machine little), until the client leaves or the connection
# lifetime ends; ENDLESS_MAX_BYTES bounds it all the same.
ENDLESS_PAUSE = 0.005
ENDLESS_MAX_BYTES = 1 << 30
BLACKHOLE_FILLERS = 4  # connections kept in a listen(0) accept queue to fill it
# A header announcing a 64 KiB certificate, then bytes that are not DER.
GARBAGE_DER = b"\x30\x83\x01\x00\x00" + bytes(range(256)) * 4


# --------------------------------------------------------------------------- records


def record(content_type: int, body: bytes, version: int = TLS12) -> bytes:
    """`body` as records of `content_type`, split at the 16 KiB record limit."""
    chunks = [body[i : i + MAX_RECORD] for i in range(0, len(body), MAX_RECORD)] or [b""]
    return b"".join(struct.pack("!BHH", content_type, version, len(c)) + c for c in chunks)


def handshake_message(msg_type: int, body: bytes) -> bytes:
    return struct.pack("!B", msg_type) + len(body).to_bytes(3, "big") + body


def alert(description: int, level: int = FATAL) -> bytes:
    return record(ALERT, struct.pack("!BB", level, description))


@dataclass(frozen=True)
class ClientHello:
    cipher_suites: tuple[int, ...]
    extensions: tuple[int, ...]


def parse_client_hello(data: bytes) -> ClientHello | None:
    """Cipher suites and extension types of the ClientHello at the start of
    `data` (handshake records), or None when `data` does not hold a whole one."""
    body = bytearray()
    offset = 0
    while offset + 5 <= len(data):
        content_type, _version, length = struct.unpack_from("!BHH", data, offset)
        if content_type != HANDSHAKE:
            return None
        body += data[offset + 5 : offset + 5 + length]
        offset += 5 + length
    if len(body) < 4 or body[0] != CLIENT_HELLO:
        return None
    length = int.from_bytes(body[1:4], "big")
    hello = bytes(body[4 : 4 + length])
    if len(hello) < length:
        return None
    try:
        return _client_hello_fields(hello)
    except (IndexError, struct.error):
        return None


def _client_hello_fields(hello: bytes) -> ClientHello:
    at = 2 + 32  # client_version, random
    at += 1 + hello[at]  # session_id
    (suites_length,) = struct.unpack_from("!H", hello, at)
    suites = struct.unpack_from(f"!{suites_length // 2}H", hello, at + 2)
    at += 2 + suites_length
    at += 1 + hello[at]  # compression_methods
    extensions: list[int] = []
    if at + 2 <= len(hello):
        (total,) = struct.unpack_from("!H", hello, at)
        at += 2
        end = min(at + total, len(hello))
        while at + 4 <= end:
            ext_type, ext_length = struct.unpack_from("!HH", hello, at)
            extensions.append(ext_type)
            at += 4 + ext_length
    return ClientHello(tuple(suites), tuple(extensions))


def server_hello(client: ClientHello) -> bytes:
    """A TLS 1.2 ServerHello record answering `client` (no session, no resumption)."""
    suite = next((s for s in _SUITES if s in client.cipher_suites), None)
    if suite is None:
        suite = next((s for s in client.cipher_suites if s != _SCSV), _SUITES[0])
    extensions = b""
    if _RENEGOTIATION_INFO in client.extensions or _SCSV in client.cipher_suites:
        extensions = struct.pack("!HHB", _RENEGOTIATION_INFO, 1, 0)  # secure renegotiation
    # The random must not end in the TLS 1.3 downgrade sentinel: a hash never does by chance.
    random = hashlib.sha256(os.urandom(16)).digest()
    body = struct.pack("!H", TLS12) + random + b"\x00" + struct.pack("!HB", suite, 0)
    body += struct.pack("!H", len(extensions)) + extensions
    return record(HANDSHAKE, handshake_message(SERVER_HELLO, body))


def certificate_message(ders: Sequence[bytes]) -> bytes:
    """The Certificate handshake message (not yet in records) carrying `ders` as they are."""
    entries = b"".join(len(der).to_bytes(3, "big") + der for der in ders)
    return handshake_message(CERTIFICATE, len(entries).to_bytes(3, "big") + entries)


@functools.lru_cache(maxsize=1)
def sample_certificate() -> bytes:
    """A real self-signed certificate (DER), made once per process."""
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "truncated.fleet.test")])
    start = datetime.now(timezone.utc) - timedelta(days=1)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=90))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("truncated.fleet.test")]), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.DER)


# --------------------------------------------------------------------------- handlers


async def read_client_hello(stream: trio.abc.ReceiveStream) -> ClientHello | None:
    """Read until a whole ClientHello has arrived (bounded in bytes and time);
    None when the client sent something else, or stopped."""
    data = b""
    with trio.move_on_after(READ_SECONDS):
        while len(data) < CLIENT_HELLO_MAX:
            chunk = await stream.receive_some()
            if not chunk:
                return None
            data += chunk
            hello = parse_client_hello(data)
            if hello is not None:
                return hello
            if data[:1] != bytes([HANDSHAKE]):
                return None
    return None


async def _drain(stream: trio.abc.ReceiveStream) -> None:
    """Read and discard until the client closes (bounded): closing with unread
    data would make the kernel send a reset instead of the intended close."""
    with trio.move_on_after(READ_SECONDS):
        for _ in range(64):
            if not await stream.receive_some():
                return


async def endless(stream: trio.SocketStream) -> None:
    hello = await read_client_hello(stream)
    if hello is None:
        return
    chunk = record(HANDSHAKE, handshake_message(HELLO_REQUEST, b"") * (MAX_RECORD // 4))
    sent = 0
    while sent < ENDLESS_MAX_BYTES:
        await stream.send_all(chunk)
        sent += len(chunk)
        await trio.sleep(ENDLESS_PAUSE)


async def midclose(stream: trio.SocketStream) -> None:
    hello = await read_client_hello(stream)
    if hello is None:
        return
    message = certificate_message([sample_certificate()])
    half = message[: len(message) // 2]
    await stream.send_all(server_hello(hello) + record(HANDSHAKE, half))
    await stream.send_eof()
    await _drain(stream)


async def alert_handshake_failure(stream: trio.SocketStream) -> None:
    if await read_client_hello(stream) is None:
        return
    await stream.send_all(alert(HANDSHAKE_FAILURE))
    await stream.send_eof()
    await _drain(stream)


async def _certificate_of(stream: trio.SocketStream, der: bytes) -> None:
    hello = await read_client_hello(stream)
    if hello is None:
        return
    message = record(HANDSHAKE, certificate_message([der]))
    await stream.send_all(server_hello(hello) + message)
    await _drain(stream)  # the client's alert, then its close


async def garbage_certificate(stream: trio.SocketStream) -> None:
    await _certificate_of(stream, GARBAGE_DER)


async def truncated_certificate(stream: trio.SocketStream) -> None:
    der = sample_certificate()
    await _certificate_of(stream, der[: len(der) // 2])


async def blackhole(listener: trio.SocketListener) -> None:
    """Never accept; keep the accept queue full so new SYNs are dropped. Runs
    until cancelled. The listener must be listening with a backlog of 0."""
    name = listener.socket.getsockname()
    family = listener.socket.family
    fillers: list[socket.socket] = []
    try:
        for _ in range(BLACKHOLE_FILLERS):
            sock = socket.socket(family, socket.SOCK_STREAM)
            fillers.append(sock)
            sock.setblocking(False)
            sock.connect_ex(name[:2])
        await trio.sleep_forever()
    finally:
        for sock in fillers:
            with contextlib.suppress(OSError):
                sock.close()


# --------------------------------------------------------------------------- certificates


# A SAN extension that OpenSSL reads (it ignores the byte after the names)
# and strict DER parsers refuse: the certificate is served, then does not parse.
def san_with_trailing_byte(name: str) -> bytes:
    entry = b"\x82" + bytes([len(name)]) + name.encode("ascii")
    return b"\x30" + bytes([len(entry)]) + entry + b"\x00"


def with_negative_serial(issued: Issued, issuer: Issued) -> Issued:
    """`issued` with its (positive, 8-byte) serial made negative, signed again
    by `issuer`. The library refuses to build such a certificate; servers and
    clients built on OpenSSL still send and accept it."""
    cert = issued.cert
    serial = cert.serial_number
    if not 56 <= serial.bit_length() <= 63:
        raise ValueError("with_negative_serial needs a serial whose DER is 8 bytes long")
    encoded = b"\x02\x08" + serial.to_bytes(8, "big")
    tbs = cert.tbs_certificate_bytes
    if tbs.count(encoded) != 1:
        raise ValueError("the serial's encoding is not unique in the TBS certificate")
    tbs = tbs.replace(encoded, encoded[:2] + bytes([encoded[2] | 0x80]) + encoded[3:])
    return Issued(_sign_again(cert, tbs, issuer), issued.key)


def _sign_again(cert: x509.Certificate, tbs: bytes, issuer: Issued) -> x509.Certificate:
    der = cert.public_bytes(serialization.Encoding.DER)
    original_tbs = cert.tbs_certificate_bytes
    start = der.index(original_tbs) + len(original_tbs)
    algorithm = der[start : start + 2 + der[start + 1]]  # AlgorithmIdentifier, short form
    key = issuer.key
    if isinstance(key, ec.EllipticCurvePrivateKey):
        signature = key.sign(tbs, ec.ECDSA(hashes.SHA256()))
    elif isinstance(key, rsa.RSAPrivateKey):
        signature = key.sign(tbs, padding.PKCS1v15(), hashes.SHA256())
    else:
        signature = key.sign(tbs)
    signed = _der(0x30, tbs + algorithm + _der(0x03, b"\x00" + signature))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the negative serial, on purpose
        return x509.load_der_x509_certificate(signed)


_PLACEHOLDER_OID = x509.ObjectIdentifier("2.5.29.99")  # encodes as long as basicConstraints'
_PLACEHOLDER = b"\x06\x03\x55\x1d\x63"
_BASIC_CONSTRAINTS = b"\x06\x03\x55\x1d\x13"


def duplicate_basic_constraints() -> tuple[x509.ExtensionType, bool]:
    """An extension to issue a certificate with; `with_duplicate_extension` then
    turns it into a second basicConstraints extension."""
    return x509.UnrecognizedExtension(_PLACEHOLDER_OID, b"\x30\x00"), False


def with_duplicate_extension(issued: Issued, issuer: Issued) -> Issued:
    """`issued` (made with `duplicate_basic_constraints`) with two basicConstraints
    extensions, signed again by `issuer`: RFC 5280 forbids it, OpenSSL still
    sends it, and cryptography refuses to read its extensions."""
    tbs = issued.cert.tbs_certificate_bytes
    if tbs.count(_PLACEHOLDER) != 1:
        raise ValueError("issue the certificate with duplicate_basic_constraints() first")
    return Issued(
        _sign_again(issued.cert, tbs.replace(_PLACEHOLDER, _BASIC_CONSTRAINTS), issuer), issued.key
    )
