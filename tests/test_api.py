"""scanner.api: the library entry points, from trio, from a plain program and
from inside asyncio, against the simulated fleet over real TLS."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import jsonschema
import pytest
import trio

from scanner.api import scan, scan_sync
from scanner.errors import InventoryError
from scanner.fleet.scenarios import Fleet, build_fleet
from scanner.fleet.server import FleetProcess, write_config
from scanner.model import Endpoint
from scanner.results import EndpointResult

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime.now(timezone.utc)
SCENARIOS = ["healthy", "expired", "wronghost", "refused"]


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Fleet, Path]]:
    directory = tmp_path_factory.mktemp("apifleet")
    fleet = build_fleet(NOW, scenarios=SCENARIOS, base=14, timeout=1.0)
    with FleetProcess(write_config(fleet.sites, directory / "sites")) as served:
        yield fleet, fleet.write(directory, served.listening)


def _verdicts(results: tuple[EndpointResult, ...]) -> dict[str, object]:
    return {
        r.endpoint.name: (
            frozenset((f.check.value, f.severity.value, f.certificate) for f in r.findings),
            r.failure.kind.value if r.failure else None,
        )
        for r in results
    }


def test_scan_sync_gives_every_verdict_of_the_fleet(fleet: tuple[Fleet, Path]) -> None:
    expected, inventory = fleet[0].expected(), fleet[1]
    seen: list[str] = []
    result = scan_sync(str(inventory), now=NOW, on_result=lambda r: seen.append(r.endpoint.name))
    assert _verdicts(result.results) == expected
    assert sorted(seen) == sorted(expected)  # each result streamed once, as it came
    report = result.report()
    schema = json.loads((ROOT / "docs" / "report.schema.json").read_text())
    jsonschema.validate(report, schema)
    assert report["summary"]["endpoints"] == len(SCENARIOS)


def test_scan_in_a_trio_program(fleet: tuple[Fleet, Path]) -> None:
    expected, inventory = fleet[0].expected(), fleet[1]

    async def main() -> tuple[EndpointResult, ...]:
        async with trio.open_nursery():  # the caller's own loop, with its own tasks
            return (await scan(inventory, now=NOW, concurrency=2)).results

    assert _verdicts(trio.run(main)) == expected


def test_scan_sync_inside_a_running_asyncio_loop(fleet: tuple[Fleet, Path]) -> None:
    expected, inventory = fleet[0].expected(), fleet[1]

    async def main() -> tuple[EndpointResult, ...]:
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)

        ticker = asyncio.create_task(tick())
        direct = scan_sync(inventory, now=NOW)  # blocks this loop, but works
        threaded = await asyncio.to_thread(scan_sync, inventory, now=NOW)
        ticker.cancel()
        assert ticks > 1  # the loop kept running while the threaded scan ran
        assert _verdicts(direct.results) == _verdicts(threaded.results)
        return threaded.results

    assert _verdicts(asyncio.run(main())) == expected


def test_endpoints_built_in_code(fleet: tuple[Fleet, Path]) -> None:
    result = scan_sync([Endpoint("local", "127.0.0.1", 9, None, None, timeout=1.0)])
    (item,) = result.results
    assert item.failure is not None and item.failure.kind.value == "refused"


def test_bad_arguments_and_inventories(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="concurrency must be at least 1, got 0"):
        scan_sync([], concurrency=0)
    with pytest.raises(ValueError, match="deadline must be more than 0 seconds"):
        scan_sync([], deadline=-1)
    with pytest.raises(ValueError, match=r"a sequence of scanner\.model\.Endpoint"):
        scan_sync(["example.com"])  # type: ignore[list-item]
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nendpoints:\n  - port: 443\n")
    with pytest.raises(InventoryError, match=r"bad.yaml:3:5: endpoints\[0\]: missing required"):
        scan_sync(bad)


def test_the_example_in_the_docs_runs(fleet: tuple[Fleet, Path], tmp_path: Path) -> None:
    text = (ROOT / "docs" / "api.md").read_text()
    code = re.search(r"```python\n(.*?)```", text, re.DOTALL)
    assert code is not None
    example = tmp_path / "example.py"
    example.write_text(code.group(1))
    done = subprocess.run(
        [sys.executable, str(example), str(fleet[1])],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1, done.stderr  # the fleet has drift by design
    lines = done.stdout.splitlines()
    assert lines[0] == str({"endpoints": 4, "ok": 1, "drift": 2, "error": 1})
    assert lines[1:] == [
        "healthy-0: ok (-)",
        "expired-1: drift (cert_expired)",
        "wronghost-2: drift (hostname_mismatch)",
        "refused-3: error (unreachable)",
    ]
