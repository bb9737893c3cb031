"""Preflight: is it safe to deploy this chain, key or CA? Pure.

Evaluates something that is not deployed yet against the pin-sets of the
inventory's endpoints, at a given `now`:

- a new chain (`--chain`): built into a path against each endpoint's trust
  store and audited exactly as a scan would audit it once served, on every
  path cross-signs let a client build (PATH_DEPENDENT when they disagree);
  `leaf_names` says which endpoints a new leaf is for;
- a new key only (`--key-only`, a public key, private key or CSR): is it
  pinned in advance, or would CA pins carry a leaf issued for it? The CAs
  come from the trust store, the issuing chain the last scan saw (its state)
  and any CA certificates the caller adds (the issuing CA, the chain served
  today);
- a new CA (`--ca`): which pin-sets already pin that CA's key or one of its
  issuers' keys.
"""

from __future__ import annotations

import enum
import ipaddress
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm

from scanner.audit import audit, pin_paths, pins_enforced
from scanner.chain import CertificateCache, analyze_chain, normalise_name
from scanner.errors import CertificateFileError
from scanner.model import CertFacts, Check, Endpoint, Finding, Pin, PinPath, Severity, TrustSpec
from scanner.paths import search_paths
from scanner.pins import key_material, pins_of_spki, spki_der
from scanner.trust import TrustStore

__all__ = [
    "PreflightResult",
    "StoreFor",
    "Verdict",
    "ca_lineage",
    "enforced_pins",
    "leaf_covers",
    "preflight_ca",
    "preflight_chain",
    "preflight_key",
    "public_key_spki",
]


class Verdict(str, enum.Enum):
    SAFE = "safe"  # every client that pins this endpoint would still connect
    BREAKS = "breaks"  # a pinned client (or every client) would fail
    # cross-signs: the pinned clients whose verifier builds some paths would fail
    PATH_DEPENDENT = "path_dependent"
    NOT_PINNED = "not_pinned"  # no pins apply: only chain validity matters


@dataclass(frozen=True)
class PreflightResult:
    endpoint: Endpoint
    verdict: Verdict
    reason: str
    matching: tuple[tuple[Pin, str], ...] = ()  # pins that would match, with what they name
    findings: tuple[Finding, ...] = ()
    paths: tuple[PinPath, ...] = ()  # --chain: every path a client could build, judged


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
    """Judge a chain that is not served yet as each endpoint would serve it: on
    every path a client could build from it, as a scan judges a served chain."""
    results = []
    cache = CertificateCache()
    for endpoint in endpoints:
        store = store_for(endpoint.trust)
        report = analyze_chain(chain, store, endpoint.server_name, now, cache=cache)
        search = search_paths(chain, store, now, cache=cache) if report.valid else None
        findings = audit(endpoint, report, now, known_keys=store.known_keys, search=search)
        judged = pin_paths(endpoint.pinset, report, search)
        breaking = [f for f in findings if f.severity is Severity.CRITICAL]
        dependent = [f for f in findings if f.check is Check.PIN_PATH_DEPENDENT]
        matching = tuple(
            dict.fromkeys(
                (pin, facts.subject)
                for path in judged
                for pin in path.matched
                for facts in path.certs
                if pin in facts.pins
            )
        )

        if breaking:
            verdict = Verdict.BREAKS
            reason = "; ".join(f"{f.check.value}: {f.message}" for f in breaking)
        elif not enforced_pins(endpoint, now):
            verdict, reason = Verdict.NOT_PINNED, "no pins enforced; the chain validates"
        elif dependent:
            verdict = Verdict.PATH_DEPENDENT
            reason = "; ".join(f"{f.check.value}: {f.message}" for f in dependent)
        else:
            verdict, reason = Verdict.SAFE, f"{matching[0][0]} matches {matching[0][1]}"
        results.append(PreflightResult(endpoint, verdict, reason, matching, findings, judged))
    return results


def leaf_covers(leaf: CertFacts, name: str) -> bool:
    """Whether the leaf's subjectAltNames name `name` (RFC 6125: case-blind, one
    trailing dot ignored, a wildcard only as the whole left-most label and for
    exactly one label; an IP address only by an IP entry)."""
    host = normalise_name(name).strip("[]")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is not None:
        return any(ipaddress.ip_address(ip) == address for ip in leaf.san_ip)
    labels = host.split(".")
    for entry in leaf.san_dns:
        pattern = normalise_name(entry).split(".")
        if len(pattern) != len(labels):
            continue
        if pattern[0] == "*" and len(pattern) > 2:
            if pattern[1:] == labels[1:] and labels[0]:
                return True
        elif pattern == labels:
            return True
    return False


def public_key_spki(data: bytes, source: str) -> bytes:
    """DER SubjectPublicKeyInfo from a PEM public key, private key, CSR or certificate."""
    try:
        return key_material(data).spki
    except ValueError:
        raise CertificateFileError(
            f"{source}: no PEM public key, private key, certificate request or certificate found"
        ) from None


def preflight_key(
    endpoints: Sequence[Endpoint],
    spki: bytes,
    ca_keys: Mapping[Pin, str],
    now: datetime,
    *,
    issuing: Mapping[str, Sequence[tuple[Pin, str]]] | None = None,
) -> list[PreflightResult]:
    """A new leaf key: SAFE when it is pinned in advance, or when the pin-set pins
    a CA a leaf for this key can be issued under: one of the CAs that issue the
    endpoint's leaf today (`issuing`, by endpoint name: what the last scan saw),
    or a known CA key (`ca_keys`: trust-store roots, CA certificates given)."""
    new_pins = set(pins_of_spki(spki))
    learnt = issuing or {}
    results = []
    for endpoint in endpoints:
        pins = enforced_pins(endpoint, now)
        if not pins:
            results.append(PreflightResult(endpoint, Verdict.NOT_PINNED, "no pins enforced"))
            continue
        offline = endpoint.pinset.offline if endpoint.pinset else frozenset()
        direct = [p for p in pins if p in new_pins]
        today = dict(learnt.get(endpoint.name, ()))
        same_ca = [(p, today[p]) for p in pins if p in today]
        cas = [(p, ca_keys[p]) for p in pins if p in ca_keys]
        if direct:
            kind = "the offline backup key, " if direct[0] in offline else ""
            reason = f"the new key is pinned in advance ({kind}{direct[0]})"
            results.append(
                PreflightResult(endpoint, Verdict.SAFE, reason, ((direct[0], "the new key"),))
            )
        elif same_ca:
            pin, subject = same_ca[0]
            reason = (
                "safe if the new leaf is issued by the CA that issues it today: "
                f"{pin} pins {subject} (from --state)"
            )
            results.append(PreflightResult(endpoint, Verdict.SAFE, reason, tuple(same_ca)))
        elif cas:
            reason = f"safe if the new leaf is issued under {cas[0][1]} (pinned: {cas[0][0]})"
            results.append(PreflightResult(endpoint, Verdict.SAFE, reason, tuple(cas)))
        else:
            reason = "neither the new key nor a known CA key is pinned: pinned clients would fail"
            unknown = [p for p in pins if p not in offline]
            if unknown and endpoint.name not in learnt:
                reason += (
                    f" (no CA pinaudit knows has the key {unknown[0]} names: if it is the "
                    "issuing CA's, give the last scan's --state, or that CA with --ca)"
                )
            results.append(PreflightResult(endpoint, Verdict.BREAKS, reason))
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
