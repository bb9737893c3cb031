"""SPKI pins: computed like openssl and the clients do, parsed in every spelling,
rejected with a precise message when malformed, written in every format."""

from __future__ import annotations

import base64
import hashlib
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import certifi
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from peers import require_program

from scanner.errors import PinError
from scanner.fleet.pki import PKI, Issued
from scanner.model import HashAlg, Pin, PinFormat
from scanner.pins import (
    format_pin,
    okio_base64,
    parse_digest_name,
    parse_pin,
    pin_of_certificate,
    pins_of_spki,
    spki_der,
    spki_der_from_tbs,
    unpadded_base64,
)
from scanner.trust import load_certificate, split_pem

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)
KEY_KINDS = ("rsa2048", "ec256", "ec384", "ed25519", "ed448")

# ISRG Root X1, from pinning-semantics §7 / §10.1.
X1_B64 = "C5+lpZ7tcVwmwQIMcRtPbsQtWLABXhQzejna0wHFr8M="
X1_HEX = "0b9fa5a59eed715c26c1020c711b4f6ec42d58b0015e14337a39dad301c5afc3"
X1_HEX_COLONS = (
    "0B:9F:A5:A5:9E:ED:71:5C:26:C1:02:0C:71:1B:4F:6E:"
    "C4:2D:58:B0:01:5E:14:33:7A:39:DA:D3:01:C5:AF:C3"
)
X1_SHA1_B64 = "+BZRPP0bRJ8uayihlyIfuB9RTjw="
X1_SHA1_HEX = "f816513cfd1b449f2e6b28a197221fb81f514e3c"
X1_SHA1_HEX_COLONS = "F8:16:51:3C:FD:1B:44:9F:2E:6B:28:A1:97:22:1F:B8:1F:51:4E:3C"
X1 = Pin(HashAlg.SHA256, bytes.fromhex(X1_HEX))
X1_SHA1 = Pin(HashAlg.SHA1, bytes.fromhex(X1_SHA1_HEX))

WHERE = "pins.yaml:4:7"


@pytest.fixture(scope="module")
def roots() -> dict[str, Issued]:
    """One self-signed CA per key kind (RSA keys are slow: built once)."""
    pki = PKI(NOW)
    return {kind: pki.root(f"Pin Test {kind}", key_type=kind) for kind in KEY_KINDS}


@pytest.fixture(scope="module")
def certifi_roots() -> dict[str, x509.Certificate]:
    """certifi's anchors by subject (RFC 4514)."""
    out = {}
    for block in split_pem(Path(certifi.where()).read_bytes()):
        assert isinstance(block, bytes)
        cert, _warning = load_certificate(block)
        out[cert.subject.rfc4514_string()] = cert
    return out


def _run(args: list[str], data: bytes) -> bytes:
    done = subprocess.run(args, input=data, capture_output=True, check=True, timeout=30)
    return done.stdout


def _openssl_spki(openssl: str, pem: bytes) -> bytes:
    """`openssl x509 -pubkey -noout | openssl pkey -pubin -outform DER`."""
    pubkey_pem = _run([openssl, "x509", "-pubkey", "-noout"], pem)
    return _run([openssl, "pkey", "-pubin", "-outform", "DER"], pubkey_pem)


def _openssl_pin(openssl: str, pem: bytes, digest: str) -> str:
    """The full pipeline of DESIGN §2, ending in `openssl enc -base64`."""
    spki = _openssl_spki(openssl, pem)
    raw = _run([openssl, "dgst", f"-{digest}", "-binary"], spki)
    return _run([openssl, "enc", "-base64", "-A"], raw).decode("ascii").strip()


# --- computing pins ------------------------------------------------------------


@pytest.mark.peers
@pytest.mark.parametrize("kind", KEY_KINDS)
def test_pin_equals_openssl_pipeline(kind: str, roots: dict[str, Issued]) -> None:
    openssl = require_program("openssl")
    cert = roots[kind].cert
    pem = cert.public_bytes(Encoding.PEM)
    expected = _openssl_pin(openssl, pem, "sha256")
    assert len(expected) == 44
    assert str(pin_of_certificate(cert)) == f"sha256/{expected}"
    assert pin_of_certificate(cert).b64 == expected
    assert str(pin_of_certificate(cert, HashAlg.SHA1)) == "sha1/" + _openssl_pin(
        openssl, pem, "sha1"
    )
    # the bytes hashed are exactly the SPKI openssl extracts
    assert spki_der(cert) == _openssl_spki(openssl, pem)


@pytest.mark.peers
def test_pin_of_a_leaf_is_its_own_key_not_the_issuers(roots: dict[str, Issued]) -> None:
    openssl = require_program("openssl")
    issuer = roots["rsa2048"]
    leaf = PKI(NOW).leaf("leaf.example", issuer, key_type="ec256")
    expected = _openssl_pin(openssl, leaf.pem, "sha256")
    assert str(leaf.pin) == f"sha256/{expected}"
    assert leaf.pin != issuer.pin


@pytest.mark.parametrize(
    ("subject", "sha256_b64"),
    [
        ("CN=ISRG Root X1,O=Internet Security Research Group,C=US", X1_B64),
        (
            "CN=ISRG Root X2,O=Internet Security Research Group,C=US",
            "diGVwiVYbubAI3RW4hB9xU8e/CH2GnkuvVFZE8zmgzI=",
        ),
        (
            "CN=GTS Root R1,O=Google Trust Services LLC,C=US",
            "hxqRlPTu1bMS/0DITB1SSu0vd4u/8l8TjPgfaAp63Gc=",
        ),
        ("CN=Amazon Root CA 1,O=Amazon,C=US", "++MBgDH5WGvL9Bcn5Be30cRcL0f5O+NyoXuWtQdX1aI="),
        (
            "CN=DigiCert Global Root G2,OU=www.digicert.com,O=DigiCert Inc,C=US",
            "i7WTqTvh0OioIruIfFR4kMPnBqrS2rdiVPl/s2uC/CY=",
        ),
    ],
)
def test_published_pins_of_public_roots(
    subject: str, sha256_b64: str, certifi_roots: dict[str, x509.Certificate]
) -> None:
    cert = certifi_roots[subject]
    assert str(pin_of_certificate(cert)) == f"sha256/{sha256_b64}"
    assert pin_of_certificate(cert).b64 == sha256_b64


def test_isrg_root_x1_sha1_and_common_mistakes(certifi_roots: dict[str, x509.Certificate]) -> None:
    cert = certifi_roots["CN=ISRG Root X1,O=Internet Security Research Group,C=US"]
    assert pin_of_certificate(cert) == X1
    assert str(pin_of_certificate(cert, HashAlg.SHA1)) == f"sha1/{X1_SHA1_B64}"
    assert pin_of_certificate(cert, HashAlg.SHA1) == X1_SHA1
    assert format_pin(X1, PinFormat.HEX) == X1_HEX
    # Hashing the whole certificate is the classic mistake: not the pin (§7).
    whole = base64.b64encode(hashlib.sha256(cert.public_bytes(Encoding.DER)).digest()).decode()
    assert whole.startswith("lrzsBiZJ")
    assert whole != X1_B64


@pytest.mark.parametrize("kind", KEY_KINDS)
def test_spki_from_tbs_equals_reserialised_key(kind: str, roots: dict[str, Issued]) -> None:
    cert = roots[kind].cert
    expected = cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    assert spki_der_from_tbs(cert.tbs_certificate_bytes) == expected
    assert spki_der(cert) == expected


def test_spki_from_tbs_of_public_roots(certifi_roots: dict[str, x509.Certificate]) -> None:
    for subject in (
        "CN=ISRG Root X1,O=Internet Security Research Group,C=US",  # RSA 4096
        "CN=ISRG Root X2,O=Internet Security Research Group,C=US",  # EC P-384
    ):
        cert = certifi_roots[subject]
        expected = cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
        assert spki_der_from_tbs(cert.tbs_certificate_bytes) == expected


def _sequence(content: bytes) -> bytes:
    n = len(content)
    if n < 0x80:
        return bytes([0x30, n]) + content
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x30, 0x80 | len(size)]) + size + content


def test_spki_from_a_v1_tbs_without_version_field(roots: dict[str, Issued]) -> None:
    cert = roots["ec256"].cert
    tbs = cert.tbs_certificate_bytes
    header = 2 + (tbs[1] & 0x7F if tbs[1] & 0x80 else 0)
    content = tbs[header:]
    assert content[:5] == bytes.fromhex("a003020102")  # [0] EXPLICIT INTEGER 2 (v3)
    v1_tbs = _sequence(content[5:])
    assert spki_der_from_tbs(v1_tbs) == spki_der(cert)


@pytest.mark.parametrize(
    ("tbs", "message"),
    [
        (b"", "truncated DER"),
        (b"\x30", "truncated DER"),
        (b"\x02\x01\x00", "TBSCertificate is not a SEQUENCE"),
        (b"\x30\x05\x02\x01", "truncated DER"),
        (b"\x30\x80", "bad DER length"),
        (b"\x30\x85\x00\x00\x00\x00\x01", "bad DER length"),
        # a four-byte length is read (then the TBS is found short)
        (b"\x30\x84\x00\x00\x00\x02\x05\x00", "truncated DER"),
        # five INTEGERs, and a SEQUENCE after the TBS's own end: not its SPKI
        (bytes([0x30, 15]) + b"\x02\x01\x01" * 5 + b"\x30\x00", "SubjectPublicKeyInfo not found"),
        # a v1 TBS of five INTEGERs: the sixth field, the SPKI, is missing
        (_sequence(b"\x02\x01\x01" * 5), "truncated DER"),
        # the sixth field is an INTEGER, not a SubjectPublicKeyInfo SEQUENCE
        (_sequence(b"\x02\x01\x01" * 6), "SubjectPublicKeyInfo not found"),
    ],
)
def test_spki_from_tbs_rejects_malformed_der(tbs: bytes, message: str) -> None:
    with pytest.raises(ValueError) as err:
        spki_der_from_tbs(tbs)
    assert str(err.value) == message


def test_pins_of_spki_known_answers() -> None:
    sha256, sha1 = pins_of_spki(b"")
    assert str(sha256) == "sha256/47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
    assert str(sha1) == "sha1/2jmj7l5rSw0yVb/vlWAYkK/YBwk="


# --- parsing -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "digest"),
    [
        (f"sha256/{X1_B64}", None),
        (f"SHA256/{X1_B64}", None),
        (f"  sha256/{X1_B64}\n", None),
        (f'pin-sha256="{X1_B64}"', None),
        (f"pin-sha256={X1_B64}", None),
        (f'pin-sha256 = "{X1_B64}"', None),
        (f'pin-SHA256="{X1_B64}"', None),
        (X1_B64, None),
        (X1_B64, "SHA-256"),
        (X1_B64, "sha256"),
        (X1_B64, "Sha-256"),
        (X1_HEX, None),
        (X1_HEX.upper(), None),
        (X1_HEX_COLONS, None),
        (X1_HEX_COLONS.lower(), "SHA-256"),
        # okio's base64: URL-safe alphabet, padding optional, whitespace skipped
        ("sha256/C5-lpZ7tcVwmwQIMcRtPbsQtWLABXhQzejna0wHFr8M=", None),
        ("sha256/C5+lpZ7tcVwmwQIMcRtPbsQtWLABXhQzejna0wHFr8M", None),
        ("C5-lpZ7tcVwmwQIMcRtPbsQtWLABXhQzejna0wHFr8M", "SHA-256"),
        ("sha256/C5+lpZ7tcVwmwQIMcRtPb sQtWLABXhQzejna0wHFr8M=", None),
    ],
)
def test_parse_sha256_spellings(text: str, digest: str | None) -> None:
    assert parse_pin(text, digest=digest) == X1


@pytest.mark.parametrize(
    ("text", "digest"),
    [
        (f"sha1/{X1_SHA1_B64}", None),
        (f'pin-sha1="{X1_SHA1_B64}"', None),
        (f"pin-sha1={X1_SHA1_B64}", None),
        (X1_SHA1_B64, "SHA-1"),
        (X1_SHA1_B64, "sha1"),
        (X1_SHA1_HEX, None),
        (X1_SHA1_HEX_COLONS, None),
        (X1_SHA1_HEX, "SHA-1"),
        ("sha1/-BZRPP0bRJ8uayihlyIfuB9RTjw", None),
    ],
)
def test_parse_sha1_spellings(text: str, digest: str | None) -> None:
    pin = parse_pin(text, digest=digest)
    assert pin == X1_SHA1
    assert pin.alg is HashAlg.SHA1


@pytest.mark.parametrize(
    ("bare", "digest", "alg"),
    [
        ("sha/" + "A" * 39 + "=", None, HashAlg.SHA256),
        ("md5/" + "A" * 39 + "=", "SHA-256", HashAlg.SHA256),
        ("sha256/" + "E" * 36 + "=", None, HashAlg.SHA256),
        ("sha1/" + "I" * 38 + "=", None, HashAlg.SHA256),
        ("sha1/" + "M" * 22 + "=", "SHA-1", HashAlg.SHA1),
    ],
)
def test_bare_base64_that_starts_like_a_prefix_is_a_pin(
    bare: str, digest: str | None, alg: HashAlg
) -> None:
    # A real digest's base64 can begin with "sha/", "md5/"...: Android writes
    # it bare inside <pin digest="SHA-256">, and it must not be refused.
    pin = parse_pin(bare, digest=digest)
    assert pin == Pin(alg, base64.b64decode(bare))
    assert format_pin(pin, PinFormat.PLAIN) == bare


HEX64 = "ab" * 32
HEX40 = "cd" * 20


@pytest.mark.parametrize(
    ("text", "digest", "reason"),
    [
        ("sha256/!!!!", None, "not valid base64"),
        ("sha256/AAA=A", None, "not valid base64"),
        ("sha256/AAAA===", None, "not valid base64"),
        ("not base64!", None, "not valid base64"),
        ("sha256/a", None, "not valid base64 (dangling character)"),
        (X1_B64[:41], None, "not valid base64 (dangling character)"),
        ("sha256/AAAA", None, "a sha256 digest is 32 bytes, this decodes to 3"),
        ("AAAA", None, "a sha256 digest is 32 bytes, this decodes to 3"),
        (f"pin-sha256={X1_SHA1_B64}", None, "a sha256 digest is 32 bytes, this decodes to 20"),
        (f"sha1/{X1_B64}", None, "a sha1 digest is 20 bytes, this decodes to 32"),
        (X1_B64, "SHA-1", "a sha1 digest is 20 bytes, this decodes to 32"),
        (X1_SHA1_B64, "SHA-256", "a sha256 digest is 32 bytes, this decodes to 20"),
        (X1_SHA1_B64, None, "a sha256 digest is 32 bytes, this decodes to 20"),
        (
            f"sha256/{HEX64}",
            None,
            "a sha256 digest is 32 bytes, this decodes to 48; "
            "it looks like a hex digest: write it without the prefix",
        ),
        (
            f"sha1/{HEX40}",
            None,
            "a sha1 digest is 20 bytes, this decodes to 30; "
            "it looks like a hex digest: write it without the prefix",
        ),
        (HEX64[:62], None, "a sha256 digest is 32 bytes, this decodes to 46"),
        (HEX40, "SHA-256", "a 20-byte hex digest is not SHA-256"),
        (HEX64, "sha1", "a 32-byte hex digest is not sha1"),
        ("sha512/AAAA", None, "unsupported algorithm 'sha512' (pins start with sha256/ or sha1/)"),
        ("md5/AAAA", None, "unsupported algorithm 'md5' (pins start with sha256/ or sha1/)"),
        (
            f"sha384/{X1_B64}",
            None,
            "unsupported algorithm 'sha384' (pins start with sha256/ or sha1/)",
        ),
        (
            'pin-sha512="AAAA"',
            None,
            "unsupported algorithm 'sha512' (pins start with sha256/ or sha1/)",
        ),
        ("", None, "empty pin"),
        ("   \t\n", None, "empty pin"),
        ("sha256/", None, "empty digest"),
        ('pin-sha256=""', None, "empty digest"),
        # `$` in a regex accepts a trailing newline: this once escaped as a bare ValueError
        ("a" * 63 + "\n:", None, "not valid base64"),
    ],
)
def test_parse_errors(text: str, digest: str | None, reason: str) -> None:
    with pytest.raises(PinError) as err:
        parse_pin(text, digest=digest, where=WHERE)
    assert err.value.reason == reason
    assert err.value.where == WHERE
    assert err.value.pin == text
    assert str(err.value) == f"{WHERE}: invalid pin {text!r}: {reason}"
    assert str(err.value).startswith(WHERE + ": ")


def test_parse_error_without_where() -> None:
    with pytest.raises(PinError) as err:
        parse_pin("sha256/AAAA")
    assert str(err.value) == (
        "invalid pin 'sha256/AAAA': a sha256 digest is 32 bytes, this decodes to 3"
    )
    assert err.value.where is None


def test_parse_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match=r"dangling character"):
        parse_pin("sha256/a")


def test_long_pin_is_shortened_in_the_message() -> None:
    text = "sha256/" + "A" * 100
    with pytest.raises(PinError) as err:
        parse_pin(text, where=WHERE)
    assert str(err.value) == (
        f"{WHERE}: invalid pin '{text[:77]}...': a sha256 digest is 32 bytes, this decodes to 75"
    )
    assert err.value.pin == text  # the attribute keeps all of it


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (None, "'None'"),
        (5, "'5'"),
        (b"sha256/AAAA", "\"b'sha256/AAAA'\""),
        (["sha256/AAAA"], "\"['sha256/AAAA']\""),
    ],
)
def test_non_string_pin(value: object, shown: str) -> None:
    with pytest.raises(PinError) as err:
        parse_pin(value, where=WHERE)  # type: ignore[arg-type]
    assert str(err.value) == f"{WHERE}: invalid pin {shown}: a pin must be a string"


@pytest.mark.parametrize("digest", ["MD5", "SHA-512", "sha384", ""])
def test_unsupported_digest_name(digest: str) -> None:
    with pytest.raises(PinError) as err:
        parse_pin(X1_B64, digest=digest, where=WHERE)
    assert err.value.reason == "unsupported digest (use SHA-256, or legacy SHA-1)"
    assert str(err.value).startswith(f"{WHERE}: invalid pin ")


@pytest.mark.parametrize(
    ("name", "alg"),
    [
        ("SHA-256", HashAlg.SHA256),
        ("sha256", HashAlg.SHA256),
        (" Sha-256 ", HashAlg.SHA256),
        ("SHA-1", HashAlg.SHA1),
        ("sha1", HashAlg.SHA1),
    ],
)
def test_parse_digest_name(name: str, alg: HashAlg) -> None:
    assert parse_digest_name(name) is alg


# --- formatting --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pin", "fmt", "text"),
    [
        (X1, PinFormat.OKHTTP, f"sha256/{X1_B64}"),
        (X1, PinFormat.HPKP, f'pin-sha256="{X1_B64}"'),
        (X1, PinFormat.ANDROID, f'<pin digest="SHA-256">{X1_B64}</pin>'),
        (X1, PinFormat.PLAIN, X1_B64),
        (X1, PinFormat.HEX, X1_HEX),
        (X1_SHA1, PinFormat.OKHTTP, f"sha1/{X1_SHA1_B64}"),
        (X1_SHA1, PinFormat.HPKP, f'pin-sha1="{X1_SHA1_B64}"'),
        (X1_SHA1, PinFormat.ANDROID, f'<pin digest="SHA-1">{X1_SHA1_B64}</pin>'),
        (X1_SHA1, PinFormat.PLAIN, X1_SHA1_B64),
        (X1_SHA1, PinFormat.HEX, X1_SHA1_HEX),
    ],
)
def test_format_pin(pin: Pin, fmt: PinFormat, text: str) -> None:
    assert format_pin(pin, fmt) == text


def test_format_default_and_str_are_okhttp() -> None:
    assert format_pin(X1) == f"sha256/{X1_B64}"
    assert str(X1) == f"sha256/{X1_B64}"
    assert str(X1_SHA1) == f"sha1/{X1_SHA1_B64}"
    assert X1.b64 == X1_B64


def test_every_format_is_covered() -> None:
    assert {f.value for f in PinFormat} == {"okhttp", "hpkp", "android", "plain", "hex"}


def test_a_64_character_body_that_is_not_hex_gets_no_hex_hint() -> None:
    with pytest.raises(PinError) as err:
        parse_pin("sha256/" + "Z" * 64)
    assert str(err.value).endswith("a sha256 digest is 32 bytes, this decodes to 48")


@pytest.mark.parametrize(
    ("text", "decoded"),
    [
        ("QUJD", b"ABC"),
        ("QUI", b"AB"),
        ("QUI=", b"AB"),
        ("QQ==", b"A"),
        ("QUJDR", None),  # a dangling sixth bit group
        ("QU!D", None),
        ("QU-D", None),  # the URL-safe alphabet is okio's, not this decoder's
    ],
)
def test_unpadded_base64(text: str, decoded: bytes | None) -> None:
    assert unpadded_base64(text) == decoded


@pytest.mark.parametrize(
    ("text", "decoded"),
    [
        ("QU\nJD", b"ABC"),
        (" QUJD\t", b"ABC"),
        ("-_8", b"\xfb\xff"),
        ("+/8=", b"\xfb\xff"),
        ("QU*D", None),
        ("QUJDR", None),
    ],
)
def test_okio_base64_is_lenient_like_okio(text: str, decoded: bytes | None) -> None:
    assert okio_base64(text) == decoded
