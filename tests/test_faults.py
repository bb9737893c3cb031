"""Hostile networks: a mixed fleet of healthy endpoints and every fault
(scanner/fleet/faults.py, FAULT_SCENARIOS) served by a child process over
loopback and scanned by the real ``scan`` process.

Invariants: every endpoint gets exactly one result with its exact reason; the
global deadline turns whatever is unfinished into ``not_scanned``; the process
never prints a traceback (nor anything else unasked for); exit codes follow
DESIGN §4; a failed or interrupted scan never replaces the last good report,
textfile or Pushgateway group.
"""

from __future__ import annotations

import http.server
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from scanner.fleet import faults
from scanner.fleet.pki import PKI
from scanner.fleet.scenarios import (
    BIG_CHAIN_DECOYS,
    BY_NAME,
    FAULT_SCENARIOS,
    SCENARIOS,
    Fleet,
    build_fleet,
)
from scanner.fleet.server import FleetProcess, write_config

ROOT = Path(__file__).resolve().parent.parent
REPORT_SCHEMA = json.loads((ROOT / "docs" / "report.schema.json").read_text())
NOW = datetime.now(timezone.utc)
COPIES = 2  # each scenario twice: faults must not leak into their neighbours
DEADLINE_WARNING = (
    "scan: warning: the global deadline passed; unfinished endpoints are not_scanned\n"
)
SUBPROCESS_SECONDS = 120  # a bound on every scan run here, never an assertion


@dataclass(frozen=True)
class Served:
    fleet: Fleet
    inventory: Path


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    directory = tmp_path_factory.mktemp("faults")
    names = [s.name for s in (*SCENARIOS, *FAULT_SCENARIOS)]
    fleet = build_fleet(NOW, COPIES * len(names), scenarios=names, base=7, timeout=1.5)
    with FleetProcess(write_config(fleet.sites, directory / "sites")) as process:
        yield Served(fleet, fleet.write(directory, process.listening))


def scan(*args: str, timeout: float = SUBPROCESS_SECONDS) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scanner", "--traceback", "scan", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=timeout,
        check=False,
    )


def verdict(entry: dict[str, Any]) -> tuple[frozenset[tuple[str, str, int | None]], str | None]:
    findings = frozenset((f["check"], f["severity"], f["certificate"]) for f in entry["findings"])
    return findings, entry["error"]["reason"] if entry["error"] else None


def by_name(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    entries = {e["name"]: e for e in report["endpoints"]}
    assert len(entries) == len(report["endpoints"]), "an endpoint was reported twice"
    return entries


def check_exact(fleet: Fleet, name: str, entry: dict[str, Any]) -> None:
    """The scenario's findings and reason, and the words of its failure."""
    scenario = next(e.scenario for e in fleet.endpoints if e.name == name)
    assert verdict(entry) == fleet.expected()[name], name
    if scenario.detail is not None:
        assert scenario.detail in entry["error"]["detail"], (name, entry["error"])


# --------------------------------------------------------------------------- verdicts


def test_mixed_fault_fleet_gets_exact_verdicts(served: Served, tmp_path: Path) -> None:
    report_path = tmp_path / "report.json"
    textfile = tmp_path / "pinaudit.prom"
    done = scan(
        "--inventory", str(served.inventory), "--format", "json", "--output", str(report_path),
        "--textfile", str(textfile),
    )  # fmt: skip
    assert (done.returncode, done.stdout, done.stderr) == (1, "", "")
    report = json.loads(report_path.read_text())
    jsonschema.validate(report, REPORT_SCHEMA)
    entries = by_name(report)
    assert set(entries) == {e.name for e in served.fleet.endpoints}
    for name, entry in entries.items():
        check_exact(served.fleet, name, entry)
    assert report["complete"] is True
    n = len(served.fleet.endpoints)
    # per copy: 5 ok (healthy, backup, mtls, sans10k, year9999; tls10 is an
    # old_tls_version warning), 14 unreachable in SCENARIOS + FAULT_SCENARIOS,
    # the rest drift
    assert report["summary"] == {"endpoints": n, "ok": 10, "drift": n - 10 - 28, "error": 28}
    # what the chain-level faults look like in the report
    first = {e.scenario.name: entries[e.name] for e in reversed(served.fleet.endpoints)}
    assert first["tls10"]["tls"]["version"] == "TLSv1"
    assert first["mtls"]["tls"]["version"] == "TLSv1.3"
    big = first["bigchain"]
    assert len(big["chain"]) == BIG_CHAIN_DECOYS + 2
    assert [c["in_path"] for c in big["chain"]] == [True] + [False] * BIG_CHAIN_DECOYS + [True]
    badsan = first["badsan"]
    assert badsan["chain"][0]["role"] == "unparsable"
    assert "ExtraData" in badsan["chain"][0]["error"]
    assert first["alert"]["error"]["alert"] == "handshake_failure"
    assert first["nxdomain"]["address"] is None
    assert first["notbefore9999"]["chain"][0]["not_before"] == "9999-12-31T23:59:59Z"
    metrics = textfile.read_text()
    assert f'pinaudit_probe_error{{endpoint="{first["hugechain"]["name"]}"' in metrics


def test_every_fault_scenario_is_served(served: Served) -> None:
    """The fixture really has every fault twice, in scenario order."""
    names = [e.scenario.name for e in served.fleet.endpoints]
    every = [s.name for s in (*SCENARIOS, *FAULT_SCENARIOS)]
    assert names == every * COPIES
    assert len({s.name for s in FAULT_SCENARIOS}) == len(FAULT_SCENARIOS) == 19
    assert all(BY_NAME[s.name] is s for s in FAULT_SCENARIOS)


def test_global_deadline_bounds_the_scan(served: Served) -> None:
    """Two workers and slow faults: the deadline passes mid-scan. Every
    endpoint still has one result: its exact verdict, or not_scanned."""
    done = scan(
        "--inventory", str(served.inventory), "--format", "json", "--concurrency", "2",
        "--deadline", "1s",
    )  # fmt: skip
    assert (done.returncode, done.stderr) == (1, DEADLINE_WARNING)
    report = json.loads(done.stdout)
    entries = by_name(report)
    assert set(entries) == {e.name for e in served.fleet.endpoints}
    unfinished = {
        name
        for name, entry in entries.items()
        if [f["check"] for f in entry["findings"]] == ["not_scanned"]
    }
    assert unfinished, "the deadline passed before the slow endpoints were done"
    assert len(unfinished) < len(entries), "the first endpoints finished"
    for name, entry in entries.items():
        if name in unfinished:
            assert entry["findings"][0]["message"] == "global deadline passed before it finished"
            assert (entry["status"], entry["attempts"]) == ("error", 0)
            assert entry["error"] == {  # the same reason the metrics give it
                "reason": "not_scanned",
                "detail": "global deadline passed before it finished",
                "alert": None,
            }
        else:
            check_exact(served.fleet, name, entry)


@pytest.mark.parametrize(
    ("fail_on", "only", "status"),
    [
        ("never", ("garbagecert", "hugechain", "endless"), 0),
        ("critical", ("tls10", "mtls", "sans10k", "year9999"), 0),
        ("critical", ("tls10", "negserial"), 1),
        ("warning", ("bigchain",), 1),
        ("critical", ("bigchain",), 0),
    ],
)
def test_exit_codes(served: Served, fail_on: str, only: tuple[str, ...], status: int) -> None:
    filters = [arg for name in only for arg in ("--only", f"scenario={name}")]
    done = scan(
        "--inventory", str(served.inventory), "--format", "json", "--fail-on", fail_on, *filters
    )  # fmt: skip
    assert (done.returncode, done.stderr) == (status, "")
    assert json.loads(done.stdout)["summary"]["endpoints"] == COPIES * len(only)


# --------------------------------------------------------------------------- all or nothing


class _Pushgateway(http.server.ThreadingHTTPServer):
    """A loopback HTTP server that records every request (what reached the
    Pushgateway) and answers 200 like a Pushgateway."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str]] = []
        super().__init__(("127.0.0.1", 0), _Recorder)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Recorder(http.server.BaseHTTPRequestHandler):
    def _record(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        assert isinstance(self.server, _Pushgateway)
        self.server.requests.append((self.command, self.path))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_PUT = do_POST = do_DELETE = _record

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def gateway() -> Iterator[_Pushgateway]:
    server = _Pushgateway()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


@dataclass(frozen=True)
class Exports:
    report: Path
    textfile: Path

    def args(self, gateway: _Pushgateway) -> list[str]:
        return [
            "--format", "json", "--output", str(self.report), "--textfile", str(self.textfile),
            "--push-gateway", gateway.url,
        ]  # fmt: skip

    def snapshot(self) -> tuple[bytes, bytes]:
        return self.report.read_bytes(), self.textfile.read_bytes()


def _last_good(served: Served, tmp_path: Path, gateway: _Pushgateway) -> tuple[Exports, Any]:
    exports = Exports(tmp_path / "report.json", tmp_path / "pinaudit.prom")
    done = scan("--inventory", str(served.inventory), "--only", "scenario=healthy",
                *exports.args(gateway))  # fmt: skip
    assert (done.returncode, done.stderr) == (0, "")
    assert gateway.requests == [("PUT", "/metrics/job/pinaudit")]
    return exports, exports.snapshot()


def test_bad_inventory_exports_nothing(
    served: Served, tmp_path: Path, gateway: _Pushgateway
) -> None:
    exports, good = _last_good(served, tmp_path, gateway)
    broken = tmp_path / "broken.yaml"
    broken.write_text(served.inventory.read_text().replace("port:", "port: [", 1))
    done = scan("--inventory", str(broken), *exports.args(gateway))
    assert done.returncode == 2
    assert done.stderr.startswith(f"pinaudit scan: error: {broken}:")
    assert "Traceback" not in done.stderr
    assert exports.snapshot() == good
    assert len(gateway.requests) == 1


def test_a_report_that_cannot_be_written_exits_3(
    served: Served, tmp_path: Path, gateway: _Pushgateway
) -> None:
    """The report goes to a pipe nobody reads (it fails when written, after the
    scan): exit 3, and the other exports are written all the same."""
    fifo = tmp_path / "report.fifo"
    os.mkfifo(fifo)
    textfile = tmp_path / "pinaudit.prom"
    done = scan(
        "--inventory", str(served.inventory), "--only", "scenario=healthy", "--output",
        str(fifo), "--textfile", str(textfile), "--push-gateway", gateway.url,
    )  # fmt: skip
    assert done.returncode == 3
    assert done.stderr == f"scan: error: {fifo}: cannot write: No such device or address\n"
    assert stat.S_ISFIFO(fifo.stat().st_mode)  # still the pipe, not replaced by a file
    # the other exports are independent of the report file
    assert "pinaudit_endpoint_up" in textfile.read_text()
    assert gateway.requests == [("PUT", "/metrics/job/pinaudit")]


def test_a_report_into_a_missing_directory_is_refused_before_scanning(
    served: Served, tmp_path: Path, gateway: _Pushgateway
) -> None:
    missing = tmp_path / "missing" / "report.json"
    done = scan(
        "--inventory", str(served.inventory), "--output", str(missing),
        "--push-gateway", gateway.url,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr == (
        f"pinaudit scan: error: --output {missing}: directory {missing.parent} does not exist\n"
    )
    assert done.stdout == ""
    assert gateway.requests == []  # nothing scanned, nothing exported


def _with_trigger(served: Served, directory: Path, port: int) -> Path:
    """The fleet's healthy endpoints, then one at `port` where the test listens:
    when it connects, the scan is under way."""
    data = yaml.safe_load(served.inventory.read_text())
    data["endpoints"] = [e for e in data["endpoints"] if e["name"].startswith("healthy-")]
    data["endpoints"].append(
        {"name": "trigger", "host": "127.0.0.1", "port": port, "sni": "trigger.fleet.test",
         "pins": data["endpoints"][0]["pins"], "timeout": "60s"}
    )  # fmt: skip
    path = served.inventory.parent / f"trigger-{port}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_interrupted_scan_replaces_no_export(
    served: Served, tmp_path: Path, gateway: _Pushgateway
) -> None:
    exports, good = _last_good(served, tmp_path, gateway)
    with socket.create_server(("127.0.0.1", 0)) as listener:
        inventory = _with_trigger(served, tmp_path, listener.getsockname()[1])
        listener.settimeout(60)
        proc = subprocess.Popen(
            [sys.executable, "-m", "scanner", "scan", "--inventory", str(inventory),
             "--concurrency", "1", *exports.args(gateway)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip
        try:
            connection, _ = listener.accept()  # the healthy endpoints are done
            with connection:
                proc.send_signal(signal.SIGINT)
                out, err = proc.communicate(timeout=SUBPROCESS_SECONDS)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert proc.returncode == 130
    assert err == (
        f"scan: interrupted: {COPIES} of {COPIES + 1} endpoints scanned\n"
        f"scan: {exports.report} left as it was (the last complete report)\n"
    )
    partial = json.loads(out)  # the partial report went to stdout
    assert partial["complete"] is False
    assert [(e["name"], e["status"]) for e in partial["endpoints"]] == [
        ("healthy-0", "ok"),
        (f"healthy-{len(SCENARIOS) + len(FAULT_SCENARIOS)}", "ok"),
        ("trigger", "error"),
    ]
    assert partial["endpoints"][-1]["findings"][0]["message"] == "scan interrupted"
    assert exports.snapshot() == good
    assert len(gateway.requests) == 1


# --------------------------------------------------------------------------- the records


def test_client_hello_parsing_is_bounded_and_total() -> None:
    hello = faults.ClientHello((0x1301, 0xC02F, 0x00FF), (0x0000, 0xFF01))
    body = (
        b"\x03\x03" + bytes(32) + b"\x00" + b"\x00\x06\x13\x01\xc0\x2f\x00\xff" + b"\x01\x00"
        + b"\x00\x08" + b"\x00\x00\x00\x00" + b"\xff\x01\x00\x00"
    )  # fmt: skip
    message = faults.handshake_message(faults.CLIENT_HELLO, body)
    assert faults.parse_client_hello(faults.record(faults.HANDSHAKE, message)) == hello
    # split over two records, as clients may send it
    split = faults.record(faults.HANDSHAKE, message[:10]) + faults.record(
        faults.HANDSHAKE, message[10:]
    )
    assert faults.parse_client_hello(split) == hello
    for cut in range(len(message) + 5):
        assert faults.parse_client_hello(faults.record(faults.HANDSHAKE, message)[:cut]) in (
            None,
            hello,
        )
    assert faults.parse_client_hello(b"GET / HTTP/1.1\r\n\r\n") is None
    # 65535 bytes of cipher suites announced, two sent
    garbled = faults.handshake_message(faults.CLIENT_HELLO, b"\x03\x03" + bytes(33) + b"\xff\xff")
    assert faults.parse_client_hello(faults.record(faults.HANDSHAKE, garbled)) is None


def test_server_hello_answers_an_offered_suite() -> None:
    hello = faults.ClientHello((0x009C, 0xC02B), (0xFF01,))
    record = faults.server_hello(hello)
    assert record[:3] == b"\x16\x03\x03"
    body = record[5 + 4 :]
    assert body[:2] == b"\x03\x03" and body[34] == 0  # TLS 1.2, no session id
    assert body[35:37] == b"\xc0\x2b"  # ECDHE-ECDSA-AES128-GCM-SHA256, the best offered
    assert body[-5:] == b"\xff\x01\x00\x01\x00"  # secure renegotiation, empty


def test_records_are_split_at_16k() -> None:
    records = faults.record(faults.HANDSHAKE, bytes(40_000))
    assert len(records) == 40_000 + 3 * 5
    assert records[3:5] == b"\x40\x00"


def test_negative_serial_is_signed_again() -> None:
    pki = PKI(NOW)
    issuer = pki.root("Signer")
    leaf = pki.leaf("neg.test", issuer, serial=0x1234_5678_9ABC_DEF0)
    negative = faults.with_negative_serial(leaf, issuer)
    with pytest.warns(Warning, match="serial number"):
        serial = negative.cert.serial_number
    assert serial == (0x1234_5678_9ABC_DEF0 | 1 << 63) - (1 << 64)
    public = issuer.cert.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    signed = negative.cert
    public.verify(signed.signature, signed.tbs_certificate_bytes, ec.ECDSA(hashes.SHA256()))
    assert negative.key is leaf.key
    with pytest.raises(ValueError, match="8 bytes"):
        faults.with_negative_serial(pki.leaf("small.test", issuer, serial=5), issuer)
