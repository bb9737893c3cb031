"""Preflight: is it safe to deploy this chain, key or CA? Pure.

Evaluates something that is not deployed yet against the pin-sets of the
inventory's endpoints, at a given `now`:

- a new chain (`--chain`): built into a path against each endpoint's trust
  store and audited exactly as a scan would audit it once served;
- a new key only (`--key-only`, a public key, private key or CSR): is it
  pinned in advance, or would CA pins carry a leaf issued for it?
- a new CA (`--ca`): which pin-sets already pin that CA's key or one of its
  issuers' keys.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm

from scanner.audit import audit, pins_enforced
from scanner.chain import CertificateCache, analyze_chain
from scanner.errors import CertificateFileError
from scanner.model import Endpoint, Finding, Pin, Severity, TrustSpec
from scanner.pins import key_material, pins_of_spki, spki_der
from scanner.trust import TrustStore

__all__ = [
    "PreflightResult",
    "StoreFor",
    "Verdict",
    "ca_lineage",
    "enforced_pins",
    "preflight_ca",
    "preflight_chain",
    "preflight_key",
    "public_key_spki",
]


class Verdict(str, enum.Enum):
    SAFE = "safe"  # every client that pins this endpoint would still connect
    BREAKS = "breaks"  # a pinned client (or every client) would fail
    NOT_PINNED = "not_pinned"  # no pins apply: only chain validity matters


@dataclass(frozen=True)
class PreflightResult:
    endpoint: Endpoint
    verdict: Verdict
    reason: str
    matching: tuple[tuple[Pin, str], ...] = ()  # pins that would match, with what they name
    findings: tuple[Finding, ...] = ()


StoreFor = Callable[[TrustSpec], TrustStore]


def enforced_pins(endpoint: Endpoint, now: datetime) -> tuple[Pin, ...]:
    """The endpoint's pins if clients enforce them at `now`, else ()."""
    pinset = endpoint.pinset
    if pinset is None or not pins_enforced(pinset, now):
        return ()
    return pinset.pins


def preflight_chain(
    endpoints: Sequence[Endpoint],
    chain: Sequence[bytes],
    store_for: StoreFor,
    now: datetime,
) -> list[PreflightResult]:
    """Judge a chain that is not served yet as each endpoint would serve it."""
    results = []
    cache = CertificateCache()
    for endpoint in endpoints:
        store = store_for(endpoint.trust)
        report = analyze_chain(chain, store, endpoint.server_name, now, cache=cache)
        findings = audit(endpoint, report, now, known_keys=store.known_keys)
        breaking = [f for f in findings if f.severity is Severity.CRITICAL]
        pinset = endpoint.pinset
        matching = tuple(
            (pin, pc.facts.subject)
            for pin in (pinset.pins if pinset else ())
            for pc in report.path
            if pin in pc.facts.pins
        )
        if breaking:
            reason = "; ".join(f"{f.check.value}: {f.message}" for f in breaking)
            results.append(PreflightResult(endpoint, Verdict.BREAKS, reason, matching, findings))
        elif not enforced_pins(endpoint, now):
            results.append(
                PreflightResult(
                    endpoint,
                    Verdict.NOT_PINNED,
                    "no pins enforced; the chain validates",
                    matching,
                    findings,
                )
            )
        else:
            pin, subject = matching[0]
            reason = f"{pin} matches {subject}"
            results.append(PreflightResult(endpoint, Verdict.SAFE, reason, matching, findings))
    return results


def public_key_spki(data: bytes, source: str) -> bytes:
    """DER SubjectPublicKeyInfo from a PEM public key, private key, CSR or certificate."""
    try:
        return key_material(data).spki
    except ValueError:
        raise CertificateFileError(
            f"{source}: no PEM public key, private key, certificate request or certificate found"
        ) from None


def preflight_key(
    endpoints: Sequence[Endpoint], spki: bytes, ca_keys: Mapping[Pin, str], now: datetime
) -> list[PreflightResult]:
    """A new leaf key: SAFE when it is pinned in advance, or when the pin-set pins
    a known CA key that a leaf for this key can be issued under."""
    new_pins = set(pins_of_spki(spki))
    results = []
    for endpoint in endpoints:
        pins = enforced_pins(endpoint, now)
        if not pins:
            results.append(PreflightResult(endpoint, Verdict.NOT_PINNED, "no pins enforced"))
            continue
        direct = [p for p in pins if p in new_pins]
        cas = [(p, ca_keys[p]) for p in pins if p in ca_keys]
        if direct:
            results.append(
                PreflightResult(
                    endpoint,
                    Verdict.SAFE,
                    f"the new key is pinned in advance ({direct[0]})",
                    ((direct[0], "the new key"),),
                )
            )
        elif cas:
            reason = f"safe if the new leaf is issued under {cas[0][1]} (pinned: {cas[0][0]})"
            results.append(PreflightResult(endpoint, Verdict.SAFE, reason, tuple(cas)))
        else:
            results.append(
                PreflightResult(
                    endpoint,
                    Verdict.BREAKS,
                    "neither the new key nor a known CA key is pinned: pinned clients would fail",
                )
            )
    return results


def ca_lineage(
    ca: x509.Certificate, candidates: Sequence[x509.Certificate]
) -> list[x509.Certificate]:
    """`ca` and its issuers, followed by subject/issuer names and signatures
    through `candidates` (the file's other certificates and the trust store)."""
    lineage = [ca]
    current = ca
    while current.issuer != current.subject and len(lineage) < 10:
        issuer = next(
            (c for c in candidates if c.subject == current.issuer and _signed_by(current, c)),
            None,
        )
        if issuer is None or issuer in lineage:
            break
        lineage.append(issuer)
        current = issuer
    return lineage


def _signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (InvalidSignature, UnsupportedAlgorithm, ValueError, TypeError):
        return False
    return True


def preflight_ca(
    endpoints: Sequence[Endpoint],
    lineage: Sequence[x509.Certificate],
    now: datetime,
) -> list[PreflightResult]:
    """Which pin-sets already pin the new CA's key or one of its issuers'."""
    names: dict[Pin, str] = {}
    for cert in lineage:
        for pin in pins_of_spki(spki_der(cert)):
            names.setdefault(pin, cert.subject.rfc4514_string())
    results = []
    for endpoint in endpoints:
        pins = enforced_pins(endpoint, now)
        if not pins:
            results.append(PreflightResult(endpoint, Verdict.NOT_PINNED, "no pins enforced"))
            continue
        hits = tuple((p, names[p]) for p in pins if p in names)
        if hits:
            reason = f"{hits[0][0]} pins {hits[0][1]}"
            results.append(PreflightResult(endpoint, Verdict.SAFE, reason, hits))
        else:
            results.append(
                PreflightResult(
                    endpoint, Verdict.BREAKS, "no pin names the new CA or any of its issuers"
                )
            )
    return results
