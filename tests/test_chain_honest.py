"""Chain analysis you can trust: no certificate the verifier accepts makes the
analysis raise, validity boundaries are those of RFC 5280 and the verifier, and
each failure class gets its own truthful diagnosis, at a bounded cost.

Fixtures reproduce patterns seen in public suites: x509-limbo's
``webpki::aki::root-with-aki-authoritycertserialnumber`` (an authorityKeyIdentifier
with a serial number and no issuer), its ``pathological::intermediate-cycle-*`` and
``pathological::nc-dos-*`` cases, and its ``rfc5280::nc::*`` name-constraint cases.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import verification
from cryptography.x509.oid import ExtensionOID

from scanner import chain
from scanner.audit import audit
from scanner.chain import CertificateCache, analyze_chain
from scanner.fleet.pki import PKI, Issued, _der
from scanner.model import ChainReport, Endpoint, PathStatus, Pinset
from scanner.preflight import preflight_chain
from scanner.trust import TrustStore, store_from_pem

NOW = datetime(2026, 6, 1, 0, 0, tzinfo=timezone.utc)
HOST = "honest.example"
C, W, INFO = "critical", "warning", "info"
AKI_ERROR = (
    "extensions: ValueError: authority_cert_issuer and authority_cert_serial_number must both "
    "be present or both None"
)


def aki_with_serial_only(issuer_key: ec.EllipticCurvePublicKey) -> x509.UnrecognizedExtension:
    """authorityKeyIdentifier { keyIdentifier, authorityCertSerialNumber }: legal
    ASN.1, refused by X.509's pairing rule, read by the verifier all the same."""
    key_id = x509.SubjectKeyIdentifier.from_public_key(issuer_key).digest
    body = _der(0x80, key_id) + _der(0x82, b"\x01\x23")
    return x509.UnrecognizedExtension(ExtensionOID.AUTHORITY_KEY_IDENTIFIER, _der(0x30, body))


def odd_ca(pki: PKI, cn: str, issuer: Issued | None, **kw: object) -> Issued:
    """A CA whose authorityKeyIdentifier carries a serial number without an issuer."""
    key = ec.generate_private_key(ec.SECP256R1())
    signer = issuer.key if issuer is not None else key
    extensions = [
        (x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False),
        (aki_with_serial_only(signer.public_key()), False),  # type: ignore[arg-type]
    ]
    return pki.issue(
        cn, issuer=issuer, key=key, ca=True, key_identifiers=False,
        extra_extensions=extensions, **kw,  # type: ignore[arg-type]
    )  # fmt: skip


@dataclass(frozen=True)
class World:
    pki: PKI
    root: Issued
    inter: Issued
    leaf: Issued
    store: TrustStore


@pytest.fixture(scope="module")
def world() -> World:
    pki = PKI(NOW)
    root = pki.root("Honest Root")
    inter = pki.intermediate("Honest CA", root)
    return World(pki, root, inter, pki.leaf(HOST, inter), store_from_pem(root.pem, "honest.pem"))


def analyze(served: list[bytes], store: TrustStore, now: datetime = NOW) -> ChainReport:
    return analyze_chain(served, store, HOST, now, cache=CertificateCache())


def verdict(
    report: ChainReport, now: datetime = NOW, pinset: Pinset | None = None
) -> set[tuple[str, str, int | None]]:
    endpoint = Endpoint("e", HOST, 443, HOST, pinset)
    return {f.key for f in audit(endpoint, report, now)}


def verifier_accepts(store: TrustStore, leaf: Issued, inters: list[Issued], now: datetime) -> bool:
    builder = verification.PolicyBuilder().store(store.store).time(now)
    try:
        builder.build_server_verifier(x509.DNSName(HOST)).verify(
            leaf.cert, [i.cert for i in inters]
        )
    except verification.VerificationError:
        return False
    return True


# --- 1. reading facts never raises ----------------------------------------------------


def test_an_anchor_whose_fields_cannot_be_read_is_kept_on_the_path(world: World) -> None:
    """The anchor loads into the store and the verifier accepts it; reading its
    extensions raised ValueError in _to_path (preflight exit 70, scan abort)."""
    root = odd_ca(world.pki, "Odd Root", None, days_before=3650, days_after=3650)
    inter = world.pki.intermediate("Odd Root's CA", root)
    leaf = world.pki.leaf(HOST, inter)
    store = store_from_pem(root.pem, "odd.pem")
    assert store.warnings == ()
    assert verifier_accepts(store, leaf, [inter], NOW)
    report = analyze([leaf.der, inter.der], store)
    assert report.status is PathStatus.VALID
    assert [(p.facts.subject, p.served_position) for p in report.path] == [
        (f"O=pinaudit test PKI,CN={HOST}", 0),
        ("O=pinaudit test PKI,CN=Odd Root's CA", 1),
        ("O=pinaudit test PKI,CN=Odd Root", None),
    ]
    anchor = report.path[-1].facts
    assert anchor.unreadable == (AKI_ERROR,)
    assert anchor.spki_sha256 == root.pin  # what can be read is read
    findings = audit(
        Endpoint("e", HOST, 443, HOST, Pinset("p", (root.pin, inter.pin))), report, NOW
    )
    assert [(f.key, f.message) for f in findings] == [
        (("no_backup_pin", W, None), "all 2 pins of 'p' match the current path: none is a backup"),
        (
            ("cert_field_unreadable", W, None),
            "O=pinaudit test PKI,CN=Odd Root (not served) is on the path the verifier built, "
            f"but a field of it cannot be read: {AKI_ERROR}",
        ),
    ]


def test_preflight_of_a_chain_to_such_an_anchor_does_not_crash(world: World) -> None:
    root = odd_ca(world.pki, "Odd Root", None, days_before=3650, days_after=3650)
    inter = world.pki.intermediate("Odd Root's CA", root)
    leaf = world.pki.leaf(HOST, inter)
    store = store_from_pem(root.pem, "odd.pem")
    endpoint = Endpoint("e", HOST, 443, HOST, Pinset("p", (inter.pin, world.root.pin)))
    [result] = preflight_chain([endpoint], [leaf.der, inter.der], lambda _spec: store, NOW)
    assert (result.verdict.value, result.reason) == (
        "safe",
        f"{inter.pin} matches O=pinaudit test PKI,CN=Odd Root's CA",
    )


def test_a_served_intermediate_whose_fields_cannot_be_read_stays_on_the_path(
    world: World,
) -> None:
    """It was dropped as unparsable and the report said its subject was
    'neither sent nor trusted' although it was sent."""
    inter = odd_ca(world.pki, "Odd CA", world.root, path_length=0)
    leaf = world.pki.leaf(HOST, inter)
    assert verifier_accepts(world.store, leaf, [inter], NOW)
    report = analyze([leaf.der, inter.der], world.store)
    assert report.status is PathStatus.VALID
    assert [p.served_position for p in report.path] == [0, 1, None]
    assert report.served[1].facts is None
    assert report.served[1].error == f"unreadable: {AKI_ERROR}"
    assert report.path[1].facts.subject == "O=pinaudit test PKI,CN=Odd CA"
    findings = audit(Endpoint("e", HOST, 443, HOST, None), report, NOW)
    assert [(f.key, f.message) for f in findings] == [
        (
            ("cert_field_unreadable", W, 1),
            "certificate 1 is on the path the verifier built, but a field of it cannot be "
            f"read: {AKI_ERROR}",
        )
    ]


def test_a_leaf_whose_fields_cannot_be_read_is_reported_not_raised(world: World) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = world.pki.issue(
        HOST, issuer=world.inter, key=key, dns=(HOST,), key_identifiers=False,
        extra_extensions=[(aki_with_serial_only(world.inter.key.public_key()), False)],  # type: ignore[arg-type]
    )  # fmt: skip
    report = analyze([leaf.der, world.inter.der], world.store)
    assert report.status is PathStatus.UNPARSABLE
    assert report.error == (
        f"the leaf certificate's fields cannot be read (unreadable: {AKI_ERROR})"
    )
    assert verdict(report) == {("cert_unparsable", C, 0)}


# --- 2. exact boundaries --------------------------------------------------------------


@pytest.mark.parametrize(
    ("shift", "status", "expected"),
    [
        (timedelta(seconds=-1), PathStatus.VALID, {("cert_expiring", C, 0)}),
        (timedelta(0), PathStatus.VALID, {("cert_expiring", C, 0)}),  # notAfter itself
        (timedelta(microseconds=500_000), PathStatus.VALID, {("cert_expiring", C, 0)}),
        (timedelta(seconds=1), PathStatus.INVALID, {("cert_expired", C, 0)}),
    ],
)
def test_not_after_itself_is_still_valid(
    world: World, shift: timedelta, status: PathStatus, expected: set[object]
) -> None:
    """`--now 2026-06-01` against a certificate expiring 2026-06-01T00:00:00Z:
    RFC 5280 and the verifier count notAfter itself as valid; audit said
    cert_expired (critical) on a path the verifier called valid."""
    leaf = world.pki.leaf(HOST, world.inter, not_after=NOW, days_before=90)
    report = analyze([leaf.der, world.inter.der], world.store, NOW + shift)
    assert report.status is status
    assert verifier_accepts(world.store, leaf, [world.inter], NOW + shift) is (
        status is PathStatus.VALID
    )
    assert verdict(report, NOW + shift) == expected


@pytest.mark.parametrize(
    ("shift", "status", "expected"),
    [
        (timedelta(seconds=-1), PathStatus.INVALID, {("cert_not_yet_valid", C, 0)}),
        (timedelta(microseconds=-1), PathStatus.INVALID, {("cert_not_yet_valid", C, 0)}),
        (timedelta(0), PathStatus.VALID, set()),  # notBefore itself
        (timedelta(microseconds=1), PathStatus.VALID, set()),
    ],
)
def test_not_before_itself_is_valid(
    world: World, shift: timedelta, status: PathStatus, expected: set[object]
) -> None:
    leaf = world.pki.leaf(HOST, world.inter, not_before=NOW, days_after=90)
    report = analyze([leaf.der, world.inter.der], world.store, NOW + shift)
    assert report.status is status
    assert verdict(report, NOW + shift) == expected


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (NOW - timedelta(seconds=1), {("pinset_expiring", W, None)}),
        (NOW, {("pinset_expiring", W, None)}),  # 00:00:00Z of the date: still enforced
        (NOW + timedelta(microseconds=1), {("pinset_expired", W, None)}),
        (NOW.replace(tzinfo=None), {("pinset_expiring", W, None)}),  # naive: UTC
    ],
)
def test_pinset_expiry_instant_is_still_enforced(
    world: World, now: datetime, expected: set[object]
) -> None:
    report = analyze([world.leaf.der, world.inter.der], world.store)
    pinset = Pinset("p", (world.inter.pin, world.root.pin), expires=NOW.date())
    assert verdict(report, now, pinset) - {("no_backup_pin", W, None)} == expected


def test_an_expired_chain_whose_leaf_predates_its_intermediate_is_expired_not_untrusted(
    world: World,
) -> None:
    """The leaf was issued before its intermediate's notBefore (a re-issued
    intermediate with the same key) and both have expired. The diagnosis must
    move the time to when both are valid (between the later notBefore and the
    earlier notAfter), not to the leaf's notBefore."""
    inter = world.pki.intermediate(
        "Honest CA", world.root, key=world.inter.key,
        not_before=NOW - timedelta(days=100), not_after=NOW - timedelta(days=1),
    )  # fmt: skip
    leaf = world.pki.leaf(
        HOST, inter, not_before=NOW - timedelta(days=200), not_after=NOW - timedelta(days=5)
    )
    report = analyze([leaf.der, inter.der], world.store)
    assert report.status is PathStatus.INVALID
    assert [p.served_position for p in report.path] == [0, 1, None]
    assert verdict(report) == {("cert_expired", C, 0), ("cert_expired", C, 1)}


# --- 3. honest diagnosis --------------------------------------------------------------


def test_a_name_constraint_violation_is_its_own_finding(world: World) -> None:
    """x509-limbo rfc5280::nc::*: the CA may only certify names under
    example.org; the leaf names honest.example. Not a hostname mismatch."""
    constraints = x509.NameConstraints(
        permitted_subtrees=[x509.DNSName("example.org")], excluded_subtrees=None
    )
    inter = world.pki.intermediate(
        "Constrained CA", world.root, extra_extensions=[(constraints, True)]
    )
    leaf = world.pki.leaf(HOST, inter)
    report = analyze([leaf.der, inter.der], world.store)
    findings = audit(Endpoint("e", HOST, 443, HOST, None), report, NOW)
    assert [(f.key, f.message) for f in findings] == [
        (
            ("name_constraints_violated", C, 0),
            f"a CA's nameConstraints forbid a name of the leaf ({HOST}): "
            "a CA's name constraints forbid the leaf's names: validation failed: candidates "
            "exhausted: no permitted name constraints matched SAN",
        )
    ]


def test_a_loop_of_served_intermediates_is_named_a_loop(world: World) -> None:
    """x509-limbo pathological::intermediate-cycle-distinct-cas: two CAs issue
    each other and neither is issued by an anchor."""
    pki = world.pki
    a_key, b_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    a_name = x509.Name.from_rfc4514_string("CN=Cycle A")
    b_name = x509.Name.from_rfc4514_string("CN=Cycle B")
    a = pki.issue(
        "",
        subject=a_name,
        key=a_key,
        issuer=Issued(pki.issue("", subject=b_name, key=b_key, ca=True).cert, b_key),
        ca=True,
    )
    b = pki.issue("", subject=b_name, key=b_key, issuer=Issued(a.cert, a_key), ca=True)
    leaf = pki.leaf(HOST, a)
    report = analyze([leaf.der, a.der, b.der], world.store)
    assert report.status is PathStatus.UNTRUSTED
    assert report.error == (
        f"the served intermediates issue each other in a loop (O=pinaudit test PKI,CN={HOST} → "
        "CN=Cycle A → CN=Cycle B → CN=Cycle A) and none is issued by an anchor of honest.pem"
    )


def test_an_anchor_named_like_a_looping_ca_is_not_a_loop(world: World) -> None:
    """The same two CAs issuing each other, but the store holds a root named
    like one of them (another key): the issuer is trusted by name, so the
    reason is a broken rule on the way to it, not a loop."""
    pki = world.pki
    a_key, b_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    a_name = x509.Name.from_rfc4514_string("CN=Cycle A")
    b_name = x509.Name.from_rfc4514_string("CN=Cycle B")
    a = pki.issue(
        "",
        subject=a_name,
        key=a_key,
        issuer=Issued(pki.issue("", subject=b_name, key=b_key, ca=True).cert, b_key),
        ca=True,
    )
    b = pki.issue("", subject=b_name, key=b_key, issuer=Issued(a.cert, a_key), ca=True)
    leaf = pki.leaf(HOST, a)
    namesake = pki.issue("", subject=a_name, ca=True)  # a root "CN=Cycle A", its own key
    store = store_from_pem(world.root.pem + namesake.pem, "namesake.pem")
    report = analyze([leaf.der, a.der, b.der], store)
    assert report.status is PathStatus.UNTRUSTED
    assert report.error is not None and "loop" not in report.error


def test_a_sent_issuer_that_does_not_parse_is_not_called_unsent(world: World) -> None:
    """The issuer was sent, but its DER is cut: it may be the missing issuer."""
    cut = world.inter.der[: len(world.inter.der) // 2]
    report = analyze([world.leaf.der, cut], world.store)
    assert report.status is PathStatus.UNTRUSTED
    assert report.error is not None
    assert report.error.startswith(
        f"O=pinaudit test PKI,CN={HOST} is issued by O=pinaudit test PKI,CN=Honest CA, which "
        "is not trusted; served certificate 1 does not parse (ValueError: "
    )
    assert report.error.endswith("), and may be that issuer")
    assert "neither sent" not in report.error


# --- 4. bounded diagnosis -------------------------------------------------------------


def test_when_the_verifier_gives_up_the_diagnosis_does_not_run_it_again(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """x509-limbo pathological::pathological-chain-same-subject-same-key: many
    self-issued CAs with the intermediate's name and key; the verifier stops at
    its signature-check limit. Rerunning it at three moments and with the pool
    cost four times as much for the same answer."""
    pki = world.pki
    copies = [
        pki.issue(
            "", subject=world.inter.cert.subject, key=world.inter.key, issuer=world.inter, ca=True
        )
        for _ in range(40)
    ]
    rogue = pki.root("Unrelated Root")
    store = store_from_pem(rogue.pem, "unrelated.pem")
    runs: list[str] = []  # each run of the verifier, counted around the real one
    for name in ("_verify_server", "_verify_structure"):
        real = getattr(chain, name)

        def counted(*args: object, _real: object = real, _name: str = name, **kw: object) -> object:
            runs.append(_name)
            return _real(*args, **kw)  # type: ignore[operator]

        monkeypatch.setattr(chain, name, counted)
    report = analyze_chain(
        [world.leaf.der, *(c.der for c in copies)], store, HOST, NOW,
        pool=[world.inter.cert], cache=CertificateCache(),
    )  # fmt: skip
    assert runs == ["_verify_server"]
    assert report.status is PathStatus.UNTRUSTED
    assert report.error == (
        "the verifier gave up building a path (candidates exhausted: fatal error: Exceeded "
        "maximum signature check limit): the chain offers too many candidate paths or name "
        "checks; clients stop as well"
    )
    assert report.path == ()
