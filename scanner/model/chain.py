"""A served chain as analysed: certificate facts, the path built, its status."""

from __future__ import annotations

import enum
import functools
from dataclasses import dataclass
from datetime import datetime

from scanner.model.base import KeyType, Pin

__all__ = ["CertFacts", "ChainReport", "PathCert", "PathStatus", "PinPath", "ServedCert"]


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
    # Fields that could not be read, "field: reason" (they hold neutral values).
    unreadable: tuple[str, ...] = ()

    @functools.cached_property
    def pins(self) -> frozenset[Pin]:
        """Both pins of the key (sha256 and legacy sha1); computed once per certificate."""
        return frozenset((self.spki_sha256, self.spki_sha1))


@dataclass(frozen=True, slots=True)
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


@dataclass(frozen=True, slots=True)
class PathCert:
    """One certificate of the path, leaf first, anchor last."""

    facts: CertFacts
    served_position: int | None  # None when it came from the store or the intermediate pool


@dataclass(frozen=True, slots=True)
class PinPath:
    """One path a client could build (leaf first, anchor last), judged against
    an endpoint's pin-set: the pins that name a key on it. A client that builds
    this path connects when ``matched`` is not empty."""

    certs: tuple[CertFacts, ...]
    matched: tuple[Pin, ...]

    @property
    def passes(self) -> bool:
        return bool(self.matched)

    @property
    def anchor(self) -> CertFacts:
        return self.certs[-1]


@dataclass(frozen=True, slots=True)
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
