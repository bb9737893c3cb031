"""``scan --workers N``: one scan probed by N processes gives the report, exit
status and verdicts of a one-process scan, scan-wide verdicts included.

The simulated fleet (every scenario and fault, real TLS over loopback on
127.45.x.y) is scanned by the real ``scan`` command, in this process (its
workers are real child processes) or as a child process for Ctrl-C.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from scanner import workers
from scanner.cli import main
from scanner.fleet.scenarios import SCENARIOS, Fleet, build_fleet
from scanner.fleet.server import FleetProcess, write_config
from scanner.shard import shard_of

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime.now(timezone.utc)
TIMINGS = {"scanned_at", "handshake_seconds", "connect_seconds", "duration_seconds"}


@pytest.fixture(scope="module")
def fleet_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Fleet, Path]]:
    """Every scenario four times, served by one child process."""
    directory = tmp_path_factory.mktemp("workers-fleet")
    fleet = build_fleet(NOW, 4 * len(SCENARIOS), base=45, timeout=1.5)
    with FleetProcess(write_config(fleet.sites, directory / "sites")) as served:
        yield fleet, fleet.write(directory, served.listening)


def _scan(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = main(["scan", *args], stdout=out, stderr=err)
    return int(status), out.getvalue(), err.getvalue()


def _without_timings(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_timings(v) for k, v in value.items() if k not in TIMINGS}
    if isinstance(value, list):
        return [_without_timings(v) for v in value]
    return value


def _report(inventory: Path, *args: str) -> tuple[int, dict[str, Any], str]:
    as_of = NOW.strftime("%Y-%m-%dT%H:%M:%SZ")
    status, out, err = _scan("-i", str(inventory), "-f", "json", "--now", as_of, *args)
    assert "Traceback" not in err
    return status, json.loads(out), err


def test_two_workers_give_the_one_process_report(fleet_dir: tuple[Fleet, Path]) -> None:
    fleet, inventory = fleet_dir
    one_status, one, _ = _report(inventory, "--workers", "1")
    two_status, two, err = _report(inventory, "--workers", "2")
    assert (two_status, one_status) == (1, 1), err  # the fleet has critical findings
    assert _without_timings(two) == _without_timings(one)
    assert {e["name"] for e in two["endpoints"]} == set(fleet.expected())
    assert two["summary"]["endpoints"] == 4 * len(SCENARIOS)


def test_a_verdict_that_needs_another_workers_chain(fleet_dir: tuple[Fleet, Path]) -> None:
    """nointermediate-*'s server forgets its intermediate; the scan tells a
    missing intermediate (chain_incomplete) from an unknown CA only because a
    healthy endpoint served that intermediate. The two are probed by
    different workers here: the verdict must still be chain_incomplete."""
    fleet, inventory = fleet_dir
    healthy, missing = next(
        (h, m)
        for h in _named(fleet, "healthy")
        for m in _named(fleet, "nointermediate")
        if shard_of(h, 2) != shard_of(m, 2)
    )
    pair = ("--only", f"name={healthy}", "--only", f"name={missing}")
    assert [len(s) for s in workers.shares(_endpoints(inventory, healthy, missing), 2)] == [1, 1]
    _, alone, _ = _report(inventory, "--workers", "1", "--only", f"name={missing}")
    status, split, err = _report(inventory, "--workers", "2", *pair)
    _, together, _ = _report(inventory, "--workers", "1", *pair)
    checks = {e["name"]: {f["check"] for f in e["findings"]} for e in split["endpoints"]}
    assert "chain_incomplete" in checks[missing], err
    assert checks[missing] != {f["check"] for f in alone["endpoints"][0]["findings"]}
    assert _without_timings(split) == _without_timings(together)
    assert status == 1
    expected = {check for check, _severity, _cert in fleet.expected()[missing][0]}
    assert checks[missing] == expected


def _named(fleet: Fleet, scenario: str) -> list[str]:
    return sorted(name for name in fleet.expected() if name.startswith(f"{scenario}-"))


def _endpoints(inventory: Path, *names: str) -> list[Any]:
    from scanner.inventory import load_inventory

    return [e for e in load_inventory(inventory).endpoints if e.name in names]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("0", "--workers 0: must be 1..256"),
        ("-1", "--workers -1: must be 1..256"),
        ("257", "--workers 257: must be 1..256"),
        ("abc", "argument --workers: invalid int value: 'abc'"),
    ],
)
def test_bad_worker_counts_are_usage_errors(
    fleet_dir: tuple[Fleet, Path], value: str, message: str
) -> None:
    _fleet, inventory = fleet_dir
    status, out, err = _scan("-i", str(inventory), "--workers", value)
    assert status == 2
    assert message in err
    assert out == ""


def test_workers_are_not_for_the_exporter(fleet_dir: tuple[Fleet, Path]) -> None:
    _fleet, inventory = fleet_dir
    status, _, err = _scan("-i", str(inventory), "--serve", "127.0.0.1:0", "--workers", "2")
    assert status == 2
    assert "--workers cannot be combined with --serve" in err


def test_deadline_with_workers_reports_the_rest_as_not_scanned(
    fleet_dir: tuple[Fleet, Path],
) -> None:
    _fleet, inventory = fleet_dir
    status, report, err = _report(
        inventory, "--workers", "2", "--only", "scenario=silent", "--deadline", "300ms"
    )
    assert status == 1
    assert report["summary"] == {"endpoints": 4, "ok": 0, "drift": 0, "error": 4}
    for entry in report["endpoints"]:
        assert [(f["check"], f["message"]) for f in entry["findings"]] == [
            ("not_scanned", "global deadline passed before it finished")
        ]
    assert "global deadline passed" in err


def test_ctrl_c_with_workers_exits_130_with_a_partial_report(
    fleet_dir: tuple[Fleet, Path],
) -> None:
    """Ctrl-C reaches the whole process group (the scan and its workers): the
    workers leave it to the scan, which reports what was not finished."""
    fleet, inventory = fleet_dir
    proc = subprocess.Popen(
        [sys.executable, "-m", "scanner", "scan", "-i", str(inventory), "-f", "jsonl",
         "--workers", "2", "--concurrency", "2",
         "--only", "scenario=healthy", "--only", "scenario=silent"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"}, start_new_session=True,
    )  # fmt: skip
    assert proc.stdout is not None
    first = proc.stdout.readline()  # a healthy endpoint is done: the scan is under way
    assert json.loads(first)["name"].startswith("healthy-")
    os.killpg(proc.pid, signal.SIGINT)
    rest, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err, err
    lines = [json.loads(line) for line in [first, *rest.splitlines()]]
    assert lines[-1]["type"] == "summary" and lines[-1]["complete"] is False
    endpoints = lines[:-1]
    assert sorted(e["name"] for e in endpoints) == sorted(
        _named(fleet, "healthy") + _named(fleet, "silent")
    )
    not_scanned = [e for e in endpoints if e["attempts"] == 0]
    assert not_scanned  # the silent ones were still being waited for
    for entry in not_scanned:
        assert [(f["check"], f["message"]) for f in entry["findings"]] == [
            ("not_scanned", "scan interrupted")
        ]


def test_a_worker_that_dies_fails_its_endpoints_saying_so(
    fleet_dir: tuple[Fleet, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    _fleet, inventory = fleet_dir
    monkeypatch.setattr(workers, "_WORKER", (sys.executable, "-c", "raise SystemExit(3)"))
    status, report, _ = _report(inventory, "--workers", "2", "--only", "scenario=healthy")
    assert status == 1
    for entry in report["endpoints"]:
        assert entry["error"]["reason"] == "os_error"
        assert entry["error"]["detail"].startswith("worker process ")
        assert entry["error"]["detail"].endswith(" exited with status 3 before probing it")


def test_the_default_is_the_cpus_but_not_for_a_small_scan() -> None:
    cpus = workers.available_cpus()
    assert workers.worker_count(None, 10 * workers.DEFAULT_SHARE, 200) == min(cpus, 10)
    assert workers.worker_count(None, workers.DEFAULT_SHARE - 1, 200) == 1
    assert workers.worker_count(4, 3, 200) == 3  # never more workers than endpoints
    assert workers.worker_count(4, 100, 2) == 2  # each holds a handshake at least
