"""Served DER chain → certificate facts and the validated path. Pure.

Validation uses ``cryptography.x509.verification`` (the WebPKI profile: CA
bit, path length, key usage, signature algorithms) at a caller-given `now`.
When the chain does not validate, the analysis keeps going to say *why*: it
rebuilds the path with the time check moved to a moment where the
certificates are valid, without the hostname, and with intermediates seen
elsewhere in the scan, so that expired, misnamed and incomplete chains are
told apart and their certificate and pin facts are still reported.
"""

from __future__ import annotations

import hashlib
import ipaddress
import warnings
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.x509 import verification
from cryptography.x509.oid import ExtensionOID

from scanner.model import (
    CertFacts,
    ChainReport,
    KeyType,
    PathCert,
    PathStatus,
    ServedCert,
)
from scanner.pins import pins_of_spki, spki_der
from scanner.trust import TrustStore, load_certificate

__all__ = [
    "DEFAULT_CACHE",
    "CertificateCache",
    "Parsed",
    "analyze_chain",
    "certificate_facts",
    "normalise_name",
    "parse_certificate",
    "verifier_subject",
]

Parsed = tuple[x509.Certificate, CertFacts]
# What reading a certificate's fields raises besides ValueError: plain
# Exceptions, e.g. two basicConstraints extensions (found by fuzz/fuzz_chain.py).
_X509_ERRORS = (x509.DuplicateExtension, x509.UnsupportedGeneralNameType, x509.InvalidVersion)

# The structural path is checked with every WebPKI CA rule but none of the
# leaf's extension rules: the leaf's own problems are diagnosed separately.
_PERMISSIVE_EE = verification.ExtensionPolicy.permit_all()
_SERVER_EE_NO_EKU = verification.ExtensionPolicy.permit_all().require_present(
    x509.SubjectAlternativeName, verification.Criticality.AGNOSTIC, None
)
_ONE_SECOND = timedelta(seconds=1)
# The last moment that has a second after it (datetime ends at 9999-12-31T23:59:59.999999).
_LAST_START = datetime.max.replace(tzinfo=timezone.utc) - _ONE_SECOND


class CertificateCache:
    """Parsed certificates by SHA-256 of their DER: a fleet that serves the same
    chain a thousand times parses it once. Bounded; cleared when full."""

    def __init__(self, max_entries: int = 50_000) -> None:
        self.max_entries = max_entries
        self._entries: dict[bytes, Parsed | str] = {}
        self.hits = 0
        self.misses = 0

    def get(self, der: bytes) -> Parsed | str:
        """(certificate, facts), or the reason the DER does not parse."""
        digest = hashlib.sha256(der).digest()
        entry = self._entries.get(digest)
        if entry is not None:
            self.hits += 1
            return entry
        self.misses += 1
        entry = _parse(der, digest)
        if len(self._entries) >= self.max_entries:
            self._entries.clear()
        self._entries[digest] = entry
        return entry

    def __len__(self) -> int:
        return len(self._entries)


DEFAULT_CACHE = CertificateCache()


def _parse(der: bytes, digest: bytes) -> Parsed | str:
    try:
        cert, _warning = load_certificate(der)
        with warnings.catch_warnings():
            # Odd but readable fields (a negative serial, a countryName that is
            # not two letters) make the library warn when first read: a served
            # certificate must not print to the scan's stderr.
            warnings.simplefilter("ignore")
            return cert, certificate_facts(cert, digest)
    except (ValueError, TypeError, UnsupportedAlgorithm, *_X509_ERRORS) as exc:
        return f"{type(exc).__name__}: {exc}"


def parse_certificate(der: bytes, cache: CertificateCache = DEFAULT_CACHE) -> CertFacts:
    """Facts of one DER certificate. Raises ValueError when it does not parse."""
    entry = cache.get(der)
    if isinstance(entry, str):
        raise ValueError(entry)
    return entry[1]


# --- facts ------------------------------------------------------------------


def _key_facts(cert: x509.Certificate) -> tuple[KeyType, int, str | None]:
    try:
        key = cert.public_key()
    except (ValueError, UnsupportedAlgorithm):
        return KeyType.OTHER, 0, None
    if isinstance(key, rsa.RSAPublicKey):
        return KeyType.RSA, key.key_size, None
    if isinstance(key, ec.EllipticCurvePublicKey):
        return KeyType.EC, key.curve.key_size, key.curve.name
    if isinstance(key, ed25519.Ed25519PublicKey):
        return KeyType.ED25519, 255, None
    if isinstance(key, ed448.Ed448PublicKey):
        return KeyType.ED448, 448, None
    if isinstance(key, dsa.DSAPublicKey):
        return KeyType.DSA, key.key_size, None
    return KeyType.OTHER, 0, None


def _signature_facts(cert: x509.Certificate) -> tuple[str, str | None]:
    oid = cert.signature_algorithm_oid
    name = getattr(oid, "_name", None) or oid.dotted_string
    if name == "Unknown OID":
        name = oid.dotted_string
    try:
        algorithm = cert.signature_hash_algorithm
    except UnsupportedAlgorithm:
        return name, None
    return name, algorithm.name if algorithm is not None else None


def _extension(cert: x509.Certificate, oid: x509.ObjectIdentifier) -> x509.ExtensionType | None:
    try:
        return cert.extensions.get_extension_for_oid(oid).value
    except x509.ExtensionNotFound:
        return None


def _names(cert: x509.Certificate) -> tuple[tuple[str, ...], tuple[str, ...]]:
    san = _extension(cert, ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
    if not isinstance(san, x509.SubjectAlternativeName):
        return (), ()
    dns = tuple(str(n) for n in san.get_values_for_type(x509.DNSName))
    ips = tuple(str(n) for n in san.get_values_for_type(x509.IPAddress))
    return dns, ips


def _sct_count(cert: x509.Certificate) -> int:
    scts = _extension(cert, ExtensionOID.PRECERT_SIGNED_CERTIFICATE_TIMESTAMPS)
    if isinstance(scts, x509.PrecertificateSignedCertificateTimestamps):
        return len(scts)
    return 0


def _serial(cert: x509.Certificate) -> int:
    # A negative serial warns on every read (load_certificate has recorded it
    # once already); unsilenced, the warning would reach the scan's stderr.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return cert.serial_number


def certificate_facts(cert: x509.Certificate, der_sha256: bytes | None = None) -> CertFacts:
    """Everything the audit and the reports need from one certificate.

    Raises ValueError for a certificate whose fields cannot be read."""
    if der_sha256 is None:
        from cryptography.hazmat.primitives.serialization import Encoding

        der_sha256 = hashlib.sha256(cert.public_bytes(Encoding.DER)).digest()
    sha256_pin, sha1_pin = pins_of_spki(spki_der(cert))
    bc = _extension(cert, ExtensionOID.BASIC_CONSTRAINTS)
    is_ca = isinstance(bc, x509.BasicConstraints) and bc.ca
    path_length = bc.path_length if isinstance(bc, x509.BasicConstraints) else None
    key_type, key_bits, curve = _key_facts(cert)
    sig_name, sig_hash = _signature_facts(cert)
    dns, ips = _names(cert)
    subject = cert.subject.rfc4514_string()
    issuer = cert.issuer.rfc4514_string()
    return CertFacts(
        der_sha256=der_sha256,
        subject=subject,
        issuer=issuer,
        serial=_serial(cert),
        spki_sha256=sha256_pin,
        spki_sha1=sha1_pin,
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        is_ca=is_ca,
        path_length=path_length,
        key_type=key_type,
        key_bits=key_bits,
        key_curve=curve,
        signature_algorithm=sig_name,
        signature_hash=sig_hash,
        san_dns=dns,
        san_ip=ips,
        sct_count=_sct_count(cert),
        self_issued=cert.subject == cert.issuer,
    )


# --- path -------------------------------------------------------------------


def normalise_name(name: str) -> str:
    """Lower-case, one trailing dot stripped: the name certificates are checked for."""
    name = name.strip().lower()
    return name[:-1] if name.endswith(".") else name


def verifier_subject(name: str) -> verification.Subject | None:
    """DNSName or IPAddress for a server name; None if it is neither."""
    try:
        return x509.IPAddress(ipaddress.ip_address(name.strip("[]")))
    except ValueError:
        pass
    try:
        return x509.DNSName(name)
    except ValueError:
        return None


def _builder(store: TrustStore, when: datetime) -> verification.PolicyBuilder:
    return verification.PolicyBuilder().store(store.store).time(when)


def _verify_server(
    store: TrustStore,
    when: datetime,
    subject: verification.Subject,
    leaf: x509.Certificate,
    intermediates: list[x509.Certificate],
    *,
    check_eku: bool = True,
) -> list[x509.Certificate] | str:
    builder = _builder(store, when)
    if not check_eku:
        builder = builder.extension_policies(
            ca_policy=verification.ExtensionPolicy.webpki_defaults_ca(),
            ee_policy=_SERVER_EE_NO_EKU,
        )
    try:
        return list(builder.build_server_verifier(subject).verify(leaf, intermediates))
    except verification.VerificationError as exc:
        return str(exc)


def _verify_structure(
    store: TrustStore, when: datetime, leaf: x509.Certificate, intermediates: list[x509.Certificate]
) -> list[x509.Certificate] | None:
    builder = _builder(store, when).extension_policies(
        ca_policy=verification.ExtensionPolicy.webpki_defaults_ca(), ee_policy=_PERMISSIVE_EE
    )
    try:
        return list(builder.build_client_verifier().verify(leaf, intermediates).chain)
    except verification.VerificationError:
        return None


def _candidate_times(now: datetime, certs: Sequence[CertFacts]) -> list[datetime]:
    """`now`, then moments at which every given certificate is valid."""
    times = [now]
    if certs:
        start = max(c.not_before for c in certs)
        end = min(c.not_after for c in certs)
        if start < end:
            times.append(start + (end - start) / 2)
        if certs[0].not_before <= _LAST_START:  # not_before 9999-12-31T23:59:59Z: no later second
            times.append(certs[0].not_before + _ONE_SECOND)
    return times


def _short(message: str) -> str:
    # The verifier appends a repr of the certificate it was processing, and
    # prints forbidden algorithms as Rust debug output: keep the words.
    for marker in (" (encountered processing", ": AlgorithmIdentifier {"):
        cut = message.find(marker)
        if cut > 0:
            message = message[:cut]
    return message


def _to_path(
    chain: Sequence[x509.Certificate], served: Sequence[ServedCert], cache: CertificateCache
) -> tuple[PathCert, ...]:
    from cryptography.hazmat.primitives.serialization import Encoding

    by_digest = {s.facts.der_sha256: s.position for s in reversed(served) if s.facts is not None}
    path = []
    for cert in chain:
        der = cert.public_bytes(Encoding.DER)
        entry = cache.get(der)
        if isinstance(entry, str):  # the verifier accepted it, so it parses
            raise ValueError(entry)
        facts = entry[1]
        path.append(PathCert(facts, by_digest.get(facts.der_sha256)))
    return tuple(path)


def analyze_chain(
    served_der: Sequence[bytes],
    store: TrustStore,
    server_name: str,
    now: datetime,
    *,
    pool: Sequence[x509.Certificate] = (),
    cache: CertificateCache = DEFAULT_CACHE,
) -> ChainReport:
    """Facts of each served certificate and the path leaf → anchor.

    `pool` holds intermediates known from elsewhere (other endpoints of the
    scan): a chain that validates only with their help is INCOMPLETE."""
    if now.tzinfo is None:
        now = now.replace(tzinfo=timezone.utc)
    name = normalise_name(server_name)
    served: list[ServedCert] = []
    parsed: list[x509.Certificate | None] = []
    for position, der in enumerate(served_der):
        entry = cache.get(der)
        if isinstance(entry, str):
            served.append(ServedCert(position, der, None, entry))
            parsed.append(None)
        else:
            served.append(ServedCert(position, der, entry[1]))
            parsed.append(entry[0])
    served_t = tuple(served)

    def report(
        status: PathStatus,
        path: tuple[PathCert, ...] = (),
        hostname_ok: bool | None = None,
        error: str | None = None,
        policy_error: str | None = None,
    ) -> ChainReport:
        return ChainReport(name, served_t, status, path, hostname_ok, error, policy_error)

    leaf = parsed[0] if parsed else None
    if leaf is None:
        why = "no certificate served" if not served else "the leaf certificate does not parse"
        return report(PathStatus.UNPARSABLE, error=why)
    intermediates = [c for c in parsed[1:] if c is not None]
    subject = verifier_subject(name)
    if subject is not None:
        try:
            _builder(store, now).build_server_verifier(subject)
        except ValueError:  # a name the verifier refuses, e.g. "my_host.internal"
            subject = None
    if subject is not None:
        result = _verify_server(store, now, subject, leaf, intermediates)
        if not isinstance(result, str):
            return report(PathStatus.VALID, _to_path(result, served, cache), True)
        error = _short(result)
    else:
        error = f"{name!r} is neither a DNS name nor an IP address"

    # Diagnose: find a path with the time moved and the hostname ignored,
    # first from what was served, then with the pool's intermediates.
    facts = [s.facts for s in served if s.facts is not None]
    for status, inters in (
        (PathStatus.INVALID, intermediates),
        (PathStatus.INCOMPLETE, intermediates + [c for c in pool if c not in intermediates]),
    ):
        if status is PathStatus.INCOMPLETE and not pool:
            break
        for when in _candidate_times(now, facts):
            chain = _verify_structure(store, when, leaf, inters)
            if chain is None:
                continue
            hostname_ok: bool | None = None
            policy_error = None
            if subject is not None:
                named = _verify_server(store, when, subject, leaf, inters, check_eku=False)
                hostname_ok = not isinstance(named, str)
                if hostname_ok:
                    strict = _verify_server(store, when, subject, leaf, inters)
                    if isinstance(strict, str):
                        policy_error = _short(strict)
            path = _to_path(chain, served, cache)
            return report(status, path, hostname_ok, error, policy_error)
    return report(PathStatus.UNTRUSTED, error=_untrusted_reason(parsed, store, error))


def _untrusted_reason(
    parsed: Sequence[x509.Certificate | None], store: TrustStore, error: str
) -> str:
    """Why no path exists, in words: follow issuer links through the served
    certificates and name the issuer that is neither served nor trusted."""
    certs = [c for c in parsed if c is not None]
    top = certs[0]
    seen = {id(top)}
    while top.issuer != top.subject:
        nxt = next((c for c in certs if c.subject == top.issuer and id(c) not in seen), None)
        if nxt is None:
            break
        seen.add(id(nxt))
        top = nxt
    subject, issuer = top.subject.rfc4514_string(), top.issuer.rfc4514_string()
    if top.issuer == top.subject:
        if any(a.subject == top.subject for a in store.anchors):
            return f"{subject} is a trust anchor, but the path to it breaks a rule: {error}"
        return f"the chain ends at {subject}, which is not a trust anchor of {store.name}"
    if not any(a.subject == top.issuer for a in store.anchors):
        return f"{subject} is issued by {issuer}, which is neither sent nor trusted"
    return f"{error}"
