"""Every path a client could build from a served chain to a trust anchor. Pure.

``chain.analyze_chain`` finds the path one verifier builds. Where cross-signs
allow several (pinning-semantics §8.5: "compute all valid paths up to the
first anchor found in the store, and report the verdict per path"), a pin can
pass on one and fail on another: a verifier that stops at the first trusted
signer and one that prefers a longer path disagree. This module lists them:
issuer name and signature, CA bit, path length and validity at `now` are
checked on each; the leaf's name was already checked by ``analyze_chain``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm

from scanner.chain import DEFAULT_CACHE, CertificateCache
from scanner.model import CertFacts
from scanner.trust import TrustStore

__all__ = ["MAX_DEPTH", "MAX_PATHS", "Parsed", "Path", "candidate_paths"]

MAX_DEPTH = 10
MAX_PATHS = 8

Parsed = tuple[x509.Certificate, CertFacts]
Path = tuple[CertFacts, ...]


def _signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def _valid_at(facts: CertFacts, now: datetime) -> bool:
    return facts.not_before <= now <= facts.not_after


def _path_lengths_ok(path: Sequence[CertFacts]) -> bool:
    for index, facts in enumerate(path[1:], start=1):
        below = sum(1 for c in path[1:index] if not c.self_issued)
        if facts.path_length is not None and below > facts.path_length:
            return False
    return True


_ANCHORS: dict[int, tuple[TrustStore, dict[x509.Name, list[Parsed]]]] = {}


def _anchors(store: TrustStore, cache: CertificateCache) -> dict[x509.Name, list[Parsed]]:
    """A store's anchors by subject, parsed once per store."""
    held = _ANCHORS.get(id(store))
    if held is not None and held[0] is store:
        return held[1]
    from cryptography.hazmat.primitives.serialization import Encoding

    index: dict[x509.Name, list[Parsed]] = {}
    for anchor in store.anchors:
        entry = cache.get(anchor.public_bytes(Encoding.DER))
        if not isinstance(entry, str):
            index.setdefault(anchor.subject, []).append(entry)
    if len(_ANCHORS) > 64:
        _ANCHORS.clear()
    _ANCHORS[id(store)] = (store, index)
    return index


def candidate_paths(
    served: Sequence[bytes],
    store: TrustStore,
    now: datetime,
    *,
    cache: CertificateCache = DEFAULT_CACHE,
    limit: int = MAX_PATHS,
) -> tuple[Path, ...]:
    """Paths leaf → anchor through the served certificates, shortest first."""
    parsed: list[Parsed] = []
    for der in served:
        entry = cache.get(der)
        if isinstance(entry, str):
            if not parsed:
                return ()
            continue
        parsed.append(entry)
    if not parsed:
        return ()
    anchors = _anchors(store, cache)
    anchor_keys = {(a.subject, f.spki_sha256) for group in anchors.values() for a, f in group}
    cas = [p for p in parsed[1:] if p[1].is_ca]
    found: list[Path] = []
    seen: set[tuple[bytes, ...]] = set()

    def record(path: list[Parsed]) -> None:
        facts = tuple(f for _, f in path)
        key = tuple(f.der_sha256 for f in facts)
        if key not in seen and _path_lengths_ok(facts):
            seen.add(key)
            found.append(facts)

    def walk(path: list[Parsed]) -> None:
        if len(found) >= limit or len(path) > MAX_DEPTH:
            return
        cert = path[-1][0]
        in_path = {f.der_sha256 for _, f in path}
        for anchor in anchors.get(cert.issuer, ()):
            a_cert, a_facts = anchor
            if (
                a_facts.der_sha256 not in in_path
                and _valid_at(a_facts, now)
                and _signed_by(cert, a_cert)
            ):
                record([*path, anchor])
        for candidate in cas:
            c_cert, c_facts = candidate
            if c_cert.subject != cert.issuer or c_facts.der_sha256 in in_path:
                continue
            if (c_cert.subject, c_facts.spki_sha256) in anchor_keys and c_facts.self_issued:
                continue  # the anchor itself, sent along: its path was recorded above
            if _valid_at(c_facts, now) and _signed_by(cert, c_cert):
                walk([*path, candidate])

    if _valid_at(parsed[0][1], now):
        walk([parsed[0]])
    return tuple(sorted(found, key=len))
