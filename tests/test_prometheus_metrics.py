"""Scan results → Prometheus samples, exactly: the pure core of the metric
contract (label sets, pins, broken chains, retention, all_addresses), its
text rendering, and the metric table of docs/metrics.md. No network: results are
judged from chains of a generated PKI, as the engine would."""

from __future__ import annotations

import dataclasses
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from scanner.exporters.contract import (
    BY_NAME,
    MAX_INFO_VALUE,
    RESERVED_LABELS,
    SPECS,
    Scope,
    own_label_names,
)
from scanner.exporters.metrics import (
    BuildInfo,
    Exposition,
    History,
    ReloadState,
    ScanRecord,
    job_exposition,
    process_exposition,
    scan_exposition,
)
from scanner.exporters.prometheus import render_text
from scanner.fleet.pki import PKI, Issued
from scanner.model import (
    Endpoint,
    Observation,
    Pinset,
    ProbeErrorKind,
    ProbeFailure,
    TrustKind,
    TrustSpec,
)
from scanner.results import EndpointResult, evaluate, not_scanned, unreachable
from scanner.trust import TrustStore, store_from_pem

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 3, 1, tzinfo=timezone.utc)
FINISHED = NOW + timedelta(seconds=7)
Sample = tuple[str, frozenset[tuple[str, str]], float]


class Fixture:
    def __init__(self) -> None:
        self.pki = PKI(NOW)
        self.root = self.pki.root("Metrics Root")
        self.inter = self.pki.intermediate("Metrics CA", self.root)
        self.backup_root = self.pki.root("Metrics Backup Root")
        self.rogue = self.pki.root("Rogue Root")
        self.store = store_from_pem(self.root.pem + self.backup_root.pem, "test")

    def leaf(self, host: str, issuer: Issued | None = None, **kw: object) -> Issued:
        return self.pki.leaf(host, issuer or self.inter, **kw)


@pytest.fixture(scope="module")
def fx() -> Fixture:
    return Fixture()


def endpoint(
    name: str,
    pins: Pinset | None = None,
    labels: dict[str, str] | None = None,
    *,
    all_addresses: bool = False,
) -> Endpoint:
    return Endpoint(
        name=name,
        host=f"{name}.test",
        port=443,
        sni=f"{name}.test",
        pinset=pins,
        trust=TrustSpec(TrustKind.BUNDLE, "/nonexistent/test.pem"),
        labels=tuple(sorted((labels or {}).items())),
        all_addresses=all_addresses,
    )


def observed(address: str, *chain: Issued) -> Observation:
    return Observation(
        address=address,
        port=443,
        served=tuple(c.der for c in chain),
        tls_version="TLSv1.3",
        cipher="TLS_AES_128_GCM_SHA256",
        alpn=None,
        connect_seconds=0.25,
        handshake_seconds=0.5,
    )


def judge(ep: Endpoint, store: TrustStore, *probed: Observation | ProbeFailure) -> EndpointResult:
    return evaluate(ep, list(probed), store, NOW)


def record(*results: EndpointResult, finished: datetime = FINISHED) -> ScanRecord:
    return ScanRecord(tuple(results), NOW, finished, 7.0)


def samples(exposition: Exposition, name: str) -> set[Sample]:
    return {s for s in exposition.samples() if s[0] == name}


def by_endpoint(exposition: Exposition, name: str) -> dict[str, float]:
    found = {}
    for _, labels, value in samples(exposition, name):
        found[dict(labels)["endpoint"]] = value
    return found


def ts(when: datetime) -> float:
    return when.timestamp()


# --- the contract ---------------------------------------------------------------


def test_every_label_pinaudit_sets_is_reserved_by_the_inventory_loader() -> None:
    assert own_label_names() <= RESERVED_LABELS
    assert own_label_names() == {
        "endpoint",
        "address",
        "reason",
        "check",
        "severity",
        "pinset",
        "position",
        "role",
        "subject",
        "issuer",
        "spki_sha256",
        "serial",
        "result",
        "version",
        "revision",
        "python_version",
        "kind",
        "cipher",
        "alpn",
        "ocsp_status",
        "ct_policy",
        "caa_outcome",
    }


def test_names_follow_the_conventions() -> None:
    for spec in SPECS:
        assert re.fullmatch(r"pinaudit_[a-z0-9_]+", spec.name), spec.name
        assert not spec.name.endswith("_total"), spec.name  # every family is a gauge
        if "timestamp" in spec.name or "duration" in spec.name:
            assert spec.name.endswith("_seconds"), spec.name
        assert spec.help.endswith("."), spec.name


def _docs_table() -> dict[str, tuple[str, ...]]:
    text = (ROOT / "docs" / "metrics.md").read_text()
    section = text.split("\n## Metrics\n", 1)[1].split("\n## ", 1)[0]
    rows: dict[str, tuple[str, ...]] = {}
    for line in section.splitlines():
        match = re.match(r"\| `(pinaudit_[a-z0-9_]+)` \|([^|]*)\|", line)
        if match:
            labels = tuple(re.findall(r"`([a-z_0-9]+)`", match.group(2)))
            rows[match.group(1)] = labels
    return rows


def test_the_docs_table_lists_every_metric_with_its_labels() -> None:
    expected = {}
    for spec in SPECS:
        scope = {
            Scope.ADDRESS: ("endpoint", "address"),
            Scope.ENDPOINT: ("endpoint",),
        }.get(spec.scope, ())
        expected[spec.name] = (*scope, *spec.labels)
    assert _docs_table() == expected


# --- what each endpoint exports -------------------------------------------------


def test_label_sets_are_uniform_and_missing_inventory_labels_are_empty(fx: Fixture) -> None:
    a = judge(
        endpoint("a", labels={"team": "payments"}),
        fx.store,
        observed("192.0.2.1", fx.leaf("a.test"), fx.inter),
    )
    b = judge(
        endpoint("b", labels={"env": "prod"}),
        fx.store,
        observed("192.0.2.2", fx.leaf("b.test"), fx.inter),
    )
    exposition, _ = scan_exposition(record(a, b))
    up = exposition.families[0]
    assert up.name == "pinaudit_endpoint_up"
    assert up.label_names == ("endpoint", "env", "team")  # no address: nobody has all_addresses
    assert up.samples == ((("a", "", "payments"), 1.0), (("b", "prod", ""), 1.0))
    for family in exposition.families:
        spec = BY_NAME[family.name]
        if spec.scope in (Scope.ADDRESS, Scope.ENDPOINT):
            assert family.label_names[0] == "endpoint"
            assert family.label_names[-2:] == ("env", "team"), family.name
        for values, _ in family.samples:
            assert len(values) == len(family.label_names)


TLS = {("version", "TLSv1.3"), ("cipher", "TLS_AES_128_GCM_SHA256"), ("alpn", "")}


def test_a_healthy_pinned_endpoint_exactly(fx: Fixture) -> None:
    leaf = fx.leaf("api.test")
    pins = Pinset("app", (fx.inter.pin, fx.backup_root.pin), expires=NOW.date() + timedelta(90))
    result = judge(endpoint("api", pins), fx.store, observed("192.0.2.1", leaf, fx.inter))
    exposition, _ = scan_exposition(record(result))
    ep = (("endpoint", "api"),)
    expiry = datetime.combine(pins.expires, datetime.min.time(), tzinfo=timezone.utc)  # type: ignore[arg-type]
    leaf_facts = {
        ("subject", leaf.subject),
        ("issuer", fx.inter.subject),
        ("spki_sha256", str(leaf.pin)),
        ("serial", format(leaf.cert.serial_number, "x")),
    }
    assert exposition.samples() == {
        ("pinaudit_endpoint_up", frozenset(ep), 1.0),
        ("pinaudit_last_success_timestamp_seconds", frozenset(ep), ts(FINISHED)),
        ("pinaudit_handshake_duration_seconds", frozenset(ep), 0.75),
        ("pinaudit_tls_info", frozenset({*ep, *TLS}), 1.0),
        ("pinaudit_pin_match", frozenset(ep), 1.0),
        # one path clients can build, and it carries a pin
        ("pinaudit_pin_paths", frozenset({*ep, ("result", "match")}), 1.0),
        ("pinaudit_pin_paths", frozenset({*ep, ("result", "mismatch")}), 0.0),
        ("pinaudit_pins_enforced", frozenset(ep), 1.0),
        (
            "pinaudit_pinset_expiry_timestamp_seconds",
            frozenset({*ep, ("pinset", "app")}),
            ts(expiry),
        ),
        ("pinaudit_backup_pins", frozenset(ep), 1.0),
        ("pinaudit_chain_valid", frozenset(ep), 1.0),
        *(
            (
                "pinaudit_cert_not_after_timestamp_seconds",
                frozenset({*ep, ("position", str(n)), ("role", r)}),
                ts(cert.cert.not_valid_after_utc),
            )
            for n, (r, cert) in enumerate(
                [("leaf", leaf), ("intermediate", fx.inter), ("root", fx.root)]
            )
        ),
        (
            "pinaudit_chain_expiry_timestamp_seconds",
            frozenset(ep),
            ts(leaf.cert.not_valid_after_utc),
        ),
        ("pinaudit_leaf_info", frozenset({*ep, *leaf_facts}), 1.0),
        ("pinaudit_chain_divergence", frozenset(ep), 1.0),
        # the intermediate is pinned (survives a new leaf key); the backup root is a CA we know
        ("pinaudit_rotation_ready", frozenset({*ep, ("kind", "leaf_renewal")}), 1.0),
        ("pinaudit_rotation_ready", frozenset({*ep, ("kind", "ca_switch")}), 1.0),
        ("pinaudit_scan_duration_seconds", frozenset(), 7.0),
        ("pinaudit_scan_timestamp_seconds", frozenset(), ts(FINISHED)),
        ("pinaudit_scan_endpoints", frozenset({("result", "ok")}), 1.0),
        ("pinaudit_scan_endpoints", frozenset({("result", "drift")}), 0.0),
        ("pinaudit_scan_endpoints", frozenset({("result", "error")}), 0.0),
    }


def test_pin_match_and_backup_pins(fx: Fixture) -> None:
    chain = (fx.inter,)
    rotated_away = fx.leaf("x.test")
    results = [
        judge(
            endpoint("matched", Pinset("p", (fx.inter.pin, fx.backup_root.pin))),
            fx.store,
            observed("192.0.2.1", fx.leaf("matched.test"), *chain),
        ),
        judge(
            endpoint("drift", Pinset("p", (rotated_away.pin, fx.backup_root.pin))),
            fx.store,
            observed("192.0.2.2", fx.leaf("drift.test"), *chain),
        ),
        judge(
            endpoint("root", Pinset("p", (fx.root.pin,))),  # the anchor is not served
            fx.store,
            observed("192.0.2.3", fx.leaf("root.test"), *chain),
        ),
        judge(
            endpoint("unpinned"), fx.store, observed("192.0.2.4", fx.leaf("unpinned.test"), *chain)
        ),
        judge(
            endpoint("disabled", Pinset("none", ())),
            fx.store,
            observed("192.0.2.5", fx.leaf("disabled.test"), *chain),
        ),
        judge(
            endpoint(
                "lapsed", Pinset("old", (rotated_away.pin,), expires=NOW.date() - timedelta(1))
            ),
            fx.store,
            observed("192.0.2.6", fx.leaf("lapsed.test"), *chain),
        ),
    ]
    exposition, _ = scan_exposition(record(*results))
    assert by_endpoint(exposition, "pinaudit_pin_match") == {
        "matched": 1,
        "drift": 0,
        "root": 1,
        "lapsed": 0,
    }
    assert by_endpoint(exposition, "pinaudit_backup_pins") == {
        "matched": 1,
        "drift": 2,
        "root": 0,
        "lapsed": 1,
    }
    assert by_endpoint(exposition, "pinaudit_pins_enforced") == {
        "matched": 1,
        "drift": 1,
        "root": 1,
        "disabled": 0,  # an empty pin-set: pinning is disabled
        "lapsed": 0,  # expired yesterday, 00:00 UTC: no longer enforced
    }
    # pin_match 0 is exactly "a pin_mismatch finding" when a path exists
    mismatched = {
        dict(labels)["endpoint"]
        for _, labels, _ in samples(exposition, "pinaudit_findings")
        if dict(labels)["check"] == "pin_mismatch"
    }
    assert mismatched == {"drift", "lapsed"}


def test_facts_are_exported_for_a_chain_that_does_not_validate(fx: Fixture) -> None:
    rogue_inter = fx.pki.intermediate("Rogue CA", fx.rogue)
    leaf = fx.leaf("evil.test", rogue_inter)
    result = judge(
        endpoint("evil", Pinset("p", (fx.inter.pin, fx.backup_root.pin))),
        fx.store,
        observed("192.0.2.9", leaf, rogue_inter, fx.rogue),
    )
    exposition, _ = scan_exposition(record(result))
    assert by_endpoint(exposition, "pinaudit_chain_valid") == {"evil": 0}
    assert by_endpoint(exposition, "pinaudit_pin_match") == {"evil": 0}  # no path: no client
    assert by_endpoint(exposition, "pinaudit_backup_pins") == {"evil": 2}
    not_after = {
        (dict(labels)["position"], dict(labels)["role"]): value
        for _, labels, value in samples(exposition, "pinaudit_cert_not_after_timestamp_seconds")
    }
    assert not_after == {  # the served chain, as served, when no path exists
        ("0", "leaf"): ts(leaf.cert.not_valid_after_utc),
        ("1", "intermediate"): ts(rogue_inter.cert.not_valid_after_utc),
        ("2", "root"): ts(fx.rogue.cert.not_valid_after_utc),
    }
    [(_, labels, _)] = samples(exposition, "pinaudit_leaf_info")
    assert dict(labels)["issuer"] == rogue_inter.subject


def test_expired_leaf_keeps_its_facts(fx: Fixture) -> None:
    leaf = fx.leaf("old.test", days_before=100, days_after=-3)
    result = judge(endpoint("old"), fx.store, observed("192.0.2.1", leaf, fx.inter))
    exposition, _ = scan_exposition(record(result))
    assert by_endpoint(exposition, "pinaudit_chain_valid") == {"old": 0}
    assert by_endpoint(exposition, "pinaudit_chain_expiry_timestamp_seconds") == {
        "old": ts(leaf.cert.not_valid_after_utc)
    }


def test_long_subjects_are_clipped_on_leaf_info(fx: Fixture) -> None:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    long_name = x509.Name(
        [x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "u" * 60) for _ in range(8)]
        + [x509.NameAttribute(NameOID.COMMON_NAME, "long.test")]
    )
    leaf = fx.pki.issue("long.test", issuer=fx.inter, subject=long_name, dns=("long.test",))
    result = judge(endpoint("long"), fx.store, observed("192.0.2.1", leaf, fx.inter))
    exposition, _ = scan_exposition(record(result))
    [(_, labels, _)] = samples(exposition, "pinaudit_leaf_info")
    subject = dict(labels)["subject"]
    assert len(leaf.subject) > MAX_INFO_VALUE
    assert len(subject) == MAX_INFO_VALUE
    assert subject == leaf.subject[: MAX_INFO_VALUE - 1] + "…"


def test_findings_count_each_present_check_and_severity(fx: Fixture) -> None:
    rotated_away = fx.leaf("gone.test")
    result = judge(
        endpoint("drift", Pinset("p", (rotated_away.pin,))),
        fx.store,
        observed("192.0.2.1", fx.leaf("drift.test", days_after=3), fx.inter, fx.backup_root),
    )
    exposition, _ = scan_exposition(record(result))
    found = {
        (dict(labels)["check"], dict(labels)["severity"]): value
        for _, labels, value in samples(exposition, "pinaudit_findings")
    }
    assert found == {
        ("pin_mismatch", "critical"): 1,
        ("single_pin", "warning"): 1,
        ("cert_expiring", "critical"): 1,
        ("chain_extra_certs", "warning"): 1,
        ("unresolved_pin", "info"): 1,
    }


def test_unreachable_and_not_scanned_endpoints(fx: Fixture) -> None:
    refused = unreachable(
        endpoint("down", Pinset("p", (fx.inter.pin, fx.root.pin))),
        [ProbeFailure(ProbeErrorKind.REFUSED, "connection refused", "192.0.2.1")],
        1,
    )
    late = not_scanned(endpoint("late"), "global deadline passed before it finished")
    exposition, _ = scan_exposition(record(refused, late))
    assert by_endpoint(exposition, "pinaudit_endpoint_up") == {"down": 0, "late": 0}
    reasons = {
        (dict(labels)["endpoint"], dict(labels)["reason"]): value
        for _, labels, value in samples(exposition, "pinaudit_probe_error")
    }
    assert reasons == {("down", "refused"): 1, ("late", "not_scanned"): 1}
    names = {s[0] for s in exposition.samples()}
    assert "pinaudit_chain_valid" not in names  # never read: nothing to retain
    assert "pinaudit_last_success_timestamp_seconds" not in names
    assert by_endpoint(exposition, "pinaudit_pins_enforced") == {"down": 1}  # from the inventory
    assert samples(exposition, "pinaudit_scan_endpoints") == {
        ("pinaudit_scan_endpoints", frozenset({("result", "ok")}), 0.0),
        ("pinaudit_scan_endpoints", frozenset({("result", "drift")}), 0.0),
        ("pinaudit_scan_endpoints", frozenset({("result", "error")}), 2.0),
    }


# --- retention --------------------------------------------------------------------

FACTS = {
    "pinaudit_last_success_timestamp_seconds",
    "pinaudit_pin_match",
    "pinaudit_backup_pins",
    "pinaudit_chain_valid",
    "pinaudit_cert_not_after_timestamp_seconds",
    "pinaudit_chain_expiry_timestamp_seconds",
    "pinaudit_leaf_info",
    "pinaudit_chain_divergence",
}


def _facts(exposition: Exposition) -> set[Sample]:
    return {s for s in exposition.samples() if s[0] in FACTS}


def test_facts_of_the_last_success_stay_within_the_retention(fx: Fixture) -> None:
    ep = endpoint("api", Pinset("p", (fx.inter.pin, fx.backup_root.pin)))
    good = judge(ep, fx.store, observed("192.0.2.1", fx.leaf("api.test"), fx.inter))
    down = unreachable(ep, [ProbeFailure(ProbeErrorKind.TIMEOUT, "handshake", "192.0.2.1")], 2)
    retention = timedelta(hours=24)

    first, history = scan_exposition(record(good), retention=retention)
    later = FINISHED + timedelta(hours=23)
    second, history = scan_exposition(
        record(down, finished=later), history=history, retention=retention
    )
    assert _facts(second) == _facts(first)  # same facts, last success still the first scan
    assert by_endpoint(second, "pinaudit_last_success_timestamp_seconds") == {"api": ts(FINISHED)}
    assert by_endpoint(second, "pinaudit_endpoint_up") == {"api": 0}
    assert {dict(labels)["reason"] for _, labels, _ in samples(second, "pinaudit_probe_error")} == {
        "timeout"
    }
    assert "pinaudit_handshake_duration_seconds" not in {s[0] for s in second.samples()}
    findings = {dict(labels)["check"] for _, labels, _ in samples(second, "pinaudit_findings")}
    assert findings == {"unreachable"}  # findings are the last scan's verdict

    past = FINISHED + timedelta(hours=24, seconds=1)
    third, history = scan_exposition(
        record(down, finished=past), history=history, retention=retention
    )
    assert _facts(third) == set()
    assert history.addresses == {}


def test_a_new_success_replaces_the_retained_facts(fx: Fixture) -> None:
    ep = endpoint("api")
    old_leaf, new_leaf = fx.leaf("api.test"), fx.leaf("api.test", days_after=200)
    _, history = scan_exposition(
        record(judge(ep, fx.store, observed("192.0.2.1", old_leaf, fx.inter)))
    )
    later = FINISHED + timedelta(hours=1)
    fresh = judge(ep, fx.store, observed("192.0.2.1", new_leaf, fx.inter))
    exposition, _ = scan_exposition(record(fresh, finished=later), history=history)
    assert by_endpoint(exposition, "pinaudit_chain_expiry_timestamp_seconds") == {
        "api": ts(min(new_leaf.cert.not_valid_after_utc, fx.inter.cert.not_valid_after_utc))
    }
    assert by_endpoint(exposition, "pinaudit_last_success_timestamp_seconds") == {"api": ts(later)}


def test_an_endpoint_removed_from_the_inventory_is_forgotten(fx: Fixture) -> None:
    a = judge(endpoint("a"), fx.store, observed("192.0.2.1", fx.leaf("a.test"), fx.inter))
    b = judge(endpoint("b"), fx.store, observed("192.0.2.2", fx.leaf("b.test"), fx.inter))
    _, history = scan_exposition(record(a, b))
    exposition, history = scan_exposition(record(a), history=history)
    assert set(by_endpoint(exposition, "pinaudit_endpoint_up")) == {"a"}
    assert [eid[0] for eid in history.addresses] == ["a"]
    # and when it comes back failing, nothing old is resurrected
    down_b = unreachable(endpoint("b"), [ProbeFailure(ProbeErrorKind.REFUSED, "refused")], 1)
    exposition, _ = scan_exposition(record(a, down_b), history=history)
    assert "b" not in by_endpoint(exposition, "pinaudit_chain_valid")


def test_zero_retention_keeps_nothing(fx: Fixture) -> None:
    ep = endpoint("api")
    good = judge(ep, fx.store, observed("192.0.2.1", fx.leaf("api.test"), fx.inter))
    down = unreachable(ep, [ProbeFailure(ProbeErrorKind.RESET, "reset", "192.0.2.1")], 1)
    _, history = scan_exposition(record(good), retention=timedelta(0))
    later = FINISHED + timedelta(seconds=1)
    exposition, _ = scan_exposition(
        record(down, finished=later), history=history, retention=timedelta(0)
    )
    assert _facts(exposition) == set()


# --- all_addresses ----------------------------------------------------------------


def test_all_addresses_series_carry_the_address(fx: Fixture) -> None:
    ep = endpoint("multi", Pinset("p", (fx.inter.pin, fx.backup_root.pin)), all_addresses=True)
    old, new = fx.leaf("multi.test"), fx.leaf("multi.test")
    multi = judge(
        ep,
        fx.store,
        observed("192.0.2.1", old, fx.inter),
        observed("2001:db8::1", new, fx.inter),
        ProbeFailure(ProbeErrorKind.TIMEOUT, "connect", "192.0.2.3"),
    )
    single = judge(
        endpoint("single"), fx.store, observed("192.0.2.9", fx.leaf("single.test"), fx.inter)
    )
    exposition, history = scan_exposition(record(multi, single))
    up = {
        (dict(labels)["endpoint"], dict(labels)["address"]): value
        for _, labels, value in samples(exposition, "pinaudit_endpoint_up")
    }
    assert up == {
        ("multi", "192.0.2.1"): 1,
        ("multi", "2001:db8::1"): 1,
        ("multi", "192.0.2.3"): 0,
        ("single", ""): 1,  # without all_addresses the series does not follow DNS
    }
    spki = {
        dict(labels)["address"]: dict(labels)["spki_sha256"]
        for _, labels, _ in samples(exposition, "pinaudit_leaf_info")
        if dict(labels)["endpoint"] == "multi"
    }
    assert spki == {"192.0.2.1": str(old.pin), "2001:db8::1": str(new.pin)}
    assert by_endpoint(exposition, "pinaudit_chain_divergence") == {"multi": 2, "single": 1}
    divergence = exposition.families[
        [f.name for f in exposition.families].index("pinaudit_chain_divergence")
    ]
    assert "address" not in divergence.label_names  # per endpoint, not per address

    # one address fails next time: its own last facts stay, the others are fresh
    later = FINISHED + timedelta(minutes=5)
    again = judge(
        ep,
        fx.store,
        ProbeFailure(ProbeErrorKind.RESET, "reset", "192.0.2.1"),
        observed("2001:db8::1", new, fx.inter),
    )
    exposition, _ = scan_exposition(record(again, finished=later), history=history)
    last = {
        dict(labels)["address"]: value
        for _, labels, value in samples(exposition, "pinaudit_last_success_timestamp_seconds")
    }
    assert last == {"192.0.2.1": ts(FINISHED), "2001:db8::1": ts(later)}


# --- scan and process families, rendering -------------------------------------------


def test_process_families_and_reload_state() -> None:
    at = NOW + timedelta(minutes=1)
    build = BuildInfo("9.9.9", "0123abc", "3.11.2")
    labels = frozenset(
        {("version", "9.9.9"), ("revision", "0123abc"), ("python_version", "3.11.2")}
    )
    assert process_exposition(build, ReloadState(False, at, NOW)).samples() == {
        ("pinaudit_build_info", labels, 1.0),
        ("pinaudit_inventory_reload_success", frozenset(), 0.0),
        ("pinaudit_inventory_reload_timestamp_seconds", frozenset(), ts(at)),
        # named as Prometheus names its own: the last reload failed, the last
        # successful one (here: the start) stays
        ("pinaudit_config_last_reload_successful", frozenset(), 0.0),
        ("pinaudit_config_last_reload_success_timestamp_seconds", frozenset(), ts(NOW)),
    }
    assert process_exposition(build, ReloadState(True, at, at)).samples() >= {
        ("pinaudit_config_last_reload_successful", frozenset(), 1.0),
        ("pinaudit_config_last_reload_success_timestamp_seconds", frozenset(), ts(at)),
    }
    assert {s[0] for s in process_exposition("9.9.9").samples()} == {"pinaudit_build_info"}
    (unknown,) = process_exposition("9.9.9").samples()
    assert unknown[1] == frozenset(
        {("version", "9.9.9"), ("revision", "unknown"), ("python_version", "unknown")}
    )


def test_text_rendering_round_trips_as_data(fx: Fixture) -> None:
    ep = endpoint("api", Pinset("p", (fx.inter.pin, fx.root.pin)), {"team": 'a "quoted"\nteam'})
    result = judge(ep, fx.store, observed("192.0.2.1", fx.leaf("api.test"), fx.inter))
    exposition = job_exposition(record(result), "1.2.3")
    parsed = {
        (s.name, frozenset(s.labels.items()), s.value)
        for family in text_string_to_metric_families(render_text(exposition).decode())
        for s in family.samples
    }
    assert parsed == exposition.samples()
    order = [f.name for f in exposition.families]
    assert order == [s.name for s in SPECS if s.name in order]  # contract order


def test_families_without_samples_are_left_out() -> None:
    exposition, _ = scan_exposition(record())
    assert [f.name for f in exposition.families] == [
        "pinaudit_scan_duration_seconds",
        "pinaudit_scan_timestamp_seconds",
        "pinaudit_scan_endpoints",
    ]


def test_history_defaults_are_empty() -> None:
    assert History().addresses == {} and History().divergence == {}


# --- found unasserted by mutation testing (issue 19, docs/mutation.md) ---------------


def test_an_address_that_never_resolved_is_the_empty_address(fx: Fixture) -> None:
    ep = endpoint("nodns", all_addresses=True)
    result = judge(ep, fx.store, ProbeFailure(ProbeErrorKind.DNS, "no such host"))
    exposition, _ = scan_exposition(record(result))
    up = {
        (dict(labels)["endpoint"], dict(labels)["address"]): value
        for _, labels, value in samples(exposition, "pinaudit_endpoint_up")
    }
    assert up == {("nodns", ""): 0}


def test_rotation_ready_is_0_for_a_rotation_that_would_break(fx: Fixture) -> None:
    leaf = fx.leaf("leafonly.test")
    result = judge(
        endpoint("leafonly", Pinset("p", (leaf.pin, fx.backup_root.pin))),
        fx.store,
        observed("192.0.2.1", leaf, fx.inter),
    )
    exposition, _ = scan_exposition(record(result))
    ready = {
        dict(labels)["kind"]: value
        for _, labels, value in samples(exposition, "pinaudit_rotation_ready")
    }
    assert ready["leaf_renewal"] == 0.0  # a new leaf key is pinned nowhere


def test_a_successful_reload_is_1_and_is_the_last_success() -> None:
    """A reload that succeeded, with no earlier success remembered, is itself
    the last successful reload."""
    at = NOW + timedelta(minutes=1)
    unknown = frozenset(
        {("version", "9.9.9"), ("revision", "unknown"), ("python_version", "unknown")}
    )
    assert process_exposition("9.9.9", ReloadState(True, at)).samples() == {
        ("pinaudit_build_info", unknown, 1.0),
        ("pinaudit_inventory_reload_success", frozenset(), 1.0),
        ("pinaudit_inventory_reload_timestamp_seconds", frozenset(), ts(at)),
        ("pinaudit_config_last_reload_successful", frozenset(), 1.0),
        ("pinaudit_config_last_reload_success_timestamp_seconds", frozenset(), ts(at)),
    }


def test_the_exposition_and_its_history_are_values(fx: Fixture) -> None:
    """The exporter hands one scan's exposition and history to the next: they
    must not change under it."""
    result = judge(endpoint("v"), fx.store, observed("192.0.2.1", fx.leaf("v.test"), fx.inter))
    scan = record(result)
    exposition, history = scan_exposition(scan)
    kept = next(iter(next(iter(history.addresses.values())).values()))
    for value, attribute in ((exposition, "families"), (scan, "results"), (kept, "read_at")):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(value, attribute, None)
