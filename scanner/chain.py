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

import contextlib
import enum
import hashlib
import ipaddress
import re
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar

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
    "AnalysisCache",
    "CertificateCache",
    "NameClass",
    "Parsed",
    "analyze_chain",
    "certificate_facts",
    "leaf_names_match",
    "name_class",
    "normalise_name",
    "parse_certificate",
    "verifier_dns_name",
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
    """(certificate, facts), or why the certificate cannot be used at all: its
    DER does not load, or its key or validity cannot be located."""
    try:
        cert, _warning = load_certificate(der)
        with warnings.catch_warnings():
            # Odd but readable fields (a negative serial, a countryName that is
            # not two letters) make the library warn when first read: a served
            # certificate must not print to the scan's stderr.
            warnings.simplefilter("ignore")
            return cert, _facts(cert, digest, spki_der(cert))
    except (ValueError, TypeError, UnsupportedAlgorithm, *_X509_ERRORS) as exc:
        return f"{type(exc).__name__}: {exc}"


def parse_certificate(der: bytes, cache: CertificateCache = DEFAULT_CACHE) -> CertFacts:
    """Facts of one DER certificate. Raises ValueError when it does not parse
    or a field of it cannot be read (``CertificateCache.get`` has the facts
    that can be)."""
    entry = cache.get(der)
    if isinstance(entry, str):
        raise ValueError(entry)
    if entry[1].unreadable:
        raise ValueError(entry[1].unreadable[0].split(": ", 1)[1])
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


_READ_ERRORS = (ValueError, TypeError, UnsupportedAlgorithm, *_X509_ERRORS)
T = TypeVar("T")


class _Reader:
    """Reads one certificate's fields; a field that cannot be read gets a
    fallback value and a note "field: reason" instead of an exception."""

    def __init__(self, cert: x509.Certificate) -> None:
        self.cert = cert
        self.unreadable: list[str] = []
        try:
            self.extensions: x509.Extensions | None = cert.extensions
        except _READ_ERRORS as exc:
            self.extensions = None
            self.unreadable.append(f"extensions: {type(exc).__name__}: {exc}")

    def read(self, field: str, read: Callable[[], T], fallback: T) -> T:
        try:
            return read()
        except _READ_ERRORS as exc:
            self.unreadable.append(f"{field}: {type(exc).__name__}: {exc}")
            return fallback

    def extension(self, oid: x509.ObjectIdentifier) -> x509.ExtensionType | None:
        if self.extensions is None:
            return None
        try:
            return self.extensions.get_extension_for_oid(oid).value
        except x509.ExtensionNotFound:
            return None


def _names(reader: _Reader) -> tuple[tuple[str, ...], tuple[str, ...]]:
    san = reader.extension(ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
    if not isinstance(san, x509.SubjectAlternativeName):
        return (), ()
    dns = tuple(str(n) for n in san.get_values_for_type(x509.DNSName))
    ips = tuple(str(n) for n in san.get_values_for_type(x509.IPAddress))
    return dns, ips


def _sct_count(reader: _Reader) -> int:
    scts = reader.extension(ExtensionOID.PRECERT_SIGNED_CERTIFICATE_TIMESTAMPS)
    if isinstance(scts, x509.PrecertificateSignedCertificateTimestamps):
        return len(scts)
    return 0


def _serial(cert: x509.Certificate) -> int:
    # A negative serial warns on every read (load_certificate has recorded it
    # once already); unsilenced, the warning would reach the scan's stderr.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return cert.serial_number


UNREADABLE_NAME = "<unreadable name>"


def name_of(cert: x509.Certificate, which: str) -> x509.Name | None:
    """The certificate's subject or issuer, None when it cannot be read."""
    try:
        name: x509.Name = cert.subject if which == "subject" else cert.issuer
        return name
    except _READ_ERRORS:
        return None


def certificate_facts(cert: x509.Certificate, der_sha256: bytes | None = None) -> CertFacts:
    """Everything the audit and the reports need from one certificate.

    A field that cannot be read gets a neutral value and ``unreadable`` says
    which one and why. Raises ValueError only when the public key or the
    validity cannot be located: no pin and no time check without them."""
    if der_sha256 is None:
        from cryptography.hazmat.primitives.serialization import Encoding

        der_sha256 = hashlib.sha256(cert.public_bytes(Encoding.DER)).digest()
    return _facts(cert, der_sha256, spki_der(cert))


def _facts(cert: x509.Certificate, der_sha256: bytes, spki: bytes) -> CertFacts:
    reader = _Reader(cert)
    sha256_pin, sha1_pin = pins_of_spki(spki)
    bc = reader.extension(ExtensionOID.BASIC_CONSTRAINTS)
    is_ca = isinstance(bc, x509.BasicConstraints) and bc.ca
    path_length = bc.path_length if isinstance(bc, x509.BasicConstraints) else None
    key_type, key_bits, curve = _key_facts(cert)
    no_signature: tuple[str, str | None] = ("unknown", None)
    sig_name, sig_hash = reader.read(
        "signature algorithm", lambda: _signature_facts(cert), no_signature
    )
    dns, ips = _names(reader)
    subject_name = reader.read("subject", lambda: cert.subject, None)
    issuer_name = reader.read("issuer", lambda: cert.issuer, None)
    subject = reader.read(
        "subject",
        lambda: subject_name.rfc4514_string() if subject_name else UNREADABLE_NAME,
        UNREADABLE_NAME,
    )
    issuer = reader.read(
        "issuer",
        lambda: issuer_name.rfc4514_string() if issuer_name else UNREADABLE_NAME,
        UNREADABLE_NAME,
    )
    return CertFacts(
        der_sha256=der_sha256,
        subject=subject,
        issuer=issuer,
        serial=reader.read("serial", lambda: _serial(cert), 0),
        spki_sha256=sha256_pin,
        spki_sha1=sha1_pin,
        not_before=cert.not_valid_before_utc,  # no neutral value: raises
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
        sct_count=_sct_count(reader),
        self_issued=subject_name is not None and subject_name == issuer_name,
        unreadable=tuple(reader.unreadable),
    )


# --- path -------------------------------------------------------------------


def normalise_name(name: str) -> str:
    """Lower-case, one trailing dot stripped: the name certificates are checked for."""
    normal = name.strip().lower()
    normal = normal[:-1] if normal.endswith(".") else normal
    return name if normal == name else normal  # the endpoint's own string when it is one


# What ipaddress.ip_address can read from a str: IPv4 is ASCII digits and dots,
# IPv6 always has a colon. Anything else is tried as a DNS name straight away
# (a failed ip_address costs two exceptions, ~30 µs, on every host name).
_MAYBE_IPV4 = re.compile(r"[0-9.]+")


def verifier_subject(name: str) -> verification.Subject | None:
    """DNSName or IPAddress for a server name; None if it is neither."""
    literal = name.strip("[]")
    if ":" in literal or _MAYBE_IPV4.fullmatch(literal):
        try:
            return x509.IPAddress(ipaddress.ip_address(literal))
        except ValueError:
            pass
    try:
        return x509.DNSName(name)
    except ValueError:
        return None


# --- the host name against the leaf, as cryptography's verifier checks it ------
#
# The verifier (cryptography-x509-verification, types.rs and policy/mod.rs)
# matches the server name against the leaf's subjectAltName only (never its
# CN): a DNS name against each dNSName entry read as a pattern (an exact name,
# or "*." + a name: one whole left-most label), an IP address against each
# iPAddress entry of 4 or 16 bytes. Names and patterns must be "preferred name
# syntax" (RFC 1034 3.5 as amended by RFC 1123 2.1: labels of 1..63 of
# [A-Za-z0-9-], not starting or ending with "-", 253 characters at most; "xn--"
# A-labels pass, U-labels do not) and compare ignoring ASCII case. The chain
# analysis is cached per class of names (`name_class`); tests/test_chain_cache.py
# compares this with the verifier over generated names and certificates.

_DNS_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")


def verifier_dns_name(value: str) -> bool:
    """Whether the verifier takes `value` as a DNS name (its ``DNSName::new``)."""
    if not value or len(value) > 253:
        return False
    return all(_DNS_LABEL.fullmatch(label) for label in value.split("."))


def _dns_pattern_matches(pattern: str, name: str) -> bool:
    """A dNSName entry (exact or left-most wildcard) against a valid DNS `name`."""
    if pattern.startswith("*."):
        base = pattern[2:]
        parent = name.partition(".")[2]
        return bool(parent) and verifier_dns_name(base) and base.lower() == parent.lower()
    return verifier_dns_name(pattern) and pattern.lower() == name.lower()


def _san_ip(text: str) -> bytes | None:
    try:
        return ipaddress.ip_address(text).packed
    except ValueError:  # a network (8 or 32 bytes in the SAN): never matches a subject
        return None


def leaf_names_match(subject: verification.Subject, facts: CertFacts) -> bool:
    """Whether the leaf's subjectAltName names `subject`, by the verifier's rules."""
    if isinstance(subject, x509.IPAddress):
        address = subject.value
        if not isinstance(address, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
            return False  # pragma: no cover - verifier_subject makes addresses only
        return any(_san_ip(text) == address.packed for text in facts.san_ip)
    if isinstance(subject, x509.DNSName):
        name = subject.value
        return any(_dns_pattern_matches(pattern, name) for pattern in facts.san_dns)
    return False  # pragma: no cover - verifier_subject makes only these two


class NameClass(str, enum.Enum):
    """How a server name stands to a leaf, which is all a chain analysis
    depends on about the name: the analysis of one name is the analysis of
    every name of its class (but for ``ChainReport.server_name``)."""

    MATCH = "match"  # the verifier takes the name and the leaf names it
    MISMATCH = "mismatch"  # the verifier takes the name and the leaf does not name it
    REFUSED = "refused"  # not a name the verifier takes: the report quotes it, never shared


def name_class(name: str, leaf: CertFacts) -> tuple[NameClass, verification.Subject | None]:
    """The class of a normalised server name against a parsed leaf, and its subject."""
    subject = verifier_subject(name)
    if subject is None or (isinstance(subject, x509.DNSName) and not verifier_dns_name(name)):
        return NameClass.REFUSED, None
    return (NameClass.MATCH if leaf_names_match(subject, leaf) else NameClass.MISMATCH), subject


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
) -> list[x509.Certificate] | str:
    builder = _builder(store, when).extension_policies(
        ca_policy=verification.ExtensionPolicy.webpki_defaults_ca(), ee_policy=_PERMISSIVE_EE
    )
    try:
        return list(builder.build_client_verifier().verify(leaf, intermediates).chain)
    except verification.VerificationError as exc:
        return str(exc)


# The verifier's own work limits (signature checks, name-constraint checks):
# when one is hit, running it again with the time moved or more
# intermediates only hits it again, at the same cost each time.
_GAVE_UP = "fatal error: Exceeded maximum"


def gave_up(message: str) -> bool:
    """Whether a verifier message says it stopped at one of its work limits."""
    return _GAVE_UP in message


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


def _path_facts(cert: x509.Certificate, cache: CertificateCache) -> CertFacts:
    """Facts of a certificate the verifier put on its path. It parsed, so
    facts exist; should our own reading of its key fail where the verifier's
    succeeded, the key is taken from the library and the failure noted."""
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    der = cert.public_bytes(Encoding.DER)
    entry = cache.get(der)
    if not isinstance(entry, str):
        return entry[1]
    digest = hashlib.sha256(der).digest()
    try:
        spki = cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
        facts = _facts(cert, digest, spki)
    except _READ_ERRORS:
        facts = _facts(cert, digest, b"")
    return replace(facts, unreadable=(f"key: {entry}", *facts.unreadable))


def _to_path(
    chain: Sequence[x509.Certificate], served: Sequence[ServedCert], cache: CertificateCache
) -> tuple[PathCert, ...]:
    """The verifier's path as it built it, with the served position of each
    certificate that was served (also one whose fields cannot all be read)."""
    by_digest = {hashlib.sha256(s.der).digest(): s.position for s in reversed(served)}
    path = []
    for cert in chain:
        facts = _path_facts(cert, cache)
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
    analyses: AnalysisCache | None = None,
) -> ChainReport:
    """Facts of each served certificate and the path leaf → anchor.

    `pool` holds intermediates known from elsewhere (other endpoints of the
    scan): a chain that validates only with their help is INCOMPLETE.
    `analyses` caches the result per distinct chain (see `AnalysisCache`);
    with or without it, the report is the same."""
    if now.tzinfo is None:
        now = now.replace(tzinfo=timezone.utc)
    name = normalise_name(server_name)
    if analyses is not None:
        return analyses.analyze(tuple(served_der), store, name, now, pool=pool, cache=cache)
    return _analyze(served_der, store, name, now, pool=pool, cache=cache)[0]


_CHECK_NAME = object()  # _analyze: the subject is not known yet, work it out


def _analyze(
    served_der: Sequence[bytes],
    store: TrustStore,
    name: str,
    now: datetime,
    *,
    pool: Sequence[x509.Certificate],
    cache: CertificateCache,
    known_subject: object = _CHECK_NAME,
) -> tuple[ChainReport, bool]:
    """The analysis, and whether it looked at the pool (then it depends on it)."""
    used_pool = False
    served: list[ServedCert] = []
    parsed: list[x509.Certificate | None] = []
    for position, der in enumerate(served_der):
        entry = cache.get(der)
        if isinstance(entry, str):
            served.append(ServedCert(position, der, None, entry))
            parsed.append(None)
        elif entry[1].unreadable:
            # Reported like a certificate that does not parse (strict parsers
            # refuse it), yet handed to the verifier: if it builds a path
            # through it, the path keeps it, with its readable facts.
            why = "unreadable: " + "; ".join(entry[1].unreadable)
            served.append(ServedCert(position, der, None, why))
            parsed.append(entry[0])
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

    if not served:
        return report(PathStatus.UNPARSABLE, error="no certificate served"), used_pool
    leaf = parsed[0]
    if leaf is None or served[0].facts is None:
        # Without the leaf's facts (names, key, CA bit) there is nothing to judge.
        why = "the leaf certificate does not parse"
        if leaf is not None:
            why = f"the leaf certificate's fields cannot be read ({served[0].error})"
        return report(PathStatus.UNPARSABLE, error=why), used_pool
    intermediates = [c for c in parsed[1:] if c is not None]
    subject: verification.Subject | None
    if isinstance(known_subject, (x509.DNSName, x509.IPAddress)):
        subject = known_subject
    else:
        subject = verifier_subject(name)
        if subject is not None:
            try:
                _builder(store, now).build_server_verifier(subject)
            except ValueError:  # a name the verifier refuses, e.g. "my_host.internal"
                subject = None
    if subject is not None:
        result = _verify_server(store, now, subject, leaf, intermediates)
        if not isinstance(result, str):
            return report(PathStatus.VALID, _to_path(result, served, cache), True), used_pool
        error = _short(result)
        if gave_up(error):
            # Bounded diagnosis: every rerun would hit the same limit.
            return report(PathStatus.UNTRUSTED, error=_gave_up_reason(error)), used_pool
    else:
        error = f"{name!r} is neither a DNS name nor an IP address"

    # Diagnose: find a path with the time moved and the hostname ignored,
    # first from what was served, then with the pool's intermediates.
    facts = [s.facts for s in served if s.facts is not None]
    for status in (PathStatus.INVALID, PathStatus.INCOMPLETE):
        inters = intermediates
        if status is PathStatus.INCOMPLETE:
            used_pool = True
            if not pool:
                break
            inters = intermediates + [c for c in pool if c not in intermediates]
        for when in _candidate_times(now, facts):
            chain = _verify_structure(store, when, leaf, inters)
            if isinstance(chain, str):
                if gave_up(chain):
                    reason = _gave_up_reason(_short(chain))
                    return report(PathStatus.UNTRUSTED, error=reason), used_pool
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
                elif isinstance(named, str) and _NAME_CONSTRAINT in named:
                    # The leaf names the host, but a CA's nameConstraints forbid it.
                    hostname_ok = True
                    policy_error = _short(named)
            path = _to_path(chain, served, cache)
            return report(status, path, hostname_ok, error, policy_error), used_pool
    reason = _untrusted_reason(parsed, served, store, error)
    return report(PathStatus.UNTRUSTED, error=reason), used_pool


@dataclass(frozen=True)
class _Analysis:
    store: TrustStore  # held so that its id, part of the key, is not reused
    report: ChainReport
    pool: tuple[x509.Certificate, ...] | None  # the pool it was built with, when it used one


def _evict_oldest(entries: dict[tuple[object, ...], Any]) -> None:
    """Drop the oldest entry, if another thread did not change the dict meanwhile."""
    with contextlib.suppress(StopIteration, RuntimeError, KeyError):
        del entries[next(iter(entries))]


class AnalysisCache:
    """Chain analyses by (served chain, trust store, instant, name class), bounded.

    Validating a path is the costly step of judging an endpoint (~1 ms per
    ``verify``); a fleet serves a handful of distinct chains to thousands of
    names. An analysis depends on the server name only through its
    `NameClass` (the verifier checks the name against the leaf's
    subjectAltName and nothing else), so the analysis of one name serves
    every name of its class, with ``server_name`` set to each. Names the
    verifier refuses are analysed each time (the report quotes them). An
    analysis that consulted the pool of intermediates seen elsewhere is
    reused only while the pool is the same. The oldest entry goes first when
    `max_entries` is reached.

    It also keeps the client-path search of each distinct chain
    (`remember_search`: ``paths.search_paths`` depends on the served chain,
    the store and the instant only), bounded the same way: on a pinned fleet
    the search costs as much as the validation.

    A cache miss may be worked out in a worker thread while the scan loop
    reads and fills the cache: every step is a single dict operation, and
    eviction tolerates an entry another thread evicted first."""

    def __init__(self, max_entries: int = 4096) -> None:
        self.max_entries = max_entries
        self._entries: dict[tuple[object, ...], _Analysis] = {}
        self._searches: dict[tuple[object, ...], tuple[TrustStore, object]] = {}
        self.hits = 0
        self.misses = 0
        self.search_hits = 0
        self.search_misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def searches(self) -> int:
        """How many path searches are held (for tests and figures)."""
        return len(self._searches)

    def has_search(self, served: Sequence[bytes], store: TrustStore, now: datetime) -> bool:
        return (id(store), now, tuple(served)) in self._searches

    def remember_search(
        self,
        served: Sequence[bytes],
        store: TrustStore,
        now: datetime,
        search: Callable[[], T],
    ) -> T:
        """`search()` (a ``paths.search_paths`` of `served`), once per distinct
        (served chain, trust store, instant)."""
        key = (id(store), now, tuple(served))
        entry = self._searches.get(key)
        if entry is not None:
            self.search_hits += 1
            return entry[1]  # type: ignore[return-value]
        self.search_misses += 1
        found = search()
        if key not in self._searches and len(self._searches) >= self.max_entries:
            _evict_oldest(self._searches)
        self._searches[key] = (store, found)
        return found

    def cached_analysis(
        self,
        served: Sequence[bytes],
        store: TrustStore,
        server_name: str,
        now: datetime,
        *,
        pool: Sequence[x509.Certificate],
        cache: CertificateCache,
    ) -> ChainReport | None:
        """What `analyze` would answer from the cache (without counting a hit),
        else None (the report's ``server_name`` may be another name's)."""
        if now.tzinfo is None:
            now = now.replace(tzinfo=timezone.utc)
        served = tuple(served)
        klass: NameClass | None = None
        if served:
            leaf = cache.get(served[0])
            if not isinstance(leaf, str) and not leaf[1].unreadable:
                klass = name_class(normalise_name(server_name), leaf[1])[0]
                if klass is NameClass.REFUSED:
                    return None
        entry = self._entries.get((id(store), now, served, klass))
        if entry is None or (entry.pool is not None and entry.pool != tuple(pool)):
            return None
        return entry.report

    def analyze(
        self,
        served: tuple[bytes, ...],
        store: TrustStore,
        name: str,
        now: datetime,
        *,
        pool: Sequence[x509.Certificate],
        cache: CertificateCache,
    ) -> ChainReport:
        """`analyze_chain` for a normalised `name` and an aware `now`."""
        subject: object = _CHECK_NAME
        klass: NameClass | None = None  # None: the analysis never gets to the name
        if served:
            leaf = cache.get(served[0])
            if not isinstance(leaf, str) and not leaf[1].unreadable:
                klass, subject = name_class(name, leaf[1])
                if klass is NameClass.REFUSED:
                    return _analyze(served, store, name, now, pool=pool, cache=cache)[0]
        key = (id(store), now, served, klass)
        entry = self._entries.get(key)
        if entry is not None and (entry.pool is None or entry.pool == tuple(pool)):
            self.hits += 1
            report = entry.report
            return report if report.server_name == name else replace(report, server_name=name)
        self.misses += 1
        report, used_pool = _analyze(
            served, store, name, now, pool=pool, cache=cache, known_subject=subject
        )
        if key not in self._entries and len(self._entries) >= self.max_entries:
            _evict_oldest(self._entries)
        self._entries[key] = _Analysis(store, report, tuple(pool) if used_pool else None)
        return report


_NAME_CONSTRAINT = "name constraint"


def _gave_up_reason(error: str) -> str:
    return (
        f"the verifier gave up building a path ({error.removeprefix('validation failed: ')}): "
        "the chain offers too many candidate paths or name checks; clients stop as well"
    )


def _untrusted_reason(
    parsed: Sequence[x509.Certificate | None],
    served: Sequence[ServedCert],
    store: TrustStore,
    error: str,
) -> str:
    """Why no path exists, in words: follow issuer links through the served
    certificates and name what breaks the chain: an issuer neither served nor
    trusted, a served issuer that does not parse, a loop of served issuers, a
    rule broken on the way to an anchor."""
    if _NAME_CONSTRAINT in error:
        return f"a CA's name constraints forbid the leaf's names: {error}"
    certs = [(c, name_of(c, "subject"), name_of(c, "issuer")) for c in parsed if c is not None]
    top = certs[0]
    walked = [top]
    loop = False
    while top[2] is not None and top[2] != top[1]:
        issuers = [c for c in certs if c[1] is not None and c[1] == top[2]]
        nxt = next((c for c in issuers if all(c[0] is not w[0] for w in walked)), None)
        if nxt is None:
            loop = bool(issuers) and not any(
                a.subject == top[2] for a in store.anchors if name_of(a, "subject") is not None
            )
            break
        walked.append(nxt)
        top = nxt
    _cert, subject_name, issuer_name = top
    if subject_name is None or issuer_name is None:
        return f"the names of a served certificate cannot be read: {error}"
    subject, issuer = _rfc4514(subject_name), _rfc4514(issuer_name)
    anchor_subjects = [n for n in (name_of(a, "subject") for a in store.anchors) if n is not None]
    if loop:
        names = " → ".join(_rfc4514(w[1]) for w in walked if w[1] is not None)
        return (
            f"the served intermediates issue each other in a loop ({names} → {issuer}) "
            f"and none is issued by an anchor of {store.name}"
        )
    if issuer_name == subject_name:
        if issuer_name in anchor_subjects:
            return f"{subject} is a trust anchor, but the path to it breaks a rule: {error}"
        return f"the chain ends at {subject}, which is not a trust anchor of {store.name}"
    if issuer_name not in anchor_subjects:
        broken = [s for s in served[1:] if s.facts is None]
        if broken:
            which = ", ".join(str(s.position) for s in broken)
            return (
                f"{subject} is issued by {issuer}, which is not trusted; served certificate "
                f"{which} does not parse ({broken[0].error}), and may be that issuer"
            )
        return f"{subject} is issued by {issuer}, which is neither sent nor trusted"
    return f"{error}"


def _rfc4514(name: x509.Name) -> str:
    try:
        return name.rfc4514_string()
    except _READ_ERRORS:
        return UNREADABLE_NAME
