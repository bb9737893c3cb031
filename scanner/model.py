"""Frozen value objects and enums shared by every layer.

Nothing here does I/O or reads the clock; every type is immutable so results
can be shared between the engine, the exporters and the state file safely.
"""

from __future__ import annotations

import base64
import enum
import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from scanner.policy import ClientPolicy


class Severity(str, enum.Enum):
    """How bad a finding is. Ordered: ``INFO < WARNING < CRITICAL``."""

    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]


_SEVERITY_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}


class Check(str, enum.Enum):
    """The closed catalogue of checks (DESIGN §4). The value is the ``check`` label."""

    PIN_MISMATCH = "pin_mismatch"
    PIN_OUTSIDE_PATH = "pin_outside_path"
    PINSET_EXPIRED = "pinset_expired"
    PINSET_EXPIRING = "pinset_expiring"
    SINGLE_PIN = "single_pin"
    NO_BACKUP_PIN = "no_backup_pin"
    LEAF_ONLY_PIN = "leaf_only_pin"
    LEGACY_SHA1_PIN = "legacy_sha1_pin"
    UNRESOLVED_PIN = "unresolved_pin"
    CERT_EXPIRED = "cert_expired"
    CERT_EXPIRING = "cert_expiring"
    CERT_NOT_YET_VALID = "cert_not_yet_valid"
    CHAIN_UNTRUSTED = "chain_untrusted"
    HOSTNAME_MISMATCH = "hostname_mismatch"
    CHAIN_INCOMPLETE = "chain_incomplete"
    CHAIN_MISORDERED = "chain_misordered"
    CHAIN_EXTRA_CERTS = "chain_extra_certs"
    CERT_UNPARSABLE = "cert_unparsable"
    WEAK_KEY = "weak_key"
    WEAK_SIGNATURE = "weak_signature"
    UNREACHABLE = "unreachable"
    NOT_SCANNED = "not_scanned"
    KEY_CHANGED = "key_changed"
    ISSUER_CHANGED = "issuer_changed"
    CHAIN_CHANGED = "chain_changed"
    CLIENT_PIN_FAILURE = "client_pin_failure"
    CLIENT_CONFIG_ERROR = "client_config_error"
    CLIENT_AMBIGUOUS = "client_ambiguous"
    PINS_NOT_APPLIED = "pins_not_applied"
    PINS_BYPASSED = "pins_bypassed"
    DEAD_PIN = "dead_pin"


class HashAlg(str, enum.Enum):
    """Digest algorithm of a pin. ``sha1`` is legacy (OkHttp only)."""

    SHA256 = "sha256"
    SHA1 = "sha1"

    @property
    def digest_size(self) -> int:
        return 32 if self is HashAlg.SHA256 else 20


class PinFormat(str, enum.Enum):
    """Spellings a pin can be written in (``pinaudit pin --format``)."""

    OKHTTP = "okhttp"  # sha256/B64
    HPKP = "hpkp"  # pin-sha256="B64"
    ANDROID = "android"  # <pin digest="SHA-256">B64</pin>
    PLAIN = "plain"  # B64
    HEX = "hex"  # lower-case hex digest


class KeyType(str, enum.Enum):
    RSA = "rsa"
    EC = "ec"
    ED25519 = "ed25519"
    ED448 = "ed448"
    DSA = "dsa"
    OTHER = "other"


class TrustKind(str, enum.Enum):
    CERTIFI = "certifi"
    SYSTEM = "system"
    BUNDLE = "bundle"  # a PEM file path


@dataclass(frozen=True, order=True)
class Pin:
    """An SPKI pin: the digest of a certificate's DER SubjectPublicKeyInfo."""

    alg: HashAlg
    digest: bytes

    @property
    def b64(self) -> str:
        return base64.b64encode(self.digest).decode("ascii")

    def __str__(self) -> str:
        """The OkHttp spelling, ``sha256/B64``: the one used in every report."""
        return f"{self.alg.value}/{self.b64}"


@dataclass(frozen=True)
class Location:
    """Where something was written: 1-based line and column."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True)
class TrustSpec:
    """Which trust store validates an endpoint's chain."""

    kind: TrustKind
    path: str | None = None  # absolute path for BUNDLE

    def __str__(self) -> str:
        return self.path if self.kind is TrustKind.BUNDLE and self.path else self.kind.value


@dataclass(frozen=True)
class Pinset:
    """A named set of pins with an optional enforcement end date.

    ``expires`` follows Android ``pin-set expiration`` / TrustKit
    ``TSKExpirationDate``: the pins are enforced *before* 00:00 UTC of that
    date and not from then on.
    """

    name: str
    pins: tuple[Pin, ...]
    expires: date | None = None
    location: Location | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Endpoint:
    """One TLS endpoint from the inventory, with every default applied."""

    name: str
    host: str
    port: int
    sni: str | None  # name sent in the ClientHello; None = no SNI
    pinset: Pinset | None  # effective pins: named pinset plus inline pins
    timeout: float = 5.0  # seconds: DNS + connect + handshake
    warn_days: int = 30
    critical_days: int = 7
    pinset_warn_days: int = 60
    trust: TrustSpec = TrustSpec(TrustKind.CERTIFI)
    labels: tuple[tuple[str, str], ...] = ()
    location: Location | None = field(default=None, compare=False)
    all_addresses: bool = False  # probe every resolved address, not only the first
    client_cert: str | None = None  # PEM chain for mTLS endpoints
    client_key: str | None = None  # its key (None: in the same file)
    # client pin configurations that apply (inventory `from:`/`client:` pin-sets)
    client_policies: tuple[ClientPolicy, ...] = ()

    @property
    def server_name(self) -> str:
        """The name the certificate must be valid for (SNI, else the host)."""
        return self.sni or self.host

    @property
    def label_map(self) -> dict[str, str]:
        return dict(self.labels)


@dataclass(frozen=True)
class Inventory:
    endpoints: tuple[Endpoint, ...]
    pinsets: Mapping[str, Pinset]
    files: tuple[str, ...]  # every file read, the root first
    # pin-sets that follow a client's rules (`from:` a config file, or `client:` + `rules:`)
    policies: Mapping[str, ClientPolicy] = field(default_factory=dict)


@dataclass(frozen=True)
class CertFacts:
    """What one parsed certificate says. Built once per distinct DER."""

    der_sha256: bytes  # fingerprint of the whole certificate
    subject: str  # RFC 4514
    issuer: str
    serial: int
    spki_sha256: Pin
    spki_sha1: Pin
    not_before: datetime  # aware, UTC
    not_after: datetime  # aware, UTC
    is_ca: bool
    path_length: int | None
    key_type: KeyType
    key_bits: int  # RSA/DSA modulus bits, EC curve bits, 255/448 for EdDSA
    key_curve: str | None  # e.g. "secp256r1"
    signature_algorithm: str  # e.g. "sha256WithRSAEncryption" or the dotted OID
    signature_hash: str | None  # "sha256", "sha1", "md5"; None for EdDSA
    san_dns: tuple[str, ...]
    san_ip: tuple[str, ...]
    sct_count: int
    self_issued: bool  # subject == issuer

    @functools.cached_property
    def pins(self) -> frozenset[Pin]:
        """Both pins of the key (sha256 and legacy sha1); computed once per certificate."""
        return frozenset((self.spki_sha256, self.spki_sha1))


@dataclass(frozen=True)
class ServedCert:
    """One certificate as the server sent it, in the position it was sent."""

    position: int
    der: bytes
    facts: CertFacts | None  # None when the DER does not parse
    error: str | None = None  # why it did not parse


class PathStatus(str, enum.Enum):
    """Outcome of building a path from the served chain to a trust anchor."""

    VALID = "valid"  # validates at `now` for the server name
    INVALID = "invalid"  # a path exists but fails at `now` (time, hostname, key/signature policy)
    INCOMPLETE = "incomplete"  # a path exists only with intermediates the server did not send
    UNTRUSTED = "untrusted"  # no path to any anchor of the store
    UNPARSABLE = "unparsable"  # the leaf itself does not parse / nothing was served


@dataclass(frozen=True)
class PathCert:
    """One certificate of the path, leaf first, anchor last."""

    facts: CertFacts
    served_position: int | None  # None when it came from the store or the intermediate pool


@dataclass(frozen=True)
class ChainReport:
    """The served chain and the path built from it, for one endpoint at one `now`.

    ``path`` is the validated path when ``status`` is VALID. Otherwise it is
    the best structural path found while diagnosing (built with the time and
    hostname checks relaxed, or with intermediates from the pool), so that
    certificate and pin facts survive a broken chain; it is empty when no
    path exists at all.
    """

    server_name: str
    served: tuple[ServedCert, ...]
    status: PathStatus
    path: tuple[PathCert, ...]
    hostname_ok: bool | None  # None: could not be decided (no path)
    error: str | None  # the verifier's message when status is not VALID
    # A WebPKI rule other than time and hostname that the leaf breaks (e.g. no
    # serverAuth EKU), found while diagnosing an INVALID/INCOMPLETE chain.
    policy_error: str | None = None

    @property
    def leaf(self) -> CertFacts | None:
        return self.served[0].facts if self.served else None

    @property
    def valid(self) -> bool:
        return self.status is PathStatus.VALID


@dataclass(frozen=True)
class Finding:
    """One problem (or fact worth knowing) about one endpoint."""

    check: Check
    severity: Severity
    message: str
    certificate: int | None = None  # position in the served chain
    pin: Pin | None = None
    subject: str | None = None  # subject of the certificate concerned (also for store anchors)

    @property
    def key(self) -> tuple[str, str, int | None]:
        """(check, severity, certificate): what tests compare."""
        return (self.check.value, self.severity.value, self.certificate)


# --- what the network gave (filled in by probe.py, read by the pure core) ----


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


class Phase(str, enum.Enum):
    """Which step of a probe was running when it failed."""

    DNS = "dns"
    CONNECT = "connect"
    HANDSHAKE = "handshake"


@dataclass(frozen=True)
class ProbeFailure:
    """One failed probe of one address (or of a name that did not resolve)."""

    kind: ProbeErrorKind
    detail: str  # the original message, or which phase timed out
    address: str | None = None  # None when no address was reached (DNS)
    alert: str | None = None  # TLS alert name when kind is TLS_ALERT, e.g. "handshake_failure"
    phase: Phase | None = None


@dataclass(frozen=True)
class Observation:
    """A completed handshake with one address: what was served, unverified."""

    address: str
    port: int
    served: tuple[bytes, ...]  # DER, exactly as served, in the order served
    tls_version: str  # e.g. "TLSv1.3"
    cipher: str  # OpenSSL name, e.g. "TLS_AES_256_GCM_SHA384"
    alpn: str | None
    connect_seconds: float
    handshake_seconds: float
