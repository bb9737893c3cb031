"""Conformance of the whole `scan` and `pin` commands against real TLS servers nobody
here wrote: `openssl s_server` and nginx, each a subprocess on a free loopback port.

Each server serves leaf + intermediate of a generated root → intermediate → leaf chain
for conformance.test; the inventory's trust bundle holds that root and an unrelated one
(so a backup pin on the unrelated root resolves). Every verdict is asserted exactly.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from peers import free_port, nginx_command, require_program, running

from scanner.cli import main
from scanner.fleet.pki import PKI, Issued

NOW = datetime.now(timezone.utc)  # certificates are built relative to it
HOST = "conformance.test"
LOOPBACK = "127.0.0.1"
ROOT = Path(__file__).resolve().parent.parent
REPORT_SCHEMA = json.loads((ROOT / "docs" / "report.schema.json").read_text())

# The protocol each server negotiates with the scanner's client context (observed:
# both offer TLS 1.3; nginx 1.22 only with `ssl_protocols TLSv1.2 TLSv1.3;`).
NEGOTIATED = {"openssl": "TLSv1.3", "nginx": "TLSv1.3"}


@dataclass(frozen=True)
class Certs:
    root: Issued
    intermediate: Issued
    leaf: Issued
    unrelated: Issued  # a second root, in trust.pem, on no path
    unserved: str  # pin of a freshly generated leaf key that no server serves

    @property
    def path(self) -> list[str]:
        return [str(self.leaf.pin), str(self.intermediate.pin), str(self.root.pin)]


@pytest.fixture(scope="module")
def certs() -> Certs:
    pki = PKI(NOW)
    root = pki.root("Conformance Root")
    intermediate = pki.intermediate("Conformance Intermediate", root)
    return Certs(
        root=root,
        intermediate=intermediate,
        leaf=pki.leaf(HOST, intermediate),
        unrelated=pki.root("Unrelated Root"),
        unserved=str(pki.leaf(HOST, intermediate).pin),
    )


@dataclass(frozen=True)
class Served:
    """A running server: which program, its port, and the directory of its files."""

    kind: str
    port: int
    directory: Path

    @property
    def chain_file(self) -> Path:
        return self.directory / "chain.pem"


def _write_files(directory: Path, certs: Certs) -> None:
    (directory / "chain.pem").write_bytes(certs.leaf.pem + certs.intermediate.pem)
    (directory / "leaf.pem").write_bytes(certs.leaf.pem)
    (directory / "intermediate.pem").write_bytes(certs.intermediate.pem)
    (directory / "key.pem").write_bytes(certs.leaf.key_pem())
    (directory / "trust.pem").write_bytes(certs.root.pem + certs.unrelated.pem)


def _openssl_command(directory: Path, port: int) -> list[str]:
    openssl = require_program("openssl")
    return [
        openssl,
        "s_server",
        "-quiet",
        "-www",
        "-accept",
        f"{LOOPBACK}:{port}",
        "-cert",
        str(directory / "leaf.pem"),
        "-key",
        str(directory / "key.pem"),
        "-cert_chain",
        str(directory / "intermediate.pem"),
    ]


def _nginx_command(directory: Path, port: int) -> list[str]:
    return nginx_command(
        directory,
        port=port,
        chain=directory / "chain.pem",
        key=directory / "key.pem",
        host=LOOPBACK,
        name=HOST,
    )


@pytest.fixture(scope="module", params=sorted(NEGOTIATED))
def server(
    request: pytest.FixtureRequest, certs: Certs, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    kind: str = request.param
    directory = tmp_path_factory.mktemp(kind)
    _write_files(directory, certs)
    port = free_port(LOOPBACK)
    build = _openssl_command if kind == "openssl" else _nginx_command
    # running() waits (bounded) until the server accepts, and stops it at the end.
    with running(build(directory, port), host=LOOPBACK, port=port):
        yield Served(kind, port, directory)


# --------------------------------------------------------------------------- helpers


def _endpoint(name: str, port: int, pins: Sequence[str], sni: str = HOST) -> dict[str, Any]:
    return {
        "name": name,
        "host": LOOPBACK,
        "port": port,
        "sni": sni,
        "pins": list(pins),
        "trust": "trust.pem",
    }


def _write_inventory(directory: Path, filename: str, endpoints: list[dict[str, Any]]) -> Path:
    path = directory / filename
    path.write_text(yaml.safe_dump({"version": 1, "endpoints": endpoints}, sort_keys=False))
    return path


def _scan(inventory: Path) -> tuple[int, dict[str, Any], dict[str, dict[str, Any]]]:
    """Exit status, the validated JSON report, and its endpoints by name."""
    out, err = io.StringIO(), io.StringIO()
    argv = ["scan", "--inventory", str(inventory), "--format", "json"]
    status = main(argv, stdout=out, stderr=err)
    assert err.getvalue() == ""
    report = json.loads(out.getvalue())
    jsonschema.validate(report, REPORT_SCHEMA)
    return int(status), report, {e["name"]: e for e in report["endpoints"]}


def _findings(entry: dict[str, Any]) -> list[tuple[str, str, int | None]]:
    return [(f["check"], f["severity"], f["certificate"]) for f in entry["findings"]]


def _chain(entry: dict[str, Any]) -> list[tuple[int, str, str, bool]]:
    return [(c["position"], c["role"], c["spki_sha256"], c["in_path"]) for c in entry["chain"]]


def _pin(*args: str) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    status = main(["pin", *args], stdout=out, stderr=err)
    assert err.getvalue() == ""
    return int(status), out.getvalue()


# --------------------------------------------------------------------------- scan


@pytest.mark.peers
def test_scan_match_and_drift(server: Served, certs: Certs) -> None:
    unrelated = str(certs.unrelated.pin)
    inventory = _write_inventory(
        server.directory,
        "inventory.yaml",
        [
            _endpoint("match", server.port, [str(certs.intermediate.pin), unrelated]),
            _endpoint("drift", server.port, [certs.unserved, unrelated]),
        ],
    )
    status, report, by_name = _scan(inventory)

    assert status == 1  # the drift is critical
    assert report["complete"] is True
    assert report["summary"] == {"endpoints": 2, "ok": 1, "drift": 1, "error": 0}
    assert sorted(by_name) == ["drift", "match"]
    served = [
        (0, "leaf", str(certs.leaf.pin), True),
        (1, "intermediate", str(certs.intermediate.pin), True),
    ]
    for name in ("match", "drift"):
        entry = by_name[name]
        assert (entry["host"], entry["port"], entry["sni"], entry["address"]) == (
            LOOPBACK,
            server.port,
            HOST,
            LOOPBACK,
        )
        assert _chain(entry) == served
        assert entry["path"] == certs.path
        assert entry["path_status"] == "valid"
        assert entry["tls"]["version"] == NEGOTIATED[server.kind]
        assert entry["error"] is None
        assert entry["attempts"] == 1

    match, drift = by_name["match"], by_name["drift"]
    assert match["status"] == "ok"
    assert match["findings"] == []
    assert drift["status"] == "drift"
    assert _findings(drift) == [
        ("pin_mismatch", "critical", None),
        ("unresolved_pin", "info", None),
    ]
    assert drift["findings"][0]["pin"] is None
    assert drift["findings"][1]["pin"] == certs.unserved


@pytest.mark.peers
def test_scan_wrong_hostname(server: Served, certs: Certs) -> None:
    pins = [str(certs.intermediate.pin), str(certs.unrelated.pin)]
    inventory = _write_inventory(
        server.directory,
        "wrong-host.yaml",
        [_endpoint("wrong-host", server.port, pins, sni="other.test")],
    )
    status, report, by_name = _scan(inventory)

    assert status == 1
    assert report["summary"] == {"endpoints": 1, "ok": 0, "drift": 1, "error": 0}
    entry = by_name["wrong-host"]
    assert entry["status"] == "drift"
    assert entry["sni"] == "other.test"
    assert _findings(entry) == [("hostname_mismatch", "critical", 0)]
    assert entry["findings"][0]["subject"] == certs.leaf.subject
    # `path` is empty because validation failed; `in_path` still marks the certificates
    # of the structural path built while diagnosing (ChainReport.path), which matched
    # the intermediate pin: so no pin_mismatch.
    assert (entry["path"], entry["path_status"]) == ([], "invalid")
    assert _chain(entry) == [
        (0, "leaf", str(certs.leaf.pin), True),
        (1, "intermediate", str(certs.intermediate.pin), True),
    ]
    assert entry["tls"]["version"] == NEGOTIATED[server.kind]


def test_unreachable_port_is_an_error(tmp_path: Path, certs: Certs) -> None:
    (tmp_path / "trust.pem").write_bytes(certs.root.pem + certs.unrelated.pem)
    port = free_port(LOOPBACK)  # bound and released: nothing listens there
    pins = [str(certs.intermediate.pin), str(certs.unrelated.pin)]
    inventory = _write_inventory(tmp_path, "inventory.yaml", [_endpoint("closed", port, pins)])
    status, report, by_name = _scan(inventory)

    assert status == 1
    assert report["summary"] == {"endpoints": 1, "ok": 0, "drift": 0, "error": 1}
    entry = by_name["closed"]
    assert entry["status"] == "error"
    assert entry["error"]["reason"] == "refused"
    assert entry["error"]["alert"] is None
    assert _findings(entry) == [("unreachable", "critical", None)]
    assert (entry["chain"], entry["path"], entry["tls"]) == ([], [], None)


# --------------------------------------------------------------------------- pin


@pytest.mark.peers
def test_pin_of_live_server_equals_pin_of_chain_file(server: Served, certs: Certs) -> None:
    live_status, live = _pin(f"{LOOPBACK}:{server.port}", "--sni", HOST)
    file_status, from_file = _pin(str(server.chain_file))

    assert (live_status, file_status) == (0, 0)
    assert live == from_file
    lines = live.splitlines()
    assert len(lines) == 8  # four lines per certificate
    assert [line.split("  ", 1)[0] for line in lines if not line.startswith(" ")] == ["0", "1"]
    assert [line for line in lines if line.startswith("   pin:")] == [
        f"   pin:     {certs.leaf.pin}",
        f"   pin:     {certs.intermediate.pin}",
    ]
    assert lines[0] == f"0  {certs.leaf.subject}"
    assert lines[4] == f"1  {certs.intermediate.subject}"
