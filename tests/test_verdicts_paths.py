"""Plain pin-sets judged on every path a client could build (issue 12, items 1, 3, 5).

A cross-signed intermediate gives a client two valid paths: one to each root.
A pin on one root passes for the clients that build that path and fails for
the others; only when no valid path carries a pin do all pinned clients fail.
The shapes are the ones that broke real clients:

- Let's Encrypt, 30 September 2021: leaf ← R3 ← ISRG Root X1, with X1 also
  served cross-signed by DST Root CA X3 (the chain certbot served by default,
  letsencrypt.org/docs/dst-root-ca-x3-expiration-september-2021). Clients
  that pinned DST Root CA X3, or built the path to it, failed when it expired.
- compose-lobsters #1187 (pinning-semantics §8.7 / §9.55): an app pinned
  ISRG Root X1 while the server moved to YE1 → Root YE, cross-signed by X2.

Everything runs through `results.evaluate`, the function the scan calls,
then through the JSON report and the metrics built from its result.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import pytest

from scanner.exporters.jsonreport import endpoint_entry
from scanner.exporters.metrics import ScanRecord, scan_exposition
from scanner.fleet.pki import PKI, Issued, make_key
from scanner.model import Endpoint, Finding, Observation, Pin, Pinset
from scanner.pins import pins_of_spki
from scanner.results import EndpointResult, evaluate
from scanner.trust import TrustStore, store_from_pem

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)
HOST = "api.example.com"
C, W, INFO = "critical", "warning", "info"


@dataclass(frozen=True)
class CrossSigned:
    """Root A and Root B, both trusted; the issuing CA's key is certified by
    both (issued by A, cross-signed by B); Root C is trusted and unused (a
    backup CA). The server sends the leaf and both intermediate certificates."""

    root_a: Issued
    root_b: Issued
    root_c: Issued
    inter: Issued
    inter_by_b: Issued
    leaf: Issued
    store: TrustStore

    @property
    def served(self) -> list[Issued]:
        return [self.leaf, self.inter, self.inter_by_b]


@pytest.fixture(scope="module")
def xs() -> CrossSigned:
    pki = PKI(NOW)
    root_a, root_b, root_c = pki.root("Root A"), pki.root("Root B"), pki.root("Root C")
    inter = pki.intermediate("Issuing CA", root_a)
    inter_by_b = pki.cross_sign(inter, root_b)
    leaf = pki.leaf(HOST, inter)
    store = store_from_pem(root_a.pem + root_b.pem + root_c.pem, "two roots")
    return CrossSigned(root_a, root_b, root_c, inter, inter_by_b, leaf, store)


def observed(chain: Sequence[Issued]) -> Observation:
    return Observation("127.0.0.1", 443, tuple(c.der for c in chain), "TLSv1.3", "X", None, 0, 0)


def endpoint(name: str, pins: Sequence[Pin], **kw: object) -> Endpoint:
    return Endpoint(name, HOST, 443, HOST, Pinset(name, tuple(pins)), **kw)  # type: ignore[arg-type]


def judge(
    ep: Endpoint, chain: Sequence[Issued], store: TrustStore, now: datetime = NOW
) -> EndpointResult:
    return evaluate(ep, [observed(chain)], store, now)


def keys(findings: Sequence[Finding]) -> set[tuple[str, str, int | None]]:
    return {f.key for f in findings}


def spare_pin() -> Pin:
    """The pin of a key that exists nowhere but here (an offline backup)."""
    from cryptography.hazmat.primitives import serialization

    spki = (
        make_key()
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return pins_of_spki(spki)[0]


# --- the verdict on every path ------------------------------------------------------


@pytest.mark.parametrize(
    ("pinned", "expected"),
    [
        # a pin on one root: passes on that root's path only
        ("root_a", {("pin_path_dependent", W, None)}),
        ("root_b", {("pin_path_dependent", W, None)}),
        # the intermediate's key is on both paths (same key, two certificates)
        ("inter", set()),
        ("leaf", {("leaf_only_pin", W, 0)}),
        # both roots pinned: every client passes, and both pins are in use
        ("root_a root_b", {("no_backup_pin", W, None)}),
    ],
)
def test_each_pin_set_gets_what_clients_building_each_path_decide(
    xs: CrossSigned, pinned: str, expected: set[tuple[str, str, int | None]]
) -> None:
    pins = [getattr(xs, name).pin for name in pinned.split()]
    if len(pins) == 1:
        pins.append(xs.root_c.pin)  # a backup CA: trusted, on no path
    result = judge(endpoint("app", pins), xs.served, xs.store)
    assert keys(result.findings) == expected


def test_the_path_dependent_warning_names_the_failing_path_and_why(xs: CrossSigned) -> None:
    result = judge(endpoint("app", [xs.root_b.pin, xs.root_c.pin]), xs.served, xs.store)
    [finding] = result.findings
    chain_a = f"{xs.leaf.subject} → {xs.inter.subject} → {xs.root_a.subject}"
    chain_b = f"{xs.leaf.subject} → {xs.inter.subject} → {xs.root_b.subject}"
    assert finding.message == (
        "pin-set 'app' matches 1 of the 2 paths a client can build. It fails on "
        f"{chain_a}: no pin names a key of it (the pins name {xs.root_b.subject}, not on "
        f"it). It passes on {chain_b} ({xs.root_b.pin}). Clients whose verifier builds a "
        "failing path refuse the connection; which path a client builds depends on its "
        "verifier and trust store"
    )


def test_critical_only_when_no_valid_path_carries_a_pin(xs: CrossSigned) -> None:
    result = judge(endpoint("app", [xs.root_c.pin, spare_pin()]), xs.served, xs.store)
    assert keys(result.findings) == {("pin_mismatch", C, None), ("unresolved_pin", INFO, None)}
    mismatch = next(f for f in result.findings if f.check.value == "pin_mismatch")
    assert mismatch.message.startswith("no pin of 'app' matches any of the 2 paths a client can ")
    assert xs.root_a.subject in mismatch.message and xs.root_b.subject in mismatch.message


def test_a_served_cross_sign_on_a_path_clients_build_is_not_an_extra_certificate(
    xs: CrossSigned,
) -> None:
    """Before: `chain_extra_certs` on the cross-sign, which old clients need."""
    result = judge(endpoint("app", [xs.inter.pin, xs.root_c.pin]), xs.served, xs.store)
    assert result.findings == ()


def test_lets_encrypt_2021_pinned_dst_root(xs: CrossSigned) -> None:
    """leaf ← R3 ← ISRG Root X1; X1 also served cross-signed by DST Root CA X3;
    the store trusts both roots. An app pinning DST Root CA X3 passes on the
    long path, fails on the short one: path-dependent while DST is valid; once
    DST has expired no valid path carries the pin: every pinned client fails."""
    pki = PKI(NOW)
    dst = pki.root("DST Root CA X3 (test)", days_before=7000, days_after=30)
    x1 = pki.root("ISRG Root X1 (test)")
    x1_by_dst = pki.cross_sign(x1, dst, days_after=29)
    r3 = pki.intermediate("R3 (test)", x1)
    leaf = pki.leaf(HOST, r3)
    store = store_from_pem(dst.pem + x1.pem, "2021 store")
    served = [leaf, r3, x1_by_dst]
    ep = endpoint("app", [dst.pin, spare_pin()], warn_days=0, critical_days=0)
    before = judge(ep, served, store)
    assert {f.key for f in before.findings} - {("unresolved_pin", INFO, None)} == {
        ("pin_path_dependent", W, None)
    }
    dependent = next(f for f in before.findings if f.check.value == "pin_path_dependent")
    assert f"It fails on {leaf.subject} → {r3.subject} → {x1.subject}:" in dependent.message
    after = judge(ep, served, store, NOW + timedelta(days=31))
    assert {f.key for f in after.findings} - {("unresolved_pin", INFO, None)} == {
        ("pin_mismatch", C, None),
        ("chain_extra_certs", W, 2),  # the expired cross-sign is on no valid path now
    }


def test_edge_55_served_x2_by_x1_cross_sign_makes_the_x1_pin_path_dependent() -> None:
    """§9.55: pin X1; served YE1 → Root YE (by X2); store X1 and X2 → FAIL. The
    server also sends X2 cross-signed by X1: a verifier preferring the longer
    path reaches X1 → PATH_DEPENDENT."""
    pki = PKI(NOW)
    x1, x2 = pki.root("ISRG Root X1 (test)"), pki.root("ISRG Root X2 (test)")
    root_ye = pki.root("Root YE (test)")
    ye_by_x2 = pki.cross_sign(root_ye, x2)
    x2_by_x1 = pki.cross_sign(x2, x1)
    ye1 = pki.intermediate("YE1 (test)", root_ye)
    leaf = pki.leaf(HOST, ye1)
    store = store_from_pem(x1.pem + x2.pem, "x1 x2")
    ep = endpoint("app", [x1.pin, x2.pin])
    assert keys(judge(ep, [leaf, ye1, ye_by_x2], store).findings) == set()  # X2 pinned too
    ep = endpoint("app", [x1.pin, spare_pin()])
    fails = judge(ep, [leaf, ye1, ye_by_x2], store)
    assert keys(fails.findings) == {("pin_mismatch", C, None), ("unresolved_pin", INFO, None)}
    depends = judge(ep, [leaf, ye1, ye_by_x2, x2_by_x1], store)
    assert keys(depends.findings) == {
        ("pin_path_dependent", W, None),
        ("unresolved_pin", INFO, None),
    }


# --- the JSON report and the metrics ---------------------------------------------------


def test_json_reports_the_verdict_of_every_path(xs: CrossSigned) -> None:
    result = judge(endpoint("app", [xs.root_a.pin, xs.root_c.pin]), xs.served, xs.store)
    entry = endpoint_entry(result, NOW)
    by_anchor = {p["anchor"]: p for p in entry["pin_paths"]}
    assert set(by_anchor) == {xs.root_a.subject, xs.root_b.subject}
    assert by_anchor[xs.root_a.subject]["verdict"] == "pass"
    assert by_anchor[xs.root_a.subject]["matched"] == [str(xs.root_a.pin)]
    assert by_anchor[xs.root_b.subject]["verdict"] == "fail"
    assert by_anchor[xs.root_b.subject]["matched"] == []
    assert [c["spki_sha256"] for c in by_anchor[xs.root_b.subject]["certificates"]] == [
        str(xs.leaf.pin),
        str(xs.inter.pin),
        str(xs.root_b.pin),
    ]
    # every certificate of either chain has its expiry: the store's root too
    anchor = entry["path_certificates"][-1]
    assert anchor["position"] is None  # not served
    assert anchor["not_after"] == f"{xs.root_a.cert.not_valid_after_utc:%Y-%m-%dT%H:%M:%SZ}"
    assert all("not_after" in c for c in entry["chain"])


def test_metrics_say_a_pin_matches_and_count_the_paths_that_fail(xs: CrossSigned) -> None:
    result = judge(endpoint("app", [xs.root_a.pin, xs.root_c.pin]), xs.served, xs.store)
    exposition, _ = scan_exposition(ScanRecord((result,), NOW, NOW, 1.0))
    values = {(name, tuple(sorted(labels))): value for name, labels, value in exposition.samples()}
    ep = ("endpoint", "app")
    assert values[("pinaudit_pin_match", (ep,))] == 1
    assert values[("pinaudit_pin_paths", (ep, ("result", "match")))] == 1
    assert values[("pinaudit_pin_paths", (ep, ("result", "mismatch")))] == 1
    assert values[("pinaudit_backup_pins", (ep,))] == 1  # Root C
    # the cross-sign is served but not on the validated path: its expiry is exported too
    served_off_path = [
        (dict(labels)["position"], value)
        for name, labels, value in exposition.samples()
        if name == "pinaudit_offpath_cert_not_after_timestamp_seconds"
    ]
    assert served_off_path == [("2", xs.inter_by_b.cert.not_valid_after_utc.timestamp())]


# --- rotation risk ------------------------------------------------------------------------


def test_leaf_only_pin_on_a_leaf_about_to_be_renewed_is_one_escalated_finding(
    xs: CrossSigned,
) -> None:
    pki = PKI(NOW)
    root = pki.root("Root")
    inter = pki.intermediate("Issuing", root)
    leaf = pki.leaf(HOST, inter, days_after=20)
    store = store_from_pem(root.pem + xs.root_c.pem, "s")
    result = judge(endpoint("app", [leaf.pin, xs.root_c.pin]), [leaf, inter], store)
    assert keys(result.findings) == {("leaf_only_pin", C, 0)}
    [finding] = result.findings
    assert finding.message == (
        "only the leaf's key is pinned and the leaf expires "
        f"{leaf.cert.not_valid_after_utc:%Y-%m-%d %H:%M:%S}Z (in 20 days): renewing it with a "
        "new key breaks every pinned client, and no spare key is pinned in advance. Reuse "
        "the key for the renewal, or ship the next key's pin in an app update first"
    )
    assert result.rotation is not None
    assert (result.rotation.leaf_renewal, result.rotation.ca_switch) == (False, True)


def test_rotation_is_not_ready_when_no_pin_matches_today(xs: CrossSigned) -> None:
    """The pins name the old leaf key and a spare: nothing matches today."""
    result = judge(endpoint("app", [spare_pin(), spare_pin()]), xs.served, xs.store)
    assert result.rotation is not None
    assert (result.rotation.leaf_renewal, result.rotation.ca_switch) == (False, False)
    assert result.rotation.leaf_renewal_reason == (
        "no pin matches a path clients build today: pinned clients fail already"
    )


def test_rotation_is_not_ready_while_some_paths_fail_already(xs: CrossSigned) -> None:
    result = judge(endpoint("app", [xs.root_a.pin, xs.root_c.pin]), xs.served, xs.store)
    assert result.rotation is not None
    assert result.rotation.leaf_renewal is False
    assert result.rotation.leaf_renewal_reason.startswith(
        "pins match only 1 of the 2 paths clients build"
    )
    # nor is a switch to the backup CA (mutation testing, issue 19)
    assert result.rotation.ca_switch is False
    assert result.rotation.ca_switch_reason == result.rotation.leaf_renewal_reason


def test_a_renewal_is_ready_when_every_path_carries_a_ca_pin_and_says_the_first(
    xs: CrossSigned,
) -> None:
    """Root A pinned for the path through A, Root B for the cross-sign's path:
    a leaf renewal keeps both; the reason names the first path's CA pin, the
    one the JSON report shows first. Found unasserted by mutation testing
    (issue 19)."""
    result = judge(endpoint("app", [xs.root_a.pin, xs.root_b.pin]), xs.served, xs.store)
    assert result.rotation is not None
    assert result.rotation.leaf_renewal is True
    assert result.rotation.leaf_renewal_reason == (
        f"{xs.root_a.pin} pins O=pinaudit test PKI,CN=Root A, which a renewal keeps"
    )


def test_a_cross_sign_mesh_under_a_plain_pin_set_stops_at_the_budget() -> None:
    """The fleet's `crossmesh` chain (36 certificates named like the issuing CA,
    cross-signed with attacker keys), pinned by an inventory pin-set instead of
    a client's: the path search for the pin-set stops at its budget and says
    so, once; the verdict is the mesh scenario's."""
    from scanner.fleet.scenarios import BY_NAME, build_fleet

    fleet = build_fleet(NOW, 1, scenarios=["crossmesh"])
    ep = fleet.endpoints[0]
    assert ep.site is not None and ep.site.tls is not None
    chain = ep.site.tls.credential.chain_pem
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    served = tuple(c.public_bytes(Encoding.DER) for c in x509.load_pem_x509_certificates(chain))
    store = store_from_pem(b"".join(a.pem for a in fleet.anchors), "fleet")
    endpoint = Endpoint(ep.name, ep.sni, 443, ep.sni, Pinset("plain", ep.pins))
    observation = Observation("127.0.0.1", 443, served, "TLSv1.3", "X", None, 0, 0)
    result = evaluate(endpoint, [observation], store, NOW)
    assert keys(result.findings) == BY_NAME["crossmesh"].expected
    assert [f.check.value for f in result.findings].count("path_budget_exceeded") == 1
    assert [p.passes for p in result.primary.pin_paths] == [True]  # type: ignore[union-attr]


def test_a_client_pin_set_pinning_only_a_leaf_due_for_renewal_is_one_finding(
    xs: CrossSigned,
) -> None:
    """The endpoint has no plain pin-set, so its own audit says the leaf expires
    in 20 days; the app's OkHttp pin-set pins only that leaf's key (and a CA
    that does not issue it). The user gets the one escalated rotation risk,
    not the expiry a second time beside it. Found unasserted by mutation
    testing (issue 19: the fold across the endpoint's and the clients' audits)."""
    from scanner.importers.okhttp import parse_okhttp_list

    pki = PKI(NOW)
    root = pki.root("Root")
    inter = pki.intermediate("Issuing", root)
    leaf = pki.leaf(HOST, inter, days_after=20)
    store = store_from_pem(root.pem + xs.root_c.pem, "s")
    policy = parse_okhttp_list(
        f"{HOST}: {leaf.pin}, {xs.root_c.pin}".encode(), "pins.txt", name="app"
    )
    ep = Endpoint("app", HOST, 443, HOST, None, client_policies=(policy,))
    result = judge(ep, [leaf, inter], store)
    assert keys(result.findings) == {("leaf_only_pin", C, 0)}


def test_a_leaf_pin_carrying_only_some_paths_says_which(xs: CrossSigned) -> None:
    """The leaf and Root A are pinned: the path to Root A passes by Root A, the
    path to Root B by the leaf's key alone. The finding names that path, so the
    user knows which clients a renewal breaks. Found unasserted by mutation
    testing (issue 19)."""
    result = judge(endpoint("app", [xs.leaf.pin, xs.root_a.pin]), xs.served, xs.store)
    [finding] = [f for f in result.findings if f.check.value == "leaf_only_pin"]
    assert finding.key == ("leaf_only_pin", W, 0)
    assert finding.message == (
        "only the leaf's key is pinned on 1 of the 2 paths that pass "
        f"(O=pinaudit test PKI,CN={HOST} → O=pinaudit test PKI,CN=Issuing CA → "
        "O=pinaudit test PKI,CN=Root B): a renewal with a new key breaks pinned clients"
    )


def test_a_server_sending_only_its_ca_certificates_is_not_called_misordered(
    xs: CrossSigned,
) -> None:
    """The certificate file holds the issuing CA and its cross-sign, not the
    leaf (certbot's chain.pem configured where fullchain.pem belongs: Certbot's
    documentation warns against serving chain.pem alone, as summarised at
    findmyip.uk/posts/fullchain-pem-vs-cert-pem-and-chain-pem). The CA sent first is the
    server's certificate to clients, so the name fails; the cross-sign after it
    is an extra, not a leaf sent late. Found unasserted by mutation testing
    (issue 19)."""
    result = judge(
        endpoint("app", [xs.root_a.pin, xs.root_c.pin]), [xs.inter, xs.inter_by_b], xs.store
    )
    assert keys(result.findings) == {("hostname_mismatch", C, 0), ("chain_extra_certs", W, 1)}


def test_a_leaf_only_pin_due_for_renewal_keeps_the_intermediates_expiry() -> None:
    """Only the leaf's expiry folds into the escalated leaf_only_pin; the
    issuing CA expiring five days later is a finding of its own. Found
    unasserted by mutation testing (issue 19)."""
    pki = PKI(NOW)
    root, backup = pki.root("Root"), pki.root("Backup CA")
    inter = pki.intermediate("Issuing", root, days_after=25)
    leaf = pki.leaf(HOST, inter, days_after=20)
    store = store_from_pem(root.pem + backup.pem, "s")
    result = judge(endpoint("app", [leaf.pin, backup.pin]), [leaf, inter], store)
    assert keys(result.findings) == {("leaf_only_pin", C, 0), ("cert_expiring", W, 1)}
    [expiring] = [f for f in result.findings if f.check.value == "cert_expiring"]
    assert expiring.message == "expires 2026-01-26 00:00:00Z (in 25 days)"
