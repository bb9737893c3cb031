"""Preflight's own edges, found unasserted by mutation testing (issue 19,
docs/mutation.md): an endpoint nothing pins gets exactly one NOT_PINNED
result whatever is checked, and a CA's lineage follows signatures, not names
(an issuer named right with another key does not make a pin "safe")."""

from __future__ import annotations

from datetime import date, datetime, timezone

import pytest

from scanner.fleet.pki import PKI
from scanner.model import Endpoint, Pinset
from scanner.pins import spki_der
from scanner.preflight import Verdict, ca_lineage, preflight_ca, preflight_key

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)


def endpoint(name: str, pinset: Pinset | None) -> Endpoint:
    return Endpoint(name, f"{name}.example", 443, f"{name}.example", pinset)


@pytest.fixture(scope="module")
def pki() -> PKI:
    return PKI(NOW)


def test_unpinned_endpoints_are_not_pinned_once_each(pki: PKI) -> None:
    root = pki.root("Preflight Root")
    ca = pki.intermediate("Preflight CA", root)
    new_leaf = pki.leaf("a.example", ca)
    endpoints = [
        endpoint("none", None),
        endpoint("lapsed", Pinset("old", (root.pin,), expires=date(2025, 12, 31))),
        endpoint("empty", Pinset("off", ())),
        endpoint("pinned", Pinset("p", (root.pin,))),
    ]
    by_key = preflight_key(endpoints, spki_der(new_leaf.cert), {}, NOW)
    by_ca = preflight_ca(endpoints, ca_lineage(ca.cert, [root.cert]), NOW)
    for results in (by_key, by_ca):
        assert [(r.endpoint.name, r.verdict) for r in results] == [
            ("none", Verdict.NOT_PINNED),
            ("lapsed", Verdict.NOT_PINNED),
            ("empty", Verdict.NOT_PINNED),
            ("pinned", results[-1].verdict),
        ]
        assert {r.reason for r in results[:3]} == {"no pins enforced"}
    assert by_key[-1].verdict is Verdict.BREAKS  # the new key pinned nowhere, no CA keys given
    assert by_ca[-1].verdict is Verdict.SAFE  # the root pin covers the new CA


def test_the_lineage_follows_signatures_not_names(pki: PKI) -> None:
    root = pki.root("Lineage Root")
    impostor = pki.issue("", subject=root.cert.subject, ca=True)  # same name, its own key
    ca = pki.intermediate("Lineage CA", root)
    assert ca_lineage(ca.cert, [impostor.cert]) == [ca.cert]
    assert ca_lineage(ca.cert, [impostor.cert, root.cert]) == [ca.cert, root.cert]
    pinned_on_impostor = [endpoint("x", Pinset("p", (impostor.pin,)))]
    results = preflight_ca(pinned_on_impostor, ca_lineage(ca.cert, [impostor.cert]), NOW)
    assert [(r.verdict, r.reason) for r in results] == [
        (Verdict.BREAKS, "no pin names the new CA or any of its issuers")
    ]


@pytest.mark.parametrize(
    ("sans", "name", "covered"),
    [
        (("pay.example.com",), "PAY.example.com.", True),
        (("*.example.com",), "pay.example.com", True),
        (("*.example.com",), "a.pay.example.com", False),  # one label only
        (("*.example.com",), "example.com", False),
        # a name differing in its first label is another name, not a wildcard
        (("api.example.com",), "pay.example.com", False),
        # a wildcard needs two labels beside it: "*.com" covers nothing
        (("*.com",), "example.com", False),
        ((), "192.0.2.7", True),  # the IP address entry below
        ((), "192.0.2.8", False),
    ],
)
def test_which_endpoints_a_new_leaf_is_for(
    pki: PKI, sans: tuple[str, ...], name: str, covered: bool
) -> None:
    """`preflight --chain` without --endpoint judges the endpoints whose names
    the new leaf covers (RFC 6125 §6.4.3). Found unasserted by mutation
    testing (issue 19)."""
    from scanner.chain import CertificateCache
    from scanner.preflight import leaf_covers

    root = pki.root("Covers Root")
    leaf = pki.leaf("covers", root, dns=sans, ips=("192.0.2.7",))
    entry = CertificateCache().get(leaf.der)
    assert not isinstance(entry, str)
    assert leaf_covers(entry[1], name) is covered


def test_the_key_only_hint_only_when_it_can_help(pki: PKI) -> None:
    """A new key pinned nowhere BREAKS. The hint to give the issuing CA (by
    --state or --ca) is added only when some pin names a key pinaudit could
    not place: not when every pin is a declared offline backup key, and not
    when the last scan's issuing CAs were given already. Found unasserted by
    mutation testing (issue 19)."""
    root = pki.root("Hint Root")
    issuing = pki.intermediate("Hint CA", root)
    new_key = spki_der(pki.leaf("hint.example", issuing).cert)
    spare_a, spare_b = pki.root("Spare A").pin, pki.root("Spare B").pin
    bare = "neither the new key nor a known CA key is pinned: pinned clients would fail"
    offline_only = endpoint(
        "off", Pinset("p", (spare_a, spare_b), offline=frozenset({spare_a, spare_b}))
    )
    [result] = preflight_key([offline_only], new_key, {}, NOW)
    assert (result.verdict, result.reason) == (Verdict.BREAKS, bare)

    learnt = {"pay": [(issuing.pin, "CN=Hint CA")]}
    [result] = preflight_key(
        [endpoint("pay", Pinset("p", (spare_a,)))], new_key, {}, NOW, issuing=learnt
    )
    assert (result.verdict, result.reason) == (Verdict.BREAKS, bare)

    [result] = preflight_key(
        [endpoint("new", Pinset("p", (spare_a,)))], new_key, {}, NOW, issuing=learnt
    )
    assert result.reason == (
        f"{bare} (no CA pinaudit knows has the key {spare_a} names: if it is the "
        "issuing CA's, give the last scan's --state, or that CA with --ca)"
    )
