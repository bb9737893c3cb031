"""Audit verdicts over generated PKIs: each case asserts the exact set of
(check, severity, certificate) findings. Cases named `edge_N` are the
single-endpoint edge cases of pinning-semantics.md §9."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography import x509

from scanner.audit import CATALOGUE, audit, pins_enforced, pinset_expiry, resolve_pin
from scanner.chain import CertificateCache, analyze_chain
from scanner.fleet.pki import PKI, Issued
from scanner.model import Check, Endpoint, Finding, HashAlg, Pin, Pinset, Severity
from scanner.trust import key_index, store_from_pem

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)
HOST = "api.example.com"
C, W, INFO = "critical", "warning", "info"


@dataclass
class World:
    """Two CAs in the trust store, one rogue CA outside it."""

    pki: PKI
    root: Issued
    inter: Issued
    leaf: Issued
    root2: Issued
    inter2: Issued
    rogue_root: Issued
    rogue_inter: Issued
    extra: dict[str, Issued] = field(default_factory=dict)

    @property
    def trusted(self) -> list[Issued]:
        return [self.root, self.root2]


@pytest.fixture(scope="module")
def world() -> World:
    pki = PKI(NOW)
    root = pki.root("Test Root")
    inter = pki.intermediate("Test Intermediate", root)
    leaf = pki.leaf(HOST, inter)
    root2 = pki.root("Other Root")
    inter2 = pki.intermediate("Other Intermediate", root2)
    rogue_root = pki.root("Rogue Root")
    rogue_inter = pki.intermediate("Rogue Intermediate", rogue_root)
    return World(pki, root, inter, leaf, root2, inter2, rogue_root, rogue_inter)


def run(
    served: Sequence[Issued | bytes],
    trusted: Sequence[Issued],
    pins: Sequence[Pin] | None = None,
    *,
    host: str = HOST,
    expires: date | None = None,
    now: datetime = NOW,
    pool: Sequence[Issued] = (),
    warn_days: int = 30,
    critical_days: int = 7,
    pinset_warn_days: int = 60,
) -> tuple[Finding, ...]:
    store = store_from_pem(b"".join(t.pem for t in trusted), "test-store")
    ders = [s if isinstance(s, bytes) else s.der for s in served]
    report = analyze_chain(
        ders, store, host, now, pool=[p.cert for p in pool], cache=CertificateCache()
    )
    pinset = None if pins is None else Pinset("app", tuple(pins), expires)
    endpoint = Endpoint(
        name=f"{host}:443",
        host=host,
        port=443,
        sni=host,
        pinset=pinset,
        warn_days=warn_days,
        critical_days=critical_days,
        pinset_warn_days=pinset_warn_days,
    )
    known = key_index(t.cert for t in trusted)
    return audit(endpoint, report, now, known_keys=known)


def keys(findings: Sequence[Finding]) -> set[tuple[str, str, int | None]]:
    return {f.key for f in findings}


def unknown_pin(n: int = 1) -> Pin:
    return Pin(HashAlg.SHA256, bytes([n]) * 32)


# --- healthy chains and pin placement ------------------------------------


def test_healthy_chain_pinned_to_intermediate_with_other_ca_backup(world: World) -> None:
    findings = run([world.leaf, world.inter], world.trusted, [world.inter.pin, world.root2.pin])
    assert findings == ()


def test_edge_1_pin_on_root_not_sent_by_server_passes(world: World) -> None:
    assert run([world.leaf, world.inter], world.trusted, [world.root.pin, world.root2.pin]) == ()


def test_no_pins_declared_gives_no_pin_findings(world: World) -> None:
    assert run([world.leaf, world.inter], world.trusted, None) == ()


def test_leaf_pin_with_backup_is_a_rotation_risk(world: World) -> None:
    findings = run([world.leaf, world.inter], world.trusted, [world.leaf.pin, world.root2.pin])
    assert keys(findings) == {("leaf_only_pin", W, 0)}
    assert findings[0].pin == world.leaf.pin


def test_two_pins_both_on_path_leave_no_backup(world: World) -> None:
    findings = run([world.leaf, world.inter], world.trusted, [world.inter.pin, world.root.pin])
    assert keys(findings) == {("no_backup_pin", W, None)}


def test_single_pin_matching_is_flagged_single(world: World) -> None:
    findings = run([world.leaf, world.inter], world.trusted, [world.inter.pin])
    assert keys(findings) == {("single_pin", W, None)}


def test_single_leaf_pin_is_single_and_leaf_only(world: World) -> None:
    findings = run([world.leaf, world.inter], world.trusted, [world.leaf.pin])
    assert keys(findings) == {("single_pin", W, None), ("leaf_only_pin", W, 0)}


def test_match_only_by_backup_pin_passes(world: World) -> None:
    # the primary pin names the other CA's intermediate, which this scan has
    # not seen (so it is unresolved); the backup names our root
    findings = run([world.leaf, world.inter], world.trusted, [world.inter2.pin, world.root.pin])
    assert keys(findings) == {("unresolved_pin", INFO, None)}
    assert findings[0].pin == world.inter2.pin


def test_edge_54_leaf_renewed_with_same_key_still_matches(world: World) -> None:
    renewed = world.pki.leaf(HOST, world.inter, key=world.leaf.key, serial=99)
    assert renewed.der != world.leaf.der
    findings = run([renewed, world.inter], world.trusted, [world.leaf.pin, world.root2.pin])
    assert keys(findings) == {("leaf_only_pin", W, 0)}


def test_edge_54_leaf_renewed_with_new_key_breaks_leaf_pin(world: World) -> None:
    renewed = world.pki.leaf(HOST, world.inter)
    findings = run([renewed, world.inter], world.trusted, [world.leaf.pin, world.root2.pin])
    # the old leaf is gone, so its pin names no certificate known any more
    assert keys(findings) == {("pin_mismatch", C, None), ("unresolved_pin", INFO, None)}
    msg = findings[0].message
    assert str(renewed.pin) in msg and str(world.leaf.pin) in msg


def test_renewed_leaf_new_key_single_pin(world: World) -> None:
    renewed = world.pki.leaf(HOST, world.inter)
    findings = run([renewed, world.inter], world.trusted, [world.leaf.pin])
    assert keys(findings) == {
        ("pin_mismatch", C, None),
        ("single_pin", W, None),
        ("unresolved_pin", INFO, None),
    }


def test_switch_of_ca_breaks_pins_on_old_ca(world: World) -> None:
    root3 = world.pki.root("Third Root")
    inter3 = world.pki.intermediate("Third Intermediate", root3)
    new_leaf = world.pki.leaf(HOST, inter3)
    trusted = [*world.trusted, root3]
    findings = run([new_leaf, inter3], trusted, [world.root.pin, world.root2.pin])
    assert keys(findings) == {("pin_mismatch", C, None)}


def test_edge_53_cross_signed_intermediate_keeps_its_pin(world: World) -> None:
    cross = world.pki.cross_sign(world.inter, world.root2)
    assert cross.pin == world.inter.pin
    findings = run([world.leaf, cross], [world.root2], [world.inter.pin, unknown_pin()])
    assert keys(findings) == {("unresolved_pin", INFO, None)}


def test_edge_55_pin_on_other_root_is_path_dependent_and_fails(world: World) -> None:
    """Pin = X1; served YE1 → Root YE cross-signed by X2; the store has X1 and X2:
    the path ends at X2, so the pin on X1 does not match."""
    pki = world.pki
    x1, x2 = pki.root("ISRG Root X1 (test)"), pki.root("ISRG Root X2 (test)")
    root_ye = pki.root("Root YE (test)")
    ye_by_x2 = pki.cross_sign(root_ye, x2)
    ye1 = pki.intermediate("YE1 (test)", root_ye)
    leaf = pki.leaf(HOST, ye1)
    findings = run([leaf, ye1, ye_by_x2], [x1, x2], [x1.pin, ye1.pin])
    assert findings == ()  # YE1 is pinned too: passes through it
    findings = run([leaf, ye1, ye_by_x2], [x1, x2], [x1.pin, unknown_pin()])
    assert keys(findings) == {("pin_mismatch", C, None), ("unresolved_pin", INFO, None)}
    assert "ISRG Root X2 (test)" in findings[0].message


# --- pins outside the path (OkHttp CertificatePinnerChainValidationTest) --


def test_edge_2_pinned_good_leaf_sent_as_extra_does_not_protect(world: World) -> None:
    rogue_leaf = world.pki.leaf(HOST, world.rogue_inter)
    trusted = [*world.trusted, world.rogue_root]  # attacker holds a trusted CA
    findings = run(
        [rogue_leaf, world.rogue_inter, world.leaf], trusted, [world.leaf.pin, world.root2.pin]
    )
    assert keys(findings) == {
        ("pin_mismatch", C, None),
        ("pin_outside_path", W, 2),
        ("chain_extra_certs", W, 2),
    }


def test_unrelated_pinned_intermediate_sent_as_extra_does_not_protect(world: World) -> None:
    rogue_leaf = world.pki.leaf(HOST, world.rogue_inter)
    trusted = [*world.trusted, world.rogue_root]
    findings = run(
        [rogue_leaf, world.rogue_inter, world.inter], trusted, [world.inter.pin, world.root2.pin]
    )
    assert keys(findings) == {
        ("pin_mismatch", C, None),
        ("pin_outside_path", W, 2),
        ("chain_extra_certs", W, 2),
    }


def test_signer_without_ca_bit_gives_no_path(world: World) -> None:
    """A pinned leaf used as a signer: no path, so the pin cannot save it."""
    evil = world.pki.issue("Evil", issuer=world.leaf, dns=(HOST,))
    findings = run([evil, world.leaf, world.inter], world.trusted, [world.leaf.pin, world.root.pin])
    assert keys(findings) == {("chain_untrusted", C, None)}
    assert "basicConstraints.cA must be asserted" in findings[0].message


def test_path_length_violation_gives_no_path(world: World) -> None:
    sub = world.pki.intermediate("Sub CA", world.inter)  # world.inter has pathLen 0
    leaf = world.pki.leaf(HOST, sub)
    findings = run([leaf, sub, world.inter], world.trusted, [world.inter.pin, world.root.pin])
    assert keys(findings) == {("chain_untrusted", C, None)}
    assert "path length constraint violated" in findings[0].message


def test_pin_outside_path_beside_a_matching_pin(world: World) -> None:
    stray = world.pki.intermediate("Stray CA", world.root2)
    findings = run([world.leaf, world.inter, stray], world.trusted, [world.inter.pin, stray.pin])
    assert keys(findings) == {("pin_outside_path", W, 2), ("chain_extra_certs", W, 2)}


# --- certificate validity --------------------------------------------------


@pytest.mark.parametrize(
    ("days_left", "expected"),
    [
        (5, {("cert_expiring", C, 0)}),
        (7, {("cert_expiring", C, 0)}),
        (20, {("cert_expiring", W, 0)}),
        (30, {("cert_expiring", W, 0)}),
        (31, set()),
        (45, set()),
    ],
)
def test_leaf_expiry_thresholds(world: World, days_left: int, expected: set[object]) -> None:
    leaf = world.pki.leaf(HOST, world.inter, days_after=days_left)
    findings = run([leaf, world.inter], world.trusted, [world.inter.pin, world.root2.pin])
    assert keys(findings) == expected


def test_expired_leaf(world: World) -> None:
    leaf = world.pki.leaf(HOST, world.inter, days_before=100, days_after=-3)
    findings = run([leaf, world.inter], world.trusted, [world.inter.pin, world.root2.pin])
    assert keys(findings) == {("cert_expired", C, 0)}
    assert (
        findings[0].message
        == f"expired {leaf.cert.not_valid_after_utc:%Y-%m-%d %H:%M:%S}Z (3 days ago)"
    )


def test_not_yet_valid_leaf(world: World) -> None:
    leaf = world.pki.leaf(HOST, world.inter, days_before=-2, days_after=90)
    findings = run([leaf, world.inter], world.trusted, [world.inter.pin, world.root2.pin])
    assert keys(findings) == {("cert_not_yet_valid", C, 0)}


def test_expired_intermediate(world: World) -> None:
    inter = world.pki.intermediate("Old Intermediate", world.root, days_before=800, days_after=-1)
    leaf = world.pki.leaf(HOST, inter)
    findings = run([leaf, inter], world.trusted, [inter.pin, world.root2.pin])
    assert keys(findings) == {("cert_expired", C, 1)}


def test_expiring_root_from_the_store_has_no_served_position(world: World) -> None:
    root = world.pki.root("Ageing Root", days_after=10)
    inter = world.pki.intermediate("Ageing Intermediate", root, days_after=9)
    leaf = world.pki.leaf(HOST, inter, days_after=8)
    findings = run([leaf, inter], [root, world.root2], [root.pin, world.root2.pin], warn_days=30)
    assert keys(findings) == {
        ("cert_expiring", W, 0),
        ("cert_expiring", W, 1),
        ("cert_expiring", W, None),
    }
    anchor = next(f for f in findings if f.certificate is None)
    assert anchor.subject == root.subject


def test_as_of_a_future_date_the_leaf_has_expired(world: World) -> None:
    later = NOW + timedelta(days=200)
    findings = run(
        [world.leaf, world.inter], world.trusted, [world.inter.pin, world.root2.pin], now=later
    )
    assert keys(findings) == {("cert_expired", C, 0)}


def test_expired_leaf_still_gets_its_pins_judged(world: World) -> None:
    leaf = world.pki.leaf(HOST, world.inter, days_before=100, days_after=-3)
    findings = run([leaf, world.inter], world.trusted, [unknown_pin(), world.root2.pin])
    assert keys(findings) == {
        ("cert_expired", C, 0),
        ("pin_mismatch", C, None),
        ("unresolved_pin", INFO, None),
    }


# --- chain shape -----------------------------------------------------------


def test_wrong_hostname(world: World) -> None:
    leaf = world.pki.leaf("www.example.org", world.inter)
    findings = run([leaf, world.inter], world.trusted, [world.inter.pin, world.root2.pin])
    assert keys(findings) == {("hostname_mismatch", C, 0)}
    assert findings[0].message == (
        "certificate is not valid for 'api.example.com' (it names: www.example.org)"
    )


def test_ip_endpoint_with_ip_san(world: World) -> None:
    leaf = world.pki.leaf("127.0.0.7", world.inter, dns=(), ips=("127.0.0.7",))
    findings = run(
        [leaf, world.inter], world.trusted, [world.inter.pin, world.root2.pin], host="127.0.0.7"
    )
    assert findings == ()
    findings = run(
        [leaf, world.inter], world.trusted, [world.inter.pin, world.root2.pin], host="127.0.0.8"
    )
    assert keys(findings) == {("hostname_mismatch", C, 0)}


def test_untrusted_root(world: World) -> None:
    leaf = world.pki.leaf(HOST, world.rogue_inter)
    findings = run(
        [leaf, world.rogue_inter, world.rogue_root],
        world.trusted,
        [world.root.pin, world.root2.pin],
    )
    assert keys(findings) == {("chain_untrusted", C, None)}
    assert findings[0].message == (
        "no valid path to an anchor of trust store certifi: the chain ends at "
        "O=pinaudit test PKI,CN=Rogue Root, which is not a trust anchor of test-store"
    )


def test_unknown_issuer_not_sent(world: World) -> None:
    leaf = world.pki.leaf(HOST, world.rogue_inter)
    findings = run([leaf, world.rogue_inter], world.trusted, [world.root.pin, world.root2.pin])
    assert keys(findings) == {("chain_untrusted", C, None)}
    assert findings[0].message.endswith(
        "O=pinaudit test PKI,CN=Rogue Intermediate is issued by "
        "O=pinaudit test PKI,CN=Rogue Root, which is neither sent nor trusted"
    )


def test_missing_intermediate_found_in_the_scan_pool(world: World) -> None:
    findings = run(
        [world.leaf], world.trusted, [world.inter.pin, world.root2.pin], pool=[world.inter]
    )
    assert keys(findings) == {("chain_incomplete", C, None)}
    assert "CN=Test Intermediate" in findings[0].message


def test_missing_intermediate_unknown_anywhere(world: World) -> None:
    findings = run([world.leaf], world.trusted, [world.root.pin, world.root2.pin])
    assert keys(findings) == {("chain_untrusted", C, None)}
    assert findings[0].message.endswith(
        "O=pinaudit test PKI,CN=api.example.com is issued by "
        "O=pinaudit test PKI,CN=Test Intermediate, which is neither sent nor trusted"
    )


def test_extra_unrelated_certificate(world: World) -> None:
    findings = run(
        [world.leaf, world.inter, world.inter2], world.trusted, [world.inter.pin, world.root2.pin]
    )
    assert keys(findings) == {("chain_extra_certs", W, 2)}


def test_root_sent_along_is_fine(world: World) -> None:
    findings = run(
        [world.leaf, world.inter, world.root], world.trusted, [world.inter.pin, world.root2.pin]
    )
    assert findings == ()


def test_reversed_order_puts_a_ca_first(world: World) -> None:
    findings = run([world.inter, world.leaf], world.trusted, [world.inter.pin, world.root2.pin])
    assert keys(findings) == {
        ("hostname_mismatch", C, 0),
        ("chain_misordered", C, 0),
        ("chain_extra_certs", W, 1),
    }


def test_intermediates_out_of_order(world: World) -> None:
    pki = world.pki
    top = pki.intermediate("Top CA", world.root, path_length=1)
    bottom = pki.intermediate("Bottom CA", top)
    leaf = pki.leaf(HOST, bottom)
    findings = run([leaf, top, bottom], world.trusted, [top.pin, world.root2.pin])
    assert keys(findings) == {("chain_misordered", W, None)}
    assert findings[0].message == "served order 0, 2, 1 does not follow the path leaf → anchor"


def test_unparsable_leaf(world: World) -> None:
    findings = run(
        [b"\x30\x03garbage", world.inter], world.trusted, [world.inter.pin, world.root2.pin]
    )
    assert keys(findings) == {("cert_unparsable", C, 0)}


def test_unparsable_middle_certificate(world: World) -> None:
    findings = run(
        [world.leaf, b"\x30\x82\x00\x01", world.inter],
        world.trusted,
        [world.inter.pin, world.root2.pin],
    )
    assert keys(findings) == {("cert_unparsable", C, 1)}


def test_leaf_for_client_auth_only_breaks_a_webpki_rule(world: World) -> None:
    from cryptography.x509.oid import ExtendedKeyUsageOID

    leaf = world.pki.leaf(
        HOST,
        world.inter,
        eku_server=False,
        extra_extensions=[(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), False)],
    )
    findings = run([leaf, world.inter], world.trusted, [world.inter.pin, world.root2.pin])
    assert keys(findings) == {("chain_untrusted", C, None)}


# --- keys and signatures ---------------------------------------------------


def test_rsa_1024_leaf_is_weak(world: World) -> None:
    leaf = world.pki.leaf(HOST, world.inter, key_type="rsa1024")
    findings = run([leaf, world.inter], world.trusted, [world.inter.pin, world.root2.pin])
    assert keys(findings) == {("weak_key", C, 0)}
    assert findings[0].message == "RSA 1024-bit key"


def test_rsa_2048_and_p384_and_ed25519_are_not_weak(world: World) -> None:
    for kind in ("rsa2048", "ec384", "ed25519"):
        leaf = world.pki.leaf(HOST, world.inter, key_type=kind)
        findings = run([leaf, world.inter], world.trusted, [world.inter.pin, world.root2.pin])
        assert keys(findings) <= {("chain_untrusted", C, None)}, kind
        if kind != "ed25519":
            assert findings == (), kind


def test_sha1_signed_leaf(world: World) -> None:
    rsa_root = world.pki.root("RSA Root", key_type="rsa2048")
    leaf = world.pki.leaf(HOST, rsa_root, hash_alg="sha1")
    findings = run([leaf], [rsa_root, world.root2], [rsa_root.pin, world.root2.pin])
    assert keys(findings) == {("weak_signature", C, 0), ("chain_untrusted", C, None)}
    assert findings[0].message == (
        "no valid path to an anchor of trust store certifi: validation failed: "
        "candidates exhausted: Forbidden signature algorithm"
    )
    assert findings[-1].message == "signed with sha1WithRSAEncryption (SHA1)"


def test_sha1_self_signature_of_the_anchor_does_not_matter(world: World) -> None:
    old_root = world.pki.root("SHA1 Root", key_type="rsa2048", hash_alg="sha1")
    inter = world.pki.intermediate("Modern Intermediate", old_root)
    leaf = world.pki.leaf(HOST, inter)
    findings = run([leaf, inter], [old_root, world.root2], [inter.pin, world.root2.pin])
    assert findings == ()


# --- pin-set configuration and enforcement window --------------------------


def test_pinset_expired_and_not_matching_is_lost_protection(world: World) -> None:
    findings = run(
        [world.leaf, world.inter],
        world.trusted,
        [unknown_pin(), world.root2.pin],
        expires=date(2025, 12, 1),
    )
    assert keys(findings) == {
        ("pinset_expired", W, None),
        ("pin_mismatch", W, None),
        ("unresolved_pin", INFO, None),
    }
    mismatch = next(f for f in findings if f.check is Check.PIN_MISMATCH)
    assert "matches the path (pins not enforced any more)." in mismatch.message


def test_edge_18_expired_pinset_that_still_matches(world: World) -> None:
    findings = run(
        [world.leaf, world.inter],
        world.trusted,
        [world.inter.pin, world.root2.pin],
        expires=date(2025, 12, 31),
    )
    assert keys(findings) == {("pinset_expired", W, None)}


def test_pinset_expiring_within_warn_days(world: World) -> None:
    findings = run(
        [world.leaf, world.inter],
        world.trusted,
        [world.inter.pin, world.root2.pin],
        expires=date(2026, 1, 31),
    )
    assert keys(findings) == {("pinset_expiring", W, None)}
    assert findings[0].message == "pin-set 'app' stops being enforced on 2026-01-31 (in 30 days)"


def test_pinset_expiring_beyond_warn_days(world: World) -> None:
    findings = run(
        [world.leaf, world.inter],
        world.trusted,
        [world.inter.pin, world.root2.pin],
        expires=date(2026, 6, 1),
    )
    assert findings == ()


@pytest.mark.parametrize(
    ("now", "enforced"),
    [
        (datetime(2025, 12, 31, 23, 59, 59, tzinfo=timezone.utc), True),
        # pinning-semantics §8.4: enforced iff now <= expires (TrustKit: expirationDate < now
        # ends it), so 00:00:00Z itself is still enforced, and the next microsecond is not
        (datetime(2026, 1, 1, 0, 0, 0, tzinfo=timezone.utc), True),
        (datetime(2026, 1, 1, 0, 0, 0, 1, tzinfo=timezone.utc), False),
        (datetime(2026, 1, 1, 0, 0, 1, tzinfo=timezone.utc), False),
        (datetime(2026, 1, 1, 0, 0, 0), True),  # a naive `now` is UTC, not a TypeError
        (datetime(2026, 1, 1, 0, 0, 0, 500_000), False),
    ],
)
def test_edge_29_pinset_expiry_boundary_is_midnight_utc(now: datetime, enforced: bool) -> None:
    pinset = Pinset("app", (unknown_pin(),), date(2026, 1, 1))
    assert pinset_expiry(pinset) == datetime(2026, 1, 1, tzinfo=timezone.utc)
    assert pins_enforced(pinset, now) is enforced


def test_empty_pinset_disables_pinning(world: World) -> None:
    findings = run([world.leaf, world.inter], world.trusted, [])
    assert keys(findings) == {("single_pin", W, None)}
    assert findings[0].message == "pin-set 'app' is empty: pinning is disabled"


def test_edge_15_sha1_pin_matches_and_is_flagged_legacy(world: World) -> None:
    findings = run([world.leaf, world.inter], world.trusted, [world.root.sha1_pin, world.root2.pin])
    assert keys(findings) == {("legacy_sha1_pin", W, None)}
    assert findings[0].pin == world.root.sha1_pin


def test_unresolved_backup_pin(world: World) -> None:
    findings = run([world.leaf, world.inter], world.trusted, [world.inter.pin, unknown_pin(7)])
    assert keys(findings) == {("unresolved_pin", INFO, None)}
    assert findings[0].pin == unknown_pin(7)


def test_backup_pin_of_a_store_root_is_resolved(world: World) -> None:
    store = store_from_pem(world.root.pem + world.root2.pem, "s")
    report = analyze_chain([world.leaf.der, world.inter.der], store, HOST, NOW)
    assert resolve_pin(world.root2.pin, report, store.known_keys) == world.root2.subject
    assert resolve_pin(world.inter.pin, report, store.known_keys) == world.inter.subject
    assert resolve_pin(unknown_pin(), report, store.known_keys) is None


def test_pin_mismatch_message_lists_path_keys_and_pins(world: World) -> None:
    findings = run([world.leaf, world.inter], world.trusted, [unknown_pin(3), world.root2.pin])
    mismatch = next(f for f in findings if f.check is Check.PIN_MISMATCH)
    assert mismatch.message == (
        "no pin of 'app' matches the path. Path keys: "
        f"{world.leaf.pin}: {world.leaf.subject}; {world.inter.pin}: {world.inter.subject}; "
        f"{world.root.pin}: {world.root.subject}. Pins: {unknown_pin(3)}, {world.root2.pin}"
    )


# --- ordering and the catalogue -------------------------------------------


def test_findings_are_sorted_most_severe_first(world: World) -> None:
    leaf = world.pki.leaf(HOST, world.inter, days_after=20, key_type="rsa1024")
    findings = run([leaf, world.inter, world.inter2], world.trusted, [unknown_pin(9)])
    assert [f.key for f in findings] == [
        ("pin_mismatch", C, None),
        ("weak_key", C, 0),
        ("single_pin", W, None),
        ("cert_expiring", W, 0),
        ("chain_extra_certs", W, 2),
        ("unresolved_pin", INFO, None),
    ]


def test_catalogue_covers_every_check_and_the_docs_list_it() -> None:
    assert set(CATALOGUE) == set(Check)
    docs = Path(__file__).parent.parent / "docs"
    judging = (docs / "judging.md").read_text()
    for check, (severity, _meaning) in CATALOGUE.items():
        assert f"| `{check.value}` | {severity.value} |" in judging, check
    assert Severity.CRITICAL.rank > Severity.WARNING.rank > Severity.INFO.rank


def test_every_check_is_in_the_model_the_catalogue_the_docs_and_the_report_schema() -> None:
    """A check code lives in four places (docs/architecture.md, "Where things
    go"): model.base.Check, audit.CATALOGUE, the findings table of
    docs/judging.md (with the catalogue's exact words) and the report schema's
    enum. The four must hold the same codes."""
    import json
    import re

    docs = Path(__file__).parent.parent / "docs"
    rows = {
        m.group(1): (m.group(2), m.group(3))
        for m in re.finditer(
            r"^\| `([a-z0-9_]+)` \| (info|warning|critical) \| (.*) \|$",
            (docs / "judging.md").read_text(),
            re.MULTILINE,
        )
    }
    schema = json.loads((docs / "report.schema.json").read_text())
    enum = schema["$defs"]["finding"]["properties"]["check"]["enum"]
    codes = {check.value for check in Check}
    assert set(rows) == codes
    assert set(enum) == codes and len(enum) == len(codes)
    for check, (severity, meaning) in CATALOGUE.items():
        assert rows[check.value] == (severity.value, meaning), check
