"""Client-path enumeration (scanner/paths.py) on its own: which paths leaf → anchor
are offered, and that a served mesh of cross-signs stops at the search's budget.

Each case names the rule it pins down; together they kill the mutants of paths.py
that the client tests alone left alive (issue: mutation testing of the verdict core).
The cross-sign mesh reproduces the hostile server of the hardening issue: a leaf,
its intermediate and dozens of CA certificates carrying the intermediate's name,
cross-signed with a handful of attacker keys (a certificate may carry anyone's
public key: the intermediate's own key appears without its private half).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from scanner.audit import path_budget_finding
from scanner.chain import CertificateCache
from scanner.fleet.pki import PKI, Issued, make_key
from scanner.model import CertFacts, Check, Severity
from scanner.paths import (
    MAX_DEPTH,
    MAX_PATHS,
    MAX_SIGNATURE_CHECKS,
    MAX_STEPS,
    Budget,
    candidate_paths,
    search_paths,
)
from scanner.trust import TrustStore, store_from_pem

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
HOST = "paths.example"


def store(*anchors: Issued) -> TrustStore:
    return store_from_pem(b"".join(a.pem for a in anchors), "paths-store")


def names(paths: Sequence[Sequence[CertFacts]]) -> list[list[str]]:
    return [[f.subject.split("CN=")[-1] for f in p] for p in paths]


def served(*certs: Issued) -> list[bytes]:
    return [c.der for c in certs]


@dataclass(frozen=True)
class World:
    pki: PKI
    root: Issued
    inter: Issued
    leaf: Issued


@pytest.fixture(scope="module")
def world() -> World:
    pki = PKI(NOW)
    root = pki.root("Paths Root")
    inter = pki.intermediate("Paths CA", root)
    return World(pki, root, inter, pki.leaf(HOST, inter))


def test_the_served_path_to_a_store_anchor(world: World) -> None:
    paths = candidate_paths(served(world.leaf, world.inter), store(world.root), NOW)
    assert names(paths) == [[HOST, "Paths CA", "Paths Root"]]


def test_a_cross_signed_path_that_breaks_a_path_length_constraint_is_not_offered(
    world: World,
) -> None:
    """Old Root, self-signed and trusted, is also cross-signed by New Root with
    pathLenConstraint 0 (as Let's Encrypt's ISRG Root X1 by DST Root CA X3, but
    with a constraint): below the cross-sign sits Paths Sub, a CA, so the
    longer path breaks the constraint. With pathLen 1 it is allowed."""
    pki = world.pki
    old = pki.root("Old Root")
    new = pki.root("New Root")
    sub = pki.intermediate("Paths Sub", old)
    leaf = pki.leaf(HOST, sub)
    for path_length, expected in (
        (0, [[HOST, "Paths Sub", "Old Root"]]),
        (1, [[HOST, "Paths Sub", "Old Root"], [HOST, "Paths Sub", "Old Root", "New Root"]]),
    ):
        cross = pki.issue(
            "", subject=old.cert.subject, key=old.key, issuer=new, ca=True,
            path_length=path_length,
        )  # fmt: skip
        paths = candidate_paths(served(leaf, sub, cross), store(old, new), NOW)
        assert names(paths) == expected, path_length


def test_a_served_intermediate_with_the_right_name_but_another_key_gives_no_path(
    world: World,
) -> None:
    """A decoy named like the intermediate (bigchain in the fault fleet): its
    name matches the leaf's issuer, its key did not sign the leaf."""
    decoy = world.pki.issue("", subject=world.inter.cert.subject, ca=True)
    trust = store(world.root)
    assert candidate_paths(served(world.leaf, decoy), trust, NOW) == ()
    paths = candidate_paths(served(world.leaf, decoy, world.inter), trust, NOW)
    assert names(paths) == [[HOST, "Paths CA", "Paths Root"]]
    assert paths[0][1].der_sha256 != paths[0][0].der_sha256


def test_a_path_through_an_expired_anchor_is_not_listed(world: World) -> None:
    """The store holds the root twice, same name and key: the current one and
    an expired edition (certifi carried both editions of some roots)."""
    expired = world.pki.issue(
        "", subject=world.root.cert.subject, key=world.root.key, ca=True,
        not_before=NOW - timedelta(days=4000), not_after=NOW - timedelta(days=1),
    )  # fmt: skip
    paths = candidate_paths(served(world.leaf, world.inter), store(expired, world.root), NOW)
    assert len(paths) == 1
    assert paths[0][-1].not_after == world.root.cert.not_valid_after_utc
    assert candidate_paths(served(world.leaf, world.inter), store(expired), NOW) == ()


def test_a_served_cross_sign_loop_never_repeats_a_certificate(world: World) -> None:
    """Two CAs that cross-sign each other (A by B, B by A) and A by the root:
    every path is listed once, and no path holds a certificate twice."""
    pki = world.pki
    a = pki.intermediate("Loop A", world.root, path_length=None)
    b_key = make_key()
    b_by_a = pki.issue("Loop B", key=b_key, issuer=a, ca=True)
    a_by_b = pki.issue("", subject=a.cert.subject, key=a.key, issuer=Issued(b_by_a.cert, b_key),
                       ca=True)  # fmt: skip
    leaf = pki.leaf(HOST, a)
    paths = candidate_paths(served(leaf, a_by_b, b_by_a, a), store(world.root), NOW)
    assert names(paths) == [
        [HOST, "Loop A", "Paths Root"],
        [HOST, "Loop A", "Loop B", "Loop A", "Paths Root"],
    ]
    for path in paths:
        digests = [f.der_sha256 for f in path]
        assert len(digests) == len(set(digests)), names([path])


@pytest.mark.parametrize(
    ("shift", "listed"),
    [
        (timedelta(0), True),  # at notAfter itself: still valid (RFC 5280)
        (timedelta(microseconds=999_999), True),  # within the notAfter second
        (timedelta(seconds=1), False),
    ],
)
def test_validity_at_exactly_not_after(world: World, shift: timedelta, listed: bool) -> None:
    inter = world.pki.intermediate("Paths CA", world.root, not_after=NOW, key=world.inter.key)
    paths = candidate_paths(served(world.leaf, inter), store(world.root), NOW + shift)
    assert bool(paths) is listed


@pytest.mark.parametrize(
    ("shift", "listed"),
    [(timedelta(seconds=-1), False), (timedelta(microseconds=-1), False), (timedelta(0), True)],
)
def test_validity_at_exactly_not_before(world: World, shift: timedelta, listed: bool) -> None:
    inter = world.pki.intermediate("Paths CA", world.root, not_before=NOW, key=world.inter.key)
    paths = candidate_paths(served(world.leaf, inter), store(world.root), NOW + shift)
    assert bool(paths) is listed


def _ladder(pki: PKI, root: Issued, cas: int) -> list[Issued]:
    """root → CA 1 → … → CA n → leaf, served leaf first."""
    issuer, chain = root, []
    for n in range(1, cas + 1):
        issuer = pki.intermediate(f"Rung {n}", issuer, path_length=None)
        chain.insert(0, issuer)
    return [pki.leaf(HOST, issuer), *chain]


def test_max_depth_is_reached_exactly(world: World) -> None:
    """MAX_DEPTH certificates below the anchor (the leaf and MAX_DEPTH - 1 CAs)
    still make a path; one CA more does not."""
    trust = store(world.root)
    deepest = _ladder(world.pki, world.root, MAX_DEPTH - 1)
    paths = candidate_paths(served(*deepest), trust, NOW)
    assert [len(p) for p in paths] == [MAX_DEPTH + 1]
    assert candidate_paths(served(*_ladder(world.pki, world.root, MAX_DEPTH)), trust, NOW) == ()


@pytest.mark.parametrize("editions", [MAX_PATHS - 1, MAX_PATHS, MAX_PATHS + 1])
def test_max_paths_is_reached_exactly(world: World, editions: int) -> None:
    """The intermediate re-issued `editions` times (same name and key, as CAs
    re-issue to extend validity): one path per edition, at most MAX_PATHS."""
    copies = [
        world.pki.intermediate("Paths CA", world.root, key=world.inter.key) for _ in range(editions)
    ]
    search = search_paths(served(world.leaf, *copies), store(world.root), NOW)
    assert len(search.paths) == min(editions, MAX_PATHS)
    assert search.exhausted is None


# --- the cross-sign mesh ---------------------------------------------------------------


def cross_sign_mesh(world: World, keys: int, certificates: int) -> list[bytes]:
    """Leaf, intermediate, then `certificates` CA certificates named like the
    intermediate, carrying its public key or an attacker key, each signed by an
    attacker key: a graph whose simple paths explode and never reach an anchor."""
    attacker = [make_key() for _ in range(keys)]
    carried = [world.inter.key, *attacker]
    mesh = [
        world.pki.issue(
            "",
            subject=world.inter.cert.subject,
            key=carried[n % len(carried)],
            issuer=Issued(world.inter.cert, attacker[(n // len(carried)) % keys]),
            ca=True,
        )
        for n in range(certificates)
    ]
    return [world.leaf.der, world.inter.der, *(m.der for m in mesh)]


@pytest.mark.parametrize("keys", [3, 4, 6])
def test_a_cross_sign_mesh_stops_at_the_signature_budget(world: World, keys: int) -> None:
    """Before the budget, 3 keys took seconds, 4 keys minutes, 6 keys never
    ended. Now the real path is found and the search stops at its budget."""
    chain = cross_sign_mesh(world, keys, 36)
    search = search_paths(chain, store(world.root), NOW, cache=CertificateCache())
    assert names(search.paths) == [[HOST, "Paths CA", "Paths Root"]]
    assert search.signature_checks == MAX_SIGNATURE_CHECKS
    assert (
        search.exhausted == f"path building stopped after {MAX_SIGNATURE_CHECKS} signature checks"
    )
    finding = path_budget_finding(search.exhausted, len(chain))
    assert finding is not None
    assert (finding.check, finding.severity, finding.certificate) == (
        Check.PATH_BUDGET_EXCEEDED,
        Severity.WARNING,
        None,
    )
    assert finding.message == (
        f"path building stopped after {MAX_SIGNATURE_CHECKS} signature checks: the 38 served "
        "certificates offer more paths to an anchor than clients explore; client verdicts "
        "cover the paths found so far"
    )


def test_the_step_budget_stops_a_mesh_of_few_signatures(world: World) -> None:
    """Few distinct signatures, many orders: four certificates named like the
    intermediate, all with one attacker key, all signed by it. Each signature
    is checked once; the steps run out."""
    key = make_key()
    holder = Issued(world.inter.cert, key)
    mesh = [
        world.pki.issue("", subject=world.inter.cert.subject, key=k, issuer=holder, ca=True)
        for k in (world.inter.key, key, key, key, key)
    ]
    chain = [world.leaf.der, world.inter.der, *(m.der for m in mesh)]
    budget = Budget(steps=40)
    search = search_paths(chain, store(world.root), NOW, budget=budget)
    assert search.exhausted == "path building stopped after 40 search steps"
    assert search.steps == 41
    unbounded = search_paths(chain, store(world.root), NOW, budget=Budget(steps=MAX_STEPS))
    assert unbounded.exhausted is None
    assert len(unbounded.paths) == 1


def test_no_budget_finding_when_the_search_completes(world: World) -> None:
    search = search_paths(served(world.leaf, world.inter), store(world.root), NOW)
    assert (search.exhausted, search.signature_checks, search.steps) == (None, 2, 2)
    assert path_budget_finding(search.exhausted, 2) is None


# --- found unasserted by mutation testing (issue 19, docs/mutation.md) -----------------


def test_the_bounds_are_the_ones_docs_hostile_input_states() -> None:
    """The table in docs/hostile-input.md is what users read about the
    search's limits: it must say what the code does."""
    text = (Path(__file__).resolve().parent.parent / "docs" / "hostile-input.md").read_text()
    rows = {
        line.split("|")[1].strip(): line.split("|")[2].strip()
        for line in text.splitlines()
        if line.startswith("| ") and line.count("|") >= 4
    }
    assert rows["distinct signature checks"].startswith(f"{MAX_SIGNATURE_CHECKS} per search")
    assert rows["search steps"].startswith(f"{MAX_STEPS:,} per search".replace(",", " "))
    assert rows["depth"].startswith(f"{MAX_DEPTH} certificates below the anchor")
    assert rows["paths"] == str(MAX_PATHS)


def test_a_self_issued_ca_does_not_count_against_path_length(world: World) -> None:
    """RFC 5280 §4.2.1.9: a key-rollover certificate (self-issued: same name,
    new key) below a CA with pathLenConstraint 0 does not use up the length."""
    pki = world.pki
    ca = pki.intermediate("Zero CA", world.root, path_length=0)
    rolled = pki.issue("", subject=ca.cert.subject, issuer=ca, ca=True)  # same name, new key
    leaf = pki.leaf(HOST, rolled)
    paths = candidate_paths(served(leaf, rolled, ca), store(world.root), NOW)
    assert names(paths) == [[HOST, "Zero CA", "Zero CA", "Paths Root"]]


def test_a_trusted_intermediate_is_not_listed_twice_on_a_path(world: World) -> None:
    """The store holds an intermediate (not self-issued); the server sends it
    and the root's key cross-signed by it (a served loop): the anchor is
    reached at once, and never again at the end of the loop."""
    pki = world.pki
    inter = pki.intermediate("Loop CA", world.root, path_length=None)
    looped = pki.cross_sign(world.root, inter)  # the root's name and key, signed by Loop CA
    leaf = pki.leaf(HOST, inter)
    paths = candidate_paths(served(leaf, inter, looped), store(inter), NOW)
    assert names(paths) == [[HOST, "Loop CA"]]


def test_a_served_anchor_costs_no_extra_step(world: World) -> None:
    search = search_paths(served(world.leaf, world.inter, world.root), store(world.root), NOW)
    assert names(search.paths) == [[HOST, "Paths CA", "Paths Root"]]
    assert (search.exhausted, search.signature_checks, search.steps) == (None, 2, 2)


def test_nothing_served_gives_no_path(world: World) -> None:
    assert search_paths([], store(world.root), NOW) == search_paths(
        [b"garbage"], store(world.root), NOW
    )
    assert search_paths([], store(world.root), NOW).paths == ()


def test_an_expired_extra_certificate_does_not_stop_the_search(world: World) -> None:
    old = world.pki.intermediate("Old CA", world.root, days_after=-1)
    paths = candidate_paths(served(world.leaf, world.inter, old), store(world.root), NOW)
    assert names(paths) == [[HOST, "Paths CA", "Paths Root"]]


@pytest.mark.parametrize("limit", [0, 1])
def test_a_path_limit_of_0_or_1(world: World, limit: int) -> None:
    found = candidate_paths(served(world.leaf, world.inter), store(world.root), NOW, limit=limit)
    assert len(found) == limit
