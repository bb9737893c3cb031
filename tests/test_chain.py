"""Certificate facts and the path from a served chain to a trust anchor."""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import dsa, x25519
from cryptography.x509.oid import ExtendedKeyUsageOID

from scanner.chain import (
    CertificateCache,
    analyze_chain,
    certificate_facts,
    normalise_name,
    parse_certificate,
)
from scanner.fleet.pki import PKI, Issued, StandardChain, standard_chain
from scanner.model import ChainReport, KeyType, PathStatus
from scanner.trust import TrustStore, store_from_pem

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)
HOST = "www.example.com"
ORG = "O=pinaudit test PKI"
LEAF = f"{ORG},CN={HOST}"
INTER = f"{ORG},CN=Test Intermediate"
ROOT = f"{ORG},CN=Test Root"

GARBAGE_DER = b"\x30\x03\x02\x01\x01"  # a SEQUENCE holding one INTEGER
GARBAGE_DER_ERROR = (
    "ValueError: error parsing asn1 value: ParseError { kind: UnexpectedTag { actual: Tag "
    '{ value: 2, constructed: false, class: Universal } }, location: ["Certificate::tbs_cert"] }'
)
NOT_DER = b"garbage"
NOT_DER_ERROR = (
    "ValueError: error parsing asn1 value: ParseError { kind: ShortData { needed: 92 } }"
)

NO_SAN_MATCH = "validation failed: leaf certificate has no matching subjectAltName"
NOT_VALID_NOW = "validation failed: cert is not valid at validation time"


@dataclass(frozen=True)
class World:
    pki: PKI
    chain: StandardChain
    store: TrustStore
    rsa_root: Issued


@pytest.fixture(scope="module")
def world() -> World:
    pki = PKI(NOW)
    chain = standard_chain(pki, HOST)
    store = store_from_pem(chain.root.pem, "test-store")
    return World(pki, chain, store, pki.root("RSA Root", key_type="rsa2048"))


@pytest.fixture(scope="module")
def roots(world: World) -> dict[str, Issued]:
    """One self-signed CA per key kind; the RSA one is shared (slow to generate)."""
    out = {"rsa2048": world.rsa_root}
    for kind in ("ec256", "ec384", "ed25519", "ed448"):
        out[kind] = world.pki.root(f"Root {kind}", key_type=kind)
    return out


def analyze(world: World, served: list[bytes], name: str = HOST, **kw: object) -> ChainReport:
    return analyze_chain(served, world.store, name, NOW, cache=CertificateCache(), **kw)  # type: ignore[arg-type]


def path_of(report: ChainReport) -> list[tuple[str, int | None]]:
    return [(p.facts.subject, p.served_position) for p in report.path]


# --- certificate facts ------------------------------------------------------------


# (key type, key bits, curve, signature algorithm, signature hash) of a self-signed CA
KEY_FACTS = {
    "rsa2048": (KeyType.RSA, 2048, None, "sha256WithRSAEncryption", "sha256"),
    "ec256": (KeyType.EC, 256, "secp256r1", "ecdsa-with-SHA256", "sha256"),
    "ec384": (KeyType.EC, 384, "secp384r1", "ecdsa-with-SHA256", "sha256"),
    "ed25519": (KeyType.ED25519, 255, None, "ed25519", None),
    "ed448": (KeyType.ED448, 448, None, "ed448", None),
}


@pytest.mark.parametrize("kind", sorted(KEY_FACTS))
def test_key_and_signature_facts(roots: dict[str, Issued], kind: str) -> None:
    facts = certificate_facts(roots[kind].cert)
    assert (
        facts.key_type,
        facts.key_bits,
        facts.key_curve,
        facts.signature_algorithm,
        facts.signature_hash,
    ) == KEY_FACTS[kind]


def test_dsa_and_unknown_key_facts(world: World) -> None:
    """DSA keys (still in old private PKIs) are named with their size; a key
    algorithm the library does not know is OTHER, 0 bits (its pin still
    comes from the encoded SPKI)."""
    key = dsa.generate_private_key(key_size=1024)
    issued = world.pki.issue("DSA Leaf", issuer=world.chain.intermediate, key=key)  # type: ignore[arg-type]
    facts = certificate_facts(issued.cert)
    assert (facts.key_type, facts.key_bits, facts.key_curve) == (KeyType.DSA, 1024, None)
    dsa_oid = bytes.fromhex("06072a8648ce380401")  # 1.2.840.10040.4.1, id-dsa
    unknown = issued.der.replace(dsa_oid, bytes.fromhex("06072a8648ce380407"))
    assert unknown != issued.der
    facts = certificate_facts(x509.load_der_x509_certificate(unknown))
    assert (facts.key_type, facts.key_bits, facts.key_curve) == (KeyType.OTHER, 0, None)
    # an X25519 key (RFC 8410: key agreement only) loads, and is no signing key kind
    agreement = world.pki.issue(
        "X25519 Leaf",
        issuer=world.chain.intermediate,
        key=x25519.X25519PrivateKey.generate(),  # type: ignore[arg-type]
    )
    facts = certificate_facts(agreement.cert)
    assert (facts.key_type, facts.key_bits, facts.key_curve) == (KeyType.OTHER, 0, None)


def test_leaf_key_facts_are_the_leafs_not_the_issuers(world: World) -> None:
    leaf = world.pki.leaf("p384.example", world.rsa_root, key_type="ec384", hash_alg="sha384")
    facts = certificate_facts(leaf.cert)
    assert (facts.key_type, facts.key_bits, facts.key_curve) == (KeyType.EC, 384, "secp384r1")
    assert (facts.signature_algorithm, facts.signature_hash) == (
        "sha384WithRSAEncryption",
        "sha384",
    )


@pytest.mark.parametrize(
    ("hash_alg", "sig_name"),
    [
        ("sha1", "sha1WithRSAEncryption"),
        ("md5", "md5WithRSAEncryption"),
        ("sha512", "sha512WithRSAEncryption"),
    ],
)
def test_signature_hash_of_rsa_signed_leaves(world: World, hash_alg: str, sig_name: str) -> None:
    leaf = world.pki.leaf("legacy.example", world.rsa_root, hash_alg=hash_alg)
    facts = certificate_facts(leaf.cert)
    assert facts.signature_algorithm == sig_name
    assert facts.signature_hash == hash_alg


def test_ecdsa_sha384_signature(world: World, roots: dict[str, Issued]) -> None:
    leaf = world.pki.leaf("ec.example", roots["ec384"], hash_alg="sha384")
    facts = certificate_facts(leaf.cert)
    assert (facts.signature_algorithm, facts.signature_hash) == ("ecdsa-with-SHA384", "sha384")


def test_leaf_facts(world: World) -> None:
    inter = world.chain.intermediate
    leaf = world.pki.leaf(
        "api.example.com",
        inter,
        dns=("api.example.com", "*.api.example.com"),
        ips=("127.0.0.1", "::1"),
        serial=0x1234567890ABCDEF,
    )
    facts = certificate_facts(leaf.cert)
    assert facts.subject == f"{ORG},CN=api.example.com"
    assert facts.issuer == INTER
    assert facts.serial == 0x1234567890ABCDEF
    assert facts.san_dns == ("api.example.com", "*.api.example.com")
    assert facts.san_ip == ("127.0.0.1", "::1")
    assert facts.is_ca is False
    assert facts.path_length is None
    assert facts.self_issued is False
    assert facts.sct_count == 0
    assert facts.not_before == datetime(2025, 12, 2, tzinfo=timezone.utc)
    assert facts.not_after == datetime(2026, 4, 1, tzinfo=timezone.utc)
    assert facts.not_before.utcoffset() == timedelta(0)
    assert facts.not_after.tzinfo is not None
    assert facts.spki_sha256 == leaf.pin
    assert facts.spki_sha1 == leaf.sha1_pin
    assert facts.pins == frozenset({leaf.pin, leaf.sha1_pin})
    assert facts.der_sha256 == hashlib.sha256(leaf.der).digest()


def test_ca_facts(world: World) -> None:
    root = certificate_facts(world.chain.root.cert)
    assert (root.is_ca, root.path_length, root.self_issued) == (True, None, True)
    assert root.subject == root.issuer == ROOT
    assert (root.san_dns, root.san_ip) == ((), ())
    inter = certificate_facts(world.chain.intermediate.cert)
    assert (inter.is_ca, inter.path_length, inter.self_issued) == (True, 0, False)
    deep = world.pki.intermediate("Deep", world.chain.root, path_length=3)
    assert certificate_facts(deep.cert).path_length == 3
    unlimited = world.pki.intermediate("Unlimited", world.chain.root, path_length=None)
    assert certificate_facts(unlimited.cert).path_length is None


def test_no_basic_constraints_is_not_a_ca(world: World) -> None:
    cert = world.pki.leaf("nobc.example", world.chain.intermediate, basic_constraints=False)
    facts = certificate_facts(cert.cert)
    assert (facts.is_ca, facts.path_length) == (False, None)


def _sct(log_byte: int, timestamp_ms: int) -> bytes:
    """One v1 SignedCertificateTimestamp (RFC 6962 §3.2), TLS-encoded, length-prefixed."""
    signature = b"\x30\x06\x02\x01\x01\x02\x01\x01"  # a (meaningless) ECDSA-Sig-Value
    body = (
        b"\x00"  # v1
        + bytes([log_byte]) * 32  # LogID
        + struct.pack(">Q", timestamp_ms)
        + struct.pack(">H", 0)  # no extensions
        + b"\x04\x03"  # sha256, ecdsa
        + struct.pack(">H", len(signature))
        + signature
    )
    return struct.pack(">H", len(body)) + body


def _der_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(size)]) + size


def _sct_list_extension(*scts: bytes) -> x509.UnrecognizedExtension:
    tls = struct.pack(">H", sum(map(len, scts))) + b"".join(scts)
    value = b"\x04" + _der_length(len(tls)) + tls  # extnValue holds a DER OCTET STRING
    oid = x509.ObjectIdentifier("1.3.6.1.4.1.11129.2.4.2")
    return x509.UnrecognizedExtension(oid, value)


@pytest.mark.parametrize("count", [1, 3])
def test_sct_count(world: World, count: int) -> None:
    ext = _sct_list_extension(*(_sct(n, 1_700_000_000_000 + n) for n in range(count)))
    leaf = world.pki.leaf("ct.example", world.chain.intermediate, extra_extensions=[(ext, False)])
    # cryptography reads the raw extension back as the typed SCT list
    typed = leaf.cert.extensions.get_extension_for_class(
        x509.PrecertificateSignedCertificateTimestamps
    )
    assert len(typed.value) == count
    assert certificate_facts(leaf.cert).sct_count == count


def test_parse_certificate_and_its_errors(world: World) -> None:
    cache = CertificateCache()
    facts = parse_certificate(world.chain.leaf.der, cache)
    assert facts == certificate_facts(world.chain.leaf.cert)
    assert parse_certificate(world.chain.leaf.der, cache) is facts
    assert (cache.misses, cache.hits, len(cache)) == (1, 1, 1)
    with pytest.raises(ValueError) as err:
        parse_certificate(GARBAGE_DER, cache)
    assert str(err.value) == GARBAGE_DER_ERROR
    with pytest.raises(ValueError) as err:
        parse_certificate(NOT_DER, cache)
    assert str(err.value) == NOT_DER_ERROR
    # failures are cached too
    with pytest.raises(ValueError):
        parse_certificate(NOT_DER, cache)
    assert (cache.misses, cache.hits, len(cache)) == (3, 2, 3)


def test_cache_is_bounded(world: World) -> None:
    cache = CertificateCache(max_entries=2)
    cache.get(world.chain.leaf.der)
    cache.get(world.chain.intermediate.der)
    assert len(cache) == 2
    cache.get(world.chain.root.der)  # full: cleared, then this one added
    assert len(cache) == 1
    cache.get(world.chain.leaf.der)
    assert (cache.misses, cache.hits) == (4, 0)


def test_cross_signed_intermediate_keeps_its_pin(world: World) -> None:
    other_root = world.pki.root("Other Root")
    inter = world.chain.intermediate
    cross = world.pki.cross_sign(inter, other_root)
    original, crossed = certificate_facts(inter.cert), certificate_facts(cross.cert)
    assert crossed.subject == original.subject == INTER
    assert crossed.issuer == f"{ORG},CN=Other Root"
    assert crossed.der_sha256 != original.der_sha256
    assert crossed.spki_sha256 == original.spki_sha256 == inter.pin
    assert crossed.spki_sha1 == original.spki_sha1

    # a client that trusts only the other root validates through the cross-sign
    other_store = store_from_pem(other_root.pem, "other-store")
    report = analyze_chain(
        [world.chain.leaf.der, cross.der], other_store, HOST, NOW, cache=CertificateCache()
    )
    assert report.status is PathStatus.VALID
    assert path_of(report) == [(LEAF, 0), (INTER, 1), (f"{ORG},CN=Other Root", None)]
    assert report.path[1].facts.der_sha256 == crossed.der_sha256
    assert report.path[1].facts.spki_sha256 == inter.pin


# --- analyze_chain: statuses ------------------------------------------------------------


def test_valid_chain(world: World) -> None:
    report = analyze(world, world.chain.served)
    assert report.status is PathStatus.VALID
    assert report.valid is True
    assert report.server_name == HOST
    assert report.hostname_ok is True
    assert report.error is None
    assert report.policy_error is None
    assert path_of(report) == [(LEAF, 0), (INTER, 1), (ROOT, None)]
    assert [(s.position, s.der, s.error) for s in report.served] == [
        (0, world.chain.leaf.der, None),
        (1, world.chain.intermediate.der, None),
    ]
    assert report.leaf is not None
    assert report.leaf.subject == LEAF
    assert report.path[0].facts is report.served[0].facts
    assert report.path[-1].facts.spki_sha256 == world.chain.root.pin


@pytest.mark.parametrize(
    "name", ["WWW.EXAMPLE.COM", "www.example.com.", "Www.Example.Com.", " www.example.com "]
)
def test_server_name_is_normalised(world: World, name: str) -> None:
    report = analyze(world, world.chain.served, name)
    assert report.status is PathStatus.VALID
    assert report.server_name == HOST


@pytest.mark.parametrize(
    ("name", "expected"),
    [("A.B.", "a.b"), ("a.b..", "a.b."), ("  X  ", "x"), ("127.0.0.1", "127.0.0.1")],
)
def test_normalise_name(name: str, expected: str) -> None:
    assert normalise_name(name) == expected


def test_served_root_gets_its_position(world: World) -> None:
    report = analyze(world, [*world.chain.served, world.chain.root.der])
    assert report.status is PathStatus.VALID
    assert path_of(report) == [(LEAF, 0), (INTER, 1), (ROOT, 2)]


def test_misordered_chain_still_validates(world: World) -> None:
    c = world.chain
    report = analyze(world, [c.leaf.der, c.root.der, c.intermediate.der])
    assert report.status is PathStatus.VALID
    assert path_of(report) == [(LEAF, 0), (INTER, 2), (ROOT, 1)]


def test_unparsable_middle_certificate_is_skipped(world: World) -> None:
    c = world.chain
    report = analyze(world, [c.leaf.der, GARBAGE_DER, c.intermediate.der])
    assert report.status is PathStatus.VALID
    assert path_of(report) == [(LEAF, 0), (INTER, 2), (ROOT, None)]
    middle = report.served[1]
    assert (middle.position, middle.der, middle.facts) == (1, GARBAGE_DER, None)
    assert middle.error == GARBAGE_DER_ERROR


def test_wrong_hostname(world: World) -> None:
    report = analyze(world, world.chain.served, "other.example.com")
    assert report.status is PathStatus.INVALID
    assert report.valid is False
    assert report.hostname_ok is False
    assert report.error == NO_SAN_MATCH
    assert report.policy_error is None
    assert path_of(report) == [(LEAF, 0), (INTER, 1), (ROOT, None)]


def test_wildcard_covers_one_label_only(world: World) -> None:
    leaf = world.pki.leaf("wild", world.chain.intermediate, dns=("*.example.org",))
    served = [leaf.der, world.chain.intermediate.der]
    assert analyze(world, served, "a.example.org").status is PathStatus.VALID
    for name in ("example.org", "a.b.example.org"):
        report = analyze(world, served, name)
        assert (report.status, report.hostname_ok, report.error) == (
            PathStatus.INVALID,
            False,
            NO_SAN_MATCH,
        )


@pytest.mark.parametrize(
    ("not_before", "not_after"),
    [
        (NOW - timedelta(days=100), NOW - timedelta(days=10)),  # expired
        (NOW + timedelta(days=10), NOW + timedelta(days=100)),  # not yet valid
        (NOW - timedelta(days=90), NOW - timedelta(seconds=1)),  # expired a second ago
    ],
)
def test_leaf_outside_its_validity(world: World, not_before: datetime, not_after: datetime) -> None:
    leaf = world.pki.leaf(
        HOST, world.chain.intermediate, not_before=not_before, not_after=not_after
    )
    report = analyze(world, [leaf.der, world.chain.intermediate.der])
    assert report.status is PathStatus.INVALID
    assert report.hostname_ok is True
    assert report.error == NOT_VALID_NOW
    assert report.policy_error is None
    assert path_of(report) == [(LEAF, 0), (INTER, 1), (ROOT, None)]
    assert report.path[0].facts.not_after == not_after


def test_validity_bounds_are_inclusive(world: World) -> None:
    inter = world.chain.intermediate
    ends_now = world.pki.leaf(HOST, inter, not_after=NOW)
    starts_now = world.pki.leaf(HOST, inter, not_before=NOW)
    for leaf in (ends_now, starts_now):
        assert analyze(world, [leaf.der, inter.der]).status is PathStatus.VALID


def test_expired_and_misnamed(world: World) -> None:
    leaf = world.pki.leaf(HOST, world.chain.intermediate, days_before=100, days_after=-10)
    report = analyze(world, [leaf.der, world.chain.intermediate.der], "other.example.com")
    assert (report.status, report.hostname_ok) == (PathStatus.INVALID, False)
    assert report.error == NOT_VALID_NOW


def test_expired_intermediate(world: World) -> None:
    old = world.pki.intermediate("Old Intermediate", world.chain.root, days_after=-1)
    leaf = world.pki.leaf(HOST, old)
    report = analyze(world, [leaf.der, old.der])
    assert report.status is PathStatus.INVALID
    assert report.hostname_ok is True
    assert report.error == (
        "validation failed: candidates exhausted: cert is not valid at validation time"
    )
    assert path_of(report) == [(LEAF, 0), (f"{ORG},CN=Old Intermediate", 1), (ROOT, None)]


def test_an_aware_now_in_another_zone_is_that_instant(world: World) -> None:
    """2026-01-01T10:00+14:00 is 2025-12-31T20:00Z: a leaf ending at midnight
    UTC is still valid then (the zone is converted, not replaced)."""
    inter = world.chain.intermediate
    leaf = world.pki.leaf(HOST, inter, not_after=NOW)
    kiribati = timezone(timedelta(hours=14))
    report = analyze_chain(
        [leaf.der, inter.der],
        world.store,
        HOST,
        datetime(2026, 1, 1, 10, 0, tzinfo=kiribati),
        cache=CertificateCache(),
    )
    assert report.status is PathStatus.VALID


def test_naive_now_is_utc(world: World) -> None:
    report = analyze_chain(
        world.chain.served, world.store, HOST, datetime(2026, 1, 1), cache=CertificateCache()
    )
    assert report.status is PathStatus.VALID


def test_wrong_extended_key_usage_is_a_policy_error(world: World) -> None:
    client_only = x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH])
    leaf = world.pki.leaf(
        HOST, world.chain.intermediate, eku_server=False, extra_extensions=[(client_only, False)]
    )
    report = analyze(world, [leaf.der, world.chain.intermediate.der])
    assert report.status is PathStatus.INVALID
    assert report.hostname_ok is True
    assert report.error == "validation failed: required EKU not found"
    assert report.policy_error == "validation failed: required EKU not found"
    assert path_of(report) == [(LEAF, 0), (INTER, 1), (ROOT, None)]


def test_absent_extended_key_usage_is_accepted(world: World) -> None:
    leaf = world.pki.leaf(HOST, world.chain.intermediate, eku_server=False)
    assert analyze(world, [leaf.der, world.chain.intermediate.der]).status is PathStatus.VALID


def test_leaf_without_san(world: World) -> None:
    leaf = world.pki.leaf(HOST, world.chain.intermediate, dns=())
    report = analyze(world, [leaf.der, world.chain.intermediate.der])
    assert report.status is PathStatus.INVALID
    assert report.hostname_ok is False
    assert report.error == (
        "validation failed: missing required extension: leaf server certificate has no "
        "subjectAltName"
    )


def test_incomplete_chain_completed_from_the_pool(world: World) -> None:
    c = world.chain
    report = analyze(world, [c.leaf.der], pool=[c.intermediate.cert])
    assert report.status is PathStatus.INCOMPLETE
    assert report.hostname_ok is True
    assert report.error == (
        "validation failed: candidates exhausted: all candidates exhausted with no interior errors"
    )
    assert path_of(report) == [(LEAF, 0), (INTER, None), (ROOT, None)]
    assert report.path[1].facts.spki_sha256 == c.intermediate.pin


def test_incomplete_and_misnamed(world: World) -> None:
    c = world.chain
    report = analyze(world, [c.leaf.der], "other.example.com", pool=[c.intermediate.cert])
    assert (report.status, report.hostname_ok) == (PathStatus.INCOMPLETE, False)


def test_served_intermediates_win_over_the_pool(world: World) -> None:
    c = world.chain
    leaf = world.pki.leaf(HOST, c.intermediate, days_before=100, days_after=-10)
    report = analyze(world, [leaf.der, c.intermediate.der], pool=[c.intermediate.cert])
    assert report.status is PathStatus.INVALID  # not INCOMPLETE: nothing is missing
    assert path_of(report) == [(LEAF, 0), (INTER, 1), (ROOT, None)]


def test_missing_intermediate_without_pool_is_untrusted(world: World) -> None:
    report = analyze(world, [world.chain.leaf.der])
    assert report.status is PathStatus.UNTRUSTED
    assert report.hostname_ok is None
    assert report.path == ()
    assert report.error == f"{LEAF} is issued by {INTER}, which is neither sent nor trusted"
    assert report.leaf is not None
    assert report.leaf.subject == LEAF


def test_unknown_root_is_untrusted(world: World) -> None:
    other = standard_chain(world.pki, HOST, prefix="Other")
    report = analyze(world, other.served)
    assert report.status is PathStatus.UNTRUSTED
    assert report.hostname_ok is None
    assert report.path == ()
    assert report.error == (
        f"{ORG},CN=Other Intermediate is issued by {ORG},CN=Other Root, "
        "which is neither sent nor trusted"
    )


def test_served_unknown_root_is_named(world: World) -> None:
    other = standard_chain(world.pki, HOST, prefix="Other")
    report = analyze(world, [*other.served, other.root.der])
    assert report.status is PathStatus.UNTRUSTED
    assert report.error == (
        f"the chain ends at {ORG},CN=Other Root, which is not a trust anchor of test-store"
    )


def test_sha1_signed_leaf_is_refused_but_its_facts_survive(world: World) -> None:
    store = store_from_pem(world.rsa_root.pem, "rsa-store")
    leaf = world.pki.leaf(HOST, world.rsa_root, hash_alg="sha1")
    report = analyze_chain([leaf.der], store, HOST, NOW, cache=CertificateCache())
    assert report.status is not PathStatus.VALID
    assert report.error is not None
    assert "Forbidden signature algorithm" in report.error
    assert report.leaf is not None
    assert report.leaf.signature_hash == "sha1"


def test_garbage_leaf_is_unparsable(world: World) -> None:
    report = analyze(world, [NOT_DER, world.chain.intermediate.der])
    assert report.status is PathStatus.UNPARSABLE
    assert report.error == "the leaf certificate does not parse"
    assert report.hostname_ok is None
    assert report.path == ()
    assert report.leaf is None
    assert report.served[0].facts is None
    assert report.served[0].error == NOT_DER_ERROR
    assert report.served[1].facts is not None
    assert report.served[1].facts.subject == INTER


def test_nothing_served_is_unparsable(world: World) -> None:
    report = analyze(world, [])
    assert report.status is PathStatus.UNPARSABLE
    assert report.error == "no certificate served"
    assert report.served == ()
    assert report.leaf is None
    assert report.path == ()


# --- IP addresses and odd names -------------------------------------------------------


@pytest.fixture(scope="module")
def ip_leaf(world: World) -> Issued:
    return world.pki.leaf("ip", world.chain.intermediate, dns=(), ips=("127.0.0.1", "::1"))


@pytest.mark.parametrize("name", ["127.0.0.1", "::1", "[::1]", "0:0:0:0:0:0:0:1"])
def test_ip_address_server_name(world: World, ip_leaf: Issued, name: str) -> None:
    report = analyze(world, [ip_leaf.der, world.chain.intermediate.der], name)
    assert report.status is PathStatus.VALID
    assert report.hostname_ok is True


@pytest.mark.parametrize("name", ["127.0.0.2", "::2", "ip", "localhost"])
def test_ip_certificate_for_another_name(world: World, ip_leaf: Issued, name: str) -> None:
    report = analyze(world, [ip_leaf.der, world.chain.intermediate.der], name)
    assert report.status is PathStatus.INVALID
    assert report.hostname_ok is False
    assert report.error == NO_SAN_MATCH


def test_dns_certificate_is_not_valid_for_an_ip(world: World) -> None:
    report = analyze(world, world.chain.served, "127.0.0.1")
    assert (report.status, report.hostname_ok, report.error) == (
        PathStatus.INVALID,
        False,
        NO_SAN_MATCH,
    )


@pytest.mark.parametrize("name", ["my_host.internal", "héllo.example", "bad name", "*.example.com"])
def test_name_the_verifier_cannot_check(world: World, name: str) -> None:
    report = analyze(world, world.chain.served, name)
    assert report.status is PathStatus.INVALID
    assert report.hostname_ok is None
    assert report.error == f"{name!r} is neither a DNS name nor an IP address"
    assert path_of(report) == [(LEAF, 0), (INTER, 1), (ROOT, None)]


# --- the certificate cache --------------------------------------------------------------


def test_repeated_chain_is_parsed_once(world: World) -> None:
    cache = CertificateCache()
    first = analyze_chain(world.chain.served, world.store, HOST, NOW, cache=cache)
    # leaf and intermediate parsed, then looked up again for the path, plus the anchor
    assert (cache.misses, cache.hits, len(cache)) == (3, 2, 3)
    second = analyze_chain(world.chain.served, world.store, HOST, NOW, cache=cache)
    assert (cache.misses, cache.hits, len(cache)) == (3, 7, 3)
    assert second == first
    assert second.served[0].facts is first.served[0].facts
    assert second.path[2].facts is first.path[2].facts
