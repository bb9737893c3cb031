"""Rotation safety: preflight of a chain, key or CA not deployed yet; rotation
readiness; drift since the previous scan (--state)."""

from __future__ import annotations

import dataclasses
import io
import json
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID
from prometheus_client.parser import text_string_to_metric_families

from scanner.chain import CertificateCache, analyze_chain
from scanner.cli import main
from scanner.fleet.pki import PKI, Issued
from scanner.fleet.scenarios import build_fleet
from scanner.fleet.server import Credential, FleetProcess, Site, TlsConfig, write_config
from scanner.model import HashAlg, Pin, Pinset
from scanner.rotation import Rotation, readiness
from scanner.state import load_state, loads
from scanner.trust import store_from_pem

NOW = datetime(2026, 6, 1, tzinfo=timezone.utc)
HOST = "pay.example.com"


class CA:
    """Two CAs (A in use, B the backup) in one trust bundle."""

    def __init__(self) -> None:
        self.pki = PKI(NOW)
        self.root_a = self.pki.root("Root A")
        self.inter_a = self.pki.intermediate("Issuing A", self.root_a)
        self.root_b = self.pki.root("Root B")
        self.inter_b = self.pki.intermediate("Issuing B", self.root_b)
        self.leaf = self.pki.leaf(HOST, self.inter_a)


@pytest.fixture(scope="module")
def ca() -> CA:
    return CA()


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = main(list(argv), stdout=out, stderr=err)
    return int(status), out.getvalue(), err.getvalue()


def inventory(tmp_path: Path, ca: CA, endpoints: dict[str, list[Pin]]) -> Path:
    (tmp_path / "trust.pem").write_bytes(ca.root_a.pem + ca.root_b.pem)
    lines = ["version: 1", "defaults: {trust: trust.pem}", "endpoints:"]
    for name, pins in endpoints.items():
        quoted = ", ".join(f'"{p}"' for p in pins)
        lines += [f"  - name: {name}", f"    host: {HOST}", f"    pins: [{quoted}]"]
    path = tmp_path / "inventory.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def pem_file(tmp_path: Path, name: str, *certs: Issued) -> str:
    path = tmp_path / name
    path.write_bytes(b"".join(c.pem for c in certs))
    return str(path)


UNKNOWN = Pin(HashAlg.SHA256, b"\x07" * 32)
OFFLINE = Pin(HashAlg.SHA256, b"\x0b" * 32)  # an offline backup key's pin


# --- preflight --------------------------------------------------------------


def test_renewed_leaf_with_the_same_key_passes(ca: CA, tmp_path: Path) -> None:
    inv = inventory(tmp_path, ca, {"pay": [ca.leaf.pin, ca.root_b.pin]})
    renewed = ca.pki.leaf(HOST, ca.inter_a, key=ca.leaf.key, serial=4242)
    chain = pem_file(tmp_path, "renewed.pem", renewed, ca.inter_a)
    status, out, _ = run("preflight", "-i", str(inv), "--chain", chain, "--now", "2026-06-01")
    assert status == 0
    assert out.splitlines() == [
        f"SAFE        pay  {ca.leaf.pin} matches O=pinaudit test PKI,CN={HOST}",
        "1 endpoint: 1 safe, 0 would break, 0 not pinned",
    ]


def test_new_leaf_key_breaks_unless_a_backup_pin_covers_it(ca: CA, tmp_path: Path) -> None:
    new_key = ca.pki.leaf(HOST, ca.inter_a)
    inv = inventory(
        tmp_path,
        ca,
        {"old-only": [ca.leaf.pin, UNKNOWN], "pre-pinned": [ca.leaf.pin, new_key.pin]},
    )
    chain = pem_file(tmp_path, "new.pem", new_key, ca.inter_a)
    status, out, _ = run("preflight", "-i", str(inv), "--chain", chain, "--now", "2026-06-01")
    assert status == 1
    lines = out.splitlines()
    assert lines[0].startswith("BREAKS      old-only    pin_mismatch: no pin of 'inline' matches")
    assert lines[1] == (
        f"SAFE        pre-pinned  {new_key.pin} matches O=pinaudit test PKI,CN={HOST}"
    )
    assert lines[2] == "2 endpoints: 1 safe, 1 would break, 0 not pinned"


def test_new_ca_breaks_unless_pinned(ca: CA, tmp_path: Path) -> None:
    leaf_b = ca.pki.leaf(HOST, ca.inter_b)
    inv = inventory(
        tmp_path,
        ca,
        {"a-only": [ca.inter_a.pin, ca.root_a.pin], "backup-b": [ca.inter_a.pin, ca.root_b.pin]},
    )
    chain = pem_file(tmp_path, "b.pem", leaf_b, ca.inter_b)
    status, out, _ = run("preflight", "-i", str(inv), "--chain", chain, "--now", "2026-06-01")
    assert status == 1
    lines = out.splitlines()
    assert lines[0].startswith("BREAKS      a-only    pin_mismatch:")
    assert (
        lines[1] == f"SAFE        backup-b  {ca.root_b.pin} matches O=pinaudit test PKI,CN=Root B"
    )


def test_ca_what_if_names_exactly_the_ready_endpoints(ca: CA, tmp_path: Path) -> None:
    inv = inventory(
        tmp_path,
        ca,
        {
            "pins-root-b": [ca.inter_a.pin, ca.root_b.pin],
            "pins-issuing-b": [ca.inter_a.pin, ca.inter_b.pin],
            "a-only": [ca.inter_a.pin, ca.root_a.pin],
        },
    )
    new_ca = pem_file(tmp_path, "issuing-b.pem", ca.inter_b)  # Root B comes from the store
    status, out, _ = run("preflight", "-i", str(inv), "--ca", new_ca)
    assert status == 1
    assert out.splitlines() == [
        f"SAFE        pins-root-b     {ca.root_b.pin} pins O=pinaudit test PKI,CN=Root B",
        f"SAFE        pins-issuing-b  {ca.inter_b.pin} pins O=pinaudit test PKI,CN=Issuing B",
        "BREAKS      a-only          no pin names the new CA or any of its issuers",
        "3 endpoints: 2 safe, 1 would break, 0 not pinned",
    ]
    status, out, _ = run("preflight", "-i", str(inv), "--ca", new_ca, "--endpoint", "pins-root-b")
    assert status == 0


def test_key_only_from_a_csr(ca: CA, tmp_path: Path) -> None:
    next_leaf = ca.pki.leaf(HOST, ca.inter_a)
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)]))
        .sign(next_leaf.key, hashes.SHA256())  # type: ignore[arg-type]
    )
    csr_path = tmp_path / "next.csr"
    csr_path.write_bytes(csr.public_bytes(serialization.Encoding.PEM))
    inv = inventory(
        tmp_path,
        ca,
        {
            "leaf-only": [ca.leaf.pin, UNKNOWN],
            "pre-pinned": [ca.leaf.pin, next_leaf.pin],
            "root-pinned": [ca.leaf.pin, ca.root_a.pin],
        },
    )
    status, out, _ = run("preflight", "-i", str(inv), "--key-only", str(csr_path))
    assert status == 1
    assert out.splitlines() == [
        "BREAKS      leaf-only    neither the new key nor a known CA key is pinned: pinned "
        f"clients would fail (no CA pinaudit knows has the key {ca.leaf.pin} names: if it is "
        "the issuing CA's, give the last scan's --state, or that CA with --ca)",
        f"SAFE        pre-pinned   the new key is pinned in advance ({next_leaf.pin})",
        "SAFE        root-pinned  safe if the new leaf is issued under O=pinaudit test PKI,"
        f"CN=Root A (pinned: {ca.root_a.pin})",
        "3 endpoints: 2 safe, 1 would break, 0 not pinned",
    ]


def test_preflight_errors(ca: CA, tmp_path: Path) -> None:
    inv = inventory(tmp_path, ca, {"pay": [ca.leaf.pin, UNKNOWN]})
    junk = tmp_path / "junk.pem"
    junk.write_text("nothing here")
    assert run("preflight", "-i", str(inv), "--key-only", str(junk)) == (
        2,
        "",
        f"pinaudit preflight: error: {junk}: no PEM public key, private key, certificate "
        "request or certificate found\n",
    )
    status, _, err = run("preflight", "-i", str(inv), "--ca", str(junk), "--endpoint", "nope")
    assert status == 2
    assert err == (
        "pinaudit preflight: error: no endpoint of the inventory matches --endpoint/--host "
        "(endpoints: pay)\n"
    )


# --- rotation readiness ----------------------------------------------------------


def _report(ca: CA, *served: Issued) -> object:
    store = store_from_pem(ca.root_a.pem + ca.root_b.pem, "t")
    return analyze_chain([s.der for s in served], store, HOST, NOW, cache=CertificateCache())


@pytest.mark.parametrize(
    ("pins", "leaf_ready", "ca_ready"),
    [
        ("inter_a root_b", True, True),
        ("leaf root_b", False, True),
        ("leaf unknown", True, False),  # the unknown pin may be the next leaf key
        ("leaf", False, False),
        ("inter_a root_a", True, False),
        # no pin matches the path served today: pinned clients fail already, so
        # no rotation is "ready" (mutation testing, issue 19)
        ("unknown root_b", False, False),
    ],
)
def test_readiness(ca: CA, pins: str, leaf_ready: bool, ca_ready: bool) -> None:
    named = {
        "inter_a": ca.inter_a.pin,
        "root_a": ca.root_a.pin,
        "root_b": ca.root_b.pin,
        "leaf": ca.leaf.pin,
        "unknown": UNKNOWN,
    }
    pinset = Pinset("app", tuple(named[p] for p in pins.split()))
    store = store_from_pem(ca.root_a.pem + ca.root_b.pem, "t")
    result = readiness(pinset, _report(ca, ca.leaf, ca.inter_a), store.known_keys)  # type: ignore[arg-type]
    assert result is not None
    assert (result.leaf_renewal, result.ca_switch) == (leaf_ready, ca_ready)


def test_each_rotation_is_answered_by_its_own_readiness(ca: CA) -> None:
    """Pinning the leaf and Root B: a CA switch to B is ready, a leaf renewal
    is not; ``ready()`` (what the metric's ``kind`` label reads) must not mix
    them up. The result is a value: it cannot be changed after the fact.
    Found unasserted by mutation testing (issue 19)."""
    pinset = Pinset("app", (ca.leaf.pin, ca.root_b.pin))
    store = store_from_pem(ca.root_a.pem + ca.root_b.pem, "t")
    result = readiness(pinset, _report(ca, ca.leaf, ca.inter_a), store.known_keys)  # type: ignore[arg-type]
    assert result is not None
    assert result.ready(Rotation.LEAF_RENEWAL) is False
    assert result.ready(Rotation.CA_SWITCH) is True
    assert result.ca_switch_reason == f"backup pin {ca.root_b.pin} names {ca.root_b.subject}"
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.ca_switch = False  # type: ignore[misc]


def test_a_renewal_onto_a_spare_key_names_the_kind_of_the_key_it_names(ca: CA) -> None:
    """Two spare keys pinned beside the leaf: an offline backup key declared in
    the inventory first, then a pin of a key no certificate has. The reason
    names the first, so it must call that one an offline backup key. Found
    unasserted by mutation testing (issue 19)."""
    offline = Pinset("app", (ca.leaf.pin, OFFLINE, UNKNOWN), offline=frozenset({OFFLINE}))
    store = store_from_pem(ca.root_a.pem + ca.root_b.pem, "t")
    result = readiness(offline, _report(ca, ca.leaf, ca.inter_a), store.known_keys)  # type: ignore[arg-type]
    assert result is not None
    assert result.leaf_renewal_reason == (
        f"only if the new leaf uses the offline backup key {OFFLINE}"
    )
    assert result.ca_switch_reason == f"backup pin {OFFLINE} names no known CA key"


def test_no_readiness_without_pins_or_without_a_path(ca: CA) -> None:
    """An empty pin-set pins nothing; an unreachable endpoint, or a chain that
    builds no path (here the issuing CA is not sent), shows nothing a rotation
    could break: no readiness at all (no ``pinaudit_rotation_ready`` sample),
    rather than "not ready". Found unasserted by mutation testing (issue 19)."""
    store = store_from_pem(ca.root_a.pem + ca.root_b.pem, "t")
    untrusted = _report(ca, ca.leaf)
    assert untrusted.path == ()  # type: ignore[attr-defined]
    assert readiness(Pinset("app", (ca.leaf.pin,)), untrusted, store.known_keys) is None  # type: ignore[arg-type]
    served = _report(ca, ca.leaf, ca.inter_a)
    assert readiness(Pinset("app", ()), served, store.known_keys) is None  # type: ignore[arg-type]
    # an endpoint that did not answer has no chain report at all
    assert readiness(Pinset("app", (ca.leaf.pin,)), None, store.known_keys) is None


# --- drift since the previous scan --------------------------------------------------


def test_leaf_rotated_between_two_scans_gives_one_key_changed(tmp_path: Path) -> None:
    now = datetime.now(timezone.utc)
    fleet = build_fleet(now, 6, scenarios=["healthy"], base=7)
    state = tmp_path / "state.json"

    def scan() -> dict[str, object]:
        with FleetProcess(write_config(fleet.sites, tmp_path / "sites")) as served:
            inv = fleet.write(tmp_path, served.listening)
            status, out, err = run(
                "scan",
                "-i",
                str(inv),
                "--format",
                "json",
                "--state",
                str(state),
                "--textfile",
                str(tmp_path / "pinaudit.prom"),
            )
        assert (status, err) == (0, "")
        return json.loads(out)  # type: ignore[no-any-return]

    first = scan()
    assert all(e["findings"] == [] for e in first["endpoints"])  # type: ignore[union-attr,index]
    before = load_state(state)[0]
    # rotate the leaf of healthy-2 to a new key
    factory = fleet.extra["factory"]
    target = fleet.endpoints[2]
    new_leaf = factory.pki.leaf(target.sni, factory.inter_a)  # type: ignore[attr-defined]
    assert target.site is not None
    site = Site(target.site.address, 0, tls=TlsConfig(Credential.of(new_leaf, factory.inter_a)))  # type: ignore[attr-defined]
    fleet.endpoints[2] = replace(target, site=site)
    second = scan()
    findings = {
        e["name"]: [(f["check"], f["severity"]) for f in e["findings"]]  # type: ignore[index]
        for e in second["endpoints"]  # type: ignore[union-attr]
    }
    assert findings == {
        "healthy-0": [],
        "healthy-1": [],
        "healthy-2": [("key_changed", "warning")],
        "healthy-3": [],
        "healthy-4": [],
        "healthy-5": [],
    }
    changed = [
        (sample.labels["endpoint"], sample.value)
        for family in text_string_to_metric_families((tmp_path / "pinaudit.prom").read_text())
        for sample in family.samples
        if sample.name == "pinaudit_leaf_key_changed_timestamp_seconds"
    ]
    after = load_state(state)[0]
    assert changed == [("healthy-2", after["healthy-2"].leaf_key_changed_at.timestamp())]  # type: ignore[union-attr]
    assert after["healthy-2"].leaf_key.value == str(new_leaf.pin)
    assert after["healthy-2"].leaf_key_changed_at is not None
    assert after["healthy-1"].leaf_key.first_seen == before["healthy-1"].leaf_key.first_seen
    assert after["healthy-1"].leaf_key.last_seen >= before["healthy-1"].leaf_key.last_seen
    assert after["healthy-1"].leaf_key_changed_at is None
    assert after["healthy-2"].leaf_key.first_seen >= before["healthy-2"].leaf_key.last_seen


def test_corrupt_state_is_a_warning_and_a_fresh_start(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text("{not json")
    state, warning = load_state(path)
    assert state == {}
    assert warning is not None
    assert warning.startswith(f"{path}: not JSON (Expecting property name")
    assert warning.endswith("; starting a fresh state")
    path.write_text('{"version": 99, "endpoints": {}}')
    assert load_state(path) == (
        {},
        f"{path}: not a version 1 pinaudit state file; starting a fresh state",
    )
    assert load_state(tmp_path / "missing.json") == ({}, None)
    with pytest.raises(ValueError, match="malformed state file"):
        loads('{"version": 1, "endpoints": {"a": {"leaf_key": {"value": "x"}}}}')


def test_state_round_trips(tmp_path: Path) -> None:
    from scanner.state import EndpointState, Seen, dumps

    t0 = NOW - timedelta(days=3)
    state = {
        "a": EndpointState(
            Seen("sha256/AAAA", t0, NOW), None, Seen("sha256:ff", t0, NOW), leaf_key_changed_at=t0
        )
    }
    assert loads(dumps(state)) == state


def test_pin_of_a_csr_and_a_key_to_pin_in_advance(ca: CA, tmp_path: Path) -> None:
    next_leaf = ca.pki.leaf(HOST, ca.inter_a)
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)]))
        .sign(next_leaf.key, hashes.SHA256())  # type: ignore[arg-type]
    )
    csr_path = tmp_path / "next.csr"
    csr_path.write_bytes(csr.public_bytes(serialization.Encoding.PEM))
    key_path = tmp_path / "next.key"
    key_path.write_bytes(next_leaf.key_pem())
    for path in (csr_path, key_path):
        assert run("pin", str(path)) == (
            0,
            f"0  public key from {path}\n   pin:     {next_leaf.pin}\n",
            "",
        )
