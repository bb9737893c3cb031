"""Properties of pin parsing: every written spelling reads back as the same pin,
and any text either parses to a well-formed pin or raises PinError."""

from __future__ import annotations

import base64

from hypothesis import example, given
from hypothesis import strategies as st

from scanner.errors import PinError
from scanner.model import HashAlg, Pin, PinFormat
from scanner.pins import format_pin, parse_pin

SHA256_DIGESTS = st.binary(min_size=32, max_size=32)
SHA1_DIGESTS = st.binary(min_size=20, max_size=20)

# Digests whose base64 begins like an algorithm prefix ("sha/", "md5/", "sha1/",
# "sha256/"): the bare spelling of these is still a pin.
_PREFIX_LIKE_256 = [
    base64.b64decode(text)
    for text in (
        "sha/" + "A" * 39 + "=",
        "md5/" + "A" * 39 + "=",
        "sha1/" + "A" * 38 + "=",
        "sha256/" + "A" * 36 + "=",
    )
]
_PREFIX_LIKE_1 = base64.b64decode("sha1/" + "A" * 22 + "=")


@given(SHA256_DIGESTS, st.sampled_from([PinFormat.OKHTTP, PinFormat.HPKP, PinFormat.PLAIN]))
@example(_PREFIX_LIKE_256[0], PinFormat.PLAIN)
@example(_PREFIX_LIKE_256[1], PinFormat.PLAIN)
@example(_PREFIX_LIKE_256[2], PinFormat.PLAIN)
@example(_PREFIX_LIKE_256[3], PinFormat.PLAIN)
@example(b"\xff" * 32, PinFormat.OKHTTP)
@example(bytes(32), PinFormat.HPKP)
def test_sha256_base64_spellings_round_trip(digest: bytes, fmt: PinFormat) -> None:
    pin = Pin(HashAlg.SHA256, digest)
    text = format_pin(pin, fmt)
    assert parse_pin(text) == pin
    if fmt is PinFormat.PLAIN:
        assert parse_pin(text, digest="SHA-256") == pin


@given(SHA256_DIGESTS)
def test_sha256_hex_round_trip(digest: bytes) -> None:
    pin = Pin(HashAlg.SHA256, digest)
    text = format_pin(pin, PinFormat.HEX)
    assert len(text) == 64
    assert parse_pin(text) == pin
    assert parse_pin(text.upper(), digest="SHA-256") == pin
    assert parse_pin(":".join(text[i : i + 2] for i in range(0, 64, 2))) == pin


@given(SHA1_DIGESTS, st.sampled_from([PinFormat.OKHTTP, PinFormat.HPKP, PinFormat.HEX]))
def test_sha1_spellings_round_trip(digest: bytes, fmt: PinFormat) -> None:
    pin = Pin(HashAlg.SHA1, digest)
    assert parse_pin(format_pin(pin, fmt)) == pin


@given(SHA1_DIGESTS)
@example(_PREFIX_LIKE_1)
def test_sha1_plain_round_trips_with_its_digest_name(digest: bytes) -> None:
    pin = Pin(HashAlg.SHA1, digest)
    text = format_pin(pin, PinFormat.PLAIN)
    assert parse_pin(text, digest="SHA-1") == pin
    assert parse_pin(text, digest="sha1") == pin


@given(st.one_of(SHA256_DIGESTS, SHA1_DIGESTS))
def test_okio_base64_variants_round_trip(digest: bytes) -> None:
    """URL-safe alphabet and missing padding read like okio reads them."""
    alg = HashAlg.SHA256 if len(digest) == 32 else HashAlg.SHA1
    pin = Pin(alg, digest)
    urlsafe = base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")
    assert parse_pin(f"{alg.value}/{urlsafe}") == pin
    assert parse_pin(f'pin-{alg.value}="{urlsafe}"') == pin


@given(st.one_of(SHA256_DIGESTS, SHA1_DIGESTS))
def test_android_element_text_round_trips(digest: bytes) -> None:
    alg = HashAlg.SHA256 if len(digest) == 32 else HashAlg.SHA1
    pin = Pin(alg, digest)
    element = format_pin(pin, PinFormat.ANDROID)
    name = "SHA-256" if alg is HashAlg.SHA256 else "SHA-1"
    head = f'<pin digest="{name}">'
    assert element.startswith(head)
    assert element.endswith("</pin>")
    assert parse_pin(element[len(head) : -len("</pin>")], digest=name) == pin


_PIN_ALPHABET = 'ABCDEFabcdef0123456789+/=-_: \t\n"xyzXYZ'
_PREFIXES = [
    "",
    "sha256/",
    "sha1/",
    "SHA256/",
    "sha512/",
    "md5/",
    "sha/",
    "pin-sha256=",
    'pin-sha1="',
]
PIN_LIKE = st.one_of(
    st.text(),
    st.text(alphabet=_PIN_ALPHABET),
    st.builds(
        lambda prefix, body: prefix + body,
        st.sampled_from(_PREFIXES),
        st.text(alphabet=_PIN_ALPHABET, min_size=20, max_size=70),
    ),
)


@given(PIN_LIKE, st.sampled_from([None, "SHA-256", "sha1", "SHA-512"]))
@example("a" * 63 + "\n:", None)
@example("a" * 39 + "\n:", "SHA-1")
@example("0" * 64, "SHA-1")
@example("sha256/" + "0" * 64, None)
def test_any_text_parses_to_a_wellformed_pin_or_raises_pin_error(
    text: str, digest: str | None
) -> None:
    where = "inventory.yaml:9:3"
    try:
        pin = parse_pin(text, digest=digest, where=where)
    except PinError as err:
        assert str(err).startswith(f"{where}: invalid pin ")
        assert err.where == where
        return
    assert isinstance(pin, Pin)
    assert isinstance(pin.digest, bytes)
    assert len(pin.digest) == pin.alg.digest_size
    # and what parsed is written back in a spelling that reads the same
    assert parse_pin(str(pin)) == pin
