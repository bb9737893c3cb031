"""Certificate Transparency: the SCTs a leaf comes with, and whether they
satisfy the Chrome and Apple CT policies. Pure: bytes, a log list and `now`.

SCTs arrive three ways (RFC 6962 §3.3): embedded in the certificate (the
precertificate SCT extension), in the TLS ``signed_certificate_timestamp``
extension, and in a stapled OCSP response's single-response extension. Each
is a ``SignedCertificateTimestampList``; this module reads them all the same
way, bounded, without verifying log signatures (that needs the logs' keys
and the precertificate; the judgement here is about counts, logs and
operators, which is what the policies count).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

MAX_SCTS = 64  # a list longer than this is cut (real certificates carry 2-5)
_EXT_SCT = 18


# --------------------------------------------------------------------------- wire


class _Reader:
    """A bounded cursor over TLS-encoded bytes; ValueError on any overrun."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.at = 0

    def take(self, count: int) -> bytes:
        if count < 0 or self.at + count > len(self.data):
            raise ValueError("truncated")
        chunk = self.data[self.at : self.at + count]
        self.at += count
        return chunk

    def number(self, size: int) -> int:
        return int.from_bytes(self.take(size), "big")

    def vector(self, size: int) -> bytes:
        return self.take(self.number(size))

    @property
    def done(self) -> bool:
        return self.at >= len(self.data)


def _extension(extensions: bytes, wanted: int) -> bytes | None:
    reader = _Reader(extensions)
    while not reader.done:
        kind = reader.number(2)
        body = reader.vector(2)
        if kind == wanted:
            return body
    return None


def _server_hello_extensions(message: bytes) -> bytes:
    reader = _Reader(_Reader(message[1:]).vector(3))  # type, 24-bit length, body
    reader.take(2 + 32)  # legacy_version, random
    reader.vector(1)  # session id
    reader.take(2 + 1)  # cipher suite, compression method
    return b"" if reader.done else reader.vector(2)


def _certificate13_leaf_extensions(message: bytes) -> bytes:
    reader = _Reader(_Reader(message[1:]).vector(3))
    reader.vector(1)  # certificate_request_context
    entries = _Reader(reader.vector(3))
    if entries.done:
        return b""
    entries.vector(3)  # the leaf's cert_data
    return entries.vector(2)


def tls_extension_scts(
    server_hello: bytes | None, certificate: bytes | None, *, tls13: bool
) -> bytes:
    """The SignedCertificateTimestampList a server sent in the TLS extension,
    from the handshake messages that carry it: the ServerHello up to TLS 1.2,
    the leaf's CertificateEntry in TLS 1.3 (RFC 8446 §4.4.2). b"" when none
    or when the message does not parse (the handshake itself accepted it)."""
    try:
        if tls13:
            if certificate is None:
                return b""
            found = _extension(_certificate13_leaf_extensions(certificate), _EXT_SCT)
        else:
            if server_hello is None:
                return b""
            found = _extension(_server_hello_extensions(server_hello), _EXT_SCT)
    except ValueError:
        return b""
    return found or b""


class SctSource(str, enum.Enum):
    EMBEDDED = "embedded"
    TLS = "tls"
    OCSP = "ocsp"


@dataclass(frozen=True)
class Sct:
    """One SCT as read (its signature is not verified)."""

    log_id: bytes  # SHA-256 of the log's key
    timestamp: datetime  # aware, UTC
    source: SctSource
    version: int = 0  # v1 = 0


def parse_sct_list(data: bytes, source: SctSource) -> tuple[Sct, ...]:
    """The SCTs of a TLS-encoded SignedCertificateTimestampList (RFC 6962
    §3.3); a list that does not parse yields the SCTs read before the fault.
    SCT versions other than v1 are skipped (their layout is unknown)."""
    scts: list[Sct] = []
    try:
        outer = _Reader(data)
        items = _Reader(outer.vector(2))
        while not items.done and len(scts) < MAX_SCTS:
            one = _Reader(items.vector(2))
            version = one.number(1)
            if version != 0:
                continue
            log_id = one.take(32)
            millis = one.number(8)
            try:
                stamp = datetime.fromtimestamp(millis / 1000, tz=timezone.utc)
            except (OverflowError, ValueError, OSError):
                continue
            scts.append(Sct(log_id, stamp, source, version))
    except ValueError:
        pass
    return tuple(scts)


def sct_list_of_extension(value: bytes) -> bytes:
    """The SCT list inside a certificate's or OCSP response's SCT extension
    value: an OCTET STRING wrapping the TLS-encoded list (RFC 6962 §3.3)."""
    if len(value) < 2 or value[0] != 0x04:
        return b""
    size, at = value[1], 2
    if size & 0x80:
        count = size & 0x7F
        if count == 0 or count > 3 or len(value) < 2 + count:
            return b""
        size, at = int.from_bytes(value[2 : 2 + count], "big"), 2 + count
    return value[at : at + size] if at + size <= len(value) else b""


def all_scts(lists: Sequence[tuple[bytes, SctSource]]) -> tuple[Sct, ...]:
    """Every SCT of several lists, in order, duplicates kept (policies count logs)."""
    out: list[Sct] = []
    for data, source in lists:
        out.extend(parse_sct_list(data, source))
    return tuple(out)
