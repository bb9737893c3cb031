"""Every path a client could build from a served chain to a trust anchor. Pure.

``chain.analyze_chain`` finds the path one verifier builds. Where cross-signs
allow several (pinning-semantics §8.5: "compute all valid paths up to the
first anchor found in the store, and report the verdict per path"), a pin can
pass on one and fail on another: a verifier that stops at the first trusted
signer and one that prefers a longer path disagree. This module lists them:
issuer name and signature, CA bit, path length and validity at `now` are
checked on each; the leaf's name was already checked by ``analyze_chain``.

The served certificates come from the server, so the search is bounded the
way real verifiers bound theirs: a few dozen certificates that carry the same
name and cross-sign each other with a handful of keys make the number of
paths explode. The search stops at ``Budget`` (paths, depth, distinct
signature checks, steps) and says so in ``PathSearch.exhausted``: a budget
exceeded is a fact about the endpoint, never a hang.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm

from scanner.chain import DEFAULT_CACHE, CertificateCache, name_of
from scanner.model import CertFacts
from scanner.trust import TrustStore

__all__ = [
    "MAX_DEPTH",
    "MAX_PATHS",
    "MAX_SIGNATURE_CHECKS",
    "MAX_STEPS",
    "Budget",
    "Parsed",
    "Path",
    "PathSearch",
    "candidate_paths",
    "search_paths",
]

MAX_DEPTH = 10  # certificates below the anchor (leaf included)
MAX_PATHS = 8
# rustls-webpki and Go's crypto/x509 allow 100 signature checks per path
# built; the search lists every path, and each distinct (certificate,
# issuer) pair is checked once, so it allows twice that.
MAX_SIGNATURE_CHECKS = 200
# Steps of the search (one per partial path extended): mozilla::pkix allows
# 200 000 calls in native code; 20 000 Python steps take well under a second.
MAX_STEPS = 20_000

Parsed = tuple[x509.Certificate, CertFacts]
Path = tuple[CertFacts, ...]


@dataclass(frozen=True)
class Budget:
    """How much work one search may do."""

    paths: int = MAX_PATHS
    depth: int = MAX_DEPTH
    signature_checks: int = MAX_SIGNATURE_CHECKS
    steps: int = MAX_STEPS


@dataclass(frozen=True)
class PathSearch:
    """The paths found, shortest first, and what the search spent."""

    paths: tuple[Path, ...]
    signature_checks: int
    steps: int
    exhausted: str | None = None  # which budget stopped the search, in words


class _Exhausted(Exception):
    """Raised inside the search when a budget runs out."""


class _Enough(Exception):
    """Raised inside the search when it has found as many paths as asked for."""


def _valid_at(facts: CertFacts, now: datetime) -> bool:
    # Whole seconds, notAfter included (RFC 5280 §4.1.2.5), as the verifier judges.
    second = now.replace(microsecond=0)
    return facts.not_before <= second <= facts.not_after


def _path_lengths_ok(path: Sequence[CertFacts]) -> bool:
    """Each CA's pathLenConstraint: how many non-self-issued intermediates
    may follow it below (the leaf does not count, RFC 5280 §4.2.1.9)."""
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
        subject = name_of(anchor, "subject")
        if not isinstance(entry, str) and subject is not None:
            index.setdefault(subject, []).append(entry)
    if len(_ANCHORS) > 64:
        _ANCHORS.clear()
    _ANCHORS[id(store)] = (store, index)
    return index


class _Search:
    def __init__(
        self,
        anchors: dict[x509.Name, list[Parsed]],
        cas: list[tuple[x509.Certificate, CertFacts, x509.Name]],
        now: datetime,
        budget: Budget,
    ) -> None:
        self.anchors = anchors
        self.anchor_keys = {(n, f.spki_sha256) for n, group in anchors.items() for _, f in group}
        self.cas = cas
        self.now = now
        self.budget = budget
        self.found: list[Path] = []
        self.seen: set[tuple[bytes, ...]] = set()
        self.signatures: dict[tuple[bytes, bytes], bool] = {}
        self.steps = 0

    def signed_by(self, cert: Parsed, issuer: Parsed) -> bool:
        key = (cert[1].der_sha256, issuer[1].der_sha256)
        known = self.signatures.get(key)
        if known is not None:
            return known
        if len(self.signatures) >= self.budget.signature_checks:
            raise _Exhausted(f"{self.budget.signature_checks} signature checks")
        try:
            cert[0].verify_directly_issued_by(issuer[0])
            ok = True
        except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
            ok = False
        self.signatures[key] = ok
        return ok

    def record(self, path: list[Parsed]) -> None:
        facts = tuple(f for _, f in path)
        key = tuple(f.der_sha256 for f in facts)
        if key not in self.seen and _path_lengths_ok(facts):
            self.seen.add(key)
            self.found.append(facts)
            if len(self.found) >= self.budget.paths:
                raise _Enough

    def walk(self, path: list[Parsed], issuer: x509.Name | None) -> None:
        """Extend `path` (whose last certificate names `issuer`) to every anchor."""
        if issuer is None:
            return
        self.steps += 1
        if self.steps > self.budget.steps:
            raise _Exhausted(f"{self.budget.steps} search steps")
        in_path = {f.der_sha256 for _, f in path}
        for anchor in self.anchors.get(issuer, ()):
            if (
                anchor[1].der_sha256 not in in_path
                and _valid_at(anchor[1], self.now)
                and self.signed_by(path[-1], anchor)
            ):
                self.record([*path, anchor])
        if len(path) >= self.budget.depth:
            return  # no room for another intermediate below the anchor
        for cert, facts, subject in self.cas:
            if subject != issuer or facts.der_sha256 in in_path:
                continue
            if (subject, facts.spki_sha256) in self.anchor_keys and facts.self_issued:
                continue  # the anchor itself, sent along: its path was recorded above
            if _valid_at(facts, self.now) and self.signed_by(path[-1], (cert, facts)):
                self.walk([*path, (cert, facts)], name_of(cert, "issuer"))


def search_paths(
    served: Sequence[bytes],
    store: TrustStore,
    now: datetime,
    *,
    cache: CertificateCache = DEFAULT_CACHE,
    budget: Budget = Budget(),
) -> PathSearch:
    """Paths leaf → anchor through the served certificates, shortest first,
    within `budget`; ``exhausted`` names the budget that stopped the search."""
    parsed: list[Parsed] = []
    for der in served:
        entry = cache.get(der)
        if isinstance(entry, str):
            if not parsed:
                return PathSearch((), 0, 0)
            continue
        parsed.append(entry)
    if not parsed:
        return PathSearch((), 0, 0)
    cas = []
    for cert, facts in parsed[1:]:
        subject = name_of(cert, "subject")
        if facts.is_ca and subject is not None:
            cas.append((cert, facts, subject))
    search = _Search(_anchors(store, cache), cas, now, budget)
    exhausted = None
    if _valid_at(parsed[0][1], now) and budget.paths > 0:
        try:
            search.walk([parsed[0]], name_of(parsed[0][0], "issuer"))
        except _Enough:
            pass
        except _Exhausted as stop:
            exhausted = f"path building stopped after {stop}"
    paths = tuple(sorted(search.found, key=len))
    return PathSearch(paths, len(search.signatures), search.steps, exhausted)


def candidate_paths(
    served: Sequence[bytes],
    store: TrustStore,
    now: datetime,
    *,
    cache: CertificateCache = DEFAULT_CACHE,
    limit: int = MAX_PATHS,
) -> tuple[Path, ...]:
    """Paths leaf → anchor through the served certificates, shortest first
    (``search_paths`` without the account of what the search spent)."""
    return search_paths(served, store, now, cache=cache, budget=Budget(paths=limit)).paths
