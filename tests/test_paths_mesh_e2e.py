"""A server that serves a cross-sign mesh (scanner/fleet/scenarios.py, `crossmesh`)
cannot stall the scan: the real `scan` process, over loopback TLS to the fleet's
server process, finishes with the endpoint's exact verdict.

Before path building had a budget, listing the client paths of this endpoint
(it is pinned by an OkHttp pin-set, so every path is listed) never finished:
no report, no exports. The subprocess timeout below is a bound on the run,
never an assertion about its speed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pytest

from scanner.fleet.scenarios import BY_NAME, CROSS_MESH_CERTS, Fleet, build_fleet
from scanner.fleet.server import FleetProcess, write_config

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime.now(timezone.utc)
SUBPROCESS_SECONDS = 240


@dataclass(frozen=True)
class Served:
    fleet: Fleet
    inventory: Path


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    directory = tmp_path_factory.mktemp("crossmesh")
    fleet = build_fleet(NOW, 2, scenarios=["crossmesh", "healthy"], base=95, timeout=5.0)
    with FleetProcess(write_config(fleet.sites, directory / "sites")) as process:
        yield Served(fleet, fleet.write(directory, process.listening))


def test_a_cross_sign_mesh_gets_its_verdict_and_the_scan_ends(served: Served) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "scanner", "--traceback", "scan",
         "--inventory", str(served.inventory), "--format", "json"],
        capture_output=True, text=True, cwd=ROOT, timeout=SUBPROCESS_SECONDS, check=False,
    )  # fmt: skip
    assert (done.returncode, done.stderr) == (0, "")  # warnings only: --fail-on critical
    report = json.loads(done.stdout)
    entries = {e["name"]: e for e in report["endpoints"]}
    assert set(entries) == {"crossmesh-0", "healthy-1"}
    mesh = entries["crossmesh-0"]
    findings = {(f["check"], f["severity"], f["certificate"]) for f in mesh["findings"]}
    assert findings == BY_NAME["crossmesh"].expected
    assert len(mesh["chain"]) == CROSS_MESH_CERTS + 2
    assert [c["in_path"] for c in mesh["chain"]] == [True, True] + [False] * CROSS_MESH_CERTS
    assert entries["healthy-1"]["findings"] == []
    assert report["summary"] == {"endpoints": 2, "ok": 1, "drift": 1, "error": 0}


def test_the_inventory_pins_the_mesh_endpoint_with_a_client_pin_set(served: Served) -> None:
    text = served.inventory.read_text()
    assert "    pinset: crossmesh-0-app\n" in text
    assert "  crossmesh-0-app:\n    client: okhttp\n    rules:\n" in text
