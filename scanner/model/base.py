"""The vocabulary every value object uses: severities, check codes, pins,
positions in files, trust stores, findings.
"""

from __future__ import annotations

import base64
import enum
from dataclasses import dataclass

__all__ = [
    "Check",
    "Finding",
    "HashAlg",
    "KeyType",
    "Location",
    "Pin",
    "PinFormat",
    "Severity",
    "TrustKind",
    "TrustSpec",
]


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
    PIN_PATH_DEPENDENT = "pin_path_dependent"
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
    INTERNAL_ERROR = "internal_error"
    KEY_CHANGED = "key_changed"
    ISSUER_CHANGED = "issuer_changed"
    CHAIN_CHANGED = "chain_changed"
    CLIENT_PIN_FAILURE = "client_pin_failure"
    CLIENT_CONFIG_ERROR = "client_config_error"
    CLIENT_AMBIGUOUS = "client_ambiguous"
    PINS_NOT_APPLIED = "pins_not_applied"
    PINS_BYPASSED = "pins_bypassed"
    DEAD_PIN = "dead_pin"
    NAME_CONSTRAINTS_VIOLATED = "name_constraints_violated"
    CERT_FIELD_UNREADABLE = "cert_field_unreadable"
    PATH_BUDGET_EXCEEDED = "path_budget_exceeded"
    OLD_TLS_VERSION = "old_tls_version"
    OCSP_REVOKED = "ocsp_revoked"
    OCSP_UNKNOWN = "ocsp_unknown"
    OCSP_INVALID = "ocsp_invalid"
    OCSP_STALE = "ocsp_stale"
    MUST_STAPLE_MISSING = "must_staple_missing"
    CT_INSUFFICIENT = "ct_insufficient"
    CAA_UNAUTHORIZED = "caa_unauthorized"
    CAA_MISSING = "caa_missing"
    CAA_LOOKUP_FAILED = "caa_lookup_failed"


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


@dataclass(frozen=True, order=True, slots=True)
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


@dataclass(frozen=True, slots=True)
class Location:
    """Where something was written: 1-based line and column."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        if self.line <= 0:  # the file as a whole (it could not be read at all)
            return self.file
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True, slots=True)
class TrustSpec:
    """Which trust store validates an endpoint's chain."""

    kind: TrustKind
    path: str | None = None  # absolute path for BUNDLE

    def __str__(self) -> str:
        return self.path if self.kind is TrustKind.BUNDLE and self.path else self.kind.value


@dataclass(frozen=True, slots=True)
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
