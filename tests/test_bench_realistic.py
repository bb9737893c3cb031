"""The realistic benchmark fleet (benchmarks/realistic/) gets exactly the verdicts
it promises, so benchmarks/realistic_bench.py measures a correct scan.

One copy of every group (100 virtual hosts: ten chains, six pin-sets, 10 %
drift) served by a real nginx by SNI on 127.70.1.x, scanned by
``python -m scanner scan --format json``; every endpoint's status and
findings (check + severity, info included) must be the group's. Timing is
the benchmark's business, not this test's.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from peers import require_program, running

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.realistic import fleet, procs, verdicts  # noqa: E402

ADDRESSES = ("127.70.1.1", "127.70.1.2")  # the benchmark itself uses 127.70.0.x
N = 100  # one full cycle of the groups' slots


@pytest.fixture(scope="module")
def realistic() -> fleet.RealisticFleet:
    return fleet.build(datetime.now(timezone.utc), ADDRESSES)


def _scan(the_fleet: fleet.RealisticFleet, tmp: Path) -> tuple[dict[str, Any], list[Any]]:
    nginx = require_program("nginx")
    files = the_fleet.write_server_files(tmp / "certs")
    port = procs.port_free_on_all(ADDRESSES)
    nginx_dir = tmp / "nginx"
    nginx_dir.mkdir()
    conf = nginx_dir / "nginx.conf"
    config = fleet.nginx_config(the_fleet, nginx_dir, port, files, as_root=os.geteuid() == 0)
    conf.write_text(config)
    endpoints = the_fleet.endpoints(N)
    trust = the_fleet.write_trust(tmp / "trust.pem")
    inventory = the_fleet.write_inventory(tmp / "inventory.yaml", endpoints, port, trust, "block")
    report = tmp / "report.json"
    command = [nginx, "-p", str(nginx_dir), "-c", str(conf), "-e", str(nginx_dir / "error.log")]
    with running([*command, "-g", "daemon off;"], host=ADDRESSES[0], port=port):
        done = subprocess.run(
            [sys.executable, "-m", "scanner", "scan", "--inventory", str(inventory),
             "--format", "json", "--output", str(report), "--fail-on", "never",
             "--no-progress", "--concurrency", "20"],
            capture_output=True, text=True, timeout=240, check=False,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(report.read_text()), endpoints


@pytest.mark.peers
def test_realistic_fleet_gets_the_promised_verdicts(
    realistic: fleet.RealisticFleet, tmp_path: Path
) -> None:
    report, endpoints = _scan(realistic, tmp_path)
    good, text = verdicts.render(report, endpoints)
    assert good, text
    assert report["summary"] == {"endpoints": 100, "ok": 90, "drift": 10, "error": 0}
    by_name = {e["name"]: e for e in report["endpoints"]}
    # Spot checks a reader can follow: the offline backup key is unresolved, a
    # chain that sends its root is still clean, the retired pin is a mismatch.
    ec_b = next(e for e in endpoints if e.group.name == "ec-b-root")
    assert [f["check"] for f in by_name[ec_b.name]["findings"]] == ["unresolved_pin"]
    assert len(by_name[ec_b.name]["chain"]) == 3
    wrong = next(e for e in endpoints if e.group.name == "wrong-pins")
    checks = [(f["check"], f["severity"]) for f in by_name[wrong.name]["findings"]]
    assert checks[0] == ("pin_mismatch", "critical")


def test_every_group_is_one_slot_share_and_drift_is_ten_percent(
    realistic: fleet.RealisticFleet,
) -> None:
    endpoints = realistic.endpoints(2000)
    counts: dict[str, int] = {}
    for ep in endpoints:
        counts[ep.group.name] = counts.get(ep.group.name, 0) + 1
    assert counts == {g.name: 20 * g.weight for g in realistic.groups}
    assert sum(ep.group.status == "drift" for ep in endpoints) == 200
    assert len(realistic.chains) == 10
    assert len({ep.sni for ep in endpoints}) == 2000


def test_the_checker_notices_a_wrong_verdict(realistic: fleet.RealisticFleet) -> None:
    """A report built from the promises passes; drop one finding and it fails."""
    endpoints = realistic.endpoints(N)
    entries = [
        {
            "name": ep.name,
            "status": ep.group.status,
            "findings": [{"check": c, "severity": s} for c, s in ep.group.expected],
        }
        for ep in endpoints
    ]
    summary = {"endpoints": N, "ok": 90, "drift": 10, "error": 0}
    report = {"summary": summary, "endpoints": entries}
    assert verdicts.render(report, endpoints)[0]
    broken = copy.deepcopy(report)
    victim = next(e for e in broken["endpoints"] if e["status"] == "drift")
    victim["findings"] = [f for f in victim["findings"] if f["severity"] != "critical"]
    good, text = verdicts.render(broken, endpoints)
    assert not good
    assert f"e.g. {victim['name']}:" in text
