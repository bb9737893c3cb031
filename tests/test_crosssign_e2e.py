"""Acceptance (issue 12, verdicts): a cross-signed issuing CA served for real.

The fleet's issuing CA is certified by Fleet Root A and, cross-signed, by
Fleet Root B; both roots are trusted; the server sends the leaf and both CA
certificates (the shape of Let's Encrypt's chain in 2021: R3 ← ISRG Root X1,
X1 also sent cross-signed by DST Root CA X3). Four endpoints pin Root A,
Root B, the issuing CA and the leaf, each with an offline backup key
(scanner/fleet/scenarios.py, CROSS_SIGN_SCENARIOS), served by the fleet's
child process on 127.97.0.x.

The oracle is OpenSSL building each path itself: `openssl s_client` over the
wire with both roots trusted (it builds the path through the CA certificate
sent first), and `openssl verify` given the same served certificates in the
other order with Root B trusted (the path another verifier builds). A pinned
client that builds a path connects when a pin names a key on it. pinaudit's
table, JSON, metrics and `preflight` must say what those clients decide.
"""

from __future__ import annotations

import io
import json
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import jsonschema
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from peers import require_program
from prometheus_client.parser import text_string_to_metric_families

from scanner.cli import main
from scanner.fleet.scenarios import BY_NAME, CROSS_SIGN_SCENARIOS, Fleet, FleetEndpoint, build_fleet
from scanner.fleet.server import FleetProcess, write_config
from scanner.pins import pin_of_certificate

ROOT = Path(__file__).resolve().parent.parent
REPORT_SCHEMA = json.loads((ROOT / "docs" / "report.schema.json").read_text())
NOW = datetime.now(timezone.utc)
OPENSSL_SECONDS = 30
Path_ = tuple[str, ...]  # the common names of a path, leaf first


@dataclass(frozen=True)
class Served:
    fleet: Fleet
    directory: Path
    inventory: Path
    listening: list[tuple[str, int]]
    report: dict[str, dict[str, object]]  # JSON entries by endpoint name
    metrics: dict[tuple[str, frozenset[tuple[str, str]]], float]
    table: str
    status: int


def _run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = main(list(argv), stdout=out, stderr=err)
    return int(status), out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    directory = tmp_path_factory.mktemp("crosssign")
    names = [s.name for s in CROSS_SIGN_SCENARIOS]
    fleet = build_fleet(NOW, len(names), scenarios=names, base=97, timeout=5.0)
    with FleetProcess(write_config(fleet.sites, directory / "sites")) as process:
        inventory = fleet.write(directory, process.listening)
        textfile = directory / "pinaudit.prom"
        status, out, err = _run(
            "scan", "-i", str(inventory), "--format", "json", "--textfile", str(textfile)
        )
        assert err == ""
        document = json.loads(out)
        jsonschema.validate(document, REPORT_SCHEMA)
        _, table, _ = _run("scan", "-i", str(inventory))
        metrics = {
            (s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(textfile.read_text())
            for s in family.samples
        }
        yield Served(
            fleet,
            directory,
            inventory,
            list(process.listening),
            {e["name"]: e for e in document["endpoints"]},
            metrics,
            table,
            status,
        )


# --- the oracle: OpenSSL builds the paths ------------------------------------------------------

_DEPTH = re.compile(r"^depth=(\d+):? (.*?)(?: \(untrusted\))?$")


def _common_names(lines: list[str]) -> Path_:
    depths = {}
    for line in lines:
        match = _DEPTH.match(line.strip())
        if match:
            cn = re.search(r"CN = ([^,]+)", match.group(2))
            assert cn is not None, line
            depths[int(match.group(1))] = cn.group(1)
    return tuple(depths[d] for d in sorted(depths))


def _chain(ep: FleetEndpoint) -> list[x509.Certificate]:
    assert ep.site is not None and ep.site.tls is not None
    return x509.load_pem_x509_certificates(ep.site.tls.credential.chain_pem)


def live_path(served: Served, index: int) -> Path_:
    """The path OpenSSL builds in a real handshake, both roots trusted."""
    ep = served.fleet.endpoints[index]
    address, port = served.listening[index]
    done = subprocess.run(
        ["openssl", "s_client", "-connect", f"{address}:{port}", "-servername", ep.sni,
         "-CAfile", str(served.directory / "trust.pem"), "-verify_return_error"],
        input="", capture_output=True, text=True, timeout=OPENSSL_SECONDS, check=False,
    )  # fmt: skip
    assert "Verify return code: 0 (ok)" in done.stdout, done.stdout + done.stderr
    return _common_names((done.stdout + done.stderr).splitlines())


def other_path(served: Served, index: int, tmp_path: Path) -> Path_:
    """The path OpenSSL's verifier builds from the same served certificates
    taken in the other order, Root B trusted."""
    leaf, first, second = _chain(served.fleet.endpoints[index])
    factory = served.fleet.extra["factory"]
    (tmp_path / "leaf.pem").write_bytes(leaf.public_bytes(Encoding.PEM))
    (tmp_path / "untrusted.pem").write_bytes(
        second.public_bytes(Encoding.PEM) + first.public_bytes(Encoding.PEM)
    )
    (tmp_path / "root_b.pem").write_bytes(factory.root_b.pem)  # type: ignore[attr-defined]
    done = subprocess.run(
        ["openssl", "verify", "-show_chain", "-CAfile", str(tmp_path / "root_b.pem"),
         "-untrusted", str(tmp_path / "untrusted.pem"), str(tmp_path / "leaf.pem")],
        capture_output=True, text=True, timeout=OPENSSL_SECONDS, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return _common_names(done.stdout.splitlines())


def decides(served: Served, index: int, path: Path_) -> bool:
    """A pinned client on this path connects: a pin names a key on it."""
    ep = served.fleet.endpoints[index]
    factory = served.fleet.extra["factory"]
    keys = {
        ep.sni: pin_of_certificate(_chain(ep)[0]),
        "Fleet Issuing CA A": factory.inter_a.pin,  # type: ignore[attr-defined]
        "Fleet Root A": factory.root_a.pin,  # type: ignore[attr-defined]
        "Fleet Root B": factory.root_b.pin,  # type: ignore[attr-defined]
    }
    return any(keys[cn] in ep.pins for cn in path)


def _cn(subject: str) -> str:
    match = re.search(r"CN=([^,]+)", subject)
    assert match is not None
    return match.group(1)


def json_paths(served: Served, name: str) -> dict[Path_, str]:
    entry = served.report[name]
    return {
        tuple(_cn(c["subject"]) for c in p["certificates"]): p["verdict"]  # type: ignore[index]
        for p in entry["pin_paths"]  # type: ignore[union-attr]
    }


# --- the acceptance ----------------------------------------------------------------------------


@pytest.mark.peers
def test_every_path_verdict_in_the_json_is_what_the_client_building_it_decides(
    served: Served, tmp_path: Path
) -> None:
    require_program("openssl")
    for index, ep in enumerate(served.fleet.endpoints):
        built = {live_path(served, index), other_path(served, index, tmp_path)}
        assert {path[-1] for path in built} == {"Fleet Root A", "Fleet Root B"}
        expected = {path: "pass" if decides(served, index, path) else "fail" for path in built}
        assert json_paths(served, ep.name) == expected, ep.name


def test_the_findings_table_and_exit_status(served: Served) -> None:
    assert served.status == 0  # warnings only: nobody fails on every path
    for ep in served.fleet.endpoints:
        findings = {
            (f["check"], f["severity"], f["certificate"])
            for f in served.report[ep.name]["findings"]  # type: ignore[union-attr]
        }
        assert findings == BY_NAME[ep.scenario.name].expected, ep.name
    table = served.table
    assert "pin_mismatch" not in table and "unresolved_pin" not in table
    assert table.count("pin_path_dependent") == 2
    assert table.splitlines()[-2:] == [
        "4 endpoints: 1 ok, 3 drift, 0 error; findings: 0 critical, 3 warning, 0 info",
        "rotation readiness of 4 pinned endpoints: 2 survive a leaf renewal with a new key, "
        "0 a switch of CA",
    ]
    dependent = served.report["xsignroota-0"]["findings"][0]  # type: ignore[index]
    assert "It fails on " in dependent["message"]
    assert "CN=Fleet Root B: no pin names a key of it" in dependent["message"]


def test_metrics_count_the_paths_each_pin_set_passes_and_fails(served: Served) -> None:
    expected = {  # (match, mismatch) paths
        "xsignroota": (1, 1),
        "xsignrootb": (1, 1),
        "xsigninter": (2, 0),
        "xsignleaf": (2, 0),
    }
    for ep in served.fleet.endpoints:
        base = {"endpoint": ep.name, "env": "fleet", "scenario": ep.scenario.name}

        def value(name: str, **labels: str) -> float:
            return served.metrics[(name, frozenset({**base, **labels}.items()))]  # noqa: B023

        match, mismatch = expected[ep.scenario.name]
        assert value("pinaudit_pin_match") == 1  # some clients connect: no critical alert
        assert value("pinaudit_pin_paths", result="match") == match
        assert value("pinaudit_pin_paths", result="mismatch") == mismatch
        assert value("pinaudit_backup_pins") == 1  # the offline backup key
        # every certificate of either chain has its expiry: the path's (anchor from the
        # trust store included) and the served cross-sign the validated path does not use
        entry = served.report[ep.name]
        path = entry["path_certificates"]  # type: ignore[index]
        for cert in path:  # type: ignore[union-attr]
            labels = {"position": str(cert["index"]), "role": cert["role"]}
            when = datetime.strptime(cert["not_after"], "%Y-%m-%dT%H:%M:%SZ")
            stamp = when.replace(tzinfo=timezone.utc).timestamp()
            assert value("pinaudit_cert_not_after_timestamp_seconds", **labels) == stamp
        on_path = {c["position"] for c in path}  # type: ignore[union-attr]
        [off] = [c for c in entry["chain"] if c["position"] not in on_path]  # type: ignore[union-attr]
        when = datetime.strptime(off["not_after"], "%Y-%m-%dT%H:%M:%SZ")
        assert (
            value(
                "pinaudit_offpath_cert_not_after_timestamp_seconds",
                position=str(off["position"]),
                role="intermediate",
            )
            == when.replace(tzinfo=timezone.utc).timestamp()
        )


@pytest.mark.peers
def test_preflight_of_the_same_chain_decides_the_same(served: Served, tmp_path: Path) -> None:
    require_program("openssl")
    labels = {"xsignroota": "DEPENDS", "xsignrootb": "DEPENDS"}
    for index, ep in enumerate(served.fleet.endpoints):
        chain = tmp_path / f"{ep.name}.pem"
        chain.write_bytes(b"".join(c.public_bytes(Encoding.PEM) for c in _chain(ep)))
        # no --endpoint: the chain is judged for the one endpoint its leaf names
        status, out, err = _run("preflight", "-i", str(served.inventory), "--chain", str(chain))
        assert err == ""
        [line, skipped, summary] = out.splitlines()
        assert skipped.startswith("(3 endpoints not named by the new leaf, which names ")
        label = labels.get(ep.scenario.name, "SAFE")
        assert line.startswith(f"{label:<10}  {ep.name}  "), line
        assert status == (1 if label == "DEPENDS" else 0)
        built = {live_path(served, index), other_path(served, index, tmp_path)}
        failing = [p for p in built if not decides(served, index, p)]
        for path in failing:  # the reason names the path those clients build
            assert f"CN={path[-1]}: no pin names a key of it" in line
        assert summary.startswith("1 endpoint: ")
