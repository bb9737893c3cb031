"""What the network gave: filled in by the probe, read by the pure core."""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["Observation", "Phase", "ProbeErrorKind", "ProbeFailure"]


class ProbeErrorKind(str, enum.Enum):
    """Why a probe failed: a closed set, used as the ``reason`` label."""

    DNS = "dns"  # the name does not resolve (or has no address)
    REFUSED = "refused"  # nothing listens: TCP RST to the SYN
    TIMEOUT = "timeout"  # the deadline passed (the detail names the phase)
    RESET = "reset"  # the peer reset the connection
    UNREACHABLE = "unreachable"  # no route to the network or host
    TLS_ALERT = "tls_alert"  # the peer sent a TLS alert (`ProbeFailure.alert`)
    NOT_TLS = "not_tls"  # the peer answered, but not with TLS (HTTP, garbage)
    PROTOCOL_ERROR = "protocol_error"  # any other TLS-level failure
    TLS_VERSION = "tls_version"  # no TLS version in common
    CLOSED = "closed"  # the peer closed the connection during the handshake
    OS_ERROR = "os_error"  # any other socket error
    STARTTLS_REFUSED = "starttls_refused"  # the server does not offer or refuses STARTTLS
    PROXY_REFUSED = "proxy_refused"  # the proxy would not connect (the detail names it)


class Phase(str, enum.Enum):
    """Which step of a probe was running when it failed."""

    DNS = "dns"
    CONNECT = "connect"
    PROXY = "proxy"  # asking the proxy for a tunnel
    STARTTLS = "starttls"  # the plain-text opening before the handshake
    HANDSHAKE = "handshake"


@dataclass(frozen=True, slots=True)
class ProbeFailure:
    """One failed probe of one address (or of a name that did not resolve)."""

    kind: ProbeErrorKind
    detail: str  # the original message, or which phase timed out
    address: str | None = None  # None when no address was reached (DNS)
    alert: str | None = None  # TLS alert name when kind is TLS_ALERT, e.g. "handshake_failure"
    phase: Phase | None = None


@dataclass(frozen=True, slots=True)
class Observation:
    """A completed handshake with one address: what was served, unverified."""

    address: str
    port: int
    served: tuple[bytes, ...]  # DER, exactly as served, in the order served
    tls_version: str  # e.g. "TLSv1.3"
    cipher: str  # OpenSSL name, e.g. "TLS_AES_256_GCM_SHA384"
    alpn: str | None
    connect_seconds: float  # TCP connect (and the proxy's tunnel, if any)
    handshake_seconds: float  # STARTTLS opening (if any) and TLS handshake
    # Stapled OCSP response, DER: None = not requested, b"" = requested, none stapled.
    ocsp_response: bytes | None = None
    # SignedCertificateTimestampList of the TLS extension (RFC 6962 §3.3), as
    # sent: None = not requested, b"" = requested, none sent.
    tls_scts: bytes | None = None
    starttls: str | None = None  # the STARTTLS protocol spoken first, e.g. "smtp"
    proxy: str | None = None  # the proxy URL (without credentials) the probe went through
