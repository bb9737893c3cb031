"""End to end: the simulated fleet served by a child process over real TLS,
scanned by the real `scan` command with pins imported from an Android
network-security-config and an OkHttp source file; every client's verdict exact,
including a host that OkHttp pins and Android does not."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import jsonschema
import pytest

from scanner.cli import main
from scanner.fleet.scenarios import Fleet, FleetEndpoint, build_fleet
from scanner.fleet.server import FleetProcess, write_config

ROOT = Path(__file__).resolve().parent.parent
REPORT_SCHEMA = json.loads((ROOT / "docs" / "report.schema.json").read_text())
NOW = datetime.now(timezone.utc)
SCENARIOS = ["healthy", "rotated", "backup", "leafpin", "untrusted", "pinsetexpired"]


def _pins(ep: FleetEndpoint) -> str:
    return "".join(f'<pin digest="SHA-256">{p.b64}</pin>' for p in ep.pins)


def _write_configs(fleet: Fleet, directory: Path) -> None:
    by = {e.scenario.name: e for e in fleet.endpoints}
    standard = by["healthy"]
    expired = (NOW - timedelta(days=10)).date().isoformat()
    # Android pins every fleet host through the subtree rule; rotated-1 has its own
    # (stale) pin-set, backup-2 switches pinning off, pinsetexpired-5's pins expired.
    (directory / "network_security_config.xml").write_text(
        f"""<?xml version="1.0" encoding="utf-8"?>
<network-security-config>
  <domain-config>
    <domain includeSubdomains="true">fleet.test</domain>
    <pin-set>{_pins(standard)}</pin-set>
    <domain-config>
      <domain>{by["rotated"].sni}</domain>
      <pin-set>{_pins(by["rotated"])}</pin-set>
    </domain-config>
    <domain-config>
      <domain>{by["backup"].sni}</domain>
      <pin-set/>
    </domain-config>
    <domain-config>
      <domain>{by["pinsetexpired"].sni}</domain>
      <pin-set expiration="{expired}">{_pins(by["pinsetexpired"])}</pin-set>
    </domain-config>
  </domain-config>
</network-security-config>
"""
    )
    inter_a, root_b = (f"sha256/{p.b64}" for p in standard.pins)
    leaf_pin = f"sha256/{by['leafpin'].pins[0].b64}"
    # OkHttp: one pattern for every fleet host (a union with the exact leaf pin below)
    (directory / "Pinning.kt").write_text(
        f"""package com.example.fleet

import okhttp3.CertificatePinner

private const val FLEET_CA = "{inter_a}"
private const val BACKUP_ROOT = "{root_b}"

val pinner = CertificatePinner.Builder()
    .add("*.fleet.test", FLEET_CA, BACKUP_ROOT)
    .add(
        "{by["leafpin"].sni}",
        "{leaf_pin}",
    )
    .build()
"""
    )


@pytest.fixture(scope="module")
def scanned(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, dict[str, object]]]:
    directory = tmp_path_factory.mktemp("clientfleet")
    fleet = build_fleet(NOW, scenarios=SCENARIOS, base=5, timeout=3.0)
    _write_configs(fleet, directory)
    with FleetProcess(write_config(fleet.sites, directory / "sites")) as served:
        fleet.write(directory, served.listening)  # trust.pem (and the generic inventory)
        lines = [
            "version: 1",
            "defaults: {timeout: 3s, trust: trust.pem}",
            "pinsets:",
            "  app-android:",
            "    from: {android: network_security_config.xml}",
            "  app-okhttp:",
            "    from: {okhttp: Pinning.kt}",
            "endpoints:",
        ]
        for ep, (address, port) in zip(fleet.endpoints, served.listening, strict=True):
            lines += [
                f"  - name: {ep.name}",
                f"    host: {address}",
                f"    port: {port}",
                f"    sni: {ep.sni}",
            ]
        healthy = fleet.endpoints[0]
        address, port = served.listening[0]
        lines += [
            "  - name: healthy-absolute",  # the same server, asked for as an absolute name
            f"    host: {address}",
            f"    port: {port}",
            f"    sni: {healthy.sni}.",
        ]
        inventory = directory / "inventory-clients.yaml"
        inventory.write_text("\n".join(lines) + "\n")
        out, err = io.StringIO(), io.StringIO()
        status = main(
            ["scan", "--inventory", str(inventory), "--format", "json"], stdout=out, stderr=err
        )
    assert status == 1, err.getvalue()
    assert "Traceback" not in err.getvalue()
    report = json.loads(out.getvalue())
    jsonschema.validate(report, REPORT_SCHEMA)
    yield {e["name"]: e for e in report["endpoints"]}


def _verdicts(entry: dict[str, object]) -> dict[str, str]:
    verdicts = entry["client_verdicts"]
    assert isinstance(verdicts, list)
    return {v["client"]: v["verdict"] for v in verdicts}


def _checks(entry: dict[str, object]) -> set[tuple[str, str, int | None]]:
    findings = entry["findings"]
    assert isinstance(findings, list)
    return {(f["check"], f["severity"], f["certificate"]) for f in findings}


def test_every_client_verdict_is_exact(scanned: dict[str, dict[str, object]]) -> None:
    got = {name: _verdicts(entry) for name, entry in scanned.items()}
    assert got == {
        "healthy-0": {"android": "pass", "okhttp": "pass"},
        "rotated-1": {"android": "fail_enforced", "okhttp": "pass"},
        "backup-2": {"android": "not_enforced", "okhttp": "pass"},  # OkHttp pins, Android not
        "leafpin-3": {"android": "pass", "okhttp": "pass"},
        "untrusted-4": {"android": "chain_invalid", "okhttp": "chain_invalid"},
        "pinsetexpired-5": {"android": "not_enforced_expired", "okhttp": "pass"},
        "healthy-absolute": {"android": "pass", "okhttp": "not_pinned"},
    }


def test_findings_follow_the_client_verdicts(scanned: dict[str, dict[str, object]]) -> None:
    C, W, INFO = "critical", "warning", "info"
    assert {name: _checks(entry) for name, entry in scanned.items()} == {
        "healthy-0": set(),
        "rotated-1": {("client_pin_failure", C, None), ("unresolved_pin", INFO, None)},
        "backup-2": {("single_pin", W, None)},  # Android's empty pin-set: pinning disabled
        "leafpin-3": set(),  # the leaf pin is one of several matches (OkHttp's union)
        "untrusted-4": {("chain_untrusted", C, None)},
        "pinsetexpired-5": {("pinset_expired", W, None)},
        "healthy-absolute": {("pins_not_applied", W, None)},
    }


def test_report_shows_the_failure_as_okhttp_and_android_see_it(
    scanned: dict[str, dict[str, object]],
) -> None:
    rotated = scanned["rotated-1"]
    android = next(v for v in rotated["client_verdicts"] if v["client"] == "android")  # type: ignore[attr-defined]
    assert android["rules"] == ["rotated-1.fleet.test"]
    assert android["matched"] == []
    assert android["failure"] is None  # the platform has no report format of its own
    finding = next(f for f in rotated["findings"] if f["check"] == "client_pin_failure")  # type: ignore[attr-defined]
    assert finding["message"].startswith(
        "android (pin-set 'app-android') refuses rotated-1.fleet.test: no pin matches the path"
    )
    absolute = scanned["healthy-absolute"]
    okhttp = next(v for v in absolute["client_verdicts"] if v["client"] == "okhttp")  # type: ignore[attr-defined]
    assert okhttp["host"] == "healthy-0.fleet.test."
    assert "trailing dot" in okhttp["notes"][0]
