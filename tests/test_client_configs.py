"""Client pin configurations: the fixtures of tests/data/clients read by each
importer (rules, pins, expiry, every problem with file:line:column), the
§11 host → verdict table, hostile files refused, and the round trip
`pinaudit import` → inventory → `pinaudit validate`, equal to `from:`."""

from __future__ import annotations

import io
import json
import os
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from scanner.cli import main
from scanner.clients import applies, judge
from scanner.errors import ClientConfigError, InventoryError
from scanner.importers import read_policy
from scanner.importers.okhttp import parse_okhttp_source
from scanner.inventory import load_inventory, load_inventory_text
from scanner.model import Client, ClientPolicy, HostMode, Location, Pin, Platform, Verdict
from scanner.pins import parse_pin

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data" / "clients"
SCHEMA = json.loads((ROOT / "inventories" / "schema.json").read_text())

X1 = parse_pin("sha256/C5+lpZ7tcVwmwQIMcRtPbsQtWLABXhQzejna0wHFr8M=")
X2 = parse_pin("sha256/diGVwiVYbubAI3RW4hB9xU8e/CH2GnkuvVFZE8zmgzI=")
YE = parse_pin("sha256/sCkq5UWXjg+7mKu9lMhhYF5bGLsy7VI/UNW3tccdR7w=")
R10 = parse_pin("sha256/K7rZOrXHknnsEhUH8nLL4MZkejquUuIvOIr6tCa0rbo=")
R11 = parse_pin("sha256/bdrBhpj38ffhxpubzkINl0rG+UyossdhcBYj+Zx2fcc=")
GTS1 = parse_pin("sha256/hxqRlPTu1bMS/0DITB1SSu0vd4u/8l8TjPgfaAp63Gc=")
GTS4 = parse_pin("sha256/mEflZT5enoR1FuXLgYYGqnVEoZvmf9c2bVBpiOjYQ0c=")
R3 = parse_pin("sha256/jQJTbIh0grw0/1TkHSumWb+Fs0Ggogr621gT3PvPKG0=")
AMAZON1 = parse_pin("sha256/++MBgDH5WGvL9Bcn5Be30cRcL0f5O+NyoXuWtQdX1aI=")
AMAZON2 = parse_pin("sha256/f0KW/FtqTjs108NpYj42SrGvOB2PpxIVM8nWxjPqJGE=")

FIXTURES = [
    ("android", "android_nsc.xml"),
    ("android", "android_nsc_bad.xml"),
    ("okhttp", "okhttp_pins.kt"),
    ("okhttp", "okhttp_pins.txt"),
    ("okhttp", "okhttp_bad.kt"),
    ("trustkit", "trustkit_info.plist"),
    ("trustkit", "trustkit_bad.plist"),
    ("trustkit-android", "android_nsc.xml"),
    ("ios", "ios_nspinneddomains.plist"),
    ("hpkp", "hpkp_headers.txt"),
    ("chromium", "chromium_pins.json"),
]


def policy(kind: str, name: str) -> ClientPolicy:
    return read_policy(kind, str(DATA / name), display=f"clients/{name}", name="app")


def verdict_of(p: ClientPolicy, host: str, now: datetime | None = None) -> Verdict:
    """The verdict without any chain: what the policy says before a chain is looked at
    (a path-independent verdict, or PASS/FAIL decided later: shown as CHAIN_INVALID)."""
    when = now or datetime(2026, 6, 1, tzinfo=timezone.utc)
    return judge(p, host, [], when, valid=False).verdict


def _json_view(value: Any) -> Any:
    """What an editor's YAML 1.2 view gives: dates stay strings."""
    if isinstance(value, dict):
        return {k: _json_view(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_view(v) for v in value]
    if isinstance(value, date):
        return value.isoformat()
    return value


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = main(list(argv), stdout=out, stderr=err)
    return int(status), out.getvalue(), err.getvalue()


# --- each format's fixture -----------------------------------------------------------


def test_android_fixture_rules_inheritance_and_expiry() -> None:
    p = policy("android", "android_nsc.xml")
    assert p.client is Client.ANDROID and p.problems == ()
    assert p.debug_overrides == ("user",)
    rules = {r.host: r for r in p.rules}
    assert rules["example.com"].mode is HostMode.SUBTREE
    assert rules["example.com"].pins == (X1, X2, YE)
    assert rules["example.com"].expires == date(2027, 6, 30)
    assert rules["api.example.com"].mode is HostMode.EXACT
    assert rules["api.example.com"].pins == (R10, R11, X1)
    assert rules["api.example.com"].expires == date(2026, 12, 31)
    assert rules["status.example.com"].pins == () and rules["status.example.com"].has_pinset
    assert rules["lab.example.net"].override_pins == ("user",)
    assert rules["api.example.com"].location == Location("clients/android_nsc.xml", 23, 13)


@pytest.mark.parametrize(
    ("host", "verdict", "pins"),
    [
        ("example.com", Verdict.CHAIN_INVALID, (X1, X2, YE)),
        ("a.b.example.com", Verdict.CHAIN_INVALID, (X1, X2, YE)),
        ("api.example.com", Verdict.CHAIN_INVALID, (R10, R11, X1)),
        ("v2.api.example.com", Verdict.CHAIN_INVALID, (X1, X2, YE)),
        ("x.status.example.com", Verdict.NOT_ENFORCED, ()),
        ("lab.example.net", Verdict.CHAIN_INVALID, (X1, X2)),
        ("other.example", Verdict.NOT_PINNED, ()),
    ],
)
def test_android_fixture_hosts(host: str, verdict: Verdict, pins: tuple[Pin, ...]) -> None:
    p = policy("android", "android_nsc.xml")
    got = judge(p, host, [], datetime(2026, 6, 1, tzinfo=timezone.utc), valid=False)
    assert (got.verdict, got.pins) == (verdict, pins)


def test_android_fixture_expiry_windows() -> None:
    p = policy("android", "android_nsc.xml")
    after = datetime(2027, 7, 1, tzinfo=timezone.utc)
    assert verdict_of(p, "a.b.example.com", after) is Verdict.NOT_ENFORCED_EXPIRED
    assert verdict_of(p, "api.example.com", after) is Verdict.NOT_ENFORCED_EXPIRED
    assert verdict_of(p, "lab.example.net", after) is Verdict.CHAIN_INVALID  # never expires


def test_android_malformed_fixture_every_problem_with_its_position() -> None:
    p = policy("android", "android_nsc_bad.xml")
    assert [str(x) for x in p.problems] == [
        "clients/android_nsc_bad.xml:5:9: <pin-set> is not allowed in <base-config>",
        "clients/android_nsc_bad.xml:11:9: Invalid expiration date in pin-set: '2026-13-01' "
        "(expected yyyy-MM-dd)",
        "clients/android_nsc_bad.xml:12:13: Unsupported pin digest algorithm: 'SHA-1'",
        "clients/android_nsc_bad.xml:13:13: digest length 20 does not match expected length "
        "for SHA-256 of 32",
        "clients/android_nsc_bad.xml:17:9: Duplicate domain name 'example.com': it has already "
        "been specified (at line 10)",
    ]
    assert verdict_of(p, "anything.example") is Verdict.CONFIG_ERROR


def test_okhttp_source_fixture() -> None:
    p = policy("okhttp", "okhttp_pins.kt")
    assert p.problems == () and p.notes == ()
    assert [(r.pattern, r.pins) for r in p.rules] == [
        ("api.example.com", (R11,)),
        ("*.example.com", (X1, X2)),
        ("**.example.net", (GTS1, GTS4)),
        ("legacy.example.org", (parse_pin("sha1/+BZRPP0bRJ8uayihlyIfuB9RTjw="), X2)),
    ]
    # the pattern split over lines points at its own line; constants resolved
    assert p.rules[1].location == Location("clients/okhttp_pins.kt", 15, 13)
    union = judge(p, "api.example.com", [], datetime(2026, 1, 1, tzinfo=timezone.utc))
    assert set(union.pins) == {R11, X1, X2}
    assert verdict_of(p, "example.com") is Verdict.NOT_PINNED
    assert verdict_of(p, "example.net") is Verdict.CHAIN_INVALID  # pinned
    assert verdict_of(p, "a.b.example.net") is Verdict.CHAIN_INVALID  # pinned
    assert verdict_of(p, "api.example.com.") is Verdict.NOT_PINNED  # the bypass
    assert applies(p, "api.example.com.")  # ... which `pinset: auto` still reports


def test_okhttp_list_fixture_equals_the_source_entries() -> None:
    listed = policy("okhttp", "okhttp_pins.txt")
    source = policy("okhttp", "okhttp_pins.kt")
    assert listed.rules == source.rules[:2]


def test_okhttp_malformed_fixture() -> None:
    p = policy("okhttp", "okhttp_bad.kt")
    assert [str(x) for x in p.problems] == [
        "clients/okhttp_bad.kt:5:10: Unexpected pattern: example.*",
        "clients/okhttp_bad.kt:6:29: pins must start with 'sha256/' or 'sha1/': "
        "sha512/C5+lpZ7tcVwmwQIMcRtPbsQtWLABXhQzejna0wHFr8M=",
    ]
    assert [r.dead_pins for r in p.rules if r.dead_pins] == [("sha256/AAAA",)]
    assert verdict_of(p, "www.example.com") is Verdict.CONFIG_ERROR


def test_okhttp_source_reads_java_reports_runtime_pins_and_skips_other_add_calls() -> None:
    java = b"""
    class Pins {
      static final String ROOT = "sha256/C5+lpZ7tcVwmwQIMcRtPbsQtWLABXhQzejna0wHFr8M=";
      void build(List<String> names) {
        names.add("not a pin call");
        names.add("example.com", "plain text");
        CertificatePinner p = new CertificatePinner.Builder()
            .add("java.example.com", ROOT,
                 "sha256/" + "diGVwiVYbubAI3RW4hB9xU8e/CH2GnkuvVFZE8zmgzI=")
            .add("dyn.example.com", pinFromServer())
            .build();
      }
    }
    """
    p = parse_okhttp_source(java, "Pins.java")
    assert [(r.pattern, r.pins) for r in p.rules] == [("java.example.com", (X1, X2))]
    assert p.problems == ()
    # the pin computed at run time is reported, never dropped and never a client error
    assert [str(u) for u in p.unresolved] == [
        "Pins.java:10:37: pins computed at run time: not imported: the pin `pinFromServer()` "
        "for dyn.example.com: computed by `pinFromServer(…)`"
    ]


def test_trustkit_fixture() -> None:
    p = policy("trustkit", "trustkit_info.plist")
    assert p.client is Client.TRUSTKIT and p.platform is Platform.IOS and p.problems == ()
    rules = {r.host: r for r in p.rules}
    assert rules["example.com"].expires == date(2027, 6, 30)
    assert rules["legacy.example.com"].excluded
    assert not rules["cdn.example.net"].enforce and rules["cdn.example.net"].pins == (R11,)
    assert rules["api.example.net"].pins == (AMAZON1, AMAZON2)
    midnight = datetime(2027, 6, 30, tzinfo=timezone.utc)
    www = judge(p, "www.example.com", [], midnight)
    assert www.enforce_until == midnight and www.verdict is Verdict.CHAIN_INVALID
    after = datetime(2027, 6, 30, 0, 0, 1, tzinfo=timezone.utc)
    assert verdict_of(p, "www.example.com", after) is Verdict.NOT_ENFORCED_EXPIRED
    assert verdict_of(p, "legacy.example.com") is Verdict.NOT_PINNED
    assert verdict_of(p, "api.example.net") is Verdict.CHAIN_INVALID


def test_trustkit_malformed_fixture() -> None:
    p = policy("trustkit", "trustkit_bad.plist")
    assert [str(x) for x in p.problems] == [
        "clients/trustkit_bad.plist:12:17: TrustKit configuration invalid: less than 2 pins "
        "(1 distinct) (ie. no backup pins)",
        "clients/trustkit_bad.plist:19:17: TrustKit configuration invalid: "
        "TSKIncludeSubdomains on 'co.uk', which is a public suffix",
        "clients/trustkit_bad.plist:26:13: TrustKit configuration invalid: invalid domain "
        "'intranet.corp': no known public suffix (TrustKit accepts only names under a "
        "registry suffix)",
    ]


def test_trustkit_android_reads_the_same_file_its_own_way() -> None:
    p = policy("trustkit-android", "android_nsc.xml")
    assert p.platform is Platform.ANDROID
    # digest="sha-256" is fine for the platform, not for TrustKit
    assert [str(x) for x in p.problems] == [
        'clients/android_nsc.xml:20:13: TrustKit supports only digest="SHA-256" (exactly), '
        "got 'sha-256'"
    ]
    # nested domain-configs inherit includeSubdomains in TrustKit-Android
    assert {r.host: r.mode for r in p.rules}["api.example.com"] is HostMode.SUBTREE


def test_ios_fixture() -> None:
    p = policy("ios", "ios_nspinneddomains.plist")
    rules = {r.host: r for r in p.rules}
    assert rules["example.com"].mode is HostMode.ONE_LEVEL
    assert rules["example.com"].pins == (X1, X2)
    assert rules["login.example.org"].leaf_pins == (Pin(X1.alg, bytes(32)),)
    assert [str(x) for x in rules["broken.example.org"].problems] == [
        "clients/ios_nspinneddomains.plist:48:13: 'broken.example.org': NSPinnedCAIdentities "
        "holds no usable identity, so ATS can never accept a chain for it"
    ]
    assert len(p.notes) == 2  # malformed entries are skipped, as ATS does
    assert verdict_of(p, "a.b.example.com") is Verdict.NOT_PINNED
    assert verdict_of(p, "broken.example.org") is Verdict.CONFIG_ERROR


def test_hpkp_fixture_examples() -> None:
    p = policy("hpkp", "hpkp_headers.txt")
    rules = {r.host: r for r in p.rules}
    assert rules["h1.example.com"].mode is HostMode.SUBTREE
    assert rules["h1.example.com"].report_uris == ("https://reports.example.com/hpkp",)
    assert rules["h2.example.com"].pins == (X2, X1) and rules["h2.example.com"].max_age == 99999999
    assert rules["h3.example.com"].report_only and not rules["h3.example.com"].enforce
    assert rules["h4.example.com"].max_age == 0
    assert [h for h, r in rules.items() if r.problems] == [
        "h5.example.com",
        "h6.example.com",
        "h7.example.com",
        "h8.example.com",
    ]
    assert verdict_of(p, "h4.example.com") is Verdict.NOT_PINNED  # deleted
    assert verdict_of(p, "h9.example.com") is Verdict.NOT_PINNED  # RO without report-uri
    for host in ("h5.example.com", "h6.example.com", "h7.example.com", "h8.example.com"):
        assert verdict_of(p, host) is Verdict.CONFIG_ERROR, host
    assert verdict_of(p, "deep.h1.example.com") is Verdict.CHAIN_INVALID  # includeSubDomains


def test_chromium_fixture() -> None:
    p = policy("chromium", "chromium_pins.json")
    assert p.list_timestamp == datetime(2024, 8, 8, 12, 56, 26, tzinfo=timezone.utc)
    rules = {r.host: r for r in p.rules}
    assert rules["example.com"].pins[:2] == (X1, X2) and rules["example.com"].bad_pins == (R3,)
    assert rules["example.com"].location == Location("clients/chromium_pins.json", 23, 7)
    assert "hsts-only.example.org" not in rules
    fresh = datetime(2024, 8, 20, tzinfo=timezone.utc)
    got = judge(p, "a.login.example.com", [], fresh, valid=False)
    assert got.verdict is Verdict.AMBIGUOUS
    assert verdict_of(p, "a.example.net", fresh) is Verdict.NOT_PINNED


def test_chromium_unknown_name_and_missing_pins_file(tmp_path: Path) -> None:
    (tmp_path / "p.json").write_text(
        '{"pinsets": [{"name": "s", "static_spki_hashes": ["Nope"]}],\n'
        ' "entries": [{"name": "example.com", "pins": "s"}]}'
    )
    p = read_policy("chromium", str(tmp_path / "p.json"), display="p.json")
    assert [x.message for x in p.problems] == [
        "pinset 's' static_spki_hashes: could not find the SPKI hash 'Nope' in the .pins file"
    ]
    assert [x.message for x in p.notes] == ["no .pins file: pin names cannot be resolved"]


# --- hostile and unreadable files ----------------------------------------------------


def test_entity_expansion_is_refused_with_its_position(tmp_path: Path) -> None:
    bomb = tmp_path / "nsc.xml"
    bomb.write_text(
        '<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n'
        ' <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">\n]>\n'
        "<network-security-config>&lol2;</network-security-config>\n"
    )
    with pytest.raises(ClientConfigError) as caught:
        read_policy("android", str(bomb), display="nsc.xml")
    assert str(caught.value) == (
        "nsc.xml:2:16: refused: a DTD (<!DOCTYPE ...>) is not allowed here"
    )
    plist = tmp_path / "Info.plist"
    plist.write_text(
        '<?xml version="1.0"?>\n<!DOCTYPE plist [<!ENTITY x "y">]>\n<plist><dict/></plist>\n'
    )
    with pytest.raises(ClientConfigError, match="entity declarations are not allowed"):
        read_policy("ios", str(plist), display="Info.plist")


def test_not_well_formed_xml_is_a_config_error_of_the_client(tmp_path: Path) -> None:
    broken = tmp_path / "nsc.xml"
    broken.write_text("<network-security-config>\n  <domain-config>\n</network-security-config>")
    p = read_policy("android", str(broken), display="nsc.xml")
    assert [str(x) for x in p.problems] == ["nsc.xml:3:3: not well-formed XML: mismatched tag"]


def test_missing_file_and_unknown_kind() -> None:
    with pytest.raises(ClientConfigError, match="cannot read"):
        read_policy("android", "/nonexistent/nsc.xml")
    with pytest.raises(ClientConfigError, match="unknown kind 'nope'"):
        read_policy("nope", str(DATA / "android_nsc.xml"))


# --- the inventory: from:, the copy, auto ------------------------------------------------


@pytest.mark.parametrize(("kind", "name"), FIXTURES)
def test_import_round_trips_into_a_valid_inventory_equal_to_from(
    kind: str, name: str, tmp_path: Path
) -> None:
    status, out, err = run("import", kind, str(DATA / name), "--name", "app")
    assert status == 0, err
    assert "Traceback" not in err
    copy = tmp_path / "copy.yaml"
    copy.write_text(out)
    status, validated, err = run("validate", "--inventory", str(copy))
    assert status == 0, err
    assert validated.startswith(f"{copy}: OK: ")
    import yaml

    jsonschema.validate(_json_view(yaml.safe_load(out)), SCHEMA)
    from_file = tmp_path / "from.yaml"
    from_file.write_text(
        f"version: 1\npinsets:\n  app:\n    from: {{{kind}: {json.dumps(str(DATA / name))}}}\n"
    )
    copied = load_inventory(copy).policies["app"]
    followed = load_inventory(from_file).policies["app"]
    assert copied == followed
    assert copied.rules  # every fixture has rules


def test_from_resolves_relative_to_the_inventory_and_auto_matches_hosts(tmp_path: Path) -> None:
    (tmp_path / "apps").mkdir()
    for name in ("android_nsc.xml", "okhttp_pins.kt"):
        (tmp_path / "apps" / name).write_bytes((DATA / name).read_bytes())
    (tmp_path / "inv.yaml").write_text(
        "version: 1\n"
        "pinsets:\n"
        "  app-android:\n    from: {android: apps/android_nsc.xml}\n"
        "  app-okhttp:\n    from: {okhttp: apps/okhttp_pins.kt}\n"
        "endpoints:\n"
        "  - host: api.example.com\n"
        "  - host: example.net\n"
        "  - host: other.example\n"
        "  - host: x.status.example.com\n    pinset: auto\n"
        "  - host: b.example.com\n    pinset: app-okhttp\n"
    )
    inventory = load_inventory(tmp_path / "inv.yaml")
    got = {e.host: [p.name for p in e.client_policies] for e in inventory.endpoints}
    assert got == {
        "api.example.com": ["app-android", "app-okhttp"],
        "example.net": ["app-okhttp"],  # OkHttp pins it, Android does not
        "other.example": [],
        "x.status.example.com": ["app-android"],
        "b.example.com": ["app-okhttp"],
    }
    assert all(e.pinset is None for e in inventory.endpoints)
    where = inventory.policies["app-android"].rules[0].location
    assert where == Location(os.path.join(str(tmp_path), "apps", "android_nsc.xml"), 16, 9)


def test_inventory_problems_for_client_pinsets() -> None:
    with pytest.raises(InventoryError) as caught:
        load_inventory_text(
            "version: 1\n"
            "pinsets:\n"
            "  a:\n    from: {android: missing.xml}\n"
            "  b:\n    from: {android: x.xml, okhttp: y.kt}\n"
            "  c:\n    client: nokia\n"
            "  auto:\n    pins: []\n"
            "  d:\n    client: okhttp\n    rules:\n      - host: 'example.*'\n        pins: []\n",
            "inv.yaml",
            base_dir=str(DATA),
        )
    assert [str(p) for p in caught.value.problems] == [
        f"inv.yaml:4:21: pinsets.a.from.android: file 'missing.xml' not found (looked for "
        f"{DATA / 'missing.xml'})",
        "inv.yaml:6:11: pinsets.b.from: name exactly one kind of file: android, okhttp, "
        "trustkit, trustkit-android, ios, hpkp, chromium",
        "inv.yaml:8:13: pinsets.c.client: unknown client 'nokia' (okhttp, android, trustkit, "
        "ios, hpkp, chromium, generic)",
        "inv.yaml:9:3: pinsets.auto: pinset name 'auto' is reserved (pinset: auto picks client "
        "pin-sets by host)",
        "inv.yaml:14:15: pinsets.d.rules[0].host: Unexpected pattern: example.*",
    ]


def test_hostile_client_file_is_an_inventory_problem_at_its_own_position(tmp_path: Path) -> None:
    (tmp_path / "nsc.xml").write_text('<!DOCTYPE x [<!ENTITY a "b">]>\n<x/>\n')
    (tmp_path / "inv.yaml").write_text("version: 1\npinsets:\n  a:\n    from: {android: nsc.xml}\n")
    status, _, err = run("validate", "--inventory", str(tmp_path / "inv.yaml"))
    assert status == 2
    assert err.splitlines()[0].endswith(
        "nsc.xml:1:13: pinsets.a.from: refused: a DTD (<!DOCTYPE ...>) is not allowed here"
    )


def test_validate_warns_about_what_the_client_rejects(tmp_path: Path) -> None:
    (tmp_path / "inv.yaml").write_text(
        "version: 1\npinsets:\n  bad:\n"
        f"    from: {{okhttp: {json.dumps(str(DATA / 'okhttp_bad.kt'))}}}\n"
        "endpoints:\n  - host: www.example.com\n"
    )
    status, out, err = run("validate", "--inventory", str(tmp_path / "inv.yaml"))
    assert status == 0
    assert out.endswith("OK: 1 endpoint, 1 pin-set, 1 file\n")
    lines = err.splitlines()
    assert lines[0] == (
        f"pinaudit validate: warning: {DATA / 'okhttp_bad.kt'}:5:10: Unexpected pattern: "
        "example.*: pinset 'bad': okhttp rejects this configuration (CONFIG_ERROR)"
    )
    assert lines[-1].startswith(f"pinaudit validate: note: {DATA / 'okhttp_bad.kt'}:7:29: dead pin")


def test_import_usage_errors() -> None:
    status, _, err = run("import", "okhttp", str(DATA / "okhttp_pins.kt"), "--pins", "x.pins")
    assert status == 2 and "--pins is for the chromium kind only" in err
    status, _, err = run("import", "android", "/nonexistent.xml")
    assert status == 2
    assert (
        err
        == "pinaudit import: error: /nonexistent.xml:1:1: cannot read: No such file or directory\n"
    )


# --- client pin-set keys, found unasserted by mutation testing (issue 19) --------------


def _problems(text: str) -> list[str]:
    with pytest.raises(InventoryError) as caught:
        load_inventory_text("version: 1\npinsets:\n" + text, "inv.yaml", base_dir=str(DATA))
    return [str(p) for p in caught.value.problems]


def _copy(text: str) -> ClientPolicy:
    inventory = load_inventory_text("version: 1\npinsets:\n  app:\n" + text, "inv.yaml")
    return inventory.policies["app"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # a pin-set written as a list is not a client pin-set
        ("  a: [x]\n", ["inv.yaml:3:6: pinsets.a: expected a mapping, got a list"]),
        # a bad value beside from: is said once, and the file is not read
        (
            "  a:\n    from: {android: android_nsc.xml}\n    platform: windows\n",
            ["inv.yaml:5:15: pinsets.a.platform: platform beside from: is for okhttp only"],
        ),
        ("  a:\n    client: ~\n", ["inv.yaml:4:13: pinsets.a.client: expected a string, got null"]),
        (
            "  a:\n    client: okhttp\n    errors: 5\n",
            ["inv.yaml:5:13: pinsets.a.errors: expected a list, got an integer"],
        ),
        # a rule without a host is said, and left out
        (
            "  a:\n    client: okhttp\n    rules:\n      - pins: []\n",
            ["inv.yaml:6:9: pinsets.a.rules[0]: missing required key 'host'"],
        ),
        # a bad version stops the pin-set: its rules are not read with some other version
        (
            "  a:\n    client: okhttp\n    okhttp_version: ~\n    rules:\n"
            "      - host: 'example.*'\n",
            ["inv.yaml:5:21: pinsets.a.okhttp_version: expected an integer, got null"],
        ),
    ],
)
def test_client_pinset_problems_are_said_once(text: str, expected: list[str]) -> None:
    assert _problems(text) == expected


def test_copy_list_timestamp_naive_is_utc_aware_is_kept() -> None:
    naive = _copy("    client: chromium\n    list_timestamp: '2024-08-08T12:56:26'\n")
    assert naive.list_timestamp == datetime(2024, 8, 8, 12, 56, 26, tzinfo=timezone.utc)
    aware = _copy("    client: chromium\n    list_timestamp: '2024-08-08T14:56:26+02:00'\n")
    assert aware.list_timestamp is not None
    assert aware.list_timestamp.utcoffset() is not None
    assert aware.list_timestamp.isoformat() == "2024-08-08T14:56:26+02:00"


def test_copy_okhttp_rules_are_read_with_the_pinsets_version() -> None:
    """OkHttp 3 has no ``**.``: under version 3 the pattern is a plain name."""
    three = _copy(
        "    client: okhttp\n    okhttp_version: 3\n    rules:\n"
        f"      - host: '**.example.com'\n        pins: ['{X1}']\n"
    )
    assert [(r.host, r.mode) for r in three.rules] == [("**.example.com", HostMode.EXACT)]
    four = _copy(
        "    client: okhttp\n    okhttp_version: 4\n    rules:\n"
        f"      - host: '**.example.com'\n        pins: ['{X1}']\n"
    )
    assert [(r.host, r.mode) for r in four.rules] == [("example.com", HostMode.ANY_DEPTH)]
