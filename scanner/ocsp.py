"""The stapled OCSP response: parsed, matched to the leaf, verified against its
issuer, and judged at `now`. Pure: DER bytes in, a frozen report out.

A staple is judged the way a client that honours stapling would (RFC 6960
§3.2, RFC 6066 §8): the response must be successful, name the leaf (serial
and issuer hashes), be signed by the issuer or by a responder certificate the
issuer issued for OCSP signing (id-kp-OCSPSigning) and valid now, and not
come from the future. Its status is good, revoked or unknown; it is stale
once its nextUpdate has passed. A leaf with the TLS Feature extension's
status_request ("must-staple", RFC 7633) and no staple fails hard in
Firefox.
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, padding, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, SignatureAlgorithmOID

__all__ = [
    "CLOCK_SKEW",
    "MAX_RESPONSE_BYTES",
    "OcspStatus",
    "StapleReport",
    "judge_staple",
    "must_staple",
    "staple_scts",
]

# A responder's clock may run ahead of ours by this much before thisUpdate
# counts as "in the future" (Mozilla's and Go's verifiers allow minutes).
CLOCK_SKEW = timedelta(minutes=5)
MAX_RESPONSE_BYTES = 64 * 1024  # real staples are 0.5-3 KB; OpenSSL's own cap is larger


class OcspStatus(str, enum.Enum):
    """What the staple says about the leaf (the ``status`` label)."""

    GOOD = "good"
    REVOKED = "revoked"
    UNKNOWN = "unknown"  # the responder does not know the certificate
    ABSENT = "absent"  # asked for, none stapled
    INVALID = "invalid"  # stapled, but not a usable answer about this leaf (see `error`)


@dataclass(frozen=True)
class StapleReport:
    status: OcspStatus
    this_update: datetime | None = None
    next_update: datetime | None = None
    produced_at: datetime | None = None
    revocation_time: datetime | None = None
    revocation_reason: str | None = None
    stale: bool = False  # nextUpdate has passed
    must_staple: bool = False  # the leaf carries TLS Feature status_request
    error: str | None = None  # why INVALID
    responder: str | None = None  # "issuer" or the delegated responder's subject


def must_staple(leaf: x509.Certificate) -> bool:
    """RFC 7633: the TLS Feature extension lists status_request (5)."""
    try:
        features = leaf.extensions.get_extension_for_class(x509.TLSFeature).value
    except (x509.ExtensionNotFound, ValueError, x509.DuplicateExtension):
        return False
    return x509.TLSFeatureType.status_request in features


def _key_hash(cert: x509.Certificate, algorithm: hashes.HashAlgorithm) -> bytes:
    """Hash of the subjectPublicKey BIT STRING contents (RFC 6960 §4.1.1)."""
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    key_bits = _subject_public_key_bits(spki)
    return hashlib.new(algorithm.name, key_bits).digest()


def _subject_public_key_bits(spki: bytes) -> bytes:
    """The subjectPublicKey bits of a DER SubjectPublicKeyInfo (without the
    BIT STRING's unused-bits byte)."""

    def header(data: bytes, at: int) -> tuple[int, int]:  # (content start, content length)
        size = data[at + 1]
        if size < 0x80:
            return at + 2, size
        count = size & 0x7F
        return at + 2 + count, int.from_bytes(data[at + 2 : at + 2 + count], "big")

    start, _ = header(spki, 0)  # SEQUENCE
    algorithm_start, algorithm_len = header(spki, start)  # AlgorithmIdentifier
    bits_start, bits_len = header(spki, algorithm_start + algorithm_len)
    return spki[bits_start + 1 : bits_start + bits_len]


def _verify(
    key: object, signature: bytes, data: bytes, algorithm: hashes.HashAlgorithm | None, oid: object
) -> None:
    """Verify `signature` over `data`; raises InvalidSignature or UnsupportedAlgorithm."""
    if isinstance(key, rsa.RSAPublicKey):
        if oid == SignatureAlgorithmOID.RSASSA_PSS or algorithm is None:
            raise UnsupportedAlgorithm("RSASSA-PSS OCSP signatures are not checked")
        key.verify(signature, data, padding.PKCS1v15(), algorithm)
    elif isinstance(key, ec.EllipticCurvePublicKey):
        if algorithm is None:
            raise UnsupportedAlgorithm("ECDSA without a hash")
        key.verify(signature, data, ec.ECDSA(algorithm))
    elif isinstance(key, (ed25519.Ed25519PublicKey, ed448.Ed448PublicKey)):
        key.verify(signature, data)
    elif isinstance(key, dsa.DSAPublicKey) and algorithm is not None:
        key.verify(signature, data, algorithm)
    else:
        raise UnsupportedAlgorithm(f"an issuer key of type {type(key).__name__}")


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    if cert.issuer != issuer.subject:
        return False
    try:
        _verify(
            issuer.public_key(),
            cert.signature,
            cert.tbs_certificate_bytes,
            cert.signature_hash_algorithm,
            cert.signature_algorithm_oid,
        )
    except (InvalidSignature, UnsupportedAlgorithm, ValueError, TypeError):
        return False
    return True


def _names_responder(response: ocsp.OCSPResponse, cert: x509.Certificate) -> bool:
    if response.responder_name is not None:
        return response.responder_name == cert.subject
    key_hash = response.responder_key_hash
    return key_hash is not None and key_hash == _key_hash(cert, hashes.SHA1())


def _signer(
    response: ocsp.OCSPResponse, issuer: x509.Certificate, now: datetime
) -> tuple[x509.Certificate | None, str]:
    """The certificate whose key signed the response, or None and why not."""
    if _names_responder(response, issuer):
        return issuer, "issuer"
    for cert in response.certificates[:8]:
        if not _names_responder(response, cert):
            continue
        subject = cert.subject.rfc4514_string()
        if not _issued_by(cert, issuer):
            return None, f"the responder {subject!r} is not a certificate of the leaf's issuer"
        try:
            usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        except (x509.ExtensionNotFound, ValueError):
            usages = x509.ExtendedKeyUsage([])
        if ExtendedKeyUsageOID.OCSP_SIGNING not in usages:
            return None, f"the responder {subject!r} is not authorised for OCSP signing"
        if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
            return None, f"the responder certificate {subject!r} is not valid now"
        return cert, subject
    return None, "signed by a responder that is neither the issuer nor a delegate it names"


def _matches(
    single: ocsp.OCSPSingleResponse, leaf: x509.Certificate, issuer: x509.Certificate
) -> bool:
    if single.serial_number != leaf.serial_number:
        return False
    algorithm = single.hash_algorithm
    name_hash = hashlib.new(algorithm.name, issuer.subject.public_bytes()).digest()
    return single.issuer_name_hash == name_hash and single.issuer_key_hash == _key_hash(
        issuer, algorithm
    )


def judge_staple(
    response: bytes | None,
    leaf_der: bytes,
    issuer_der: bytes | None,
    now: datetime,
) -> StapleReport | None:
    """Judge a stapled response for `leaf_der` at `now` (aware, UTC).

    `response` is what the probe captured: None when no staple was asked for
    (no report), b"" when asked and none came (ABSENT). `issuer_der` is the
    leaf's issuer (from the validated path); without it nothing can be
    verified and a staple is INVALID with that reason.
    """
    if response is None:
        return None
    try:
        leaf = x509.load_der_x509_certificate(leaf_der)
    except ValueError:
        return StapleReport(OcspStatus.INVALID, error="the leaf does not parse")
    stapled = must_staple(leaf)
    if not response:
        return StapleReport(OcspStatus.ABSENT, must_staple=stapled)

    def invalid(why: str, **facts: object) -> StapleReport:
        return StapleReport(OcspStatus.INVALID, must_staple=stapled, error=why, **facts)  # type: ignore[arg-type]

    if len(response) > MAX_RESPONSE_BYTES:
        return invalid(f"a staple of {len(response)} bytes (over {MAX_RESPONSE_BYTES})")
    try:
        parsed = ocsp.load_der_ocsp_response(response)
    except ValueError as exc:
        return invalid(f"not an OCSP response: {str(exc)[:120]}")
    if parsed.response_status is not ocsp.OCSPResponseStatus.SUCCESSFUL:
        return invalid(f"the responder answered {parsed.response_status.name.lower()}")
    if issuer_der is None:
        return invalid("the leaf's issuer is unknown: the staple cannot be verified")
    try:
        issuer = x509.load_der_x509_certificate(issuer_der)
        singles = list(parsed.responses)[:32]
    except ValueError as exc:
        return invalid(f"a malformed response: {str(exc)[:120]}")
    single = next((s for s in singles if _matches(s, leaf, issuer)), None)
    if single is None:
        serials = ", ".join(f"{s.serial_number:x}" for s in singles[:4])
        return invalid(f"the staple is about another certificate (serial {serials})")
    facts: dict[str, object] = {
        "this_update": single.this_update_utc,
        "next_update": single.next_update_utc,
        "produced_at": parsed.produced_at_utc,
    }
    signer, responder = _signer(parsed, issuer, now)
    if signer is None:
        return invalid(responder, **facts)
    try:
        _verify(
            signer.public_key(),
            parsed.signature,
            parsed.tbs_response_bytes,
            parsed.signature_hash_algorithm,
            parsed.signature_algorithm_oid,
        )
    except InvalidSignature:
        return invalid("the signature does not verify", responder=responder, **facts)
    except (UnsupportedAlgorithm, ValueError, TypeError) as exc:
        return invalid(f"the signature cannot be checked: {exc}", responder=responder, **facts)
    if single.this_update_utc > now + CLOCK_SKEW:
        return invalid("thisUpdate is in the future", responder=responder, **facts)
    stale = single.next_update_utc is not None and single.next_update_utc <= now
    status = {
        ocsp.OCSPCertStatus.GOOD: OcspStatus.GOOD,
        ocsp.OCSPCertStatus.REVOKED: OcspStatus.REVOKED,
        ocsp.OCSPCertStatus.UNKNOWN: OcspStatus.UNKNOWN,
    }[single.certificate_status]
    reason = single.revocation_reason.name if single.revocation_reason is not None else None
    return StapleReport(
        status,
        this_update=single.this_update_utc,
        next_update=single.next_update_utc,
        produced_at=parsed.produced_at_utc,
        revocation_time=single.revocation_time_utc,
        revocation_reason=reason,
        stale=stale,
        must_staple=stapled,
        responder=responder,
    )


def staple_scts(response: bytes) -> bytes:
    """The SCT list (RFC 6962 §3.3) in the leaf's single response, as the
    extension value (OCTET STRING); b"" when none or unparsable."""
    try:
        parsed = ocsp.load_der_ocsp_response(response)
        if parsed.response_status is not ocsp.OCSPResponseStatus.SUCCESSFUL:
            return b""
        for ext in parsed.single_extensions:
            if ext.oid.dotted_string == "1.3.6.1.4.1.11129.2.4.5":
                return bytes(ext.value.public_bytes())
    except (ValueError, AttributeError):
        return b""
    return b""
