"""Client-faithful verdicts over generated PKIs: every edge case of
pinning-semantics.md §9 (tests named ``test_edge_N_...``), each asserting the
exact verdict the client itself gives. Policies are read from client
configuration text by the importers, as a scan reads them."""

from __future__ import annotations

import plistlib
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from scanner.chain import CertificateCache, analyze_chain
from scanner.clients import (
    Environment,
    applies,
    assess_clients,
    canonical_host,
    client_findings,
    enforcement_window,
    judge,
    judge_endpoint,
    select,
)
from scanner.clients.failures import failure_formats, hpkp_report, okhttp_failure_message
from scanner.clients.judge import report_paths
from scanner.fleet.pki import PKI, Issued
from scanner.importers.android import parse_network_security_config, parse_trustkit_android
from scanner.importers.apple import parse_ats_plist, parse_trustkit_plist
from scanner.importers.chromium import parse_chromium
from scanner.importers.hpkp import parse_hpkp_headers
from scanner.importers.okhttp import parse_okhttp_list
from scanner.inventory import load_inventory_text
from scanner.model import (
    ChainReport,
    Client,
    ClientPolicy,
    ClientVerdict,
    Endpoint,
    HashAlg,
    Pin,
    Platform,
    Verdict,
)
from scanner.paths import candidate_paths
from scanner.trust import TrustStore, key_index, store_from_pem

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)
ZERO = Pin(HashAlg.SHA256, bytes(32))


@dataclass
class World:
    pki: PKI
    root: Issued
    inter: Issued
    root2: Issued
    inter2: Issued
    rogue_root: Issued
    rogue_inter: Issued
    leaves: dict[tuple[str, str], Issued] = field(default_factory=dict)

    def leaf(self, host: str, issuer: Issued | None = None) -> Issued:
        issuer = issuer or self.inter
        key = (host, issuer.subject)
        if key not in self.leaves:
            self.leaves[key] = self.pki.leaf(host, issuer)
        return self.leaves[key]


@pytest.fixture(scope="module")
def world() -> World:
    pki = PKI(NOW)
    root = pki.root("Test Root")
    root2 = pki.root("Other Root")
    rogue_root = pki.root("Rogue Root")
    return World(
        pki,
        root,
        pki.intermediate("Test Intermediate", root),
        root2,
        pki.intermediate("Other Intermediate", root2),
        rogue_root,
        pki.intermediate("Rogue Intermediate", rogue_root),
    )


def store_of(*anchors: Issued) -> TrustStore:
    return store_from_pem(b"".join(a.pem for a in anchors), "test-store")


def report_for(
    world: World,
    host: str,
    served: Sequence[Issued] | None = None,
    trusted: Sequence[Issued] | None = None,
    *,
    now: datetime = NOW,
    name: str | None = None,
) -> ChainReport:
    served = served if served is not None else [world.leaf(host), world.inter]
    trusted = trusted if trusted is not None else [world.root, world.root2]
    return analyze_chain(
        [s.der for s in served], store_of(*trusted), name or host, now, cache=CertificateCache()
    )


def verdict(
    policy: ClientPolicy,
    host: str,
    report: ChainReport,
    *,
    now: datetime = NOW,
    env: Environment | None = None,
    extra: Sequence[Any] = (),
) -> ClientVerdict:
    return judge(policy, host, report_paths(report, extra), now, valid=report.valid, env=env)


def p(issued: Issued) -> str:
    return str(issued.pin)


def b64(issued: Issued) -> str:
    return issued.pin.b64


# --- policy builders: real client syntax, parsed -----------------------------


def okhttp(text: str) -> ClientPolicy:
    return parse_okhttp_list(textwrap.dedent(text).encode(), "pins.txt", name="app")


def nsc(body: str) -> ClientPolicy:
    xml = f"<network-security-config>{body}</network-security-config>"
    return parse_network_security_config(xml.encode(), "nsc.xml", name="app")


def pin_set(*issued: Issued | str, expiration: str | None = None) -> str:
    attr = f' expiration="{expiration}"' if expiration else ""
    pins = "".join(
        f'<pin digest="SHA-256">{i if isinstance(i, str) else b64(i)}</pin>' for i in issued
    )
    return f"<pin-set{attr}>{pins}</pin-set>"


def trustkit(
    domains: dict[str, Any], platform: Platform = Platform.IOS, **top: Any
) -> ClientPolicy:
    data = plistlib.dumps({"TSKConfiguration": {"TSKPinnedDomains": domains, **top}})
    return parse_trustkit_plist(data, "Info.plist", name="app", platform=platform)


def ats(domains: dict[str, Any]) -> ClientPolicy:
    data = plistlib.dumps({"NSAppTransportSecurity": {"NSPinnedDomains": domains}})
    return parse_ats_plist(data, "Info.plist", name="app")


def identities(*issued: Issued | Pin) -> list[dict[str, str]]:
    return [{"SPKI-SHA256-BASE64": i.b64 if isinstance(i, Pin) else b64(i)} for i in issued]


def both(a: Issued, b: Issued) -> str:
    return f'pin-sha256="{b64(a)}"; pin-sha256="{b64(b)}"'


def hpkp(text: str) -> ClientPolicy:
    return parse_hpkp_headers(textwrap.dedent(text).encode(), "headers.txt", name="site")


def chromium(entries: str, pinsets: str, names: dict[str, Pin], stamp: int) -> ClientPolicy:
    doc = f'{{"pinsets": [{pinsets}], "entries": [{entries}]}}'
    pins = f"PinsListTimestamp\n{stamp}\n\n" + "".join(
        f"{name}\n{pin}\n\n" for name, pin in names.items()
    )
    return parse_chromium(
        doc.encode(), "pins.json", pins_data=pins.encode(), pins_source="x.pins", name="chrome"
    )


# --- OkHttp (§1) ----------------------------------------------------------------


def test_edge_1_okhttp_pin_on_root_not_sent_passes(world: World) -> None:
    policy = okhttp(f"example.com: {p(world.root)}")
    report = report_for(world, "example.com")
    assert len(report.served) == 2 and len(report.path) == 3
    assert verdict(policy, "example.com", report).verdict is Verdict.PASS


def test_edge_2_okhttp_pinned_good_leaf_sent_as_extra_fails(world: World) -> None:
    good = world.leaf("example.com")
    rogue = world.leaf("example.com", world.rogue_inter)
    policy = okhttp(f"example.com: {p(good)}")
    report = report_for(
        world,
        "example.com",
        [rogue, world.rogue_inter, good],
        [world.root, world.root2, world.rogue_root],
    )
    got = verdict(policy, "example.com", report)
    assert got.verdict is Verdict.FAIL_ENFORCED
    assert got.matched == ()


def test_edge_3_okhttp_one_label_wildcard_does_not_pin_the_apex(world: World) -> None:
    policy = okhttp(f"*.example.com: {p(world.root2)}")
    report = report_for(world, "example.com")
    assert verdict(policy, "example.com", report).verdict is Verdict.NOT_PINNED


def test_edge_4_okhttp_one_label_wildcard_does_not_pin_two_labels(world: World) -> None:
    policy = okhttp(f"*.example.com: {p(world.root2)}")
    report = report_for(world, "a.b.example.com")
    assert verdict(policy, "a.b.example.com", report).verdict is Verdict.NOT_PINNED


def test_edge_5_okhttp_one_label_wildcard_matches_the_empty_label(world: World) -> None:
    policy = okhttp(f"*.example.com: {p(world.root2)}")
    assert [r.pattern for r in select(policy, ".example.com").rules] == ["*.example.com"]
    assert applies(policy, ".example.com")
    got = verdict(policy, ".example.com", report_for(world, "x.example.com"))
    assert got.verdict is Verdict.FAIL_ENFORCED  # the pins apply (and do not match)


def test_edge_6_okhttp_double_wildcard_pins_the_apex(world: World) -> None:
    policy = okhttp(f"**.example.com: {p(world.root2)}")
    got = verdict(policy, "example.com", report_for(world, "example.com"))
    assert got.verdict is Verdict.FAIL_ENFORCED


def test_edge_7_okhttp_double_wildcard_is_not_a_substring_match(world: World) -> None:
    policy = okhttp(f"**.example.com: {p(world.root2)}")
    got = verdict(policy, "dexample.com", report_for(world, "dexample.com"))
    assert got.verdict is Verdict.NOT_PINNED


def test_edge_8_okhttp_wildcard_and_exact_pins_are_a_union(world: World) -> None:
    other = world.pki.intermediate("Unused CA", world.root2)
    policy = okhttp(f"*.example.com: {p(other)}\na.example.com: {p(world.inter)}")
    got = verdict(policy, "a.example.com", report_for(world, "a.example.com"))
    assert got.verdict is Verdict.PASS
    assert got.matched == (world.inter.pin,)
    assert {str(x) for x in got.pins} == {p(other), p(world.inter)}


def test_edge_9_okhttp_failure_lists_every_pin_of_the_union(world: World) -> None:
    a, b = world.pki.intermediate("CA A", world.root2), world.pki.intermediate("CA B", world.root2)
    policy = okhttp(f"*.example.com: {p(a)}\na.example.com: {p(b)}")
    report = report_for(world, "a.example.com")
    got = verdict(policy, "a.example.com", report)
    assert got.verdict is Verdict.FAIL_ENFORCED
    path = tuple(pc.facts for pc in report.path)
    leaf = world.leaf("a.example.com")
    assert okhttp_failure_message(got, path) == "\n".join(
        [
            "Certificate pinning failure!",
            "  Peer certificate chain:",
            f"    {leaf.pin}: {leaf.subject}",
            f"    {world.inter.pin}: {world.inter.subject}",
            f"    {world.root.pin}: {world.root.subject}",
            "  Pinned certificates for a.example.com:",
            f"    {a.pin}",
            f"    {b.pin}",
        ]
    )


@pytest.mark.parametrize("dead", ["sha256/AAAA", "sha256/" + "0b9fa5a5" * 8])
def test_edge_10_okhttp_dead_pin_is_accepted_never_matches(world: World, dead: str) -> None:
    policy = okhttp(f"example.com: {dead}")
    assert policy.problems == ()
    assert [str(n) for n in policy.notes] == [
        f"pins.txt:1:14: dead pin {dead}: OkHttp accepts it but it can never match "
        f"(decodes to {3 if dead.endswith('AAAA') else 48} bytes)"
    ]
    report = report_for(world, "example.com")
    got = verdict(policy, "example.com", report)
    assert got.verdict is Verdict.FAIL_ENFORCED
    assert got.dead_pins == (dead,)
    endpoint = Endpoint("e", "example.com", 443, "example.com", None, client_policies=(policy,))
    keys = {f.key for f in client_findings(endpoint, [got], report, NOW)}
    assert ("dead_pin", "warning", None) in keys
    assert ("client_pin_failure", "critical", None) in keys


@pytest.mark.parametrize("pin", ["sha512/AAAA", "md5/AAAA", "SHA256/" + "A" * 43 + "="])
def test_edge_11_okhttp_unknown_algorithm_is_a_config_error(world: World, pin: str) -> None:
    policy = okhttp(f"example.com: {pin}")
    assert [str(x) for x in policy.problems] == [
        f"pins.txt:1:14: pins must start with 'sha256/' or 'sha1/': {pin}"
    ]
    got = verdict(policy, "example.com", report_for(world, "example.com"))
    assert got.verdict is Verdict.CONFIG_ERROR


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("example.*", "Unexpected pattern: example.*"),
        ("*.*.example.com", "Unexpected pattern: *.*.example.com"),
        ("https://example.com/", "Invalid pattern: https://example.com/"),
        ("example.com:8443", "Invalid pattern: example.com:8443"),
    ],
)
def test_edge_12_okhttp_bad_pattern_is_a_config_error(
    world: World, pattern: str, message: str
) -> None:
    policy = okhttp(f"{pattern}: {p(world.root)}")
    assert [x.message for x in policy.problems] == [message]
    got = verdict(policy, "example.com", report_for(world, "example.com"))
    assert got.verdict is Verdict.CONFIG_ERROR


def test_edge_13_okhttp_patterns_are_canonicalised(world: World) -> None:
    policy = okhttp(f"EXAMPLE.com: {p(world.root)}\n\u03c3khttp.com: {p(world.root)}")
    assert [r.host for r in policy.rules] == ["example.com", "xn--khttp-fde.com"]
    assert verdict(policy, "example.com", report_for(world, "example.com")).verdict is Verdict.PASS
    punycode = report_for(world, "xn--khttp-fde.com")
    assert verdict(policy, "xn--khttp-fde.com", punycode).verdict is Verdict.PASS


def test_edge_14_okhttp_trailing_dot_bypasses_the_pins(world: World) -> None:
    policy = okhttp(f"example.com: {p(world.root2)}")
    report = report_for(world, "example.com", name="example.com.")
    assert report.valid  # the hostname verifier treats both spellings alike
    got = verdict(policy, "example.com.", report)
    assert got.verdict is Verdict.NOT_PINNED
    assert got.host == "example.com."
    endpoint = Endpoint("e", "example.com.", 443, "example.com.", None, client_policies=(policy,))
    findings = client_findings(endpoint, [got], report, NOW)
    assert [f.key for f in findings] == [("pins_not_applied", "warning", None)]
    assert "trailing dot" in findings[0].message
    android = nsc(
        f"<domain-config><domain>example.com</domain>{pin_set(world.root2)}</domain-config>"
    )
    assert verdict(android, "example.com.", report).verdict is Verdict.FAIL_ENFORCED


def test_edge_15_okhttp_sha1_pin_matches(world: World) -> None:
    policy = okhttp(f"example.com: {world.root.sha1_pin}")
    got = verdict(policy, "example.com", report_for(world, "example.com"))
    assert got.verdict is Verdict.PASS
    assert got.matched == (world.root.sha1_pin,)


def test_edge_16_urlsafe_unpadded_base64_okhttp_matches_android_rejects(world: World) -> None:
    inter = world.inter
    while not {"+", "/"} & set(inter.pin.b64):  # a key whose pin has a character to respell
        inter = world.pki.intermediate("Respelled Intermediate", world.root)
    leaf = world.pki.leaf("example.com", inter)
    report = report_for(world, "example.com", [leaf, inter])
    loose = inter.pin.b64.rstrip("=").replace("+", "-").replace("/", "_")
    policy = okhttp(f"example.com: sha256/{loose}")
    assert any("non-canonical base64" in n.message for n in policy.notes)
    got = verdict(policy, "example.com", report)
    assert (got.verdict, got.matched) == (Verdict.PASS, (inter.pin,))
    android = nsc(f"<domain-config><domain>example.com</domain>{pin_set(loose)}</domain-config>")
    assert [x.message for x in android.problems] == [f"Invalid pin digest: {loose!r} is not base64"]
    assert verdict(android, "example.com", report).verdict is Verdict.CONFIG_ERROR


# --- Android network-security-config (§2) ------------------------------------------


def test_edge_17_android_subtree_pins_pass(world: World) -> None:
    policy = nsc(
        '<domain-config><domain includeSubdomains="true">example.com</domain>'
        f"{pin_set(world.root, world.root2)}</domain-config>"
    )
    got = verdict(policy, "api.example.com", report_for(world, "api.example.com"))
    assert got.verdict is Verdict.PASS
    assert got.matched == (world.root.pin,)


def test_edge_18_android_expired_pinset_every_device(world: World) -> None:
    policy = nsc(
        '<domain-config><domain includeSubdomains="true">example.com</domain>'
        f"{pin_set(world.inter2, world.root2, expiration='2025-12-31')}</domain-config>"
    )
    later = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)
    report = report_for(world, "api.example.com", now=later)
    got = verdict(policy, "api.example.com", report, now=later)
    assert got.verdict is Verdict.NOT_ENFORCED_EXPIRED
    assert got.enforce_until == datetime(2025, 12, 30, 10, 0, tzinfo=timezone.utc)
    assert got.enforce_until_latest == datetime(2025, 12, 31, 12, 0, tzinfo=timezone.utc)


def test_edge_18_android_expiry_is_device_dependent_inside_the_window(world: World) -> None:
    policy = nsc(
        '<domain-config><domain includeSubdomains="true">example.com</domain>'
        f"{pin_set(world.inter2, world.root2, expiration='2025-12-31')}</domain-config>"
    )
    inside = datetime(2025, 12, 31, 5, 0, tzinfo=timezone.utc)
    got = verdict(policy, "api.example.com", report_for(world, "api.example.com"), now=inside)
    assert got.verdict is Verdict.FAIL_ENFORCED  # devices at UTC-8 still enforce
    assert "depending on their time zone" in got.detail


def _nested(world: World, child: str) -> ClientPolicy:
    a, b = world.inter, world.inter2
    return nsc(
        '<domain-config><domain includeSubdomains="true">example.com</domain>'
        f"{pin_set(a, world.root2)}<domain-config>{child.format(b=b64(b))}</domain-config>"
        "</domain-config>"
    )


def test_edge_19_android_child_pinset_replaces_the_parents(world: World) -> None:
    policy = _nested(
        world, '<domain>pay.example.com</domain><pin-set><pin digest="SHA-256">{b}</pin></pin-set>'
    )
    got = verdict(policy, "pay.example.com", report_for(world, "pay.example.com"))
    assert got.verdict is Verdict.FAIL_ENFORCED
    assert got.pins == (world.inter2.pin,)


def test_edge_20_android_exact_child_does_not_cover_its_subdomains(world: World) -> None:
    policy = _nested(
        world, '<domain>pay.example.com</domain><pin-set><pin digest="SHA-256">{b}</pin></pin-set>'
    )
    got = verdict(policy, "v2.pay.example.com", report_for(world, "v2.pay.example.com"))
    assert got.verdict is Verdict.PASS
    assert [r.host for r in got.rules] == ["example.com"]


def test_edge_21_android_child_without_pinset_inherits_empty_pinset_disables(world: World) -> None:
    inherits = _nested(world, "<domain>pay.example.com</domain>")
    got = verdict(inherits, "pay.example.com", report_for(world, "pay.example.com"))
    assert got.verdict is Verdict.PASS
    assert got.pins == (world.inter.pin, world.root2.pin)
    empty = _nested(world, "<domain>pay.example.com</domain><pin-set/>")
    got = verdict(empty, "pay.example.com", report_for(world, "pay.example.com"))
    assert got.verdict is Verdict.NOT_ENFORCED


@pytest.mark.parametrize(
    ("pin", "message"),
    [
        (
            '<pin digest="SHA-1">+BZRPP0bRJ8uayihlyIfuB9RTjw=</pin>',
            "Unsupported pin digest algorithm: 'SHA-1'",
        ),
        (
            '<pin digest="SHA-256">+BZRPP0bRJ8uayihlyIfuB9RTjw=</pin>',
            "digest length 20 does not match expected length for SHA-256 of 32",
        ),
    ],
)
def test_edge_22_android_sha1_or_short_digest_is_a_config_error(
    world: World, pin: str, message: str
) -> None:
    policy = nsc(
        f"<domain-config><domain>example.com</domain><pin-set>{pin}</pin-set></domain-config>"
    )
    assert [str(x) for x in policy.problems] == [f"nsc.xml:1:78: {message}"]
    got = verdict(policy, "example.com", report_for(world, "example.com"))
    assert got.verdict is Verdict.CONFIG_ERROR


def test_edge_23_android_pinset_in_base_config_is_a_config_error(world: World) -> None:
    policy = nsc(f"<base-config>{pin_set(world.root)}</base-config>")
    assert [x.message for x in policy.problems] == ["<pin-set> is not allowed in <base-config>"]
    assert verdict(policy, "other.example", report_for(world, "other.example")).verdict is (
        Verdict.CONFIG_ERROR
    )


def _user_override(world: World) -> ClientPolicy:
    return nsc(
        "<domain-config><domain>example.com</domain><trust-anchors>"
        '<certificates src="system"/><certificates src="user" overridePins="true"/>'
        f"</trust-anchors>{pin_set(world.inter2, world.root2)}</domain-config>"
    )


def test_edge_24_android_user_anchor_with_override_pins_bypasses(world: World) -> None:
    policy = _user_override(world)
    report = report_for(world, "example.com")
    user_ca = Environment(local_anchors=frozenset({world.root.pin}))
    got = verdict(policy, "example.com", report, env=user_ca)
    assert got.verdict is Verdict.BYPASSED_LOCAL_ANCHOR
    system_ca = verdict(policy, "example.com", report)
    assert system_ca.verdict is Verdict.FAIL_ENFORCED


def test_edge_25_android_debug_overrides_only_in_debuggable_builds(world: World) -> None:
    policy = nsc(
        f"<domain-config><domain>example.com</domain>{pin_set(world.inter2, world.root2)}"
        '</domain-config><debug-overrides><trust-anchors><certificates src="user"/>'
        "</trust-anchors></debug-overrides>"
    )
    assert policy.debug_overrides == ("user",)
    report = report_for(world, "example.com")
    local = frozenset({world.root.pin})
    release = verdict(policy, "example.com", report, env=Environment(local_anchors=local))
    assert release.verdict is Verdict.CHAIN_INVALID  # a release build does not trust user CAs
    debug = Environment(local_anchors=local, debuggable=True)
    assert verdict(policy, "example.com", report, env=debug).verdict is (
        Verdict.BYPASSED_LOCAL_ANCHOR
    )
    assert verdict(policy, "example.com", report).verdict is Verdict.FAIL_ENFORCED


def test_edge_26_android_host_is_lower_cased_and_the_dot_stripped(world: World) -> None:
    policy = nsc(
        f"<domain-config><domain>example.com</domain>{pin_set(world.root)}</domain-config>"
    )
    assert canonical_host(policy, "EXAMPLE.COM.") == "example.com"
    report = report_for(world, "example.com", name="EXAMPLE.COM.")
    got = verdict(policy, "EXAMPLE.COM.", report)
    assert got.verdict is Verdict.PASS
    assert [r.host for r in got.rules] == ["example.com"]


def test_edge_27_android_duplicate_domain_is_a_config_error(world: World) -> None:
    policy = nsc(
        f"<domain-config><domain>example.com</domain>{pin_set(world.root)}</domain-config>"
        f'<domain-config><domain includeSubdomains="true">example.com</domain></domain-config>'
    )
    assert [x.message for x in policy.problems] == [
        "Duplicate domain name 'example.com': it has already been specified (at line 1)"
    ]
    got = verdict(policy, "other.example", report_for(world, "other.example"))
    assert got.verdict is Verdict.CONFIG_ERROR  # the app fails at its first TLS connection


# --- TrustKit (§3) -----------------------------------------------------------------


def test_edge_28_trustkit_single_pin_needs_enforcement_off(world: World) -> None:
    enforced = trustkit({"example.com": {"TSKPublicKeyHashes": [b64(world.root)]}})
    assert [x.message for x in enforced.problems] == [
        "TrustKit configuration invalid: less than 2 pins (1 distinct) (ie. no backup pins)"
    ]
    report = report_for(world, "example.com")
    assert verdict(enforced, "example.com", report).verdict is Verdict.CONFIG_ERROR
    relaxed = trustkit(
        {"example.com": {"TSKPublicKeyHashes": [b64(world.root)], "TSKEnforcePinning": False}}
    )
    assert relaxed.problems == ()
    assert verdict(relaxed, "example.com", report).verdict is Verdict.PASS


def test_edge_29_trustkit_expiry_is_midnight_utc_everywhere(world: World) -> None:
    policy = trustkit(
        {
            "example.com": {
                "TSKPublicKeyHashes": [b64(world.inter2), b64(world.root2)],
                "TSKExpirationDate": "2026-01-01",
            }
        }
    )
    window = enforcement_window(policy, policy.rules[0])
    assert window == (NOW, NOW)
    report = report_for(world, "example.com")
    at_midnight = verdict(policy, "example.com", report, now=NOW)
    assert at_midnight.verdict is Verdict.FAIL_ENFORCED  # enforced while now <= expiry
    later = NOW + timedelta(seconds=1)
    assert verdict(policy, "example.com", report, now=later).verdict is (
        Verdict.NOT_ENFORCED_EXPIRED
    )


def test_edge_30_trustkit_subdomains_of_a_public_suffix_is_a_config_error(world: World) -> None:
    policy = trustkit(
        {
            "co.uk": {
                "TSKIncludeSubdomains": True,
                "TSKPublicKeyHashes": [b64(world.root), b64(world.root2)],
            }
        }
    )
    assert [x.message for x in policy.problems] == [
        "TrustKit configuration invalid: TSKIncludeSubdomains on 'co.uk', which is a public suffix"
    ]
    assert verdict(policy, "a.co.uk", report_for(world, "a.co.uk")).verdict is Verdict.CONFIG_ERROR


def test_edge_31_trustkit_keys_are_case_sensitive(world: World) -> None:
    policy = trustkit({"Example.com": {"TSKPublicKeyHashes": [b64(world.root), b64(world.root2)]}})
    assert policy.problems == ()
    assert next(n.message for n in policy.notes).startswith(
        "domain 'Example.com' is not lower-case"
    )
    report = report_for(world, "example.com")
    got = verdict(policy, "example.com", report)
    assert got.verdict is Verdict.NOT_PINNED
    endpoint = Endpoint("e", "example.com", 443, "example.com", None, client_policies=(policy,))
    keys = [f.key for f in client_findings(endpoint, [got], report, NOW)]
    assert keys == [("pins_not_applied", "warning", None)]


def _report_only(world: World) -> ClientPolicy:
    return trustkit(
        {
            "example.com": {
                "TSKPublicKeyHashes": [b64(world.inter2)],
                "TSKEnforcePinning": False,
                "TSKReportUris": ["https://reports.example.com/tk"],
            }
        }
    )


def test_edge_32_trustkit_without_enforcement_reports_only(world: World) -> None:
    policy = _report_only(world)
    report = report_for(world, "example.com")
    got = verdict(policy, "example.com", report)
    assert got.verdict is Verdict.FAIL_REPORT_ONLY
    shown = failure_formats(got, report, port=443, now=NOW, platform=Platform.IOS)
    body = shown["report"]
    assert body["validation-result"] == 1
    assert body["hostname"] == body["noted-hostname"] == "example.com"
    assert body["enforce-pinning"] is False
    assert body["known-pins"] == [f'pin-sha256="{b64(world.inter2)}"']
    assert body["known-pins-expiration-date"] is None
    assert body["trustkit-version"] == "3.0.0" and body["app-platform"] == "IOS"
    assert body["date-time"] == "2026-01-01T00:00:00Z"
    assert len(body["validated-certificate-chain"]) == 2  # the anchor is not in the report
    assert all(
        pem.startswith("-----BEGIN CERTIFICATE-----\n")
        for pem in body["validated-certificate-chain"]
    )


def test_edge_33_trustkit_blocks_an_invalid_chain_despite_enforcement_off(world: World) -> None:
    policy = _report_only(world)
    leaf = world.leaf("example.com", world.rogue_inter)
    report = report_for(world, "example.com", [leaf, world.rogue_inter])
    got = verdict(policy, "example.com", report)
    assert got.verdict is Verdict.CHAIN_INVALID
    shown = failure_formats(got, report, port=443, now=NOW, platform=Platform.IOS)
    assert shown["report"]["validation-result"] == 2


def test_edge_34_trustkit_unsupported_key_above_the_match_blocks(world: World) -> None:
    big_root = world.pki.root("P-521 Root", key_type="ec521")
    inter = world.pki.intermediate("P-256 Intermediate", big_root)
    leaf = world.pki.leaf("example.com", inter)
    policy = trustkit(
        {"example.com": {"TSKPublicKeyHashes": [b64(inter)], "TSKEnforcePinning": False}}
    )
    report = report_for(world, "example.com", [leaf, inter], [big_root])
    got = verdict(policy, "example.com", report)
    assert got.verdict is Verdict.FAIL_ENFORCED
    assert "ErrorCouldNotGenerateSpkiHash" in got.detail
    shown = failure_formats(got, report, port=443, now=NOW, platform=Platform.IOS)
    assert shown["report"]["validation-result"] == 5
    # pinned on the unsupported root itself: the walk starts there and matches first
    root_pinned = trustkit(
        {"example.com": {"TSKPublicKeyHashes": [b64(big_root)], "TSKEnforcePinning": False}}
    )
    assert verdict(root_pinned, "example.com", report).verdict is Verdict.FAIL_ENFORCED


def test_edge_35_trustkit_macos_user_defined_anchor_is_bypassed(world: World) -> None:
    policy = trustkit(
        {"example.com": {"TSKPublicKeyHashes": [b64(world.inter2), b64(world.root2)]}},
        Platform.MACOS,
    )
    report = report_for(world, "example.com")
    admin_root = Environment(local_anchors=frozenset({world.root.pin}))
    assert verdict(policy, "example.com", report, env=admin_root).verdict is (
        Verdict.BYPASSED_LOCAL_ANCHOR
    )
    strict = trustkit(
        {"example.com": {"TSKPublicKeyHashes": [b64(world.inter2), b64(world.root2)]}},
        Platform.MACOS,
        TSKIgnorePinningForUserDefinedTrustAnchors=False,
    )
    assert verdict(strict, "example.com", report, env=admin_root).verdict is Verdict.FAIL_ENFORCED
    ios = trustkit({"example.com": {"TSKPublicKeyHashes": [b64(world.inter2), b64(world.root2)]}})
    assert verdict(ios, "example.com", report, env=admin_root).verdict is Verdict.FAIL_ENFORCED


def test_edge_36_trustkit_android_keeps_the_last_domain_only(world: World) -> None:
    xml = (
        "<network-security-config><domain-config>"
        "<domain>first.example.com</domain><domain>second.example.com</domain>"
        f'{pin_set(world.inter2, world.root2)}<trustkit-config enforcePinning="true"/>'
        "</domain-config></network-security-config>"
    ).encode()
    tk = parse_trustkit_android(xml, "nsc.xml", name="tk")
    platform = parse_network_security_config(xml, "nsc.xml", name="nsc")
    assert tk.problems == () and platform.problems == ()
    report = report_for(world, "first.example.com")
    assert verdict(tk, "first.example.com", report).verdict is Verdict.NOT_PINNED
    assert verdict(platform, "first.example.com", report).verdict is Verdict.FAIL_ENFORCED
    second = report_for(world, "second.example.com")
    assert verdict(tk, "second.example.com", second).verdict is Verdict.FAIL_ENFORCED


@pytest.mark.parametrize("host", ["intranet.corp", "10.0.0.5"])
def test_edge_37_trustkit_refuses_hosts_outside_the_public_suffix_list(
    world: World, host: str
) -> None:
    policy = trustkit({host: {"TSKPublicKeyHashes": [b64(world.root), b64(world.root2)]}})
    assert [x.message for x in policy.problems] == [
        f"TrustKit configuration invalid: invalid domain {host!r}: no known public suffix "
        "(TrustKit accepts only names under a registry suffix)"
    ]
    report = report_for(world, host) if host[0].isalpha() else None
    if report is not None:
        assert verdict(policy, host, report).verdict is Verdict.CONFIG_ERROR
        same_in_okhttp = okhttp(f"{host}: {p(world.root)}")
        assert verdict(same_in_okhttp, host, report).verdict is Verdict.PASS
        same_in_nsc = nsc(
            f"<domain-config><domain>{host}</domain>{pin_set(world.root)}</domain-config>"
        )
        assert verdict(same_in_nsc, host, report).verdict is Verdict.PASS
    else:
        ip_okhttp = okhttp(f"{host}: {p(world.root)}")
        assert ip_okhttp.problems == () and [r.host for r in ip_okhttp.rules] == [host]


# --- iOS ATS NSPinnedDomains (§4) --------------------------------------------------


def test_edge_38_ats_subdomains_are_one_level_only(world: World) -> None:
    policy = ats(
        {
            "example.com": {
                "NSIncludesSubdomains": True,
                "NSPinnedCAIdentities": identities(world.root),
            }
        }
    )
    got = verdict(policy, "a.b.example.com", report_for(world, "a.b.example.com"))
    assert got.verdict is Verdict.NOT_PINNED


def test_edge_39_ats_anchor_not_served_is_in_the_evaluated_path(world: World) -> None:
    policy = ats(
        {
            "example.com": {
                "NSIncludesSubdomains": True,
                "NSPinnedCAIdentities": identities(world.root),
            }
        }
    )
    report = report_for(world, "www.example.com")
    assert all(s.facts and s.facts.subject != world.root.subject for s in report.served)
    assert verdict(policy, "www.example.com", report).verdict is Verdict.PASS


def test_edge_40_ats_both_categories_must_match(world: World) -> None:
    old_leaf = world.pki.leaf("example.com", world.inter)
    policy = ats(
        {
            "example.com": {
                "NSPinnedCAIdentities": identities(world.root),
                "NSPinnedLeafIdentities": identities(old_leaf),
            }
        }
    )
    got = verdict(policy, "example.com", report_for(world, "example.com"))
    assert got.verdict is Verdict.FAIL_ENFORCED
    assert got.detail == "no leaf identity matches the leaf"


def test_edge_41_ats_entries_are_a_union(world: World) -> None:
    policy = ats(
        {
            "example.com": {
                "NSIncludesSubdomains": True,
                "NSPinnedCAIdentities": identities(world.root),
            },
            "www.example.com": {"NSPinnedCAIdentities": identities(world.root2)},
        }
    )
    got = verdict(policy, "www.example.com", report_for(world, "www.example.com"))
    assert got.verdict is Verdict.PASS
    assert len(got.rules) == 2


def test_edge_42_ats_ca_pin_on_the_leaf_key_fails(world: World) -> None:
    leaf = world.leaf("example.com")
    policy = ats({"example.com": {"NSPinnedCAIdentities": identities(leaf)}})
    got = verdict(policy, "example.com", report_for(world, "example.com"))
    assert got.verdict is Verdict.FAIL_ENFORCED


# --- HPKP and Chromium (§5, §6) ---------------------------------------------------


def test_edge_43_hpkp_single_pin_is_not_noted(world: World) -> None:
    policy = hpkp(f"""
        https://example.com/
        Public-Key-Pins: max-age=5184000; pin-sha256="{b64(world.root)}"
        """)
    got = verdict(policy, "example.com", report_for(world, "example.com"))
    assert got.verdict is Verdict.CONFIG_ERROR
    assert "fewer than two pins" in got.detail


def test_edge_44_hpkp_without_a_live_pin_is_not_noted(world: World) -> None:
    policy = hpkp(f"""
        https://example.com/
        Public-Key-Pins: max-age=5184000; {both(world.inter2, world.root2)}
        """)
    got = verdict(policy, "example.com", report_for(world, "example.com"))
    assert got.verdict is Verdict.CONFIG_ERROR
    assert "no live pin" in got.detail


@pytest.mark.parametrize(
    "header",
    [
        'max-age=5184000; pin-sha256={a}; pin-sha256="{b}"',
        'max-age=5184000; pin-sha256="{a}"; pin-sha256="{b}"; report-uri=http://x',
    ],
)
def test_edge_45_hpkp_unquoted_values_make_the_header_ignored(world: World, header: str) -> None:
    policy = hpkp(
        "https://example.com/\nPublic-Key-Pins: "
        + header.format(a=b64(world.root), b=b64(world.root2))
    )
    assert policy.rules[0].problems
    got = verdict(policy, "example.com", report_for(world, "example.com"))
    assert got.verdict is Verdict.CONFIG_ERROR
    assert "must be a quoted string" in got.detail


def test_edge_46_hpkp_max_age_is_capped_and_zero_deletes(world: World) -> None:
    policy = hpkp(f"""
        https://example.com/
        Public-Key-Pins: max-age=99999999; {both(world.root, world.root2)}
        https://old.example.com/
        Public-Key-Pins: max-age=0; {both(world.root, world.root2)}
        """)
    report = report_for(world, "example.com")
    got = verdict(policy, "example.com", report)
    assert got.verdict is Verdict.PASS
    body = hpkp_report(got, [], [], port=443, now=NOW)
    assert body["effective-expiration-date"] == "2026-03-02T00:00:00Z"  # now + 60 days
    deleted = verdict(policy, "old.example.com", report_for(world, "old.example.com"))
    assert deleted.verdict is Verdict.NOT_PINNED
    assert "max-age=0" in deleted.detail


def test_edge_47_hpkp_report_only_reports_and_needs_a_report_uri(world: World) -> None:
    policy = hpkp(f"""
        https://example.com/
        Public-Key-Pins-Report-Only: {both(world.inter2, world.root2)}; report-uri="https://r.x/"
        https://quiet.example.com/
        Public-Key-Pins-Report-Only: {both(world.inter2, world.root2)}
        """)
    report = report_for(world, "example.com")
    got = verdict(policy, "example.com", report)
    assert got.verdict is Verdict.FAIL_REPORT_ONLY
    shown = failure_formats(got, report, port=443, now=NOW)
    assert set(shown["report"]) == {
        "date-time",
        "hostname",
        "port",
        "effective-expiration-date",
        "include-subdomains",
        "noted-hostname",
        "served-certificate-chain",
        "validated-certificate-chain",
        "known-pins",
    }
    quiet = verdict(policy, "quiet.example.com", report_for(world, "quiet.example.com"))
    assert quiet.verdict is Verdict.NOT_PINNED


def _chrome(world: World, bad: Issued, stamp: int = 1767225600) -> ClientPolicy:
    names = {"Good": world.root.pin, "Backup": world.root2.pin, "Bad": bad.pin}
    return chromium(
        '{"name": "example.com", "pins": "corp", "include_subdomains": true},'
        '{"name": "login.example.com", "pins": "corp"},'
        '{"name": "old.example.org", "pins": "blocklist", "include_subdomains": true}',
        '{"name": "corp", "static_spki_hashes": ["Good", "Backup"], '
        '"bad_static_spki_hashes": ["Bad"]},'
        '{"name": "blocklist", "bad_static_spki_hashes": ["Bad"]}',
        names,
        stamp,
    )


def test_edge_48_chromium_bad_pin_wins(world: World) -> None:
    policy = _chrome(world, world.inter)  # the served intermediate is a bad pin
    got = verdict(policy, "www.example.com", report_for(world, "www.example.com"))
    assert got.verdict is Verdict.FAIL_ENFORCED
    assert "bad pin" in got.detail


def test_edge_49_chromium_bad_only_pinset_passes_without_them(world: World) -> None:
    policy = _chrome(world, world.inter2)
    got = verdict(policy, "a.old.example.org", report_for(world, "a.old.example.org"))
    assert got.verdict is Verdict.PASS


def test_edge_50_chromium_walk_up_and_the_two_lookups(world: World) -> None:
    exact_only = chromium(
        '{"name": "example.com", "pins": "corp"}',
        '{"name": "corp", "static_spki_hashes": ["Good"]}',
        {"Good": world.root.pin},
        1767225600,
    )
    got = verdict(exact_only, "a.example.com", report_for(world, "a.example.com"))
    assert got.verdict is Verdict.NOT_PINNED
    policy = _chrome(world, world.inter2)
    got = verdict(policy, "b.login.example.com", report_for(world, "b.login.example.com"))
    assert got.verdict is Verdict.AMBIGUOUS
    assert got.alternatives == (
        ("component-updated list", Verdict.PASS),
        ("compiled-in list", Verdict.NOT_PINNED),
    )


def test_edge_51_chromium_list_older_than_70_days_is_not_enforced(world: World) -> None:
    policy = _chrome(world, world.inter, stamp=1723121786)  # 2024-08-08
    now = datetime(2024, 10, 17, 12, 57, tzinfo=timezone.utc)
    pki = PKI(now)
    root = pki.root("2024 Root")
    inter = pki.intermediate("2024 Intermediate", root)
    report = analyze_chain(
        [pki.leaf("www.example.com", inter).der, inter.der],
        store_of(root),
        "www.example.com",
        now,
        cache=CertificateCache(),
    )
    got = verdict(policy, "www.example.com", report, now=now)
    assert got.verdict is Verdict.NOT_ENFORCED_EXPIRED
    assert "70 days old" in got.detail
    day_before = now - timedelta(days=1)
    assert (
        verdict(policy, "www.example.com", report, now=day_before).verdict is Verdict.FAIL_ENFORCED
    )


def test_edge_52_chromium_local_root_bypasses(world: World) -> None:
    policy = _chrome(world, world.inter)
    report = report_for(world, "www.example.com")
    local = Environment(local_anchors=frozenset({world.root.pin}))
    got = verdict(policy, "www.example.com", report, env=local)
    assert got.verdict is Verdict.BYPASSED_LOCAL_ANCHOR
    assert failure_formats(got, report, port=443, now=NOW) == {}  # no report


# --- cross-cutting -------------------------------------------------------------------


def test_edge_53_cross_signed_intermediate_keeps_its_pin(world: World) -> None:
    cross = world.pki.cross_sign(world.inter, world.root2)
    policy = okhttp(f"example.com: {p(world.inter)}")
    report = report_for(world, "example.com", [world.leaf("example.com"), cross], [world.root2])
    assert verdict(policy, "example.com", report).verdict is Verdict.PASS


def test_edge_54_leaf_renewal_same_key_passes_new_key_fails(world: World) -> None:
    leaf = world.leaf("renew.example.com")
    policy = okhttp(f"renew.example.com: {p(leaf)}, {p(world.root2)}")
    same_key = world.pki.leaf("renew.example.com", world.inter, key=leaf.key, serial=4242)
    report = report_for(world, "renew.example.com", [same_key, world.inter])
    got = verdict(policy, "renew.example.com", report)
    assert got.verdict is Verdict.PASS
    endpoint = Endpoint(
        "e", "renew.example.com", 443, "renew.example.com", None, client_policies=(policy,)
    )
    known = key_index([world.root.cert, world.root2.cert])
    keys = {f.key for f in client_findings(endpoint, [got], report, NOW, known_keys=known)}
    assert keys == {("leaf_only_pin", "warning", 0)}  # the rotation risk, flagged ahead
    new_key = world.pki.leaf("renew.example.com", world.inter)
    report = report_for(world, "renew.example.com", [new_key, world.inter])
    assert verdict(policy, "renew.example.com", report).verdict is Verdict.FAIL_ENFORCED


@dataclass
class _Gen:
    x1: Issued
    x2: Issued
    ye: Issued
    ye_by_x2: Issued
    x2_by_x1: Issued
    ye1: Issued
    leaf: Issued


@pytest.fixture(scope="module")
def gen_y() -> _Gen:
    pki = PKI(NOW)
    x1 = pki.root("ISRG Root X1 (test)")
    x2 = pki.root("ISRG Root X2 (test)")
    ye = pki.root("Root YE (test)")
    ye1 = pki.intermediate("YE1 (test)", ye)
    return _Gen(
        x1,
        x2,
        ye,
        pki.cross_sign(ye, x2),
        pki.cross_sign(x2, x1),
        ye1,
        pki.leaf("lobste.rs", ye1),
    )


def _paths(served: Sequence[Issued], anchors: Sequence[Issued]) -> tuple[ChainReport, list[Any]]:
    store = store_of(*anchors)
    cache = CertificateCache()
    ders = [s.der for s in served]
    report = analyze_chain(ders, store, "lobste.rs", NOW, cache=cache)
    return report, list(candidate_paths(ders, store, NOW, cache=cache))


def test_edge_55_pin_on_x1_fails_at_the_first_trusted_signer(gen_y: _Gen) -> None:
    g = gen_y
    policy = okhttp(f"lobste.rs: {p(g.x1)}")
    report, extra = _paths([g.leaf, g.ye1, g.ye_by_x2], [g.x1, g.x2])
    assert report.path[-1].facts.subject == g.x2.subject
    assert verdict(policy, "lobste.rs", report, extra=extra).verdict is Verdict.FAIL_ENFORCED


def test_edge_55_cross_sign_to_x1_makes_it_path_dependent(gen_y: _Gen) -> None:
    g = gen_y
    policy = okhttp(f"lobste.rs: {p(g.x1)}")
    report, extra = _paths([g.leaf, g.ye1, g.ye_by_x2, g.x2_by_x1], [g.x1, g.x2])
    assert len(extra) == 2
    got = verdict(policy, "lobste.rs", report, extra=extra)
    assert got.verdict is Verdict.PATH_DEPENDENT
    assert sorted(pv.verdict.value for pv in got.paths) == ["fail_enforced", "pass"]
    endpoint = Endpoint("e", "lobste.rs", 443, "lobste.rs", None, client_policies=(policy,))
    keys = {f.key for f in client_findings(endpoint, [got], report, NOW)}
    assert ("client_ambiguous", "critical", None) in keys


def test_edge_55_root_ye_as_an_anchor_fails(gen_y: _Gen) -> None:
    g = gen_y
    policy = okhttp(f"lobste.rs: {p(g.x1)}")
    report, extra = _paths([g.leaf, g.ye1], [g.x1, g.x2, g.ye])
    assert verdict(policy, "lobste.rs", report, extra=extra).verdict is Verdict.FAIL_ENFORCED


def test_edge_56_trust_store_profiles_disagree(world: World) -> None:
    """Pin = a root one store has and another lacks (GTS Root R2: in Debian's
    store, not in certifi 2026.05.20): each store gives its own verdict, so an
    endpoint is judged against the store its clients have (``trust:``)."""
    r2 = world.pki.root("GTS Root R2 (test)")
    wr2 = world.pki.intermediate("WR2 (test)", r2)
    leaf = world.pki.leaf("gts.example.com", wr2)
    policy = okhttp(f"gts.example.com: {p(r2)}, {p(world.root2)}")
    debian = report_for(world, "gts.example.com", [leaf, wr2], [r2, world.root2])
    certifi_like = report_for(world, "gts.example.com", [leaf, wr2], [world.root2])
    assert debian.valid and not certifi_like.valid
    verdicts = [
        judge(policy, "gts.example.com", report_paths(r), NOW, valid=r.valid).verdict
        for r in (certifi_like, debian)
    ]
    assert verdicts == [Verdict.CHAIN_INVALID, Verdict.PASS]


# --- the endpoint view -------------------------------------------------------------------


def test_several_clients_get_a_verdict_each(world: World) -> None:
    android = nsc(
        f"<domain-config><domain>example.com</domain>{pin_set(world.root)}</domain-config>"
    )
    ok = okhttp(f"example.com: {p(world.inter2)}")
    store = store_of(world.root, world.root2)
    report = analyze_chain(
        [world.leaf("example.com").der, world.inter.der], store, "example.com", NOW
    )
    endpoint = Endpoint("e", "example.com", 443, "example.com", None, client_policies=(android, ok))
    verdicts, findings = assess_clients(endpoint, report, store, NOW)
    assert [(v.client, v.verdict) for v in verdicts] == [
        (Client.ANDROID, Verdict.PASS),
        (Client.OKHTTP, Verdict.FAIL_ENFORCED),
    ]
    assert verdicts[1].failure is not None
    assert str(verdicts[1].failure["message"]).startswith("Certificate pinning failure!\n")
    assert {f.key for f in findings} >= {("client_pin_failure", "critical", None)}


@pytest.mark.parametrize(
    ("expiration", "expected"),
    [("0001-01-01", Verdict.NOT_ENFORCED_EXPIRED), ("9999-12-31", Verdict.FAIL_ENFORCED)],
)
def test_android_expiry_at_the_ends_of_time(
    world: World, expiration: str, expected: Verdict
) -> None:
    """The device time-zone window around a date at the edge of the calendar
    must not overflow (it did for 0001-01-01 and 9999-12-31)."""
    policy = nsc(
        "<domain-config><domain>api.example.com</domain>"
        f"{pin_set('A' * 43 + '=', 'B' * 43 + '=', expiration=expiration)}</domain-config>"
    )
    got = verdict(policy, "api.example.com", report_for(world, "api.example.com"))
    assert got.verdict is expected


# --- behaviour mutation testing found unasserted (issue 19, docs/mutation.md) -------


def test_trustkit_subdomains_of_example_net_do_not_cover_example_com(world: World) -> None:
    """TrustKit matches subdomains only under the policy domain's own public
    suffix: ``www.example.com`` ends in ``.example`` once the suffix ``com`` is
    cut, like ``example.net`` without ``net``, and must still not match."""
    policy = trustkit(
        {
            "example.net": {
                "TSKIncludeSubdomains": True,
                "TSKPublicKeyHashes": [b64(world.inter2), b64(world.root2)],
            }
        }
    )
    other = verdict(policy, "www.example.com", report_for(world, "www.example.com"))
    assert other.verdict is Verdict.NOT_PINNED
    assert other.detail == "no rule of the policy matches this host"
    own = verdict(policy, "www.example.net", report_for(world, "www.example.net"))
    assert own.verdict is Verdict.FAIL_ENFORCED


def test_trustkit_the_most_specific_of_nested_rules_wins(world: World) -> None:
    policy = trustkit(
        {
            "example.com": {
                "TSKIncludeSubdomains": True,
                "TSKPublicKeyHashes": [b64(world.inter2), b64(world.root2)],
            },
            "api.example.com": {
                "TSKIncludeSubdomains": True,
                "TSKPublicKeyHashes": [b64(world.root), b64(world.root2)],
            },
        }
    )
    deep = verdict(policy, "v1.api.example.com", report_for(world, "v1.api.example.com"))
    assert deep.verdict is Verdict.PASS
    assert [r.host for r in deep.rules] == ["api.example.com"]
    assert deep.matched == (world.root.pin,)
    shallow = verdict(policy, "www.example.com", report_for(world, "www.example.com"))
    assert shallow.verdict is Verdict.FAIL_ENFORCED
    assert [r.host for r in shallow.rules] == ["example.com"]


def test_trustkit_passes_on_an_rsa_2048_path(world: World) -> None:
    """TrustKit rebuilds the SPKI of RSA 2048/3072/4096 keys; the other
    TrustKit tests use EC keys only."""
    pki = world.pki
    root = pki.root("RSA Root", key_type="rsa2048")
    inter = pki.intermediate("RSA Intermediate", root, key_type="rsa2048")
    leaf = pki.leaf("rsa.example.com", inter, key_type="rsa2048")
    policy = trustkit({"rsa.example.com": {"TSKPublicKeyHashes": [b64(root), b64(world.root2)]}})
    report = report_for(world, "rsa.example.com", [leaf, inter], [root])
    got = verdict(policy, "rsa.example.com", report)
    assert got.verdict is Verdict.PASS
    assert got.matched == (root.pin,)
    leaf_pinned = trustkit(
        {"rsa.example.com": {"TSKPublicKeyHashes": [b64(leaf), b64(world.root2)]}}
    )
    got = verdict(leaf_pinned, "rsa.example.com", report)
    assert got.verdict is Verdict.PASS  # every key on the way down is rebuilt
    assert got.matched == (leaf.pin,)


def _chromium_copy(rules: str, *, stamp: str | None = None) -> ClientPolicy:
    """A Chromium pin-set as an inventory copy (``client: chromium``), which
    may leave ``list_timestamp`` out."""
    head = "version: 1\npinsets:\n  chrome:\n    client: chromium\n"
    if stamp is not None:
        head += f"    list_timestamp: '{stamp}'\n"
    body = textwrap.indent(textwrap.dedent(rules), "      ")
    inventory = load_inventory_text(head + "    rules:\n" + body, "inv.yaml")
    return inventory.policies["chrome"]


def test_chromium_policy_without_list_timestamp_is_judged(world: World) -> None:
    good = _chromium_copy(
        f"""\
        - host: example.com
          include_subdomains: true
          pins: ['{world.root.pin}']
        """
    )
    assert good.list_timestamp is None
    assert enforcement_window(good, good.rules[0]) == (None, None)
    report = report_for(world, "www.example.com")
    assert verdict(good, "www.example.com", report).verdict is Verdict.PASS
    wrong = _chromium_copy(
        f"""\
        - host: example.com
          include_subdomains: true
          pins: ['{world.root2.pin}']
        """
    )
    later = NOW + timedelta(days=3650)  # no list age: enforced for ever
    got = verdict(wrong, "www.example.com", report, now=later)
    assert got.verdict is Verdict.FAIL_ENFORCED
    assert got.detail == "no static pin matches the path"


def test_chromium_two_lookups_that_agree_are_not_ambiguous(world: World) -> None:
    """b.login.example.com: the compiled-in list stops at login.example.com
    (exact), the component list walks on to example.com, whose entry declares
    no pin-set: both say not pinned, so the verdict is simply NOT_PINNED."""
    policy = _chromium_copy(
        f"""\
        - host: example.com
          include_subdomains: true
          pinset: false
        - host: login.example.com
          pins: ['{world.root.pin}']
        """,
        stamp="2025-12-20T00:00:00Z",
    )
    got = verdict(policy, "b.login.example.com", report_for(world, "b.login.example.com"))
    assert got.verdict is Verdict.NOT_PINNED
    assert got.alternatives == ()
    assert got.detail == "the selected rule declares no pin-set"


def test_ats_matched_lists_the_ca_identity_hits(world: World) -> None:
    leaf = world.leaf("example.com")
    policy = ats(
        {
            "example.com": {
                "NSPinnedCAIdentities": identities(world.root2, world.inter),
                "NSPinnedLeafIdentities": identities(leaf),
            }
        }
    )
    got = verdict(policy, "example.com", report_for(world, "example.com"))
    assert got.verdict is Verdict.PASS
    assert got.matched == (leaf.pin, world.inter.pin)
    ca_only = ats({"example.com": {"NSPinnedCAIdentities": identities(world.root, world.root2)}})
    got = verdict(ca_only, "example.com", report_for(world, "example.com"))
    assert got.matched == (world.root.pin,)


def test_trustkit_ios_compares_the_host_exactly_as_given(world: World) -> None:
    policy = trustkit({"example.com": {"TSKPublicKeyHashes": [b64(world.root), b64(world.root2)]}})
    got = verdict(policy, "Example.com", report_for(world, "example.com", name="Example.com"))
    assert got.verdict is Verdict.NOT_PINNED
    assert got.host == "Example.com"
    assert got.notes == (
        "TrustKit policy 'example.com' does not apply to 'Example.com': TrustKit looks "
        "domains up case-sensitively",
    )


def test_trailing_dots_each_client_its_own_way(world: World) -> None:
    """HPKP and Chromium drop every trailing dot, Android NSC one (it strips the
    dot of an absolute name, then compares), after IDNA lower-casing."""
    browser = hpkp(f"""
        https://example.com/
        Public-Key-Pins: max-age=5184000; {both(world.root, world.root2)}
        """)
    android = nsc(
        f"<domain-config><domain>example.com</domain>{pin_set(world.root)}</domain-config>"
    )
    assert canonical_host(browser, "Example.COM..") == "example.com"
    assert canonical_host(android, "Example.COM.") == "example.com"
    assert canonical_host(android, "example.com..") == "example.com."


def test_okhttp_3_exact_and_wildcard_patterns(world: World) -> None:
    """OkHttp 3 matches ``*.`` patterns on what follows the host's first dot,
    exact patterns on the whole host (the version-4 tests do not reach it)."""
    policy = parse_okhttp_list(
        f"example.com: {p(world.root)}\n*.example.org: {p(world.root)}\n".encode(),
        "pins.txt",
        name="app",
        version=3,
    )
    assert verdict(policy, "example.com", report_for(world, "example.com")).verdict is (
        Verdict.PASS
    )
    assert verdict(policy, "www.example.com", report_for(world, "www.example.com")).verdict is (
        Verdict.NOT_PINNED
    )
    assert verdict(policy, "a.example.org", report_for(world, "a.example.org")).verdict is (
        Verdict.PASS
    )


def test_hpkp_a_later_header_that_deletes_unpins_the_subdomains(world: World) -> None:
    policy = hpkp(f"""
        https://example.com/
        Public-Key-Pins: max-age=5184000; includeSubDomains; {both(world.inter2, world.root)}
        https://example.com/
        Public-Key-Pins: max-age=0; {both(world.inter2, world.root)}
        """)
    got = verdict(policy, "www.example.com", report_for(world, "www.example.com"))
    assert got.verdict is Verdict.NOT_PINNED
    assert got.detail == "no rule of the policy matches this host"


def test_hpkp_a_report_only_header_leaves_the_noted_pins_alone(world: World) -> None:
    policy = hpkp(f"""
        https://example.com/
        Public-Key-Pins: max-age=5184000; includeSubDomains; {both(world.inter2, world.root)}
        https://example.com/
        Public-Key-Pins-Report-Only: {both(world.inter2, world.root2)}; report-uri="https://r.x/"
        """)
    got = verdict(policy, "www.example.com", report_for(world, "www.example.com"))
    assert got.verdict is Verdict.PASS
    assert got.matched == (world.root.pin,)


def test_hpkp_the_last_report_only_header_for_a_host_counts(world: World) -> None:
    policy = hpkp(f"""
        https://example.com/
        Public-Key-Pins-Report-Only: {both(world.inter, world.root)}; report-uri="https://r.x/"
        https://example.com/
        Public-Key-Pins-Report-Only: {both(world.inter2, world.root2)}; report-uri="https://r.x/"
        """)
    got = verdict(policy, "example.com", report_for(world, "example.com"))
    assert got.verdict is Verdict.FAIL_REPORT_ONLY


def test_a_generic_client_pinset_applies_to_its_exact_hosts_only(world: World) -> None:
    inventory = load_inventory_text(
        "version: 1\npinsets:\n  plain:\n    client: generic\n    rules:\n"
        f"      - host: example.com\n        pins: ['{world.root.pin}']\n",
        "inv.yaml",
    )
    policy = inventory.policies["plain"]
    got = verdict(policy, "example.com", report_for(world, "example.com"))
    assert (got.verdict, [r.host for r in got.rules]) == (Verdict.PASS, ["example.com"])
    other = verdict(policy, "www.example.com", report_for(world, "www.example.com"))
    assert other.verdict is Verdict.NOT_PINNED


def test_trustkit_a_later_rule_for_the_same_domain_replaces_the_earlier(world: World) -> None:
    """In an inventory copy two rules may name one domain; TrustKit reads a
    dictionary, where the later key wins."""
    inventory = load_inventory_text(
        "version: 1\npinsets:\n  tk:\n    client: trustkit\n    rules:\n"
        f"      - host: example.com\n        pins: ['{world.inter2.pin}', '{world.root2.pin}']\n"
        f"      - host: example.com\n        pins: ['{world.root.pin}', '{world.root2.pin}']\n",
        "inv.yaml",
    )
    got = verdict(inventory.policies["tk"], "example.com", report_for(world, "example.com"))
    assert got.verdict is Verdict.PASS
    assert got.pins == (world.root.pin, world.root2.pin)


def test_an_okhttp_pinset_never_expires_whatever_its_platform(world: World) -> None:
    """``expires`` in an OkHttp copy means nothing to OkHttp, on Android too
    (the Android device window is for NSC and TrustKit-Android)."""
    inventory = load_inventory_text(
        "version: 1\npinsets:\n  app:\n    client: okhttp\n    platform: android\n    rules:\n"
        f"      - host: example.com\n        expires: 2025-06-01\n"
        f"        pins: ['{world.root2.pin}']\n",
        "inv.yaml",
    )
    policy = inventory.policies["app"]
    assert enforcement_window(policy, policy.rules[0]) == (None, None)
    got = verdict(policy, "example.com", report_for(world, "example.com"))
    assert got.verdict is Verdict.FAIL_ENFORCED
    assert got.detail == "no pin matches the path"


def test_enforce_false_is_trustkits_alone(world: World) -> None:
    """Only TrustKit reports without blocking; another client's rule copied
    with ``enforce: false`` still fails the connection."""
    inventory = load_inventory_text(
        "version: 1\npinsets:\n  app:\n    client: android\n    rules:\n"
        f"      - host: example.com\n        enforce: false\n"
        f"        pins: ['{world.root2.pin}']\n",
        "inv.yaml",
    )
    got = verdict(inventory.policies["app"], "example.com", report_for(world, "example.com"))
    assert got.verdict is Verdict.FAIL_ENFORCED


def test_hpkp_report_only_max_age_zero_deletes_nothing(world: World) -> None:
    """max-age=0 deletes noted pins only in Public-Key-Pins; a report-only
    header is never noted, so its max-age=0 changes nothing."""
    policy = hpkp(f"""
        https://example.com/
        Public-Key-Pins: max-age=5184000; {both(world.inter2, world.root)}
        https://example.com/
        Public-Key-Pins-Report-Only: max-age=0; {both(world.root, world.root2)}; report-uri="https://r.x/"
        """)
    got = verdict(policy, "example.com", report_for(world, "example.com"))
    assert got.verdict is Verdict.PASS
    assert got.detail == f"{world.root.pin} is on the path; noted"


def test_hpkp_report_only_pins_that_match_pass(world: World) -> None:
    policy = hpkp(f"""
        https://example.com/
        Public-Key-Pins-Report-Only: {both(world.root, world.root2)}; report-uri="https://r.x/"
        """)
    got = verdict(policy, "example.com", report_for(world, "example.com"))
    assert (got.verdict, got.detail) == (Verdict.PASS, "the report-only pins match")
    assert got.matched == (world.root.pin,)


def test_trustkit_android_checks_pins_the_platform_way(world: World) -> None:
    """TrustKit-Android leaves the chain to Android's pin check: a P-521 key
    above the pin does not block as it does on iOS (edge 34)."""
    big_root = world.pki.root("P-521 Root (android)", key_type="ec521")
    inter = world.pki.intermediate("P-256 Intermediate (android)", big_root)
    leaf = world.pki.leaf("example.com", inter)
    xml = (
        "<network-security-config><domain-config><domain>example.com</domain>"
        f'{pin_set(inter, world.root2)}<trustkit-config enforcePinning="true"/>'
        "</domain-config></network-security-config>"
    ).encode()
    policy = parse_trustkit_android(xml, "nsc.xml", name="tk")
    report = report_for(world, "example.com", [leaf, inter], [big_root])
    got = verdict(policy, "example.com", report)
    assert (got.verdict, got.matched) == (Verdict.PASS, (inter.pin,))


def test_judge_takes_a_chain_as_valid_unless_told(world: World) -> None:
    policy = okhttp(f"example.com: {p(world.root)}")
    report = report_for(world, "example.com")
    assert judge(policy, "example.com", report_paths(report), NOW).verdict is Verdict.PASS


def test_judge_endpoint_without_jvm_chains(world: World) -> None:
    policy = okhttp(f"example.com: {p(world.root)}")
    endpoint = Endpoint("e", "example.com", 443, "example.com", None, client_policies=(policy,))
    got = judge_endpoint(endpoint, [policy], report_for(world, "example.com"), NOW)
    assert [v.verdict for v in got] == [Verdict.PASS]


def _generic(pin: Pin) -> ClientPolicy:
    inventory = load_inventory_text(
        "version: 1\npinsets:\n  plain:\n    client: generic\n    rules:\n"
        f"      - host: lobste.rs\n        pins: ['{pin}']\n",
        "inv.yaml",
    )
    return inventory.policies["plain"]


_ANDROID_CHOICE = "the Android platform's verifier builds the chain, which path is not fixed"
_APPLE_CHOICE = "Apple's trust evaluation builds the chain, which path is not fixed"
_BROWSER_CHOICE = "the browser's verifier builds the chain; it differs by platform and version"


@pytest.mark.parametrize(
    ("client", "choice"),
    [
        ("android", _ANDROID_CHOICE),
        ("trustkit-android", _ANDROID_CHOICE),
        ("trustkit", _APPLE_CHOICE),
        ("ios", _APPLE_CHOICE),
        ("chromium", _BROWSER_CHOICE),
        ("generic", "which path a verifier builds is not fixed"),
    ],
)
def test_a_path_dependent_verdict_says_who_picks_the_path(
    gen_y: _Gen, client: str, choice: str
) -> None:
    g = gen_y
    report, extra = _paths([g.leaf, g.ye1, g.ye_by_x2, g.x2_by_x1], [g.x1, g.x2])
    # x1 is on one of the two paths; the backup pin on neither
    domain = f"<domain>lobste.rs</domain>{pin_set(g.x1, ZERO.b64)}"
    policies = {
        "android": lambda: nsc(f"<domain-config>{domain}</domain-config>"),
        "trustkit-android": lambda: parse_trustkit_android(
            f"<network-security-config><domain-config>{domain}"
            '<trustkit-config enforcePinning="true"/></domain-config>'
            "</network-security-config>".encode(),
            "nsc.xml",
            name="tk",
        ),
        "trustkit": lambda: trustkit({"lobste.rs": {"TSKPublicKeyHashes": [b64(g.x1), ZERO.b64]}}),
        "ios": lambda: ats({"lobste.rs": {"NSPinnedCAIdentities": identities(g.x1)}}),
        "chromium": lambda: chromium(
            '{"name": "lobste.rs", "pins": "x"}',
            '{"name": "x", "static_spki_hashes": ["X1"]}',
            {"X1": g.x1.pin},
            1767225600,
        ),
        "generic": lambda: _generic(g.x1.pin),
    }
    got = verdict(policies[client](), "lobste.rs", report, extra=extra)
    assert got.verdict is Verdict.PATH_DEPENDENT
    assert got.detail.startswith(
        f"the verdict depends on the path the verifier builds ({choice}): "
    )
