"""End to end: the simulated fleet served by a child process over real TLS on
loopback, scanned by the real `scan` command, every verdict exact."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import date, datetime, timezone
from pathlib import Path

import jsonschema
import pytest

from scanner.cli import main
from scanner.fleet.scenarios import SCENARIOS, Fleet, build_fleet
from scanner.fleet.server import FleetProcess, write_config

ROOT = Path(__file__).resolve().parent.parent
REPORT_SCHEMA = json.loads((ROOT / "docs" / "report.schema.json").read_text())
NOW = datetime.now(timezone.utc)


@pytest.fixture(scope="module")
def fleet_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Fleet, Path]]:
    """220 endpoints: every scenario eleven times, served by one child process."""
    directory = tmp_path_factory.mktemp("fleet")
    fleet = build_fleet(NOW, 11 * len(SCENARIOS), base=2, timeout=1.5)
    with FleetProcess(write_config(fleet.sites, directory / "sites")) as served:
        yield fleet, fleet.write(directory, served.listening)


def _scan(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = main(["scan", *args], stdout=out, stderr=err)
    return int(status), out.getvalue(), err.getvalue()


def _verdicts(report: dict[str, object]) -> dict[str, tuple[frozenset[object], str | None]]:
    endpoints = report["endpoints"]
    assert isinstance(endpoints, list)
    return {
        e["name"]: (
            frozenset((f["check"], f["severity"], f["certificate"]) for f in e["findings"]),
            e["error"]["reason"] if e["error"] else None,
        )
        for e in endpoints
    }


def test_every_scenario_gets_its_exact_verdict(fleet_dir: tuple[Fleet, Path]) -> None:
    fleet, inventory = fleet_dir
    status, out, err = _scan("--inventory", str(inventory), "--format", "json")
    assert status == 1, err  # the fleet has critical findings by design
    assert "Traceback" not in err
    report = json.loads(out)
    jsonschema.validate(report, REPORT_SCHEMA)
    assert report["summary"] == {"endpoints": 220, "ok": 22, "drift": 143, "error": 55}
    assert _verdicts(report) == fleet.expected()
    healthy = next(e for e in report["endpoints"] if e["name"] == "healthy-0")
    assert healthy["status"] == "ok"
    assert [c["role"] for c in healthy["chain"]] == ["leaf", "intermediate"]
    assert [c["in_path"] for c in healthy["chain"]] == [True, True]
    assert len(healthy["path"]) == 3  # leaf, intermediate, root from the trust bundle
    assert healthy["path"][1] == healthy["chain"][1]["spki_sha256"]
    assert healthy["tls"]["version"] == "TLSv1.3"


def test_fail_on_and_only_filters(fleet_dir: tuple[Fleet, Path]) -> None:
    _fleet, inventory = fleet_dir
    status, out, _ = _scan(
        "--inventory",
        str(inventory),
        "--only",
        "scenario=healthy",
        "--only",
        "scenario=backup",
        "--format",
        "json",
    )
    assert status == 0
    assert json.loads(out)["summary"] == {"endpoints": 22, "ok": 22, "drift": 0, "error": 0}
    status, out, _ = _scan(
        "--inventory", str(inventory), "--only", "scenario=leafpin", "--format", "json"
    )
    assert status == 0  # warnings only
    status, _, _ = _scan(
        "--inventory",
        str(inventory),
        "--only",
        "scenario=leafpin",
        "--fail-on",
        "warning",
        "--format",
        "json",
    )
    assert status == 1
    status, _, _ = _scan("--inventory", str(inventory), "--fail-on", "never", "--format", "json")
    assert status == 0
    status, _, err = _scan("--inventory", str(inventory), "--only", "scenario=nosuch")
    assert status == 2
    scenarios = sorted({e.scenario.name for e in _fleet.endpoints})
    assert err == (
        "pinaudit scan: error: no endpoint matches --only scenario=nosuch: scenario is one "
        f"of: {', '.join(scenarios[:8])}, … ({len(scenarios) - 8} more)\n"
    )
    status, _, err = _scan("--inventory", str(inventory), "--only", "tem=web")
    assert status == 2
    assert err == (
        "pinaudit scan: error: no endpoint matches --only tem=web: no endpoint has a label "
        "'tem' (keys: name, host, env, scenario)\n"
    )


def test_now_in_the_future_finds_what_breaks(fleet_dir: tuple[Fleet, Path]) -> None:
    _fleet, inventory = fleet_dir
    future = date(NOW.year + 1, NOW.month, min(NOW.day, 28))
    status, out, _ = _scan(
        "--inventory",
        str(inventory),
        "--only",
        "scenario=healthy",
        "--format",
        "json",
        "--now",
        future.isoformat(),
    )
    assert status == 1
    report = json.loads(out)
    assert report["as_of"] == f"{future.isoformat()}T00:00:00Z"
    for entry in report["endpoints"]:
        assert {(f["check"], f["certificate"]) for f in entry["findings"]} == {("cert_expired", 0)}


def test_jsonl_streams_one_line_per_endpoint_then_a_summary(fleet_dir: tuple[Fleet, Path]) -> None:
    _fleet, inventory = fleet_dir
    status, out, _ = _scan(
        "--inventory",
        str(inventory),
        "--format",
        "jsonl",
        "--only",
        "scenario=healthy",
        "--only",
        "scenario=expired",
    )
    assert status == 1
    lines = [json.loads(line) for line in out.splitlines()]
    assert len(lines) == 23
    assert {line["name"] for line in lines[:-1]} == {
        f"{s}-{i}"
        for s, first in (("healthy", 0), ("expired", 4))
        for i in range(first, 220, len(SCENARIOS))
    }
    assert lines[-1]["type"] == "summary"
    assert lines[-1]["summary"] == {"endpoints": 22, "ok": 11, "drift": 11, "error": 0}


def test_table_output_to_a_file(fleet_dir: tuple[Fleet, Path], tmp_path: Path) -> None:
    _fleet, inventory = fleet_dir
    target = tmp_path / "report.txt"
    status, out, _ = _scan(
        "--inventory",
        str(inventory),
        "--output",
        str(target),
        "--only",
        "scenario=expired",
        "--only",
        "scenario=healthy",
    )
    assert status == 1 and out == ""
    text = target.read_text()
    assert "\x1b[" not in text  # no colour in files
    lines = text.splitlines()
    assert lines[0].strip() == "CRITICAL (11)"
    assert lines[-2:] == [
        "22 endpoints: 11 ok, 11 drift, 0 error; findings: 11 critical, 0 warning, 0 info",
        "rotation readiness of 22 pinned endpoints: 22 survive a leaf renewal with a new key, "
        "22 a switch of CA",
    ]
    assert sum(1 for line in lines if line.startswith("expired-")) == 11


def test_deadline_reports_the_rest_as_not_scanned(fleet_dir: tuple[Fleet, Path]) -> None:
    _fleet, inventory = fleet_dir
    status, out, err = _scan(
        "--inventory",
        str(inventory),
        "--format",
        "json",
        "--only",
        "scenario=silent",
        "--deadline",
        "300ms",
    )
    assert status == 1
    report = json.loads(out)
    assert report["summary"] == {"endpoints": 11, "ok": 0, "drift": 0, "error": 11}
    for entry in report["endpoints"]:
        assert [(f["check"], f["message"]) for f in entry["findings"]] == [
            ("not_scanned", "global deadline passed before it finished")
        ]
    assert "global deadline passed" in err


def test_ctrl_c_exits_130_with_a_partial_report(fleet_dir: tuple[Fleet, Path]) -> None:
    _fleet, inventory = fleet_dir
    # one healthy endpoint answers at once; the silent ones hold the scan open
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "scanner",
            "scan",
            "--inventory",
            str(inventory),
            "--format",
            "jsonl",
            "--concurrency",
            "1",
            "--only",
            "scenario=healthy",
            "--only",
            "scenario=silent",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None
    first = proc.stdout.readline()  # the first endpoint is done: the scan is under way
    assert json.loads(first)["name"] == "healthy-0"
    proc.send_signal(signal.SIGINT)
    rest, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    lines = [json.loads(line) for line in [first, *rest.splitlines()]]
    summary = lines[-1]
    assert summary["type"] == "summary" and summary["complete"] is False
    assert summary["summary"]["endpoints"] == 22
    endpoints = lines[:-1]
    assert len(endpoints) == 22  # every endpoint has exactly one line
    assert len({e["name"] for e in endpoints}) == 22
    not_scanned = [e for e in endpoints if e["status"] == "error" and e["attempts"] == 0]
    assert len(not_scanned) >= 10  # concurrency 1: the silent ones block the queue
    for entry in not_scanned:
        assert [(f["check"], f["message"]) for f in entry["findings"]] == [
            ("not_scanned", "scan interrupted")
        ]
    assert "scan: interrupted:" in err


def _scan_on_a_terminal(inventory: Path, env: dict[str, str]) -> str:
    """Run `scan` with stdout on a pseudo-terminal, as a person would."""
    import pty

    primary, secondary = pty.openpty()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "scanner",
            "scan",
            "--inventory",
            str(inventory),
            "--only",
            "scenario=expired",
            "--no-progress",
        ],
        stdout=secondary,
        stderr=subprocess.DEVNULL,
        cwd=ROOT,
        env=env,
    )
    os.close(secondary)
    chunks = []
    while True:
        try:
            data = os.read(primary, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=60)
    os.close(primary)
    return b"".join(chunks).decode(errors="replace")


def test_colour_only_on_a_terminal_and_never_with_no_color(fleet_dir: tuple[Fleet, Path]) -> None:
    import re

    _fleet, inventory = fleet_dir
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "TERM")}
    colour = re.compile(r"\x1b\[[0-9;]*(3[0-9]|9[0-7])[0-9;]*m")
    coloured = _scan_on_a_terminal(inventory, {**env, "TERM": "xterm-256color"})
    assert "expired-4" in coloured
    assert colour.search(coloured)
    plain = _scan_on_a_terminal(inventory, {**env, "TERM": "xterm-256color", "NO_COLOR": "1"})
    assert "expired-4" in plain
    assert not colour.search(plain)


def test_an_output_into_a_missing_directory_is_refused_before_scanning(
    fleet_dir: tuple[Fleet, Path], tmp_path: Path
) -> None:
    """Before, everything was scanned and then the report was lost with exit 3."""
    _fleet, inventory = fleet_dir
    target = tmp_path / "missing-dir" / "report.json"
    status, out, err = _scan(
        "--inventory",
        str(inventory),
        "--only",
        "scenario=healthy",
        "--format",
        "json",
        "--output",
        str(target),
    )
    assert (status, out) == (2, "")
    assert err == (
        f"pinaudit scan: error: --output {target}: directory {target.parent} does not exist\n"
    )


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 0)])
def test_fleet_serve_for_people_testing_their_alerting(
    tmp_path: Path, signum: int, status: int
) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "scanner", "fleet", "serve", "--dir", str(tmp_path), "--base", "8"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None
    try:
        first = proc.stdout.readline()
        assert first == f"serving 20 endpoints; inventory: {tmp_path / 'inventory.yaml'}\n"
        code, out, _ = _scan("--inventory", str(tmp_path / "inventory.yaml"), "--format", "json")
        assert code == 1
        assert json.loads(out)["summary"] == {"endpoints": 20, "ok": 2, "drift": 13, "error": 5}
        proc.send_signal(signum)
        rest, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == status
    assert rest.endswith("stopped\n")
    assert "Traceback" not in err
