"""Trust stores: certifi (default), the system bundle, or a PEM bundle path.

Pure apart from reading the bundle file: a store is the anchors of one PEM
file, ready for ``cryptography.x509.verification``, plus an index from pin to
subject so reports can say which CA a pin names. Anchors that fail to parse
(or that the crypto library only accepts with a deprecation warning, such as
certifi's roots with negative serial numbers) are reported in ``warnings``;
the ones that fail are skipped.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import certifi
from cryptography import x509
from cryptography.x509 import verification

from scanner.errors import CertificateFileError, TrustStoreError
from scanner.model import Pin, TrustKind, TrustSpec
from scanner.pins import pins_of_spki, spki_der

__all__ = [
    "SYSTEM_BUNDLES",
    "TrustStore",
    "TrustStores",
    "bundle_path",
    "key_index",
    "load_certificate",
    "read_certificates",
    "split_pem",
    "store_from_pem",
    "system_bundle_path",
]

_PEM_BLOCK = re.compile(
    rb"-----BEGIN (?:X509 |TRUSTED )?CERTIFICATE-----(.*?)"
    rb"-----END (?:X509 |TRUSTED )?CERTIFICATE-----",
    re.DOTALL,
)

# Where distributions keep their CA bundle; SSL_CERT_FILE wins when set.
SYSTEM_BUNDLES = (
    "/etc/ssl/certs/ca-certificates.crt",  # Debian, Ubuntu, Alpine, Arch
    "/etc/pki/tls/certs/ca-bundle.crt",  # Fedora, RHEL
    "/etc/ssl/ca-bundle.pem",  # openSUSE
    "/etc/ssl/cert.pem",  # macOS, BSDs, Alpine
)


def split_pem(data: bytes) -> list[bytes | str]:
    """Each CERTIFICATE block of a PEM text as DER, or an error string for a block
    whose base64 is broken. Non-certificate blocks (keys) are ignored."""
    out: list[bytes | str] = []
    for n, match in enumerate(_PEM_BLOCK.finditer(data), start=1):
        body = b"".join(match.group(1).split())
        try:
            out.append(base64.b64decode(body, validate=True))
        except (binascii.Error, ValueError) as exc:
            out.append(f"PEM block {n}: bad base64 ({exc})")
    return out


def load_certificate(der: bytes) -> tuple[x509.Certificate, str | None]:
    """Parse DER; returns the certificate and the library's warning, if any.

    Raises ValueError when the DER does not parse."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            cert = x509.load_der_x509_certificate(der)
        except x509.InvalidVersion as exc:  # not a ValueError (found by fuzz/fuzz_chain.py)
            raise ValueError(str(exc)) from None
        cert.serial_number  # noqa: B018 - the negative-serial warning fires here
    message = str(caught[0].message) if caught else None
    return cert, message


def read_certificates(data: bytes, source: str) -> list[bytes]:
    """DER certificates from a PEM (one or more blocks) or a DER file's bytes."""
    if b"-----BEGIN" in data:
        blocks = split_pem(data)
        bad = [b for b in blocks if isinstance(b, str)]
        if bad:
            raise CertificateFileError(f"{source}: {bad[0]}")
        ders = [b for b in blocks if isinstance(b, bytes)]
        if not ders:
            raise CertificateFileError(f"{source}: no CERTIFICATE block found")
        return ders
    if data[:1] == b"\x30":
        return [data]
    raise CertificateFileError(f"{source}: neither PEM nor DER certificate data")


@dataclass(frozen=True)
class TrustStore:
    """Anchors of one bundle, the verifier store, and pin → subject of each anchor."""

    name: str
    anchors: tuple[x509.Certificate, ...]
    store: verification.Store = field(repr=False)
    known_keys: Mapping[Pin, str] = field(repr=False)
    warnings: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.anchors)


def store_from_pem(data: bytes, name: str) -> TrustStore:
    """Build a store from PEM text. Raises TrustStoreError when no anchor is usable."""
    anchors: list[x509.Certificate] = []
    notes: list[str] = []
    for n, block in enumerate(split_pem(data), start=1):
        if isinstance(block, str):
            notes.append(f"{name}: {block}: skipped")
            continue
        try:
            cert, warning = load_certificate(block)
            cert.subject, cert.issuer  # noqa: B018 - an anchor's names must read
        except (ValueError, TypeError) as exc:  # a name: TypeError (found by fuzz/fuzz_chain.py)
            notes.append(f"{name}: certificate {n} does not parse, skipped: {exc}")
            continue
        if warning:
            subject = _safe_subject(cert)
            notes.append(f"{name}: certificate {n} ({subject}): {warning}")
        anchors.append(cert)
    if not anchors:
        raise TrustStoreError(f"{name}: no usable CA certificate in the bundle")
    return TrustStore(
        name=name,
        anchors=tuple(anchors),
        store=verification.Store(anchors),
        known_keys=key_index(anchors),
        warnings=tuple(notes),
    )


def key_index(certs: Iterable[x509.Certificate]) -> dict[Pin, str]:
    """sha256 and sha1 pin of each certificate's key → its subject (first one wins)."""
    index: dict[Pin, str] = {}
    for cert in certs:
        try:
            pins = pins_of_spki(spki_der(cert))
        except ValueError:
            continue
        for pin in pins:
            index.setdefault(pin, _safe_subject(cert))
    return index


def _safe_subject(cert: x509.Certificate) -> str:
    try:
        return cert.subject.rfc4514_string()
    except (ValueError, TypeError):
        return "<unreadable subject>"


def system_bundle_path(environ: Mapping[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    if env.get("SSL_CERT_FILE"):
        return env["SSL_CERT_FILE"]
    for candidate in SYSTEM_BUNDLES:
        if os.path.isfile(candidate):
            return candidate
    raise TrustStoreError(
        "no system CA bundle found (looked at SSL_CERT_FILE and " + ", ".join(SYSTEM_BUNDLES) + ")"
    )


def bundle_path(spec: TrustSpec) -> str:
    if spec.kind is TrustKind.CERTIFI:
        return certifi.where()
    if spec.kind is TrustKind.SYSTEM:
        return system_bundle_path()
    if not spec.path:
        raise TrustStoreError("a bundle trust store needs a path")
    return spec.path


class TrustStores:
    """Loads each distinct trust store once per run."""

    def __init__(self) -> None:
        self._stores: dict[TrustSpec, TrustStore] = {}

    def get(self, spec: TrustSpec) -> TrustStore:
        store = self._stores.get(spec)
        if store is None:
            path = bundle_path(spec)
            try:
                data = Path(path).read_bytes()
            except OSError as exc:
                raise TrustStoreError(f"{path}: cannot read trust bundle: {exc.strerror}") from None
            store = store_from_pem(data, str(spec) if spec.kind is TrustKind.BUNDLE else path)
            self._stores[spec] = store
        return store

    def loaded(self) -> Sequence[TrustStore]:
        return tuple(self._stores.values())
