"""Trust stores: certifi, PEM bundles with broken blocks, the system bundle,
the per-run cache, and reading certificate files."""

from __future__ import annotations

import base64
from datetime import datetime, timezone
from pathlib import Path

import certifi
import pytest

from scanner import trust
from scanner.errors import CertificateFileError, TrustStoreError
from scanner.fleet.pki import PKI, Issued
from scanner.model import HashAlg, Pin, TrustKind, TrustSpec
from scanner.pins import parse_pin, spki_der
from scanner.trust import (
    TrustStores,
    key_index,
    load_certificate,
    read_certificates,
    split_pem,
    store_from_pem,
    system_bundle_path,
)

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)
X1_SUBJECT = "CN=ISRG Root X1,O=Internet Security Research Group,C=US"
X1_PIN = "sha256/C5+lpZ7tcVwmwQIMcRtPbsQtWLABXhQzejna0wHFr8M="
X1_SHA1_PIN = "sha1/+BZRPP0bRJ8uayihlyIfuB9RTjw="

# certifi's roots whose serial number cryptography calls "not positive".
NEGATIVE_SERIAL_ROOTS = (
    "CN=Go Daddy Root Certificate Authority - G2,O=GoDaddy.com\\, Inc.,"
    "L=Scottsdale,ST=Arizona,C=US",
    "CN=Starfield Root Certificate Authority - G2,O=Starfield Technologies\\, Inc.,"
    "L=Scottsdale,ST=Arizona,C=US",
    "CN=Starfield Services Root Certificate Authority - G2,O=Starfield Technologies\\, Inc.,"
    "L=Scottsdale,ST=Arizona,C=US",
    "OU=Security Communication RootCA2,O=SECOM Trust Systems CO.\\,LTD.,C=JP",
    "CN=Hellenic Academic and Research Institutions RootCA 2015,"
    "O=Hellenic Academic and Research Institutions Cert. Authority,L=Athens,C=GR",
    "CN=Hellenic Academic and Research Institutions ECC RootCA 2015,"
    "O=Hellenic Academic and Research Institutions Cert. Authority,L=Athens,C=GR",
)
SERIAL_WARNING = (
    "Parsed a serial number which wasn't positive (i.e., it was negative or zero), "
    "which is disallowed by RFC 5280. Loading this certificate will cause an exception "
    "in a future release of cryptography."
)

BAD_BASE64_BLOCK = b"-----BEGIN CERTIFICATE-----\nMIIB!!!!\n-----END CERTIFICATE-----\n"
# Valid base64, but the DER inside is a SEQUENCE holding one INTEGER.
GARBAGE_DER = b"\x30\x03\x02\x01\x01"
GARBAGE_DER_BLOCK = (
    b"-----BEGIN CERTIFICATE-----\n"
    + base64.encodebytes(GARBAGE_DER)
    + b"-----END CERTIFICATE-----\n"
)
GARBAGE_DER_ERROR = (
    "error parsing asn1 value: ParseError { kind: UnexpectedTag { actual: Tag { value: 2, "
    'constructed: false, class: Universal } }, location: ["Certificate::tbs_cert"] }'
)


@pytest.fixture(scope="module")
def certifi_store() -> trust.TrustStore:
    return store_from_pem(Path(certifi.where()).read_bytes(), "certifi")


@pytest.fixture(scope="module")
def cas() -> tuple[Issued, Issued]:
    pki = PKI(NOW)
    return pki.root("Trust Test Root A"), pki.root("Trust Test Root B")


# --- certifi -------------------------------------------------------------------------


def test_certifi_loads_every_anchor(certifi_store: trust.TrustStore) -> None:
    blocks = Path(certifi.where()).read_bytes().count(b"-----BEGIN CERTIFICATE-----")
    assert len(certifi_store) > 100
    assert len(certifi_store) == blocks == len(certifi_store.anchors)
    assert certifi_store.name == "certifi"


def test_certifi_warnings_name_the_negative_serial_roots(certifi_store: trust.TrustStore) -> None:
    warnings = certifi_store.warnings
    assert len(warnings) == len(NEGATIVE_SERIAL_ROOTS) == 6
    for warning in warnings:
        assert "serial" in warning or "does not parse" in warning
    assert [w.split(" (", 1)[1].split("): ", 1)[0] for w in warnings] == list(NEGATIVE_SERIAL_ROOTS)
    assert warnings[0] == f"certifi: certificate 6 ({NEGATIVE_SERIAL_ROOTS[0]}): {SERIAL_WARNING}"
    assert any("Go Daddy Root Certificate Authority - G2" in w for w in warnings)
    # they are warned about, not dropped
    subjects = {a.subject.rfc4514_string() for a in certifi_store.anchors}
    assert set(NEGATIVE_SERIAL_ROOTS) <= subjects


def test_certifi_known_keys_name_isrg_root_x1(certifi_store: trust.TrustStore) -> None:
    assert certifi_store.known_keys[parse_pin(X1_PIN)] == X1_SUBJECT
    assert certifi_store.known_keys[parse_pin(X1_SHA1_PIN)] == X1_SUBJECT
    # a sha256 and a sha1 pin per distinct key
    keys = {spki_der(a) for a in certifi_store.anchors}
    assert len(certifi_store.known_keys) == 2 * len(keys)


def test_load_certificate_reports_the_library_warning() -> None:
    ders = [b for b in split_pem(Path(certifi.where()).read_bytes()) if isinstance(b, bytes)]
    warned = []
    for der in ders:
        cert, warning = load_certificate(der)
        if warning is not None:
            warned.append(cert.subject.rfc4514_string())
            assert warning == SERIAL_WARNING
    assert warned == list(NEGATIVE_SERIAL_ROOTS)


def test_load_certificate_without_warning_and_garbage(cas: tuple[Issued, Issued]) -> None:
    cert, warning = load_certificate(cas[0].der)
    assert cert == cas[0].cert
    assert warning is None
    with pytest.raises(ValueError) as err:
        load_certificate(GARBAGE_DER)
    assert str(err.value) == GARBAGE_DER_ERROR


# --- PEM bundles ---------------------------------------------------------------------


def test_bundle_with_broken_blocks_keeps_the_good_anchor(cas: tuple[Issued, Issued]) -> None:
    good = cas[0]
    store = store_from_pem(good.pem + BAD_BASE64_BLOCK + GARBAGE_DER_BLOCK, "mybundle.pem")
    assert len(store) == 1
    assert store.anchors == (good.cert,)
    assert store.warnings == (
        "mybundle.pem: PEM block 2: bad base64 (Only base64 data is allowed): skipped",
        f"mybundle.pem: certificate 3 does not parse, skipped: {GARBAGE_DER_ERROR}",
    )
    assert store.known_keys == {
        good.pin: "O=pinaudit test PKI,CN=Trust Test Root A",
        good.sha1_pin: "O=pinaudit test PKI,CN=Trust Test Root A",
    }


@pytest.mark.parametrize(
    "data",
    [
        BAD_BASE64_BLOCK + GARBAGE_DER_BLOCK,
        b"",
        b"not a PEM file at all\n",
        b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    ],
)
def test_bundle_without_a_usable_anchor(data: bytes) -> None:
    with pytest.raises(TrustStoreError) as err:
        store_from_pem(data, "junk.pem")
    assert str(err.value) == "junk.pem: no usable CA certificate in the bundle"


def test_bundle_skips_key_blocks_and_reads_every_certificate_spelling(
    cas: tuple[Issued, Issued],
) -> None:
    a, b = cas
    key_pem = a.key_pem()
    assert key_pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    b_x509 = b.pem.replace(b"BEGIN CERTIFICATE", b"BEGIN X509 CERTIFICATE").replace(
        b"END CERTIFICATE", b"END X509 CERTIFICATE"
    )
    data = b"# comment\n" + key_pem + a.pem + b"\r\n" + b_x509
    blocks = split_pem(data)
    assert blocks == [a.der, b.der]
    store = store_from_pem(data, "mixed")
    assert store.anchors == (a.cert, b.cert)
    assert store.warnings == ()


def test_split_pem_numbers_the_broken_blocks(cas: tuple[Issued, Issued]) -> None:
    a = cas[0]
    odd = b"-----BEGIN CERTIFICATE-----\nMIIBA\n-----END CERTIFICATE-----\n"
    assert split_pem(a.pem + odd + BAD_BASE64_BLOCK) == [
        a.der,
        "PEM block 2: bad base64 (Invalid base64-encoded string: number of data characters "
        "(5) cannot be 1 more than a multiple of 4)",
        "PEM block 3: bad base64 (Only base64 data is allowed)",
    ]


def test_key_index_maps_both_pins_to_the_subject(cas: tuple[Issued, Issued]) -> None:
    a, b = cas
    index = key_index([a.cert, b.cert])
    assert index == {
        a.pin: "O=pinaudit test PKI,CN=Trust Test Root A",
        a.sha1_pin: "O=pinaudit test PKI,CN=Trust Test Root A",
        b.pin: "O=pinaudit test PKI,CN=Trust Test Root B",
        b.sha1_pin: "O=pinaudit test PKI,CN=Trust Test Root B",
    }
    assert {p.alg for p in index} == {HashAlg.SHA256, HashAlg.SHA1}


def test_key_index_first_subject_wins_for_a_shared_key(cas: tuple[Issued, Issued]) -> None:
    a = cas[0]
    pki = PKI(NOW)
    renamed = pki.root("Same Key Other Name", key=a.key)
    assert renamed.pin == a.pin
    assert key_index([renamed.cert, a.cert]) == {
        a.pin: "O=pinaudit test PKI,CN=Same Key Other Name",
        a.sha1_pin: "O=pinaudit test PKI,CN=Same Key Other Name",
    }
    assert key_index([a.cert, renamed.cert])[a.pin] == "O=pinaudit test PKI,CN=Trust Test Root A"


def test_key_index_of_nothing_is_empty() -> None:
    assert key_index([]) == {}


# --- TrustStores and bundle paths ---------------------------------------------------


def test_trust_stores_load_each_spec_once(tmp_path: Path, cas: tuple[Issued, Issued]) -> None:
    bundle = tmp_path / "corp-ca.pem"
    bundle.write_bytes(cas[0].pem + cas[1].pem)
    stores = TrustStores()
    spec = TrustSpec(TrustKind.BUNDLE, str(bundle))
    first = stores.get(spec)
    assert stores.get(TrustSpec(TrustKind.BUNDLE, str(bundle))) is first
    assert first.name == str(bundle)
    assert len(first) == 2
    # the file is not read again: removing it changes nothing for this run
    bundle.unlink()
    assert stores.get(spec) is first
    assert stores.loaded() == (first,)


def test_trust_stores_certifi(certifi_store: trust.TrustStore) -> None:
    stores = TrustStores()
    store = stores.get(TrustSpec(TrustKind.CERTIFI))
    assert store is stores.get(TrustSpec(TrustKind.CERTIFI))
    assert store.name == certifi.where()
    assert len(store) == len(certifi_store)
    assert [w.split(": ", 1)[1] for w in store.warnings] == [
        w.split(": ", 1)[1] for w in certifi_store.warnings
    ]


def test_trust_stores_missing_bundle_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "ca.pem"
    with pytest.raises(TrustStoreError) as err:
        TrustStores().get(TrustSpec(TrustKind.BUNDLE, str(missing)))
    assert str(err.value) == f"{missing}: cannot read trust bundle: No such file or directory"


def test_trust_stores_directory_is_not_a_bundle(tmp_path: Path) -> None:
    with pytest.raises(TrustStoreError) as err:
        TrustStores().get(TrustSpec(TrustKind.BUNDLE, str(tmp_path)))
    assert str(err.value) == f"{tmp_path}: cannot read trust bundle: Is a directory"


def test_trust_stores_bundle_without_path() -> None:
    with pytest.raises(TrustStoreError) as err:
        TrustStores().get(TrustSpec(TrustKind.BUNDLE))
    assert str(err.value) == "a bundle trust store needs a path"


def test_trust_stores_empty_bundle_names_it(tmp_path: Path) -> None:
    bundle = tmp_path / "empty.pem"
    bundle.write_bytes(b"")
    with pytest.raises(TrustStoreError) as err:
        TrustStores().get(TrustSpec(TrustKind.BUNDLE, str(bundle)))
    assert str(err.value) == f"{bundle}: no usable CA certificate in the bundle"


def test_system_bundle_path_honours_ssl_cert_file() -> None:
    assert system_bundle_path({"SSL_CERT_FILE": "/opt/corp/ca.pem"}) == "/opt/corp/ca.pem"


def test_system_bundle_path_falls_back_to_known_locations(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = tmp_path / "a.crt", tmp_path / "b.crt"
    second.write_bytes(b"")
    monkeypatch.setattr(trust, "SYSTEM_BUNDLES", (str(first), str(second)))
    assert system_bundle_path({}) == str(second)
    assert system_bundle_path({"SSL_CERT_FILE": ""}) == str(second)  # empty means unset
    second.unlink()
    with pytest.raises(TrustStoreError) as err:
        system_bundle_path({})
    assert str(err.value) == (
        f"no system CA bundle found (looked at SSL_CERT_FILE and {first}, {second})"
    )


def test_system_trust_store_reads_ssl_cert_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cas: tuple[Issued, Issued]
) -> None:
    bundle = tmp_path / "system.pem"
    bundle.write_bytes(cas[1].pem)
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    store = TrustStores().get(TrustSpec(TrustKind.SYSTEM))
    assert store.name == str(bundle)
    assert store.anchors == (cas[1].cert,)


# --- certificate files ---------------------------------------------------------------


def test_read_certificates_pem_and_der(cas: tuple[Issued, Issued]) -> None:
    a, b = cas
    assert read_certificates(a.pem + b.pem, "chain.pem") == [a.der, b.der]
    assert read_certificates(a.der, "a.der") == [a.der]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"hello world", "f.bin: neither PEM nor DER certificate data"),
        (b"", "f.bin: neither PEM nor DER certificate data"),
        (BAD_BASE64_BLOCK, "f.bin: PEM block 1: bad base64 (Only base64 data is allowed)"),
        (
            b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
            "f.bin: no CERTIFICATE block found",
        ),
    ],
)
def test_read_certificates_errors(data: bytes, message: str) -> None:
    with pytest.raises(CertificateFileError) as err:
        read_certificates(data, "f.bin")
    assert str(err.value) == message


def test_read_certificates_reports_the_first_broken_block(cas: tuple[Issued, Issued]) -> None:
    with pytest.raises(CertificateFileError) as err:
        read_certificates(cas[0].pem + BAD_BASE64_BLOCK, "chain.pem")
    assert str(err.value) == "chain.pem: PEM block 2: bad base64 (Only base64 data is allowed)"


def test_pins_in_known_keys_are_pins(cas: tuple[Issued, Issued]) -> None:
    store = store_from_pem(cas[0].pem, "one")
    assert all(isinstance(p, Pin) for p in store.known_keys)
    assert sorted(str(p) for p in store.known_keys) == sorted(
        [str(cas[0].pin), str(cas[0].sha1_pin)]
    )
