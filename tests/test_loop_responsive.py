"""A chain that takes long to analyse does not hold the scan loop (issue 15
item 1): while it is analysed, other endpoints' timeouts fire and their
results arrive, and ``--deadline`` still ends the scan.

The fleet's server process serves, over loopback TLS, a `crossmesh` endpoint
(scanner/fleet/scenarios.py: its leaf and intermediate plus 36 certificates
named like the intermediate, cross-signed with six attacker keys, pinned by an
OkHttp pin-set so that every client path is listed), a healthy endpoint and a
`silent` one (accepts, never answers). The path search of the mesh is bounded
(scanner/paths.py), but how long a bounded search takes depends on the
machine; a test cannot make it take "too long" without a timing assumption.
So the search of the mesh is made to wait, before doing its real work, for a
condition only the rest of the scan can bring about:

- the silent endpoint's timeout result reaching the sinks: while the mesh's
  analysis runs on the scan loop, that timeout cannot fire, so its result
  comes after the mesh's (it did, before analyses of new chains moved to a
  worker thread);
- the end of the test: with ``deadline``, the scan must end on it with the
  mesh endpoint ``not_scanned`` and the others judged.

The wait has a bound (WAIT_SECONDS) so that the code before the fix ends
the test (failing) instead of hanging it; no assertion is about time.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any

import pytest
import trio

import scanner.results
from scanner.engine import ScanOptions, ScanOutcome, run_scan
from scanner.fleet.scenarios import BY_NAME, CROSS_MESH_CERTS, build_fleet
from scanner.fleet.server import FleetProcess, write_config
from scanner.inventory import load_inventory
from scanner.model import Check, Endpoint
from scanner.paths import PathSearch
from scanner.results import EndpointResult, ResultStatus

NOW = datetime.now(timezone.utc)
WAIT_SECONDS = 60.0  # bound on the mesh search's wait: ends the test before the fix
SILENT_TIMEOUT = 3.0


@pytest.fixture(scope="module")
def endpoints(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Endpoint, ...]]:
    directory = tmp_path_factory.mktemp("responsive")
    fleet = build_fleet(NOW, 3, scenarios=["crossmesh", "healthy", "silent"], base=96)
    with FleetProcess(write_config(fleet.sites, directory / "sites")) as process:
        inventory = load_inventory(fleet.write(directory, process.listening))
        yield tuple(
            replace(e, timeout=SILENT_TIMEOUT) if e.name.startswith("silent-") else e
            for e in inventory.endpoints
        )


@dataclass
class MeshSearch:
    """`paths.search_paths`, whose search of the mesh first waits for `go`."""

    go: threading.Event
    real: Callable[..., PathSearch]
    waited: bool | None = None  # whether `go` came before WAIT_SECONDS

    def __call__(self, served: Sequence[bytes], *args: Any, **kwargs: Any) -> PathSearch:
        if len(served) == CROSS_MESH_CERTS + 2:
            self.waited = self.go.wait(WAIT_SECONDS)
        return self.real(served, *args, **kwargs)


@pytest.fixture
def mesh_search(monkeypatch: pytest.MonkeyPatch) -> Iterator[MeshSearch]:
    search = MeshSearch(threading.Event(), scanner.results.search_paths)
    monkeypatch.setattr(scanner.results, "search_paths", search)
    yield search
    search.go.set()  # a worker thread still waiting (after the deadline) finishes


def scan(
    endpoints: Sequence[Endpoint], options: ScanOptions, sink: Callable[[EndpointResult], None]
) -> ScanOutcome:
    return trio.run(lambda: run_scan(endpoints, now=NOW, options=options, sinks=[sink]))


def test_other_endpoints_time_out_and_arrive_while_a_new_chain_is_analysed(
    endpoints: tuple[Endpoint, ...], mesh_search: MeshSearch
) -> None:
    arrived: list[str] = []

    def sink(result: EndpointResult) -> None:
        arrived.append(result.endpoint.name)
        if result.endpoint.name.startswith("silent-"):
            mesh_search.go.set()

    outcome = scan(endpoints, ScanOptions(concurrency=3), sink)
    assert mesh_search.waited is True
    assert arrived[-1] == "crossmesh-0"
    assert sorted(arrived) == ["crossmesh-0", "healthy-1", "silent-2"]
    by_name = {r.endpoint.name: r for r in outcome.results}
    mesh = by_name["crossmesh-0"]
    findings = {(f.check.value, f.severity.value, f.certificate) for f in mesh.findings}
    assert findings == BY_NAME["crossmesh"].expected
    assert by_name["healthy-1"].status is ResultStatus.OK
    silent = by_name["silent-2"]
    assert silent.failure is not None and silent.failure.kind.value == "timeout"


def test_the_deadline_ends_the_scan_while_a_new_chain_is_analysed(
    endpoints: tuple[Endpoint, ...], mesh_search: MeshSearch
) -> None:
    arrived: list[str] = []
    outcome = scan(
        endpoints, ScanOptions(concurrency=3, deadline=SILENT_TIMEOUT * 3), arrived.append
    )
    assert mesh_search.waited is None  # still waiting when the scan ended
    assert outcome.deadline_hit
    by_name = {r.endpoint.name: r for r in outcome.results}
    mesh = by_name["crossmesh-0"]
    assert [(f.check, f.message) for f in mesh.findings] == [
        (Check.NOT_SCANNED, "global deadline passed before it finished")
    ]
    assert by_name["healthy-1"].status is ResultStatus.OK
    silent = by_name["silent-2"]
    assert silent.failure is not None and silent.failure.kind.value == "timeout"
