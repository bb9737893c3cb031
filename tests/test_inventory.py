"""The inventory loader: exact endpoints and pin-sets, and every problem at once
with file:line:column, for every mistake the schema can hold."""

from __future__ import annotations

import datetime
import json
import os
import textwrap
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from cryptography.hazmat.primitives import serialization

from scanner.cli import options
from scanner.errors import ConfigError, InventoryError
from scanner.exporters.contract import RESERVED_LABELS
from scanner.fleet.pki import PKI, Issued
from scanner.inventory import files as inventory_files
from scanner.inventory import load_inventory, load_inventory_text, yamlnodes
from scanner.inventory import reader as inventory_reader
from scanner.inventory import schema as inventory_schema
from scanner.inventory.yamlnodes import MAX_DEPTH, MAX_NODES
from scanner.model import Endpoint, HashAlg, Inventory, Location, Pinset, TrustKind, TrustSpec
from scanner.pins import parse_pin
from scanner.units import parse_duration

REPO = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data" / "inventories"

X1 = "sha256/C5+lpZ7tcVwmwQIMcRtPbsQtWLABXhQzejna0wHFr8M="  # ISRG Root X1
X2 = "sha256/diGVwiVYbubAI3RW4hB9xU8e/CH2GnkuvVFZE8zmgzI="  # ISRG Root X2
G2 = "sha256/i7WTqTvh0OioIruIfFR4kMPnBqrS2rdiVPl/s2uC/CY="  # DigiCert Global Root G2
G2_B64 = G2.removeprefix("sha256/")
R4_HEX = "9847e5653e5e9e847516e5cb818606aa7544a19be67fd7366d506988e8d84347"  # GTS Root R4
CERTIFI = TrustSpec(TrustKind.CERTIFI)
DURATION_HELP = "expected seconds, or a duration like 500ms, 30s, 5m, 1h or 7d"


@pytest.fixture(
    autouse=True,
    params=yamlnodes._LOADERS,
    ids=lambda loader: "libyaml" if "CLoader" in loader.__name__ else "pyyaml",
)
def yaml_parser(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test runs with libyaml's parser (when PyYAML has it) and PyYAML's own."""
    monkeypatch.setattr(yamlnodes, "_Loader", request.param)
    return "libyaml" if "CLoader" in request.param.__name__ else "pyyaml"


def pins(*texts: str) -> tuple[Any, ...]:
    return tuple(parse_pin(t) for t in texts)


def load(text: str, name: str = "inv.yaml", **kwargs: Any) -> Inventory:
    return load_inventory_text(textwrap.dedent(text), name, **kwargs)


def problems(text: str, name: str = "inv.yaml", **kwargs: Any) -> list[str]:
    with pytest.raises(InventoryError) as caught:
        load_inventory_text(textwrap.dedent(text), name, **kwargs)
    return [str(p) for p in caught.value.problems]


def file_problems(path: str | os.PathLike[str]) -> list[str]:
    with pytest.raises(InventoryError) as caught:
        load_inventory(path)
    return [str(p) for p in caught.value.problems]


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


# --- the DESIGN §3 example ---------------------------------------------------------


DESIGN_EXAMPLE = f"""\
version: 1
defaults:
  port: 443
  timeout: 5s
  warn_days: 30
  critical_days: 7
  pinset_warn_days: 60
  trust: certifi
  labels: {{env: prod}}
pinsets:
  letsencrypt:
    expires: 2027-06-01
    pins:
      - {X1}   # ISRG Root X1
      - {X2}   # ISRG Root X2
endpoints:
  - host: api.example.com
    pinset: letsencrypt
    labels: {{team: payments}}
  - name: edge-eu-1
    host: 10.0.0.5
    sni: api.example.com
    port: 8443
    pins: [{G2}]
    trust: ca/internal-root.pem
"""


def test_design_example_loads_exactly(tmp_path: Path) -> None:
    write(tmp_path / "ca" / "internal-root.pem", "not parsed by the loader\n")
    inv = load_inventory(write(tmp_path / "prod.yaml", DESIGN_EXAMPLE))
    letsencrypt = Pinset("letsencrypt", pins(X1, X2), datetime.date(2027, 6, 1))
    assert inv.endpoints == (
        Endpoint(
            name="api.example.com:443",
            host="api.example.com",
            port=443,
            sni="api.example.com",
            pinset=letsencrypt,
            timeout=5.0,
            warn_days=30,
            critical_days=7,
            pinset_warn_days=60,
            trust=CERTIFI,
            labels=(("env", "prod"), ("team", "payments")),
        ),
        Endpoint(
            name="edge-eu-1",
            host="10.0.0.5",
            port=8443,
            sni="api.example.com",
            pinset=Pinset("inline", pins(G2)),
            timeout=5.0,
            warn_days=30,
            critical_days=7,
            pinset_warn_days=60,
            trust=TrustSpec(TrustKind.BUNDLE, str(tmp_path / "ca" / "internal-root.pem")),
            labels=(("env", "prod"),),
        ),
    )
    assert dict(inv.pinsets) == {"letsencrypt": letsencrypt}
    assert inv.files == (str(tmp_path / "prod.yaml"),)
    prod = str(tmp_path / "prod.yaml")
    assert [e.location for e in inv.endpoints] == [Location(prod, 17, 5), Location(prod, 20, 5)]
    assert inv.pinsets["letsencrypt"].location == Location(prod, 11, 3)
    assert inv.endpoints[1].pinset is not None
    assert inv.endpoints[1].pinset.location == Location(prod, 24, 11)


def test_inventory_pinsets_cannot_be_modified() -> None:
    inv = load(f"version: 1\npinsets: {{a: {{pins: [{X1}]}}}}\n")
    with pytest.raises(TypeError):
        inv.pinsets["b"] = inv.pinsets["a"]  # type: ignore[index]


def test_minimal_inventory_uses_built_in_defaults() -> None:
    inv = load("version: 1\nendpoints: [{host: example.com}]\n")
    assert inv.endpoints == (
        Endpoint(
            name="example.com:443", host="example.com", port=443, sni="example.com", pinset=None
        ),
    )
    assert inv.endpoints[0].timeout == 5.0
    assert inv.endpoints[0].trust == CERTIFI
    assert inv.pinsets == {}
    assert inv.files == ("inv.yaml",)


@pytest.mark.parametrize("text", ["version: 1\n", "version: 1\nendpoints: []\npinsets: {}\n"])
def test_inventory_without_endpoints_is_valid(text: str) -> None:
    assert load(text).endpoints == ()


# --- defaults and overrides ---------------------------------------------------------


def test_every_default_is_applied_and_can_be_overridden() -> None:
    inv = load(
        """\
        version: 1
        defaults:
          port: 8443
          timeout: 500ms
          warn_days: 40
          critical_days: 10
          pinset_warn_days: 90
          trust: system
          labels: {env: prod, team: core}
        endpoints:
          - host: a.example.com
          - host: b.example.com
            port: 443
            timeout: 2.5
            warn_days: 20
            critical_days: 5
            pinset_warn_days: 0
            trust: certifi
            labels: {team: payments, tier: "1"}
        """
    )
    a, b = inv.endpoints
    assert (a.name, a.port, a.timeout, a.warn_days, a.critical_days, a.pinset_warn_days) == (
        "a.example.com:8443",
        8443,
        0.5,
        40,
        10,
        90,
    )
    assert a.trust == TrustSpec(TrustKind.SYSTEM)
    assert a.labels == (("env", "prod"), ("team", "core"))
    assert (b.name, b.port, b.timeout, b.warn_days, b.critical_days, b.pinset_warn_days) == (
        "b.example.com:443",
        443,
        2.5,
        20,
        5,
        0,
    )
    assert b.trust == CERTIFI
    assert b.labels == (("env", "prod"), ("team", "payments"), ("tier", "1"))


@pytest.mark.parametrize(
    ("written", "seconds"),
    [
        ("5s", 5.0),
        ("500ms", 0.5),
        ("1m", 60.0),
        ("1.5s", 1.5),
        ("'10'", 10.0),
        ("2", 2.0),
        ("2.5", 2.5),
        ("0.25", 0.25),
    ],
)
def test_timeout_spellings(written: str, seconds: float) -> None:
    inv = load(f"version: 1\nendpoints: [{{host: x.example, timeout: {written}}}]\n")
    assert inv.endpoints[0].timeout == seconds


@pytest.mark.parametrize(
    ("written", "message"),
    [
        ("0", "invalid timeout 0: must be greater than 0"),
        ("-1", "invalid timeout -1: must be greater than 0"),
        ("0s", "invalid timeout '0s': must be greater than 0"),
        ("-5s", "invalid timeout '-5s': must be greater than 0"),
        ("soon", "invalid timeout 'soon': " + DURATION_HELP),
        ("5 w", "invalid timeout '5 w': " + DURATION_HELP),
        (".inf", "invalid timeout .inf: must be a finite number of seconds"),
        (".nan", "invalid timeout .nan: must be a finite number of seconds"),
        ("true", "expected a duration (seconds, or 500ms, 5s, 1m), got a boolean"),
        ("[5s]", "expected a duration (seconds, or 500ms, 5s, 1m), got a list"),
        ("~", "expected a duration (seconds, or 500ms, 5s, 1m), got null"),
    ],
)
def test_bad_timeouts(written: str, message: str) -> None:
    assert problems(f"version: 1\ndefaults:\n  timeout: {written}\n") == [
        f"inv.yaml:3:12: defaults.timeout: {message}"
    ]


def test_parse_duration_is_shared_with_the_command_line() -> None:
    """One grammar for the inventory's timeout and every duration flag (before,
    --deadline refused 1h while --interval took it)."""
    assert parse_duration("30") == 30.0
    assert parse_duration("1m") == 60.0
    assert parse_duration(" 250ms ") == 0.25
    assert parse_duration("1h") == 3600.0
    assert parse_duration("7d") == 7 * 86400.0
    with pytest.raises(ValueError, match=r"^must be greater than 0$"):
        parse_duration("0s")
    with pytest.raises(ValueError, match=r"^must be at most 36500d$"):
        parse_duration("99999999999d")
    with pytest.raises(ConfigError, match=r"^--deadline '0s': must be greater than 0$"):
        options.duration("--deadline", "0s")
    with pytest.raises(ConfigError, match=r"^--retention 'x': expected seconds"):
        options.duration("--retention", "x")


def test_port_out_of_range_exact_message() -> None:
    text = """\
        version: 1
        defaults:
          port: 443
        endpoints:
          - host: a.example.com
          - host: b.example.com
            port:  70000
        """
    assert problems(text) == ["inv.yaml:7:12: endpoints[1].port: port must be 1..65535, got 70000"]


@pytest.mark.parametrize(
    ("written", "message"),
    [
        ("0", "port must be 1..65535, got 0"),
        ("-1", "port must be 1..65535, got -1"),
        ('"abc"', "expected an integer, got a string"),
        ('"443"', "expected an integer, got a string"),
        ("true", "expected an integer, got a boolean"),
        ("443.0", "expected an integer, got a number"),
        ("~", "expected an integer, got null"),
        ("[443]", "expected an integer, got a list"),
        ("2027-01-01", "expected an integer, got a date"),
        ("!!int abc", "invalid integer 'abc'"),
    ],
)
def test_bad_ports(written: str, message: str) -> None:
    assert problems(f"version: 1\nendpoints:\n- host: x.example\n  port: {written}\n") == [
        f"inv.yaml:4:9: endpoints[0].port: {message}"
    ]


def test_yaml_integer_spellings_are_integers() -> None:
    inv = load(
        "version: 1\nendpoints: [{host: a.example, port: 0x1bb}, {host: b.example, port: 8_443}]"
    )
    assert [e.port for e in inv.endpoints] == [443, 8443]


@pytest.mark.parametrize("key", ["warn_days", "critical_days", "pinset_warn_days"])
def test_days_must_be_non_negative_integers(key: str) -> None:
    assert problems(f"version: 1\ndefaults:\n  {key}: -1\n") == [
        f"inv.yaml:3:{len(key) + 5}: defaults.{key}: {key} must be 0..36500 days, got -1"
    ]
    assert problems(f"version: 1\ndefaults:\n  {key}: 1.5\n") == [
        f"inv.yaml:3:{len(key) + 5}: defaults.{key}: expected an integer, got a number"
    ]


def test_critical_days_must_not_exceed_warn_days_where_set() -> None:
    text = """\
        version: 1
        defaults:
          warn_days: 10
          critical_days: 20
        endpoints:
          - host: a.example.com
          - host: b.example.com
            warn_days: 5
          - host: c.example.com
            warn_days: 30
          - host: d.example.com
            critical_days: 3
        """
    # a: inherits the defaults' problem, reported once at the defaults; b: sets warn_days
    # below the defaults' critical_days; c fixes it; d fixes it too (3 <= 10).
    assert problems(text) == [
        "inv.yaml:4:18: defaults.critical_days: critical_days (20) must not be greater than "
        "warn_days (10)",
        "inv.yaml:8:16: endpoints[1].warn_days: critical_days (20) must not be greater than "
        "warn_days (5)",
    ]


def test_critical_days_equal_to_warn_days_is_fine() -> None:
    inv = load("version: 1\ndefaults: {warn_days: 7, critical_days: 7}\nendpoints: [{host: a.b}]")
    assert (inv.endpoints[0].warn_days, inv.endpoints[0].critical_days) == (7, 7)


# --- trust -------------------------------------------------------------------------


def test_trust_bundle_is_resolved_relative_to_the_declaring_file(tmp_path: Path) -> None:
    write(tmp_path / "ca.pem", "x")
    write(tmp_path / "teams" / "ca" / "team.pem", "x")
    write(
        tmp_path / "teams" / "a.yaml",
        "endpoints: [{host: a.example, trust: ca/team.pem}, {host: b.example}]\n",
    )
    root = write(
        tmp_path / "root.yaml",
        "version: 1\ndefaults: {trust: ca.pem}\ninclude: [teams/*.yaml]\n",
    )
    inv = load_inventory(root)
    assert [e.trust for e in inv.endpoints] == [
        TrustSpec(TrustKind.BUNDLE, str(tmp_path / "teams" / "ca" / "team.pem")),
        TrustSpec(TrustKind.BUNDLE, str(tmp_path / "ca.pem")),
    ]


def test_missing_trust_bundle(tmp_path: Path) -> None:
    expected = str(tmp_path / "ca" / "missing.pem")
    assert problems("version: 1\ndefaults:\n  trust: ca/missing.pem\n", base_dir=tmp_path) == [
        "inv.yaml:3:10: defaults.trust: trust bundle 'ca/missing.pem' not found "
        f"(looked for {expected})"
    ]


def test_trust_directory_is_not_a_bundle(tmp_path: Path) -> None:
    (tmp_path / "ca").mkdir()
    assert problems("version: 1\ndefaults: {trust: ca}\n", base_dir=tmp_path) == [
        f"inv.yaml:2:19: defaults.trust: trust bundle 'ca' not found (looked for {tmp_path / 'ca'})"
    ]


def test_empty_trust() -> None:
    assert problems("version: 1\ndefaults: {trust: ''}\n") == [
        "inv.yaml:2:19: defaults.trust: trust must be certifi, system, or the path of a PEM bundle"
    ]


# --- labels ------------------------------------------------------------------------


def test_label_values_are_taken_as_written() -> None:
    inv = load(
        """\
        version: 1
        endpoints:
          - host: a.example
            labels: {tier: 1, canary: yes, country: no, since: 2024-01-01, empty: ""}
        """
    )
    assert inv.endpoints[0].labels == (
        ("canary", "yes"),
        ("country", "no"),
        ("empty", ""),
        ("since", "2024-01-01"),
        ("tier", "1"),
    )


def test_bad_label_names_and_values() -> None:
    text = """\
        version: 1
        defaults:
          labels:
            team-name: a
            __meta: b
            endpoint: c
            job: d
            1abc: e
            ok: ~
            nested: {a: b}
        """
    assert problems(text) == [
        "inv.yaml:4:5: defaults.labels.team-name: invalid label name 'team-name' "
        "(must match [a-zA-Z_][a-zA-Z0-9_]*)",
        "inv.yaml:5:5: defaults.labels.__meta: label name '__meta' is reserved "
        "(names starting with __ are Prometheus' own)",
        "inv.yaml:6:5: defaults.labels.endpoint: label name 'endpoint' clashes with a label "
        "pinaudit sets itself",
        "inv.yaml:7:5: defaults.labels.job: label name 'job' clashes with a label pinaudit "
        "sets itself",
        "inv.yaml:8:5: defaults.labels.1abc: invalid label name '1abc' "
        "(must match [a-zA-Z_][a-zA-Z0-9_]*)",
        "inv.yaml:9:9: defaults.labels.ok: expected a string, got null",
        "inv.yaml:10:13: defaults.labels.nested: expected a string, got a mapping",
    ]


@pytest.mark.parametrize("name", sorted(RESERVED_LABELS))
def test_every_reserved_label_is_refused(name: str) -> None:
    assert problems(f"version: 1\nendpoints: [{{host: a.b, labels: {{{name}: x}}}}]\n") == [
        f"inv.yaml:2:34: endpoints[0].labels.{name}: label name {name!r} clashes with a "
        "label pinaudit sets itself"
    ]


# --- pin-sets ----------------------------------------------------------------------


def test_pinset_spellings_digest_and_duplicates() -> None:
    inv = load(
        f"""\
        version: 1
        pinsets:
          android:
            digest: SHA-256
            pins:
              - {G2_B64}
              - pin-sha256="{X1.removeprefix("sha256/")}"
              - {R4_HEX}
              - {G2}
              - {X1}
          legacy:
            digest: SHA-1
            pins: [XoxTGCJgHVZx1mqgzGSgYAdD1ag=]
        """
    )
    android = inv.pinsets["android"]
    assert android.pins == pins(G2, X1, R4_HEX)  # duplicates collapse, first position kept
    assert android.expires is None
    assert [p.alg for p in inv.pinsets["legacy"].pins] == [HashAlg.SHA1]
    assert str(inv.pinsets["legacy"].pins[0]) == "sha1/XoxTGCJgHVZx1mqgzGSgYAdD1ag="


def test_empty_pinset_is_kept_empty() -> None:
    inv = load("version: 1\npinsets: {off: {pins: []}}\nendpoints: [{host: a.b, pinset: off}]\n")
    assert inv.pinsets["off"] == Pinset("off", ())
    assert inv.endpoints[0].pinset == Pinset("off", ())


@pytest.mark.parametrize(
    ("written", "expected"),
    [("2027-06-01", datetime.date(2027, 6, 1)), ("'2027-06-01'", datetime.date(2027, 6, 1))],
)
def test_pinset_expiry(written: str, expected: datetime.date) -> None:
    inv = load(f"version: 1\npinsets:\n  a:\n    expires: {written}\n    pins: [{X1}]\n")
    assert inv.pinsets["a"].expires == expected


@pytest.mark.parametrize(
    ("written", "message"),
    [
        ("2027-02-30", "bad date '2027-02-30': day is out of range for month"),
        ("'2027-02-30'", "bad date '2027-02-30': day is out of range for month"),
        ("2027-13-01", "bad date '2027-13-01': month must be in 1..12"),
        ("next year", "bad date 'next year': expected YYYY-MM-DD"),
        ("2027-06-01T10:00:00Z", "bad date '2027-06-01T10:00:00Z': expected YYYY-MM-DD"),
        ("2027-6-1", "bad date '2027-6-1': expected YYYY-MM-DD"),
        ("20270601", "expected a date (YYYY-MM-DD), got an integer"),
        ("~", "expected a date (YYYY-MM-DD), got null"),
    ],
)
def test_bad_pinset_expiry(written: str, message: str) -> None:
    text = f"version: 1\npinsets:\n  letsencrypt:\n    expires: {written}\n    pins: [{X1}]\n"
    assert problems(text) == [f"inv.yaml:4:14: pinsets.letsencrypt.expires: {message}"]


def test_bad_pins_are_reported_at_each_pin() -> None:
    text = f"""\
        version: 1
        pinsets:
          a:
            pins:
              - {X1}
              - sha256/abc
              - md5/{X1.removeprefix("sha256/")}
              - ~
              - [nested]
              - ""
        """
    assert problems(text) == [
        "inv.yaml:6:9: pinsets.a.pins[1]: invalid pin 'sha256/abc': a sha256 digest is 32 bytes, "
        "this decodes to 2",
        "inv.yaml:7:9: pinsets.a.pins[2]: invalid pin "
        "'md5/C5+lpZ7tcVwmwQIMcRtPbsQtWLABXhQzejna0wHFr8M=': "
        "unsupported algorithm 'md5' (pins start with sha256/ or sha1/)",
        "inv.yaml:8:9: pinsets.a.pins[3]: expected a string, got null",
        "inv.yaml:9:9: pinsets.a.pins[4]: expected a string, got a list",
        "inv.yaml:10:9: pinsets.a.pins[5]: invalid pin '': empty pin",
    ]


def test_bad_pinset_shapes() -> None:
    text = """\
        version: 1
        pinsets:
          a: {expires: 2027-01-01}
          b: [x]
          c: {pins: "sha256/x", digest: MD5, pin: []}
          bad name: {pins: []}
          inline: {pins: []}
        """
    assert problems(text) == [
        "inv.yaml:3:6: pinsets.a: missing required key 'pins'",
        "inv.yaml:4:6: pinsets.b: expected a mapping, got a list",
        "inv.yaml:5:13: pinsets.c.pins: expected a list, got a string",
        "inv.yaml:5:33: pinsets.c.digest: unsupported digest 'MD5' (use SHA-256, or legacy SHA-1)",
        "inv.yaml:5:38: pinsets.c.pin: unknown key 'pin' (did you mean 'pins'?)",
        "inv.yaml:6:3: pinsets.bad name: invalid pinset name 'bad name' "
        "(must match [A-Za-z0-9_][A-Za-z0-9_.-]*)",
        "inv.yaml:7:3: pinsets.inline: pinset name 'inline' is reserved "
        "(it names an endpoint's inline pins)",
    ]


def test_pinsets_must_be_a_mapping() -> None:
    assert problems("version: 1\npinsets: [a, b]\n") == [
        "inv.yaml:2:10: pinsets: expected a mapping, got a list"
    ]


# --- endpoint pin-sets ----------------------------------------------------------------


PINSETS = f"""\
version: 1
pinsets:
  letsencrypt:
    expires: 2027-06-01
    pins: [{X1}, {X2}]
"""


def test_effective_pinset_of_each_combination() -> None:
    inv = load(
        PINSETS
        + f"""\
endpoints:
  - host: none.example
  - host: named.example
    pinset: letsencrypt
  - host: inline.example
    pins: [{G2}]
  - host: both.example
    pinset: letsencrypt
    pins: [{G2}, {X1}]
  - host: disabled.example
    pins: []
  - host: named-empty.example
    pinset: letsencrypt
    pins: []
"""
    )
    letsencrypt = Pinset("letsencrypt", pins(X1, X2), datetime.date(2027, 6, 1))
    assert [e.pinset for e in inv.endpoints] == [
        None,
        letsencrypt,
        Pinset("inline", pins(G2)),
        Pinset("letsencrypt+inline", pins(X1, X2, G2), datetime.date(2027, 6, 1)),
        Pinset("inline", ()),
        letsencrypt,
    ]
    assert inv.endpoints[1].pinset is inv.pinsets["letsencrypt"]


def test_unknown_pinset_suggests_a_close_name() -> None:
    text = PINSETS + "endpoints:\n  - host: a.example\n    pinset: letsencrpyt\n"
    assert problems(text) == [
        "inv.yaml:8:13: endpoints[0].pinset: unknown pinset 'letsencrpyt' "
        "(did you mean 'letsencrypt'?)"
    ]


def test_unknown_pinset_lists_the_defined_ones() -> None:
    text = PINSETS + "  other: {pins: []}\nendpoints:\n  - host: a.example\n    pinset: zzz\n"
    assert problems(text) == [
        "inv.yaml:9:13: endpoints[0].pinset: unknown pinset 'zzz' (defined: letsencrypt, other)"
    ]
    assert problems("version: 1\nendpoints: [{host: a.b, pinset: x}]\n") == [
        "inv.yaml:2:33: endpoints[0].pinset: unknown pinset 'x' (no pinsets are defined)"
    ]


def test_a_reference_to_a_broken_pinset_is_not_reported_twice() -> None:
    text = "version: 1\npinsets: {a: oops}\nendpoints: [{host: a.b, pinset: a}]\n"
    assert problems(text) == ["inv.yaml:2:14: pinsets.a: expected a mapping, got a string"]


# --- hosts, SNI, names ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "sni", "port", "name"),
    [
        ("api.example.com", None, 443, "api.example.com:443"),
        ("api.example.com", "api.example.com", 443, "api.example.com:443"),
        ("10.0.0.5", "api.example.com", 8443, "api.example.com@10.0.0.5:8443"),
        ("::1", None, 443, "[::1]:443"),
        ("2001:db8::1", "v6.example", 443, "v6.example@[2001:db8::1]:443"),
        ("fe80::1%eth0", None, 443, "[fe80::1%eth0]:443"),
        ("example.com.", None, 443, "example.com.:443"),
        ("_acme.example.com", None, 443, "_acme.example.com:443"),
    ],
)
def test_default_names(host: str, sni: str | None, port: int, name: str) -> None:
    sni_line = f"    sni: {sni}\n" if sni else ""
    inv = load(f"version: 1\nendpoints:\n  - host: '{host}'\n    port: {port}\n{sni_line}")
    endpoint = inv.endpoints[0]
    assert (endpoint.name, endpoint.host, endpoint.port) == (name, host, port)


@pytest.mark.parametrize(
    ("host", "sni_line", "sni"),
    [
        ("api.example.com", "", "api.example.com"),
        ("10.0.0.5", "", None),
        ("::1", "", None),
        ("api.example.com", "sni: false", None),
        ("api.example.com", "sni: no", None),
        ("api.example.com", "sni: null", None),
        ("api.example.com", "sni:", None),
        ("10.0.0.5", "sni: api.example.com", "api.example.com"),
    ],
)
def test_sni(host: str, sni_line: str, sni: str | None) -> None:
    inv = load(f"version: 1\nendpoints:\n  - host: '{host}'\n    {sni_line}\n")
    assert inv.endpoints[0].sni == sni


def test_no_sni_keeps_the_plain_default_name() -> None:
    inv = load("version: 1\nendpoints: [{host: a.example, sni: false}]\n")
    assert (inv.endpoints[0].name, inv.endpoints[0].sni) == ("a.example:443", None)


# 253 characters is the longest DNS name (RFC 1035 §2.3.4, as written without the root dot)
_NAME_253 = ".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 61])
_NAME_254 = _NAME_253 + "e"


@pytest.mark.parametrize(
    "host",
    [_NAME_253, _NAME_253 + ".", "10.1.example", "example.com.", "a_b.example", "::1", "10.0.0.5"],
)
def test_good_hosts(host: str) -> None:
    inventory = load_inventory_text(f"version: 1\nendpoints:\n  - host: '{host}'\n", "inv.yaml")
    assert len(inventory.endpoints) == 1  # no problem raised


@pytest.mark.parametrize(
    ("host", "message"),
    [
        (
            "https://api.example.com",
            "host must be a host name or IP address, not a URL or path: 'https://api.example.com'",
        ),
        (
            "api.example.com/x",
            "host must be a host name or IP address, not a URL or path: 'api.example.com/x'",
        ),
        (
            "api.example.com:443",
            "host must not include a port: 'api.example.com:443' (use port: 443)",
        ),
        ("[::1]:443", "host must not include a port: '[::1]:443' (use port: 443)"),
        ("[::1]", "write IPv6 addresses without brackets: '::1'"),
        ("api example.com", "host must not contain spaces: 'api example.com'"),
        ("", "host must not be empty"),
        ("   ", "host must not be empty"),
        ("a..example", "host 'a..example' is not a valid host name"),
        ("-a.example", "host '-a.example' is not a valid host name"),
        ("a" * 64 + ".example", f"host '{'a' * 64}.example' is not a valid host name"),
        ("10.0.0.300", "invalid IP address '10.0.0.300'"),
        ("1::2::3", "invalid IP address '1::2::3'"),
        ("bücher.de", "host 'bücher.de' is not ASCII: write it as 'xn--bcher-kva.de'"),
        ("ü" * 70 + ".de", f"host '{'ü' * 70}.de' is not a valid host name"),
        (":443", "invalid IP address ':443'"),
        ("example.com:https", "invalid IP address 'example.com:https'"),
        ("a.b-.", "host 'a.b-.' is not a valid host name"),  # one dot stripped, not two
        ("example.10", "invalid IP address 'example.10'"),
        (_NAME_254, f"host '{_NAME_254}' is not a valid host name"),
    ],
)
def test_bad_hosts(host: str, message: str) -> None:
    assert problems(f"version: 1\nendpoints:\n  - host: '{host}'\n") == [
        f"inv.yaml:3:11: endpoints[0].host: {message}"
    ]


@pytest.mark.parametrize(
    ("written", "message"),
    [
        ("~", "expected a string, got null"),
        ("[a]", "expected a string, got a list"),
        ("{a: b}", "expected a string, got a mapping"),
    ],
)
def test_host_types(written: str, message: str) -> None:
    assert problems(f"version: 1\nendpoints:\n  - host: {written}\n") == [
        f"inv.yaml:3:11: endpoints[0].host: {message}"
    ]


@pytest.mark.parametrize(
    ("written", "message"),
    [
        ("true", "sni must be a host name, or false for no SNI; got true"),
        (
            "'10.0.0.1'",
            "sni must be a host name, not an IP address: '10.0.0.1' (no SNI: sni: false)",
        ),
        ("''", "sni must not be empty"),
        ("https://x", "sni must be a host name or IP address, not a URL or path: 'https://x'"),
        ("[x]", "expected a string, got a list"),
    ],
)
def test_bad_sni(written: str, message: str) -> None:
    assert problems(f"version: 1\nendpoints:\n  - host: a.example\n    sni: {written}\n") == [
        f"inv.yaml:4:10: endpoints[0].sni: {message}"
    ]


def test_endpoint_location_is_its_mapping() -> None:
    inv = load("version: 1\nendpoints:\n\n  - host: a.example\n  -   {host: b.example}\n")
    assert [e.location for e in inv.endpoints] == [
        Location("inv.yaml", 4, 5),
        Location("inv.yaml", 5, 7),
    ]


def test_duplicate_endpoint_names_in_one_file() -> None:
    text = """\
        version: 1
        endpoints:
          - host: a.example
          - host: b.example
            name: edge
          - host: a.example
            port: 443
          - host: c.example
            name: edge
          - host: a.example
            port: 8443
        """
    assert problems(text) == [
        "inv.yaml:6:5: endpoints[2]: duplicate endpoint name 'a.example:443' "
        "(first defined at inv.yaml:3:5)",
        "inv.yaml:9:11: endpoints[3].name: duplicate endpoint name 'edge' "
        "(first defined at inv.yaml:4:5)",
    ]


def test_empty_name() -> None:
    assert problems("version: 1\nendpoints: [{host: a.b, name: ' '}]\n") == [
        "inv.yaml:2:31: endpoints[0].name: name must not be empty"
    ]


def test_a_broken_port_does_not_cause_a_duplicate_name() -> None:
    text = "version: 1\nendpoints: [{host: a.b}, {host: a.b, port: x}]\n"
    assert problems(text) == ["inv.yaml:2:44: endpoints[1].port: expected an integer, got a string"]


def test_missing_host() -> None:
    assert problems("version: 1\nendpoints:\n  - name: x\n    port: 443\n") == [
        "inv.yaml:3:5: endpoints[0]: missing required key 'host'"
    ]


# --- keys and types -------------------------------------------------------------------


def test_unknown_keys_everywhere() -> None:
    text = f"""\
        version: 1
        defualts: {{}}
        defaults:
          tmeout: 5s
          host: x
        pinsets:
          a: {{pins: [{X1}], expiry: 2027-01-01}}
        endpoints:
          - host: a.example
            snI: b.example
            zzz: 1
        """
    assert problems(text) == [
        "inv.yaml:2:1: defualts: unknown key 'defualts' (did you mean 'defaults'?)",
        "inv.yaml:4:3: defaults.tmeout: unknown key 'tmeout' (did you mean 'timeout'?)",
        "inv.yaml:5:3: defaults.host: unknown key 'host' (allowed: all_addresses, caa, "
        "caa_identifiers, client_cert, client_key, critical_days, ct, labels, ocsp, "
        "pinset_warn_days, port, proxy, starttls, timeout, tls_min_version, "
        "tls_version_severity, trust, warn_days)",
        "inv.yaml:7:68: pinsets.a.expiry: unknown key 'expiry' (did you mean 'expires'?)",
        "inv.yaml:10:5: endpoints[0].snI: unknown key 'snI' (did you mean 'sni'?)",
        "inv.yaml:11:5: endpoints[0].zzz: unknown key 'zzz' (allowed: all_addresses, caa, "
        "caa_identifiers, client_cert, client_key, critical_days, ct, host, labels, name, "
        "ocsp, pins, pinset, pinset_warn_days, port, proxy, sni, starttls, timeout, "
        "tls_min_version, "
        "tls_version_severity, trust, warn_days)",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("version: 1\nendpoints: {}\n", "inv.yaml:2:12: endpoints: expected a list, got a mapping"),
        ("version: 1\nendpoints: x\n", "inv.yaml:2:12: endpoints: expected a list, got a string"),
        ("version: 1\nendpoints:\n", "inv.yaml:2:11: endpoints: expected a list, got null"),
        (
            "version: 1\nendpoints: [x]\n",
            "inv.yaml:2:13: endpoints[0]: expected a mapping, got a string",
        ),
        ("version: 1\ndefaults: []\n", "inv.yaml:2:11: defaults: expected a mapping, got a list"),
        ("version: 1\ninclude: a.yaml\n", "inv.yaml:2:10: include: expected a list, got a string"),
        (
            f"version: 1\nendpoints: [{{host: a.b, pins: {X1}}}]\n",
            "inv.yaml:2:31: endpoints[0].pins: expected a list, got a string",
        ),
        ("- version: 1\n", "inv.yaml:1:1: expected a mapping, got a list"),
        ("just text\n", "inv.yaml:1:1: expected a mapping, got a string"),
        ("version: 1\n[a]: b\n", "inv.yaml:2:1: expected a string key, got a list"),
    ],
)
def test_wrong_types(text: str, expected: str) -> None:
    assert problems(text) == [expected]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "inv.yaml:1:1: missing required key 'version'"),
        ("# only a comment\n", "inv.yaml:1:1: missing required key 'version'"),
        ("\n\nendpoints: []\n", "inv.yaml:3:1: missing required key 'version'"),
        (
            "version: 2\n",
            "inv.yaml:1:10: version: unsupported version 2 (this pinaudit reads version 1)",
        ),
        ("version: '1'\n", "inv.yaml:1:10: version: expected an integer, got a string"),
        ("version: true\n", "inv.yaml:1:10: version: expected an integer, got a boolean"),
    ],
)
def test_version(text: str, expected: str) -> None:
    assert problems(text) == [expected]


def test_duplicate_keys() -> None:
    text = """\
        version: 1
        endpoints:
          - host: a.example
            port: 443
            port: 8443
        version: 1
        """
    assert problems(text) == [
        "inv.yaml:5:5: endpoints[0].port: duplicate key 'port' (first at line 4, column 5)",
        "inv.yaml:6:1: version: duplicate key 'version' (first at line 1, column 1)",
    ]


def test_five_mistakes_five_problems_in_file_order() -> None:
    text = f"""\
        version: 1
        defaults:
          timeout: 0
        pinsets:
          letsencrypt:
            pins: [{X1}, sha256/abcd]
        endpoints:
          - host: https://api.example.com
          - host: b.example.com
            pinset: letsencrpyt
            port: 70000
          - host: c.example.com
        """
    assert problems(text) == [
        "inv.yaml:3:12: defaults.timeout: invalid timeout 0: must be greater than 0",
        "inv.yaml:6:65: pinsets.letsencrypt.pins[1]: invalid pin 'sha256/abcd': "
        "a sha256 digest is 32 bytes, this decodes to 3",
        "inv.yaml:8:11: endpoints[0].host: host must be a host name or IP address, not a URL "
        "or path: 'https://api.example.com'",
        "inv.yaml:10:13: endpoints[1].pinset: unknown pinset 'letsencrpyt' "
        "(did you mean 'letsencrypt'?)",
        "inv.yaml:11:11: endpoints[1].port: port must be 1..65535, got 70000",
    ]


# --- merge keys and anchors --------------------------------------------------------


def test_anchors_and_merge_keys() -> None:
    inv = load(
        """\
        version: 1
        endpoints:
          - &base
            host: a.example
            port: 8443
            labels: &labels {team: mobile}
          - <<: *base
            host: b.example
          - <<: [{port: 1}, {port: 2, timeout: 3}]
            host: c.example
            labels: *labels
        """
    )
    assert [(e.name, e.port, e.timeout, e.labels) for e in inv.endpoints] == [
        ("a.example:8443", 8443, 5.0, (("team", "mobile"),)),
        ("b.example:8443", 8443, 5.0, (("team", "mobile"),)),
        ("c.example:1", 1, 3.0, (("team", "mobile"),)),
    ]


def test_bad_merge_value() -> None:
    assert problems("version: 1\nendpoints: [{<<: [x], host: a.b}]\n") == [
        "inv.yaml:2:19: endpoints[0]: expected a mapping or a list of mappings to merge, "
        "got a string"
    ]


def test_merge_chains_are_bounded() -> None:
    depth = inventory_reader.MAX_MERGE_DEPTH
    items = ["&e0 {host: h0.example}"]
    items += [f"&e{i} {{<<: *e{i - 1}, host: h{i}.example}}" for i in range(1, depth + 2)]
    text = "version: 1\nendpoints:\n" + "".join(f"  - {item}\n" for item in items)
    found = problems(text)
    assert found == [
        f"inv.yaml:{depth + 4}:5: endpoints[{depth + 1}]: merge keys nested deeper than "
        f"{depth} levels"
    ]


def test_a_problem_in_an_anchored_node_is_reported_once() -> None:
    text = "version: 1\nendpoints:\n  - &e {host: a.b, port: 0}\n  - *e\n  - *e\n"
    found = problems(text)
    assert found[0] == "inv.yaml:3:26: endpoints[0].port: port must be 1..65535, got 0"
    assert len(found) == 1


# --- hostile files ------------------------------------------------------------------


def test_billion_laughs_is_refused_without_expanding() -> None:
    path = DATA / "billion_laughs.yaml"
    assert file_problems(path) == [
        f"{path}:10:7: lol6: alias expansion limit exceeded: more than {MAX_NODES} nodes "
        "once aliases are expanded"
    ]


def test_billion_laughs_through_merge_keys_is_refused() -> None:
    lines = ["version: 1", "a0: &a0 {x: 1}"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 9)]
    lines.append("endpoints: [{<<: *a8, host: a.b}]")
    found = problems("\n".join(lines))
    assert len(found) == 1
    assert "alias expansion limit exceeded" in found[0]


def test_nodes_are_counted_while_composing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(yamlnodes, "MAX_NODES", 10)
    # nodes: the root mapping, version, 1, x, the list, then its items: the 6th is the 11th
    text = "version: 1\nx: [1, 2, 3, 4, 5, 6, 7, 8, 9]\n"
    assert problems(text) == ["inv.yaml:2:20: document too large: more than 10 nodes"]


def test_expansion_is_counted_per_use(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(yamlnodes, "MAX_NODES", 20)
    # b expands to 1 + 3 * 3 = 10 nodes, the whole document to 1 + 2 + 4 + 11 = 18
    assert problems("version: 1\na: &a [1, 2]\nb: [*a, *a, *a]\n")[0].endswith(
        "unknown key 'a' (allowed: defaults, endpoints, include, pinsets, version)"
    )
    # c expands to 1 + 3 * 10 = 31 nodes
    text = "version: 1\na: &a [1, 2]\nb: &b [*a, *a, *a]\nc: [*b, *b, *b]\n"
    assert problems(text) == [
        "inv.yaml:4:4: c: alias expansion limit exceeded: more than 20 nodes once aliases "
        "are expanded"
    ]


def test_python_tags_are_problems_not_objects() -> None:
    path = DATA / "python_tag.yaml"
    assert file_problems(path) == [
        f"{path}:5:13: endpoints[0].labels: unsupported YAML tag '!!python/object/apply:os.system'",
        f"{path}:7:11: endpoints[1].name: unsupported YAML tag '!!python/name:os.system'",
    ]


@pytest.mark.parametrize(
    ("value", "tag"),
    [
        ("!!python/object:os.system {}", "!!python/object:os.system"),
        ("!!binary aGVsbG8=", "!!binary"),
        ("!!set {a: null}", "!!set"),
        ("!custom x", "!custom"),
        ("!<tag:example.com,2024:x> y", "tag:example.com,2024:x"),
    ],
)
def test_unsupported_tags(value: str, tag: str) -> None:
    assert problems(f"version: 1\nendpoints:\n  - host: {value}\n") == [
        f"inv.yaml:3:11: endpoints[0].host: unsupported YAML tag {tag!r}"
    ]


def test_each_mistake_is_reported_once_and_nothing_follows_from_it() -> None:
    """A bad host leaves the endpoint without a name (no duplicate-name report
    for two of them), a bad sni is one problem, a broken pin-set referenced by
    an endpoint is not also unknown (found by mutation testing, issue 19)."""
    assert problems(
        "version: 1\n"
        "pinsets:\n  p: {pins: [sha256/AAAA]}\n"
        "endpoints:\n"
        "  - host: 'a..example'\n"
        "  - host: 'a..example'\n"
        "  - {host: b.example, sni: true}\n"
        "  - {host: c.example, pinset: p}\n"
    ) == [
        "inv.yaml:3:14: pinsets.p.pins[0]: invalid pin 'sha256/AAAA': a sha256 digest is 32 "
        "bytes, this decodes to 3",
        "inv.yaml:5:11: endpoints[0].host: host 'a..example' is not a valid host name",
        "inv.yaml:6:11: endpoints[1].host: host 'a..example' is not a valid host name",
        "inv.yaml:7:28: endpoints[2].sni: sni must be a host name, or false for no SNI; got true",
    ]


def test_a_mapping_with_an_unsupported_tag_is_reported_once_not_read() -> None:
    """The tag is the problem; what the tagged mapping holds is not read (its
    unknown key is not reported as well), as a mapping or as a merge source."""
    assert problems("version: 1\nendpoints:\n  - !custom {host: a.example, bogus: 1}\n") == [
        "inv.yaml:3:5: endpoints[0]: unsupported YAML tag '!custom'"
    ]
    assert problems(
        "version: 1\nendpoints:\n  - host: a.example\n    <<: !custom {bogus: 1}\n"
    ) == ["inv.yaml:4:9: endpoints[0].<<: unsupported YAML tag '!custom'"]


@pytest.mark.parametrize(
    ("text", "where", "pyyaml", "libyaml"),
    [
        (
            "version: 1\nendpoints: [{host: a.b}\n",
            "inv.yaml:3:1",
            "while parsing a flow sequence, expected ',' or ']', but got '<stream end>'",
            "while parsing a flow sequence, did not find expected ',' or ']'",
        ),
        (
            "version: 1\n  bad: indent\n",
            "inv.yaml:2:6",
            "mapping values are not allowed here",
            "mapping values are not allowed in this context",
        ),
        (
            "version: 1\n---\nversion: 1\n",
            "inv.yaml:2:1",
            "expected a single document in the stream, but found another document",
            "expected a single document in the stream, but found another document",
        ),
        (
            "version: 1\nx: *nowhere\n",
            "inv.yaml:2:4",
            "found undefined alias 'nowhere'",
            "found undefined alias 'nowhere'",
        ),
        (
            "version: 1\na: &x 1\nb: &x 2\n",
            "inv.yaml:3:4",
            "found duplicate anchor 'x'; first occurrence, second occurrence",
            "found duplicate anchor 'x'; first occurrence, second occurrence",
        ),
        (
            "version: 1\n\tendpoints: []\n",
            "inv.yaml:2:1",
            "while scanning for the next token, found character '\\t' that cannot start any token",
            "while scanning a plain scalar, found a tab character that violates indentation",
        ),
    ],
)
def test_yaml_syntax_errors(
    text: str, where: str, pyyaml: str, libyaml: str, yaml_parser: str
) -> None:
    message = pyyaml if yaml_parser == "pyyaml" else libyaml
    assert problems(text) == [f"{where}: invalid YAML: {message}"]


def test_recursive_alias() -> None:
    assert problems("version: 1\nendpoints: &e [*e]\n") == [
        "inv.yaml:2:12: endpoints: recursive alias: this node contains itself"
    ]


def test_recursive_merge() -> None:
    assert problems("version: 1\nendpoints: [&e {host: a.b, <<: *e}]\n") == [
        "inv.yaml:2:13: endpoints[0]: recursive alias: this node contains itself"
    ]


def test_nesting_is_bounded() -> None:
    text = "version: 1\nx: " + "[" * (MAX_DEPTH + 10) + "]" * (MAX_DEPTH + 10) + "\n"
    assert problems(text) == [f"inv.yaml:2:{MAX_DEPTH + 3}: nesting deeper than {MAX_DEPTH} levels"]


def test_deep_nesting_within_the_limit_is_just_a_wrong_type() -> None:
    text = "version: 1\nendpoints: " + "[" * 20 + "]" * 20 + "\n"
    assert problems(text) == ["inv.yaml:2:13: endpoints[0]: expected a mapping, got a list"]


def test_oversized_file_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(inventory_files, "MAX_FILE_BYTES", 64)
    path = write(tmp_path / "big.yaml", "version: 1\n" + "# padding\n" * 10)
    assert file_problems(path) == [f"{path}:1:1: file too large: more than 64 bytes"]
    assert problems("version: 1\n" + "#" * 64) == [
        "inv.yaml:1:1: file too large: more than 64 bytes"
    ]
    assert load("version: 1\n" + "#" * 40).endpoints == ()


def test_default_size_limit_is_8_mib() -> None:
    assert inventory_files.MAX_FILE_BYTES == 8 * 1024 * 1024


def test_oversized_included_file_is_reported_in_that_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(inventory_files, "MAX_FILE_BYTES", 64)
    write(tmp_path / "big.yaml", "endpoints: []\n" + "# padding\n" * 10)
    root = write(tmp_path / "root.yaml", "version: 1\ninclude: [big.yaml]\n")
    assert file_problems(root) == [
        f"{tmp_path / 'big.yaml'}:1:1: file too large: more than 64 bytes"
    ]


def test_invalid_utf8_is_located(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_bytes(b"version: 1\nendpoints:\n  - host: caf\xe9.example\n")
    assert file_problems(path) == [f"{path}:3:14: not valid UTF-8 (byte 0xe9)"]


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "bom.yaml"
    path.write_bytes(b"\xef\xbb\xbfversion: 1\nendpoints: [{host: a.b}]\n")
    assert [e.name for e in load_inventory(path).endpoints] == ["a.b:443"]


def test_control_characters_are_located() -> None:
    assert problems("version: 1\nendpoints: [{host: a\x00b}]\n") == [
        "inv.yaml:2:21: character #x0000 is not allowed in YAML"
    ]
    assert problems("version: 1\nendpoints: [{host: ééé\x07}]\n") == [
        "inv.yaml:2:23: character #x0007 is not allowed in YAML"
    ]


def test_lone_surrogates_are_located() -> None:
    assert problems("version: 1\nendpoints: [{host: é\ud800}]\n") == [
        "inv.yaml:2:21: character #xd800 is not allowed in YAML"
    ]


def test_yaml_scalar_readers_never_leak_exceptions() -> None:
    text = """\
        version: 1
        pinsets:
          a: {pins: [], expires: !!timestamp nonsense}
        endpoints:
          - host: a.example
            port: !!int ""
            sni: !!bool maybe
            timeout: !!float abc
          - host: b.example
            port: !!int 99999999999999999999999999999999999999999999999999999999999
        """
    assert problems(text) == [
        "inv.yaml:3:26: pinsets.a.expires: bad date 'nonsense': expected YYYY-MM-DD",
        "inv.yaml:6:11: endpoints[0].port: invalid integer ''",
        "inv.yaml:7:10: endpoints[0].sni: sni must be a host name, or false for no SNI; got maybe",
        "inv.yaml:8:14: endpoints[0].timeout: invalid number 'abc'",
        "inv.yaml:10:11: endpoints[1].port: port must be 1..65535, got "
        "99999999999999999999999999999999999999999999999999999999999",
    ]


def test_missing_inventory_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    assert file_problems(path) == [f"{path}: cannot read inventory: No such file or directory"]


def test_inventory_path_is_a_directory(tmp_path: Path) -> None:
    assert file_problems(tmp_path) == [f"{tmp_path}: cannot read inventory: not a regular file"]


# --- includes --------------------------------------------------------------------------


def test_includes_with_globs_defaults_and_nesting(tmp_path: Path) -> None:
    write(
        tmp_path / "teams" / "b-search.yaml",
        """\
        # version is optional in included files
        endpoints:
          - host: search.example.com
        include: [../shared/*.yaml]
        """,
    )
    write(
        tmp_path / "teams" / "a-payments.yaml",
        f"""\
        version: 1
        defaults:
          port: 8443
          labels: {{team: payments}}
        pinsets:
          payments: {{pins: [{G2}]}}
        endpoints:
          - host: pay.example.com
            pinset: letsencrypt
        """,
    )
    write(
        tmp_path / "shared" / "edge.yaml",
        """\
        endpoints:
          - host: edge.example.com
            pinset: payments
        """,
    )
    write(tmp_path / "teams" / "notes.txt", "not matched by the pattern\n")
    root = write(
        tmp_path / "root.yaml",
        f"""\
        version: 1
        defaults:
          timeout: 2s
          labels: {{env: prod}}
        include: [teams/*.yaml]
        pinsets:
          letsencrypt: {{pins: [{X1}]}}
        endpoints:
          - host: root.example.com
            pinset: payments
        """,
    )
    inv = load_inventory(root)
    assert inv.files == (
        str(root),
        str(tmp_path / "teams" / "a-payments.yaml"),
        str(tmp_path / "teams" / "b-search.yaml"),
        str(tmp_path / "shared" / "edge.yaml"),
    )
    assert [(e.name, e.timeout, e.labels, e.pinset and e.pinset.name) for e in inv.endpoints] == [
        ("root.example.com:443", 2.0, (("env", "prod"),), "payments"),
        ("pay.example.com:8443", 2.0, (("env", "prod"), ("team", "payments")), "letsencrypt"),
        # the payments team's defaults do not reach the files it did not write
        ("search.example.com:443", 2.0, (("env", "prod"),), None),
        ("edge.example.com:443", 2.0, (("env", "prod"),), "payments"),
    ]
    assert list(inv.pinsets) == ["letsencrypt", "payments"]
    assert inv.endpoints[3].location == Location(str(tmp_path / "shared" / "edge.yaml"), 2, 5)


def test_include_paths_keep_the_spelling_of_the_user(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / "inv" / "teams" / "a.yaml", "endpoints: [{host: a.b, port: 0}]\n")
    write(tmp_path / "inv" / "root.yaml", "version: 1\ninclude: [teams/a.yaml]\n")
    monkeypatch.chdir(tmp_path)
    assert file_problems("inv/root.yaml") == [
        "inv/teams/a.yaml:1:31: endpoints[0].port: port must be 1..65535, got 0"
    ]


def test_load_inventory_text_resolves_includes_against_base_dir(tmp_path: Path) -> None:
    write(tmp_path / "more.yaml", "endpoints: [{host: more.example}]\n")
    inv = load("version: 1\ninclude: [more.yaml]\n", "<stdin>", base_dir=tmp_path)
    assert inv.files == ("<stdin>", str(tmp_path / "more.yaml"))
    assert [e.name for e in inv.endpoints] == ["more.example:443"]


def test_recursive_glob(tmp_path: Path) -> None:
    write(tmp_path / "r" / "a.yaml", "endpoints: [{host: a.example}]\n")
    write(tmp_path / "r" / "x" / "y" / "b.yaml", "endpoints: [{host: b.example}]\n")
    root = write(tmp_path / "root.yaml", "version: 1\ninclude: ['r/**/*.yaml']\n")
    assert [e.host for e in load_inventory(root).endpoints] == ["a.example", "b.example"]


def test_include_pattern_matching_nothing(tmp_path: Path) -> None:
    write(tmp_path / "teams" / "a.yaml", "{}\n")
    (tmp_path / "dir.yaml").mkdir()
    root = write(
        tmp_path / "root.yaml",
        "version: 1\ninclude:\n  - teams/*.yml\n  - teams/*.yaml\n  - dir.yaml\n  - ''\n  - ~\n",
    )
    assert file_problems(root) == [
        f"{root}:3:5: include[0]: include pattern 'teams/*.yml' matches no file",
        f"{root}:5:5: include[2]: include pattern 'dir.yaml' matches no file",
        f"{root}:6:5: include[3]: invalid include pattern ''",
        f"{root}:7:5: include[4]: expected a string, got null",
    ]


def test_include_cycles(tmp_path: Path) -> None:
    write(tmp_path / "a.yaml", "include: [b.yaml]\n")
    write(tmp_path / "b.yaml", "include: [a.yaml, root.yaml]\n")
    root = write(tmp_path / "root.yaml", "version: 1\ninclude: [a.yaml]\n")
    b = tmp_path / "b.yaml"
    assert file_problems(root) == [
        f"{b}:1:11: include[0]: include cycle: {root} -> {tmp_path / 'a.yaml'} -> {b} -> "
        f"{tmp_path / 'a.yaml'}",
        f"{b}:1:19: include[1]: include cycle: {root} -> {tmp_path / 'a.yaml'} -> {b} -> {root}",
    ]


def test_a_file_including_itself(tmp_path: Path) -> None:
    root = write(tmp_path / "root.yaml", "version: 1\ninclude: ['*.yaml']\n")
    assert file_problems(root) == [f"{root}:2:11: include[0]: include cycle: {root} -> {root}"]


def test_a_file_included_twice_is_read_once(tmp_path: Path) -> None:
    write(tmp_path / "shared.yaml", "endpoints: [{host: shared.example}]\n")
    write(tmp_path / "a.yaml", "include: [shared.yaml]\n")
    write(tmp_path / "b.yaml", "include: [shared.yaml, ./shared.yaml]\n")
    root = write(tmp_path / "root.yaml", "version: 1\ninclude: [a.yaml, b.yaml, '*d.yaml']\n")
    inv = load_inventory(root)
    assert inv.files == (
        str(root),
        str(tmp_path / "a.yaml"),
        str(tmp_path / "shared.yaml"),
        str(tmp_path / "b.yaml"),
    )
    assert [e.name for e in inv.endpoints] == ["shared.example:443"]


def test_duplicates_across_files_name_the_first_location(tmp_path: Path) -> None:
    write(
        tmp_path / "team.yaml",
        f"""\
        pinsets:
          letsencrypt: {{pins: [{X2}]}}
        endpoints:
          - host: other.example
          - host: api.example.com
        """,
    )
    root = write(
        tmp_path / "root.yaml",
        f"""\
        version: 1
        include: [team.yaml]
        pinsets:
          letsencrypt: {{pins: [{X1}]}}
        endpoints:
          - host: api.example.com
        """,
    )
    team = tmp_path / "team.yaml"
    assert file_problems(root) == [
        f"{team}:2:3: pinsets.letsencrypt: pinset 'letsencrypt' is already defined at {root}:4:3",
        f"{team}:5:5: endpoints[1]: duplicate endpoint name 'api.example.com:443' "
        f"(first defined at {root}:6:5)",
    ]


def test_a_client_pinset_named_like_a_plain_pinset_of_another_file_is_already_defined(
    tmp_path: Path,
) -> None:
    """Plain and client pin-sets share one namespace across files (found by
    mutation testing, issue 19: nothing asserted it for client pin-sets)."""
    write(
        tmp_path / "team.yaml",
        f"""\
        pinsets:
          corp: {{pins: [{X2}]}}
        """,
    )
    root = write(
        tmp_path / "root.yaml",
        f"""\
        version: 1
        include: [team.yaml]
        pinsets:
          corp:
            client: okhttp
            rules:
              - host: api.example.com
                pins: [{X1}]
        endpoints:
          - host: api.example.com
            pinset: corp
        """,
    )
    team = tmp_path / "team.yaml"
    assert file_problems(root) == [
        f"{team}:2:3: pinsets.corp: pinset 'corp' is already defined at {root}:4:3",
    ]
    write(
        tmp_path / "team.yaml",
        f"""\
        pinsets:
          corp:
            client: okhttp
            rules:
              - host: api.example.com
                pins: [{X2}]
        """,
    )
    write(
        root,
        f"""\
        version: 1
        include: [team.yaml]
        pinsets:
          corp: {{pins: [{X1}]}}
        endpoints:
          - host: api.example.com
            pinset: corp
        """,
    )
    assert file_problems(root) == [
        f"{team}:2:3: pinsets.corp: pinset 'corp' is already defined at {root}:4:3",
    ]


def test_problems_from_every_file_at_once(tmp_path: Path) -> None:
    write(tmp_path / "a.yaml", "version: 2\nendpoints: [{host: a.b, port: 0}]\n")
    write(tmp_path / "b.yaml", "endpoints: {}\n")
    root = write(tmp_path / "root.yaml", "include: ['?.yaml']\nendpoints: [{hots: x}]\n")
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    assert file_problems(root) == [
        f"{root}:1:1: missing required key 'version'",
        f"{root}:2:13: endpoints[0]: missing required key 'host'",
        f"{root}:2:14: endpoints[0].hots: unknown key 'hots' (did you mean 'host'?)",
        f"{a}:1:10: version: unsupported version 2 (this pinaudit reads version 1)",
        f"{a}:2:31: endpoints[0].port: port must be 1..65535, got 0",
        f"{b}:1:12: endpoints: expected a list, got a mapping",
    ]


def test_an_empty_included_file_is_fine(tmp_path: Path) -> None:
    write(tmp_path / "empty.yaml", "")
    root = write(tmp_path / "root.yaml", "version: 1\ninclude: [empty.yaml]\n")
    assert load_inventory(root).files == (str(root), str(tmp_path / "empty.yaml"))


def test_unreadable_included_file(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root reads every file")
    secret = write(tmp_path / "secret.yaml", "endpoints: []\n")
    secret.chmod(0)
    root = write(tmp_path / "root.yaml", "version: 1\ninclude: [secret.yaml]\n")
    assert file_problems(root) == [
        f"{root}:2:11: include[0]: cannot read '{secret}': Permission denied"
    ]


# --- the shipped example and the JSON schema ---------------------------------------------


def _json_view(value: Any) -> Any:
    """What an editor's YAML 1.2 view gives: dates stay strings."""
    if isinstance(value, dict):
        return {k: _json_view(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_view(v) for v in value]
    if isinstance(value, datetime.date):
        return value.isoformat()
    return value


@pytest.fixture(scope="module")
def schema() -> jsonschema.Draft202012Validator:
    document = json.loads((REPO / "inventories" / "schema.json").read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(document)
    return jsonschema.Draft202012Validator(document)


def test_example_inventory_loads() -> None:
    path = REPO / "inventories" / "example.yaml"
    assert path.read_text(encoding="utf-8").splitlines()[0] == (
        "# yaml-language-server: $schema=schema.json"
    )
    inv = load_inventory(path)
    assert [e.name for e in inv.endpoints] == [
        "api.example.com:443",
        "edge-eu-1",
        "[2001:db8::10]:443",
        "legacy-no-sni",
        "m.example.com:443",
        "m2.example.com:443",
        "cdn.example.com:443",
    ]
    assert inv.endpoints[-1].all_addresses is True
    assert list(inv.pinsets) == ["letsencrypt", "mobile-app", "unpinned"]
    assert inv.endpoints[1].pinset is not None
    assert inv.endpoints[1].pinset.name == "letsencrypt+inline"


def test_example_inventory_validates_against_the_schema(
    schema: jsonschema.Draft202012Validator,
) -> None:
    text = (REPO / "inventories" / "example.yaml").read_text(encoding="utf-8")
    schema.validate(_json_view(yaml.safe_load(text)))


def test_design_example_validates_against_the_schema(
    schema: jsonschema.Draft202012Validator,
) -> None:
    schema.validate(_json_view(yaml.safe_load(DESIGN_EXAMPLE)))


BAD_FOR_BOTH = {
    "unknown top-level key": "version: 1\ndefualts: {}\n",
    "unknown endpoint key": "version: 1\nendpoints: [{host: a.b, prot: 1}]\n",
    "port out of range": "version: 1\nendpoints: [{host: a.b, port: 70000}]\n",
    "port as a string": "version: 1\nendpoints: [{host: a.b, port: '443'}]\n",
    "boolean port": "version: 1\nendpoints: [{host: a.b, port: true}]\n",
    "missing host": "version: 1\nendpoints: [{name: x}]\n",
    "URL as host": "version: 1\nendpoints: [{host: 'https://a.b'}]\n",
    "host with spaces": "version: 1\nendpoints: [{host: 'a b'}]\n",
    "bracketed IPv6": "version: 1\nendpoints: [{host: '[::1]'}]\n",
    "pins as a string": f"version: 1\nendpoints: [{{host: a.b, pins: {X1}}}]\n",
    "reserved label": "version: 1\ndefaults: {labels: {job: x}}\n",
    "bad label name": "version: 1\ndefaults: {labels: {a-b: x}}\n",
    "bad timeout": "version: 1\ndefaults: {timeout: soon}\n",
    "zero timeout": "version: 1\ndefaults: {timeout: 0}\n",
    "negative days": "version: 1\ndefaults: {warn_days: -1}\n",
    "version 2": "version: 2\n",
    "pinset without pins": "version: 1\npinsets: {a: {expires: 2027-01-01}}\n",
    "bad digest": "version: 1\npinsets: {a: {pins: [], digest: MD5}}\n",
    "endpoints as a mapping": "version: 1\nendpoints: {}\n",
    "include as a string": "version: 1\ninclude: a.yaml\n",
    "sni true": "version: 1\nendpoints: [{host: a.b, sni: true}]\n",
}


@pytest.mark.parametrize("text", BAD_FOR_BOTH.values(), ids=BAD_FOR_BOTH.keys())
def test_bad_inventories_are_rejected_by_the_schema_and_the_loader(
    schema: jsonschema.Draft202012Validator, text: str
) -> None:
    assert not schema.is_valid(_json_view(yaml.safe_load(text)))
    assert problems(text)


def test_a_fifo_is_never_opened(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    assert file_problems(fifo) == [f"{fifo}: cannot read inventory: not a regular file"]
    root = write(tmp_path / "root.yaml", "version: 1\ninclude: [fifo.yaml]\n")
    assert file_problems(root) == [
        f"{root}:2:11: include[0]: include pattern 'fifo.yaml' matches no file"
    ]


def test_a_path_with_a_nul_byte() -> None:
    assert file_problems("inv\x00.yaml") == [
        "inv\x00.yaml: cannot read inventory: embedded null byte"
    ]


def test_an_included_file_failing_to_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same path as a permission error, for runs as root (which reads every file)."""
    write(tmp_path / "a.yaml", "endpoints: []\n")
    root = write(tmp_path / "root.yaml", "version: 1\ninclude: [a.yaml]\n")
    read_file = inventory_files.read_file

    def failing(path: str) -> bytes:
        if path.endswith("a.yaml"):
            raise inventory_files.Unreadable("Input/output error")
        return read_file(path)

    monkeypatch.setattr(inventory_schema, "read_file", failing)
    assert file_problems(root) == [
        f"{root}:2:11: include[0]: cannot read '{tmp_path / 'a.yaml'}': Input/output error"
    ]


# --- probing options: every address, client certificates ---------------------------


def _client_pair(directory: Path) -> tuple[Issued, Issued]:
    """A client certificate with its key, and another one (for mismatches)."""
    pki = PKI(datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc))
    root = pki.root("Client CA")
    one, other = pki.leaf("client-1", root), pki.leaf("client-2", root)
    (directory / "mtls").mkdir(exist_ok=True)
    (directory / "mtls" / "client.pem").write_bytes(one.pem)
    (directory / "mtls" / "client.key").write_bytes(one.key_pem())
    (directory / "mtls" / "other.key").write_bytes(other.key_pem())
    (directory / "mtls" / "both.pem").write_bytes(one.pem + one.key_pem())
    return one, other


def test_all_addresses_and_client_certificates(tmp_path: Path) -> None:
    _client_pair(tmp_path)
    write(
        tmp_path / "inv.yaml",
        """\
        version: 1
        defaults: {all_addresses: true}
        endpoints:
          - host: a.example.com
          - host: b.example.com
            all_addresses: false
            client_cert: mtls/client.pem
            client_key: mtls/client.key
        """,
    )
    a, b = load_inventory(tmp_path / "inv.yaml").endpoints
    assert (a.all_addresses, a.client_cert, a.client_key) == (True, None, None)
    assert (b.all_addresses, b.client_cert, b.client_key) == (
        False,
        str(tmp_path / "mtls" / "client.pem"),
        str(tmp_path / "mtls" / "client.key"),
    )


def test_a_client_key_that_does_not_match_its_certificate_is_refused_at_load(
    tmp_path: Path,
) -> None:
    """Before, such a pair passed validate and the scan ended with exit 70 (an
    ExceptionGroup from the TLS context); in the exporter a reload said OK and
    the next scan killed the process."""
    one, _ = _client_pair(tmp_path)
    (tmp_path / "mtls" / "locked.key").write_bytes(
        one.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret"),
        )
    )
    (tmp_path / "mtls" / "junk.key").write_text("not a key\n")
    found = problems(
        """\
        version: 1
        defaults: {client_cert: mtls/client.pem}
        endpoints:
          - {host: ok.example.com, client_key: mtls/client.key}
          - {host: both.example.com, client_cert: mtls/both.pem}
          - {host: other.example.com, client_key: mtls/other.key}
          - {host: locked.example.com, client_key: mtls/locked.key}
          - {host: junk.example.com, client_key: mtls/junk.key}
          - {host: nokey.example.com}
        """,
        base_dir=tmp_path,
    )
    assert found == [
        "inv.yaml:6:5: endpoints[2].client_cert: client_key does not match client_cert: "
        "their public keys differ",
        "inv.yaml:7:5: endpoints[3].client_cert: the client key is encrypted: give an "
        "unencrypted key (a scan cannot prompt for a passphrase)",
        "inv.yaml:8:5: endpoints[4].client_cert: client_key holds no PEM private key",
        "inv.yaml:9:5: endpoints[5].client_cert: client_cert (no client_key given) holds no "
        "PEM private key",
    ]


def test_bad_probing_options_are_reported(tmp_path: Path) -> None:
    found = problems(
        """\
        version: 1
        endpoints:
          - host: a.example.com
            all_addresses: yes please
            client_cert: missing.pem
        """,
        base_dir=tmp_path,
    )
    assert found == [
        "inv.yaml:4:20: endpoints[0].all_addresses: expected true or false, got a string",
        f"inv.yaml:5:18: endpoints[0].client_cert: file 'missing.pem' not found "
        f"(looked for {tmp_path / 'missing.pem'})",
    ]


def test_caa_identifiers_are_checked_where_they_are_written() -> None:
    inventory = load_inventory_text(
        textwrap.dedent(
            """\
            version: 1
            defaults: {caa: true, caa_identifiers: {"Example Corp CA": [CA.Example.NET.]}}
            endpoints:
              - host: a.example.com
              - host: b.example.com
                caa_identifiers: {"Other CA": [ca.other.test, pki.other.test]}
            """
        ),
        "inv.yaml",
    )
    a, b = inventory.endpoints
    assert a.caa_identifiers == (("Example Corp CA", ("ca.example.net",)),)
    assert b.caa_identifiers == (("Other CA", ("ca.other.test", "pki.other.test")),)
    assert problems(
        """\
        version: 1
        endpoints:
          - host: a.example.com
            caa_identifiers: {"": [x.test], "A": [], "B": ["10.0.0.1", "https://ca.test/"], "C": x}
        """
    ) == [
        "inv.yaml:4:23: endpoints[0].caa_identifiers.: the issuer organisation must not be empty",
        "inv.yaml:4:42: endpoints[0].caa_identifiers.A: name at least one CAA issuer domain",
        "inv.yaml:4:52: endpoints[0].caa_identifiers.B[0]: a CAA issuer domain is a domain "
        "name, not '10.0.0.1'",
        "inv.yaml:4:64: endpoints[0].caa_identifiers.B[1]: a CAA issuer domain must be a host "
        "name or IP address, not a URL or path: 'https://ca.test/'",
        "inv.yaml:4:90: endpoints[0].caa_identifiers.C: expected a list, got a string",
    ]
