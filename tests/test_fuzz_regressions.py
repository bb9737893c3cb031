"""Regressions for what the fuzzers and the fault fleet found, one test each.

The raw inputs that crashed a fuzz target are replayed by tests/test_fuzz.py
(tests/data/fuzz/); these tests state the expected behaviour in words.
"""

from __future__ import annotations

import base64
import io
import warnings
from datetime import datetime, timezone
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import NameOID

from scanner.chain import CertificateCache, analyze_chain, certificate_facts, parse_certificate
from scanner.cli import main
from scanner.fleet import faults
from scanner.fleet.pki import PKI, Issued
from scanner.model import Check, Endpoint, Observation, PathStatus, Pinset
from scanner.results import ScanKnowledge, evaluate
from scanner.trust import load_certificate, store_from_pem

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)
LAST_SECOND = datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone.utc)
DUPLICATE = faults.duplicate_basic_constraints()


@pytest.fixture(scope="module")
def pki() -> tuple[PKI, Issued, Issued]:
    factory = PKI(NOW)
    root = factory.root("Regression Root")
    return factory, root, factory.intermediate("Regression CA", root)


Key = tuple[str, str, int | None]


def _verdict(served: list[bytes], root: Issued, pins: Pinset | None = None) -> set[Key]:
    endpoint = Endpoint("r", "api.example.com", 443, "api.example.com", pins)
    cache = CertificateCache()
    knowledge = ScanKnowledge()
    knowledge.learn(served, cache)  # what the engine does first, for every chain
    observation = Observation("192.0.2.1", 443, tuple(served), "TLSv1.3", "x", None, 0.0, 0.0)
    store = store_from_pem(root.pem, "root.pem")
    result = evaluate(endpoint, [observation], store, NOW, knowledge=knowledge, cache=cache)
    return {f.key for f in result.findings}


def test_not_before_at_the_last_second_there_is(pki: tuple[PKI, Issued, Issued]) -> None:
    """chain.py: diagnosing a leaf valid from 9999-12-31T23:59:59Z added a
    second to that date: OverflowError, the whole scan ended (exit 70)."""
    factory, root, inter = pki
    leaf = factory.leaf("api.example.com", inter, not_before=LAST_SECOND, not_after=LAST_SECOND)
    assert _verdict([leaf.der, inter.der], root) == {
        ("cert_not_yet_valid", "critical", 0),
        ("chain_untrusted", "critical", None),
    }
    store = store_from_pem(root.pem, "root.pem")
    for now in (NOW, LAST_SECOND, datetime(1, 1, 1, tzinfo=timezone.utc)):
        report = analyze_chain([leaf.der, inter.der], store, "api.example.com", now)
        assert report.status is PathStatus.UNTRUSTED


def test_duplicate_extension_is_an_unparsable_certificate(
    pki: tuple[PKI, Issued, Issued], tmp_path: Path
) -> None:
    """chain.py: two basicConstraints extensions made cryptography raise
    DuplicateExtension (not a ValueError) from the leaf's extensions: the
    probe's chain escaped the analysis (found by fuzz/fuzz_chain.py)."""
    factory, root, inter = pki
    leaf = factory.leaf(
        "api.example.com", inter, extra_extensions=[faults.duplicate_basic_constraints()]
    )
    twice = faults.with_duplicate_extension(leaf, inter)
    assert _verdict([twice.der, inter.der], root) == {("cert_unparsable", "critical", 0)}
    with pytest.raises(ValueError, match=r"DuplicateExtension: Duplicate 2\.5\.29\.19 extension"):
        parse_certificate(twice.der, CertificateCache())
    # the same certificate as an intermediate: unparsable, and the path still found
    bad_ca = faults.with_duplicate_extension(
        factory.intermediate("Twice", root, extra_extensions=[DUPLICATE]), root
    )
    good = factory.leaf("api.example.com", inter)
    assert _verdict([good.der, inter.der, bad_ca.der], root) == {("cert_unparsable", "critical", 2)}
    # `pinaudit pin FILE` lists it as unparsable (exit 1) instead of an internal error (70)
    path = tmp_path / "twice.pem"
    path.write_bytes(twice.pem)
    out, err = io.StringIO(), io.StringIO()
    assert main(["pin", str(path)], stdout=out, stderr=err) == 1
    assert out.getvalue() == (
        "0  <certificate does not parse: DuplicateExtension: Duplicate 2.5.29.19 extension found>\n"
    )
    assert err.getvalue() == ""


def test_negative_serial_warns_once_then_never_again(pki: tuple[PKI, Issued, Issued]) -> None:
    """chain.py read the serial a second time, outside load_certificate's
    recording: the library's deprecation warning reached the scan's stderr."""
    factory, root, inter = pki
    negative = faults.with_negative_serial(
        factory.leaf("api.example.com", inter, serial=0x1234_5678_9ABC_DEF0), inter
    )
    cert, warning = load_certificate(negative.der)
    assert warning is not None and "serial number" in warning
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        facts = certificate_facts(cert)
    assert caught == []
    assert facts.serial < 0
    assert _verdict([negative.der, inter.der], root, Pinset("p", (inter.pin, root.pin))) == {
        ("chain_untrusted", "critical", None)
    }


def test_findings_name_the_unparsable_position_only(pki: tuple[PKI, Issued, Issued]) -> None:
    factory, root, inter = pki
    leaf = factory.leaf("api.example.com", inter)
    checks = _verdict([leaf.der, inter.der, b"\x30\x03\x02\x01"], root)
    assert checks == {("cert_unparsable", "critical", 2)}
    assert Check.CERT_UNPARSABLE.value == "cert_unparsable"


def test_trust_bundle_with_an_invalid_version_skips_that_anchor(
    pki: tuple[PKI, Issued, Issued],
) -> None:
    """trust.py: a certificate whose version is 22 made cryptography raise
    InvalidVersion (not a ValueError) out of store_from_pem: a scan with such
    a `trust:` bundle ended in an internal error instead of skipping it
    (found by fuzz/fuzz_chain.py)."""
    _factory, root, inter = pki
    v3 = b"\xa0\x03\x02\x01\x02"
    assert inter.der.count(v3) == 1
    bad = inter.der.replace(v3, b"\xa0\x03\x02\x01\x16")
    with pytest.raises(ValueError, match="22 is not a valid X509 version"):
        load_certificate(bad)
    pem = (
        b"-----BEGIN CERTIFICATE-----\n" + base64.encodebytes(bad) + b"-----END CERTIFICATE-----\n"
    )
    store = store_from_pem(root.pem + pem, "bundle.pem")
    assert len(store) == 1
    assert store.warnings == (
        "bundle.pem: certificate 2 does not parse, skipped: 22 is not a valid X509 version",
    )
    assert _verdict([bad], root) == {("cert_unparsable", "critical", 0)}


def test_odd_names_do_not_print_warnings(pki: tuple[PKI, Issued, Issued]) -> None:
    """chain.py: a countryName of 13 letters made the library print a
    UserWarning (with a source line) to the scan's stderr when the served
    certificate was read (found by fuzz/fuzz_chain.py)."""
    factory, root, _inter = pki
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # building such a name warns too
        country = x509.NameAttribute(NameOID.COUNTRY_NAME, "Wonderlandish", _validate=False)
        name = x509.Name([country, x509.NameAttribute(NameOID.COMMON_NAME, "Odd CA")])
        odd = factory.issue("", subject=name, issuer=root, ca=True, path_length=0)
        leaf = factory.leaf("api.example.com", odd)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        checks = _verdict([leaf.der, odd.der], root)
    assert caught == []
    assert checks == set()


def test_trust_bundle_anchor_with_an_unreadable_name_is_skipped(
    pki: tuple[PKI, Issued, Issued],
) -> None:
    """trust.py: a name attribute typed BIT STRING under another OID than
    x500UniqueIdentifier makes cryptography raise TypeError when the name is
    read: store_from_pem crashed on such an anchor (found by fuzz/fuzz_chain.py)."""
    factory, root, _inter = pki
    unique = x509.NameAttribute(
        NameOID.X500_UNIQUE_IDENTIFIER, b"\x00\x01", _type=_ASN1Type.BitString
    )
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Odd Root"), unique])
    odd = factory.issue("", subject=name, ca=True)
    oid = b"\x06\x03\x55\x04\x2d"  # 2.5.4.45, x500UniqueIdentifier
    bad = odd.der.replace(oid, b"\x06\x03\x55\x04\x0a")  # 2.5.4.10, organizationName
    assert bad != odd.der
    with pytest.raises(TypeError, match="BitString"):
        load_certificate(bad)[0].subject  # noqa: B018
    body = base64.encodebytes(bad)
    pem = b"-----BEGIN CERTIFICATE-----\n" + body + b"-----END CERTIFICATE-----\n"
    store = store_from_pem(root.pem + pem, "bundle.pem")
    assert len(store) == 1
    assert store.warnings == (
        "bundle.pem: certificate 2 does not parse, skipped: oid must be "
        "X500_UNIQUE_IDENTIFIER for BitString type.",
    )
    assert _verdict([bad], root) == {("cert_unparsable", "critical", 0)}
