"""OkHttp on a plain JVM: the chain its ``BasicCertificateChainCleaner`` builds,
and how the JDK prints a certificate's subject. Pure.

On Android, OkHttp pins against the chain the platform's trust manager built
(the validated path). Off Android, ``CertificatePinner`` first rebuilds the
chain itself (``okhttp3.internal.tls.BasicCertificateChainCleaner``), and that
chain can differ from the one the JDK validated:

* from the leaf, at each step it takes a **trusted** certificate that signed
  the current one (``BasicTrustRootIndex.findByIssuerAndSignature``) and stops
  when that one is self-signed; a trusted certificate that is not self-signed
  (an intermediate in the trust store) does not stop it;
* otherwise it takes the **first served** certificate that signed the current
  one, wherever it was sent, and never comes back to try another;
* with no signer and no trusted certificate met so far it throws
  ``SSLPeerUnverifiedException("Failed to find a trusted cert that signed " +
  cert)``; after 9 signers, ``"Certificate chain too long: " + chain``;
* OkHttp 5 also requires each signer's basicConstraints to allow the
  certificates below it (CA bit, pathLen); 3.x and 4.x do not check.

Proven against OkHttp 3.13.1 on OpenJDK 17 (tests/test_okhttp_oracle.py);
the 5.x check is read from its source.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID, ObjectIdentifier

from scanner.chain import DEFAULT_CACHE, CertificateCache
from scanner.model import CertFacts

__all__ = ["CHAIN_TOO_LONG", "FAILED_TO_FIND", "JvmCert", "JvmChain", "clean_chain", "jdk_subject"]

MAX_SIGNERS = 9
FAILED_TO_FIND = "Failed to find a trusted cert that signed "
CHAIN_TOO_LONG = "Certificate chain too long: "
_NO_LIMIT = 2**31 - 1  # X509Certificate.getBasicConstraints(): CA without pathLen


@dataclass(frozen=True)
class JvmCert:
    """One certificate of the cleaned chain: its facts and the JDK's subjectDN.name."""

    facts: CertFacts
    subject: str


@dataclass(frozen=True)
class JvmChain:
    """The chain OkHttp pins against on a JVM, or the cleaner's exception message."""

    certs: tuple[JvmCert, ...]
    error: str | None = None  # SSLPeerUnverifiedException message (subject, not the full dump)

    @property
    def path(self) -> tuple[CertFacts, ...]:
        return tuple(c.facts for c in self.certs)


def _signed_by(cert: x509.Certificate, signer: x509.Certificate) -> bool:
    """``toVerify.issuerDN == signingCert.subjectDN`` and the signature verifies."""
    try:
        cert.verify_directly_issued_by(signer)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def _basic_constraints(cert: x509.Certificate) -> int:
    """``X509Certificate.getBasicConstraints()``: -1 unless a CA, else its pathLen."""
    try:
        bc = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except (x509.ExtensionNotFound, ValueError):
        return -1
    if not bc.ca:
        return -1
    return _NO_LIMIT if bc.path_length is None else bc.path_length


def clean_chain(
    served: Sequence[bytes],
    anchors: Sequence[x509.Certificate],
    *,
    check_constraints: bool,
    cache: CertificateCache = DEFAULT_CACHE,
) -> JvmChain:
    """``BasicCertificateChainCleaner.clean(served)`` with a trust store of `anchors`.

    `check_constraints`: OkHttp 5's CA-bit/pathLen check on every signer."""
    parsed: list[tuple[x509.Certificate, CertFacts]] = []
    for der in served:
        entry = cache.get(der)
        if isinstance(entry, str):
            if not parsed:  # the leaf: the JDK refuses the handshake before OkHttp looks
                return JvmChain((), "the leaf certificate does not parse")
            continue
        parsed.append(entry)
    if not parsed:
        return JvmChain((), "no certificate served")
    # BasicTrustRootIndex: the trust store's certificates by subject
    by_subject: dict[x509.Name, list[x509.Certificate]] = {}
    for certificate in anchors:
        by_subject.setdefault(certificate.subject, []).append(certificate)

    def trusted_signer(cert: x509.Certificate) -> tuple[x509.Certificate, CertFacts] | None:
        for candidate in by_subject.get(cert.issuer, ()):
            if _signed_by(cert, candidate):
                entry = cache.get(candidate.public_bytes(Encoding.DER))
                if not isinstance(entry, str):
                    return entry
        return None

    def verify(cert: x509.Certificate, signer: x509.Certificate, below: int) -> bool:
        if check_constraints and _basic_constraints(signer) < below:
            return False
        return _signed_by(cert, signer)

    queue = parsed[1:]
    result = [parsed[0]]
    found_trusted = False
    for _ in range(MAX_SIGNERS):
        current = result[-1][0]
        anchor = trusted_signer(current)
        if anchor is not None:
            if len(result) > 1 or current != anchor[0]:
                result.append(anchor)
            if verify(anchor[0], anchor[0], len(result) - 2):
                return _chain(result)  # a self-signed trusted certificate: a root
            found_trusted = True
            continue
        for index, candidate in enumerate(queue):
            if verify(current, candidate[0], len(result) - 1):
                result.append(queue.pop(index))
                break
        else:
            if found_trusted:
                return _chain(result)
            return _chain(result, FAILED_TO_FIND + jdk_subject(current.subject))
    shown = ", ".join(jdk_subject(c.subject) for c, _ in result)
    return _chain(result, f"{CHAIN_TOO_LONG}[{shown}]")


def _chain(
    certs: Sequence[tuple[x509.Certificate, CertFacts]], error: str | None = None
) -> JvmChain:
    return JvmChain(tuple(JvmCert(f, jdk_subject(c.subject)) for c, f in certs), error)


# --- X509Certificate.getSubjectDN().getName() (sun.security.x509.X500Name) -------------

# The keyword the JDK prints per attribute (AVAKeyword, the DEFAULT form); any
# other attribute is printed as OID.<dotted>.
_KEYWORDS = {
    NameOID.COMMON_NAME: "CN",
    NameOID.COUNTRY_NAME: "C",
    NameOID.LOCALITY_NAME: "L",
    NameOID.STATE_OR_PROVINCE_NAME: "ST",
    NameOID.ORGANIZATION_NAME: "O",
    NameOID.ORGANIZATIONAL_UNIT_NAME: "OU",
    NameOID.TITLE: "T",
    ObjectIdentifier("1.3.6.1.4.1.42.2.11.2.1"): "IP",
    NameOID.STREET_ADDRESS: "STREET",
    NameOID.DOMAIN_COMPONENT: "DC",
    NameOID.DN_QUALIFIER: "DNQ",
    NameOID.SURNAME: "SURNAME",
    NameOID.GIVEN_NAME: "GIVENNAME",
    NameOID.INITIALS: "INITIALS",
    NameOID.GENERATION_QUALIFIER: "GENERATION",
    NameOID.EMAIL_ADDRESS: "EMAILADDRESS",
    NameOID.USER_ID: "UID",
    NameOID.SERIAL_NUMBER: "SERIALNUMBER",
}
_ESCAPEES = ',+=\n<>#;\\"'
_PRINTABLE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 '()+,-./:=?")


def _jdk_value(text: str) -> str:
    """AVA.toKeywordValueString: quoted when it holds a special character, starts
    or ends with a space, or has two spaces in a row; ``"`` and ``\\`` escaped."""
    quote = False
    previous_white = False
    already = len(text) > 1 and text[0] == '"' and text[-1] == '"'
    out: list[str] = []
    for index, c in enumerate(text):
        if already and index in (0, len(text) - 1):
            out.append(c)
            continue
        if c in _PRINTABLE or c in _ESCAPEES:
            if not quote and ((index == 0 and c in " \n") or c in _ESCAPEES):
                quote = True
            if c in " \n":
                if not quote and previous_white:
                    quote = True
                previous_white = True
            else:
                if c in '"\\':
                    out.append("\\")
                previous_white = False
            out.append(c)
        else:
            previous_white = False
            out.append(c)
    body = "".join(out)
    if body and body[-1] in " \n":
        quote = True
    return f'"{body}"' if quote and not already else body


def jdk_subject(name: x509.Name) -> str:
    """A name as the JDK prints ``X509Certificate.getSubjectDN().getName()``:
    the last RDN first, ``", "`` between RDNs, ``" + "`` inside one."""
    rdns = []
    for rdn in reversed(list(name.rdns)):
        avas = []
        for attr in rdn:
            keyword = _KEYWORDS.get(attr.oid) or f"OID.{attr.oid.dotted_string}"
            value = attr.value
            if isinstance(value, bytes):
                avas.append(f"{keyword}=#{value.hex()}")
            else:
                avas.append(f"{keyword}={_jdk_value(value)}")
        rdns.append(" + ".join(avas))
    return ", ".join(rdns)
