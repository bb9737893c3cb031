"""Parse, format and compute SPKI pins. Pure: bytes in, values out.

A pin is the digest of a certificate's DER SubjectPublicKeyInfo (RFC 7469
§2.4). Accepted spellings (DESIGN §2):

- ``sha256/B64`` and legacy ``sha1/B64`` (OkHttp);
- ``pin-sha256="B64"`` (HPKP; the quotes are optional here);
- bare base64, whose digest comes from the ``digest`` argument (Android's
  ``<pin digest="SHA-256">``), SHA-256 when not given;
- hex, 64 digits for SHA-256 or 40 for SHA-1, colons allowed.

Base64 is read like okio does (OkHttp): standard or URL-safe alphabet,
padding optional. Unlike OkHttp, a digest of the wrong length is an error,
not a pin that silently never matches.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

from scanner.errors import PinError
from scanner.model import HashAlg, Pin, PinFormat

__all__ = [
    "KeyMaterial",
    "format_pin",
    "key_material",
    "okio_base64",
    "parse_digest_name",
    "parse_pin",
    "pin_of_certificate",
    "pins_of_spki",
    "spki_der",
    "spki_der_from_tbs",
    "unpadded_base64",
]

_B64_CHARS = re.compile(r"^[A-Za-z0-9+/_-]*={0,2}$")
_URLSAFE_OR_STANDARD = re.compile(r"[A-Za-z0-9+/_-]*")
_HEX_CHARS = re.compile(r"^[0-9A-Fa-f]+\Z")  # \Z: "$" would accept a trailing newline
_PREFIX = re.compile(r"^([A-Za-z0-9-]+)/(.*)$", re.DOTALL)
# What can stand before "/" as an algorithm name. Bare base64 also contains "/",
# but its first segment is rarely shaped like a digest name (parse_pin falls back).
_ALG_NAME = re.compile(r"^(sha[0-9_-]*|sha3-?[0-9]+|md[0-9]|blake2[bs]?)$", re.IGNORECASE)
# "sha256:B64", "sha256=B64", "SHA-256 B64": a prefix written the wrong way.
_MISSPELT_PREFIX = re.compile(r"^(sha-?256|sha-?1)\s*[:=\s]\s*", re.IGNORECASE)
_HPKP = re.compile(r'^pin-([A-Za-z0-9]+)\s*=\s*(?:"([^"]*)"|(\S*))$', re.DOTALL)

_DIGEST_NAMES = {
    "sha-256": HashAlg.SHA256,
    "sha256": HashAlg.SHA256,
    "sha-1": HashAlg.SHA1,
    "sha1": HashAlg.SHA1,
}


def parse_digest_name(name: str, where: str | None = None) -> HashAlg:
    """``SHA-256``/``sha256``/``SHA-1``/``sha1`` (any case) to a HashAlg."""
    alg = _DIGEST_NAMES.get(name.strip().lower())
    if alg is None:
        raise PinError(name, "unsupported digest (use SHA-256, or legacy SHA-1)", where)
    return alg


def _decode_b64(original: str, text: str, alg: HashAlg, where: str | None) -> bytes:
    body = "".join(text.split())  # okio skips whitespace
    if not body:
        raise PinError(original, "empty digest", where)
    if not _B64_CHARS.match(body):
        raise PinError(original, "not valid base64", where)
    stripped = body.rstrip("=")
    if len(stripped) % 4 == 1:
        raise PinError(original, "not valid base64 (dangling character)", where)
    padded = stripped.replace("-", "+").replace("_", "/")
    padded += "=" * (-len(padded) % 4)
    try:
        digest = base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise PinError(original, f"not valid base64 ({exc})", where) from None
    if len(digest) != alg.digest_size:
        hint = ""
        if _HEX_CHARS.match(body) and len(body) in (40, 64):
            hint = "; it looks like a hex digest: write it without the prefix"
        raise PinError(
            original,
            f"a {alg.value} digest is {alg.digest_size} bytes, this decodes to {len(digest)}{hint}",
            where,
        )
    return digest


def _alg_from_prefix(original: str, name: str, where: str | None) -> HashAlg:
    try:
        return HashAlg(name.lower())
    except ValueError:
        raise PinError(
            original, f"unsupported algorithm {name!r} (pins start with sha256/ or sha1/)", where
        ) from None


def parse_pin(text: str, *, digest: str | None = None, where: str | None = None) -> Pin:
    """Parse one pin in any accepted spelling. Raises PinError naming the pin and `where`."""
    if not isinstance(text, str):
        raise PinError(repr(text), "a pin must be a string", where)
    original = text
    s = text.strip()
    if not s:
        raise PinError(original, "empty pin", where)
    m = _HPKP.match(s)
    if m:
        alg = _alg_from_prefix(original, m.group(1), where)
        value = m.group(2) if m.group(2) is not None else m.group(3)
        return Pin(alg, _decode_b64(original, value, alg, where))
    m = _PREFIX.match(s)
    if m and _ALG_NAME.match(m.group(1)):
        try:
            alg = _alg_from_prefix(original, m.group(1), where)
            return Pin(alg, _decode_b64(original, m.group(2), alg, where))
        except PinError as prefixed:
            # Bare base64 can itself start with "sha/", "md5/", "sha256/"...: when the
            # whole text is a pin as bare base64 it is one (never both readings work).
            try:
                bare = parse_digest_name(digest, where) if digest is not None else HashAlg.SHA256
                return Pin(bare, _decode_b64(original, s, bare, where))
            except PinError:
                raise prefixed from None
    hexbody = s.replace(":", "")
    if _HEX_CHARS.match(hexbody) and len(hexbody) in (40, 64):
        alg = HashAlg.SHA256 if len(hexbody) == 64 else HashAlg.SHA1
        if digest is not None and parse_digest_name(digest, where) is not alg:
            raise PinError(
                original, f"a {len(hexbody) // 2}-byte hex digest is not {digest}", where
            )
        return Pin(alg, bytes.fromhex(hexbody))
    misspelt = _MISSPELT_PREFIX.match(s)
    if misspelt:
        name = misspelt.group(1).lower().replace("-", "")
        raise PinError(
            original,
            f'write the prefix with a slash, {name}/..., or as pin-{name}="..."',
            where,
        )
    alg = parse_digest_name(digest, where) if digest is not None else HashAlg.SHA256
    return Pin(alg, _decode_b64(original, s, alg, where))


def format_pin(pin: Pin, fmt: PinFormat = PinFormat.OKHTTP) -> str:
    """Write a pin in one spelling (``pinaudit pin --format``)."""
    if fmt is PinFormat.OKHTTP:
        return f"{pin.alg.value}/{pin.b64}"
    if fmt is PinFormat.HPKP:
        return f'pin-{pin.alg.value}="{pin.b64}"'
    if fmt is PinFormat.ANDROID:
        name = "SHA-256" if pin.alg is HashAlg.SHA256 else "SHA-1"
        return f'<pin digest="{name}">{pin.b64}</pin>'
    if fmt is PinFormat.HEX:
        return pin.digest.hex()
    return pin.b64


# --- SPKI -------------------------------------------------------------------


def _tlv(data: bytes, offset: int) -> tuple[int, int, int]:
    """Read one DER TLV header at `offset`: (tag, content start, content end)."""
    if offset + 2 > len(data):
        raise ValueError("truncated DER")
    tag = data[offset]
    first = data[offset + 1]
    pos = offset + 2
    if first < 0x80:
        length = first
    else:
        n = first & 0x7F
        if n == 0 or n > 4 or pos + n > len(data):
            raise ValueError("bad DER length")
        length = int.from_bytes(data[pos : pos + n], "big")
        pos += n
    end = pos + length
    if end > len(data):
        raise ValueError("truncated DER")
    return tag, pos, end


def spki_der_from_tbs(tbs: bytes) -> bytes:
    """The raw SubjectPublicKeyInfo TLV of a TBSCertificate, exactly as encoded.

    Clients hash the encoded SPKI; taking the bytes from the certificate
    (rather than re-serialising the key) gives the right pin for every key
    type, including ones the crypto library cannot load.
    """
    tag, pos, end = _tlv(tbs, 0)
    if tag != 0x30:
        raise ValueError("TBSCertificate is not a SEQUENCE")
    field_tag, _, field_end = _tlv(tbs, pos)
    if field_tag == 0xA0:  # [0] EXPLICIT version
        pos = field_end
    # serial, signature, issuer, validity, subject
    for _ in range(5):
        _, _, pos = _tlv(tbs, pos)
    tag, _, spki_end = _tlv(tbs, pos)
    if tag != 0x30 or spki_end > end:
        raise ValueError("SubjectPublicKeyInfo not found")
    return tbs[pos:spki_end]


def spki_der(cert: x509.Certificate) -> bytes:
    return spki_der_from_tbs(cert.tbs_certificate_bytes)


def pins_of_spki(spki: bytes) -> tuple[Pin, Pin]:
    """(sha256 pin, sha1 pin) of a DER SubjectPublicKeyInfo."""
    return (
        Pin(HashAlg.SHA256, hashlib.sha256(spki).digest()),
        Pin(HashAlg.SHA1, hashlib.sha1(spki).digest()),
    )


def pin_of_certificate(cert: x509.Certificate, alg: HashAlg = HashAlg.SHA256) -> Pin:
    sha256, sha1 = pins_of_spki(spki_der(cert))
    return sha256 if alg is HashAlg.SHA256 else sha1


def unpadded_base64(body: str) -> bytes | None:
    """Standard base64 with padding optional; None when it does not decode."""
    body = body.rstrip("=")
    if len(body) % 4 == 1:
        return None
    try:
        return base64.b64decode(body + "=" * (-len(body) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None


def okio_base64(text: str) -> bytes | None:
    """okio's lenient decoder (OkHttp): both alphabets, whitespace skipped,
    padding optional; None when it would return null."""
    body = "".join(c for c in text if c not in "\n\r \t")
    stripped = body.rstrip("=")
    if not _URLSAFE_OR_STANDARD.fullmatch(stripped):
        return None
    return unpadded_base64(stripped.replace("-", "+").replace("_", "/"))


@dataclass(frozen=True)
class KeyMaterial:
    """The public key a file holds, and what kind of file it is."""

    spki: bytes  # DER SubjectPublicKeyInfo
    kind: str  # "public key", "private key", "certificate request", "certificate"


_SPKI = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _public_key(data: bytes, pem: bool) -> bytes:
    load = serialization.load_pem_public_key if pem else serialization.load_der_public_key
    return load(data).public_bytes(*_SPKI)


def _csr(data: bytes, pem: bool) -> bytes:
    load = x509.load_pem_x509_csr if pem else x509.load_der_x509_csr
    return load(data).public_key().public_bytes(*_SPKI)


def _certificate(data: bytes, pem: bool) -> bytes:
    load = x509.load_pem_x509_certificate if pem else x509.load_der_x509_certificate
    return spki_der(load(data))


def _private_key(data: bytes, pem: bool) -> bytes:
    if pem:
        key = serialization.load_pem_private_key(data, password=None)
    else:
        key = serialization.load_der_private_key(data, password=None)
    return key.public_key().public_bytes(*_SPKI)


_LOADERS: tuple[tuple[str, Callable[[bytes, bool], bytes]], ...] = (
    ("public key", _public_key),
    ("certificate request", _csr),
    ("certificate", _certificate),
    ("private key", _private_key),
)


def key_material(data: bytes) -> KeyMaterial:
    """The public key of a PEM or DER public key, unencrypted private key,
    certificate request (CSR) or certificate (the first one in the data).
    Raises ValueError when the data holds none of them."""
    pem = b"-----BEGIN" in data
    for kind, load in _LOADERS:
        try:
            return KeyMaterial(load(data, pem), kind)
        except (ValueError, TypeError, UnsupportedAlgorithm):
            continue
    raise ValueError("no public key, private key, certificate request or certificate found")
