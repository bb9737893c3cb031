"""Running out of file descriptors: a clear error up front when the limit
cannot serve the concurrency, and per-endpoint ``os_error`` results (never a
crash) when descriptors run out in the middle of a scan.

Figures for memory and open files at 1k/5k/10k endpoints come from
``benchmarks/resources_bench.py`` (docs/performance.md), not from tests.
"""

from __future__ import annotations

import os
import re
import resource
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest
import trio

from scanner.engine import ScanOptions, open_descriptors, run_scan
from scanner.fleet.scenarios import Fleet, build_fleet
from scanner.fleet.server import FleetProcess, write_config
from scanner.inventory import load_inventory
from scanner.model import Endpoint, Phase, ProbeErrorKind
from scanner.results import EndpointResult
from scanner.trust import TrustStores

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime.now(timezone.utc)
ENDPOINTS = 10
STARVED = 4  # endpoints scanned while every descriptor is taken


@pytest.fixture(scope="module")
def healthy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Fleet, Path]]:
    directory = tmp_path_factory.mktemp("resources")
    fleet = build_fleet(NOW, ENDPOINTS, scenarios=["healthy"], base=8, timeout=5.0)
    with FleetProcess(write_config(fleet.sites, directory / "sites")) as served:
        yield fleet, fleet.write(directory, served.listening)


def _scan_limited(
    inventory: Path, limit: int, *args: str, inherit: int = 0
) -> subprocess.CompletedProcess[str]:
    """`scan` in a child whose open-files limit (soft and hard) is `limit` and
    which inherits `inherit` extra open descriptors."""
    extra = [os.open(os.devnull, os.O_RDONLY) for _ in range(inherit)]

    def lower() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))

    try:
        return subprocess.run(
            [sys.executable, "-m", "scanner", "scan", "--inventory", str(inventory), *args],
            capture_output=True,
            text=True,
            cwd=ROOT,
            preexec_fn=lower,
            pass_fds=extra,
            timeout=120,
            check=False,
        )
    finally:
        for fd in extra:
            os.close(fd)


def test_concurrency_beyond_the_limit_is_refused_clearly(healthy: tuple[Fleet, Path]) -> None:
    _fleet, inventory = healthy
    done = _scan_limited(inventory, 100, "--concurrency", "500")
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (
        "pinaudit scan: error: a concurrency of 500 needs about 564 open files, but the limit "
        "is 100 (hard limit 100): lower the concurrency to 36 or raise the limit (ulimit -n)\n"
    )


def test_inherited_descriptors_count_against_the_limit(healthy: tuple[Fleet, Path]) -> None:
    """Descriptors already open leave too few for the scan: refused up front
    (before, trio itself failed to start: 'internal error ... this is a bug')."""
    _fleet, inventory = healthy
    done = _scan_limited(inventory, 120, "--concurrency", "10", inherit=110)
    assert (done.returncode, done.stdout) == (2, "")
    match = re.fullmatch(
        r"pinaudit scan: error: a concurrency of 10 needs about (\d+) open files \((\d+) are "
        r"open already\), but the limit is 120 \(hard limit 120\): raise the limit "
        r"\(ulimit -n\)\n",
        done.stderr,
    )
    assert match, done.stderr
    assert int(match.group(1)) == 10 + int(match.group(2)) + 16
    assert int(match.group(2)) >= 110


def test_a_limit_that_fits_scans_everything(healthy: tuple[Fleet, Path]) -> None:
    _fleet, inventory = healthy
    done = _scan_limited(inventory, 120, "--concurrency", "10", "--format", "json", inherit=20)
    assert (done.returncode, done.stderr) == (0, "")
    assert '"summary": {"endpoints": 10, "ok": 10, "drift": 0, "error": 0}' in done.stdout


def test_descriptors_running_out_mid_scan_fail_endpoints_not_the_scan(
    healthy: tuple[Fleet, Path],
) -> None:
    """Something else takes every free descriptor while the scan runs: the
    endpoints probed meanwhile fail with os_error (one result each, the
    errno in words); once descriptors are free again the scan carries on."""
    _fleet, inventory = healthy
    endpoints = load_inventory(inventory).endpoints
    stores = TrustStores()
    for endpoint in endpoints:  # read before the descriptors run out
        stores.get(endpoint.trust)
    "warm".encode("idna")  # the first connect imports this codec: not while starved
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    hog: list[int] = []
    seen: list[EndpointResult] = []

    def release_after_starved(result: EndpointResult) -> None:
        seen.append(result)
        if len(seen) == STARVED:
            while hog:
                os.close(hog.pop())

    async def main() -> tuple[EndpointResult, ...]:
        resource.setrlimit(resource.RLIMIT_NOFILE, (open_descriptors() + 32, hard))
        try:
            while True:
                hog.append(os.open(os.devnull, os.O_RDONLY))
        except OSError:
            pass
        outcome = await run_scan(
            _in_order(endpoints),
            now=NOW,
            options=ScanOptions(concurrency=1),
            stores=stores,
            sinks=[release_after_starved],
        )
        return outcome.results

    try:
        results = trio.run(main)
    finally:
        while hog:
            os.close(hog.pop())
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert [r.endpoint.name for r in results] == [e.name for e in _in_order(endpoints)]
    starved, rest = results[:STARVED], results[STARVED:]
    for result in starved:
        failure = result.failure
        assert failure is not None
        assert (result.status.value, failure.kind, failure.phase) == (
            "error",
            ProbeErrorKind.OS_ERROR,
            Phase.CONNECT,
        )
        assert failure.detail == "[Errno 24] Too many open files"
        assert [f.check.value for f in result.findings] == ["unreachable"]
    assert [r.status.value for r in rest] == ["ok"] * (ENDPOINTS - STARVED)


def _in_order(endpoints: tuple[Endpoint, ...]) -> list[Endpoint]:
    return sorted(endpoints, key=lambda e: int(e.name.rsplit("-", 1)[1]))
