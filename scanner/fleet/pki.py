"""A small PKI factory: roots, intermediates, leaves and cross-signs on demand.

Used by the simulated fleet, the demo, the benchmarks and the tests. Every
knob that pinning cares about is exposed: the key (reuse one to model a
renewal with the same key), validity, SANs, CA flag and path length, the
signature hash, and extra extensions. Certificates are built relative to a
`now` given by the caller, so nothing here reads the clock.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeAlias, Union

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from scanner.model import HashAlg, Pin
from scanner.pins import pin_of_certificate

__all__ = ["PKI", "Issued", "PrivateKey", "StandardChain", "make_key", "standard_chain"]

PrivateKey: TypeAlias = Union[  # noqa: UP007 - a runtime alias must work on Python 3.10
    rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey, ed25519.Ed25519PrivateKey, ed448.Ed448PrivateKey
]

_HASHES: dict[str, hashes.HashAlgorithm | None] = {
    "sha256": hashes.SHA256(),
    "sha384": hashes.SHA384(),
    "sha512": hashes.SHA512(),
    "none": None,
}

# Legacy signature hashes the crypto library refuses to sign with. They are
# produced by signing with SHA-256 and rewriting the RSA signature OID (same
# encoded length), then re-signing the TBS with the legacy hash.
_RSA_SHA256_OID = bytes.fromhex("2a864886f70d01010b")
_LEGACY_RSA: dict[str, tuple[bytes, hashes.HashAlgorithm]] = {
    "sha1": (bytes.fromhex("2a864886f70d010105"), hashes.SHA1()),
    "md5": (bytes.fromhex("2a864886f70d010104"), hashes.MD5()),
}


def _der(tag: int, content: bytes) -> bytes:
    n = len(content)
    if n < 0x80:
        return bytes([tag, n]) + content
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + content


def _resign_legacy(cert: x509.Certificate, signer: PrivateKey, hash_alg: str) -> x509.Certificate:
    from cryptography.hazmat.primitives.asymmetric import padding

    if not isinstance(signer, rsa.RSAPrivateKey):
        raise ValueError(f"{hash_alg} signatures are generated with RSA issuers only")
    oid, algorithm = _LEGACY_RSA[hash_alg]
    tbs = cert.tbs_certificate_bytes.replace(_RSA_SHA256_OID, oid)
    signature = signer.sign(tbs, padding.PKCS1v15(), algorithm)
    sig_alg = _der(0x30, _der(0x06, oid) + b"\x05\x00")
    der = _der(0x30, tbs + sig_alg + _der(0x03, b"\x00" + signature))
    return x509.load_der_x509_certificate(der)


def make_key(kind: str = "ec256") -> PrivateKey:
    """``rsa1024|rsa2048|rsa3072|rsa4096|ec256|ec384|ec521|ed25519|ed448``."""
    if kind.startswith("rsa"):
        return rsa.generate_private_key(public_exponent=65537, key_size=int(kind[3:]))
    curves: dict[str, ec.EllipticCurve] = {
        "ec256": ec.SECP256R1(),
        "ec384": ec.SECP384R1(),
        "ec521": ec.SECP521R1(),
    }
    if kind in curves:
        return ec.generate_private_key(curves[kind])
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    if kind == "ed448":
        return ed448.Ed448PrivateKey.generate()
    raise ValueError(f"unknown key kind {kind!r}")


@dataclass(frozen=True)
class Issued:
    """A certificate with its private key."""

    cert: x509.Certificate
    key: PrivateKey

    @property
    def der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)

    @property
    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def pin(self) -> Pin:
        return pin_of_certificate(self.cert)

    @property
    def sha1_pin(self) -> Pin:
        return pin_of_certificate(self.cert, HashAlg.SHA1)

    @property
    def subject(self) -> str:
        return self.cert.subject.rfc4514_string()

    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )


def _name(cn: str, org: str | None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if org:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    return x509.Name(attrs)


class PKI:
    """Issues certificates relative to `now`. Keys of each kind are cached per
    name so that building hundreds of certificates stays cheap; pass
    ``key=`` to control key identity explicitly."""

    def __init__(self, now: datetime, *, org: str | None = "pinaudit test PKI") -> None:
        self.now = now
        self.org = org
        self._serial = 1000

    def _next_serial(self) -> int:
        self._serial += 1
        return self._serial

    def issue(
        self,
        cn: str,
        *,
        issuer: Issued | None = None,
        key: PrivateKey | None = None,
        key_type: str = "ec256",
        ca: bool = False,
        path_length: int | None = None,
        days_before: float = 30,
        days_after: float = 365,
        not_before: datetime | None = None,
        not_after: datetime | None = None,
        dns: Sequence[str] = (),
        ips: Sequence[str] = (),
        hash_alg: str = "sha256",
        serial: int | None = None,
        eku_server: bool = True,
        subject: x509.Name | None = None,
        issuer_name: x509.Name | None = None,
        extra_extensions: Iterable[tuple[x509.ExtensionType, bool]] = (),
        basic_constraints: bool = True,
        key_identifiers: bool = True,
    ) -> Issued:
        key = key if key is not None else make_key(key_type)
        subject = subject if subject is not None else _name(cn, self.org)
        signer_key = issuer.key if issuer is not None else key
        if issuer_name is None:
            issuer_name = issuer.cert.subject if issuer is not None else subject
        nb = not_before if not_before is not None else self.now - timedelta(days=days_before)
        na = not_after if not_after is not None else self.now + timedelta(days=days_after)
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer_name)
            .public_key(key.public_key())
            .serial_number(serial if serial is not None else self._next_serial())
            .not_valid_before(nb)
            .not_valid_after(na)
        )
        if basic_constraints:
            builder = builder.add_extension(
                x509.BasicConstraints(ca=ca, path_length=path_length if ca else None),
                critical=True,
            )
        if ca:
            builder = builder.add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
        else:
            builder = builder.add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=isinstance(key, rsa.RSAPrivateKey),
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            if eku_server:
                builder = builder.add_extension(
                    x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
                )
        names: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
        names += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
        if names:
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        if key_identifiers:
            builder = builder.add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
            aki_key = issuer.key.public_key() if issuer is not None else key.public_key()
            builder = builder.add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(aki_key), critical=False
            )
        for ext, critical in extra_extensions:
            builder = builder.add_extension(ext, critical=critical)
        algorithm = _HASHES.get(hash_alg, hashes.SHA256())
        if isinstance(signer_key, (ed25519.Ed25519PrivateKey, ed448.Ed448PrivateKey)):
            algorithm = None
        cert = builder.sign(signer_key, algorithm)  # type: ignore[arg-type]
        if hash_alg in _LEGACY_RSA:
            cert = _resign_legacy(cert, signer_key, hash_alg)
        return Issued(cert, key)

    def root(self, cn: str, **kw: object) -> Issued:
        kw.setdefault("days_before", 3650)
        kw.setdefault("days_after", 3650)
        return self.issue(cn, ca=True, **kw)  # type: ignore[arg-type]

    def intermediate(self, cn: str, issuer: Issued, **kw: object) -> Issued:
        kw.setdefault("days_before", 365)
        kw.setdefault("days_after", 1095)
        kw.setdefault("path_length", 0)
        return self.issue(cn, issuer=issuer, ca=True, **kw)  # type: ignore[arg-type]

    def leaf(self, host: str, issuer: Issued, **kw: object) -> Issued:
        kw.setdefault("dns", (host,))
        kw.setdefault("days_after", 90)
        return self.issue(host, issuer=issuer, **kw)  # type: ignore[arg-type]

    def cross_sign(self, ca: Issued, by: Issued, **kw: object) -> Issued:
        """Same subject and key as `ca`, issued by `by` (a cross-sign)."""
        bc = ca.cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        return self.issue(
            "",
            subject=ca.cert.subject,
            key=ca.key,
            issuer=by,
            ca=True,
            path_length=bc.path_length,
            **kw,  # type: ignore[arg-type]
        )


@dataclass(frozen=True)
class StandardChain:
    """root → intermediate → leaf, the common shape."""

    root: Issued
    intermediate: Issued
    leaf: Issued

    @property
    def served(self) -> list[bytes]:
        """What a well-configured server sends: leaf then intermediate."""
        return [self.leaf.der, self.intermediate.der]


def standard_chain(pki: PKI, host: str, *, prefix: str = "Test") -> StandardChain:
    root = pki.root(f"{prefix} Root")
    inter = pki.intermediate(f"{prefix} Intermediate", root)
    leaf = pki.leaf(host, inter)
    return StandardChain(root, inter, leaf)
