"""Every scenario and fault of the simulated fleet, judged with the cache of
chain analyses and the incremental second look, gets the verdict a cache-less
reference run gives, field by field (issue 11: all verdicts unchanged).

The fleet (scanner/fleet: SCENARIOS + FAULT_SCENARIOS + PATH_SCENARIOS, each
twice) is served over loopback by the fleet's server process and scanned
in-process by the engine twice per order: once as `scan` runs
(`ScanOptions()`: chain analyses cached per distinct chain, only endpoints
whose scan-wide answers changed judged again at the end) and once the
reference way (`ScanOptions(reference=True)`: nothing cached, every endpoint
judged again from scratch with everything the scan saw). Every field of
every endpoint's JSON report entry must be equal, and so must the result
objects (findings, chain reports, rotation readiness, client verdicts), but
for the handshake's measured durations.

With one endpoint at a time and the endpoints that wait for knowledge placed
first, the incremental run must actually judge some endpoints again (the
test would prove nothing if the second look never ran): `nointermediate`
needs the intermediate the others send, and the `healthy` endpoints also pin
"Fleet Issuing CA B" (as an app that pins both issuers of its company
would), which only `backup` and `extracert` send, later.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import trio
from cryptography import x509

from scanner.engine import ScanOptions, ScanOutcome, run_scan
from scanner.exporters.jsonreport import endpoint_entry
from scanner.fleet.scenarios import FAULT_SCENARIOS, PATH_SCENARIOS, SCENARIOS, Fleet, build_fleet
from scanner.fleet.server import FleetProcess, write_config
from scanner.inventory import load_inventory
from scanner.model import Endpoint, Observation, Pin
from scanner.pins import pin_of_certificate
from scanner.results import AddressResult, EndpointResult
from scanner.trust import TrustStores, split_pem

NOW = datetime.now(timezone.utc)
# Endpoints that depend on what others serve come first, so that with one
# endpoint at a time their first verdict is judged before that knowledge exists.
FIRST = ("nointermediate", "healthy", "rotated", "pinsetexpired", "leafpin")
NAMES = [
    *FIRST,
    *(s.name for s in (*SCENARIOS, *FAULT_SCENARIOS, *PATH_SCENARIOS) if s.name not in FIRST),
]
COPIES = 2


@dataclass(frozen=True)
class Served:
    fleet: Fleet
    endpoints: tuple[Endpoint, ...]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    directory: Path = tmp_path_factory.mktemp("incremental")
    fleet = build_fleet(NOW, COPIES * len(NAMES), scenarios=NAMES, base=8, timeout=1.5)
    with FleetProcess(write_config(fleet.sites, directory / "sites")) as process:
        inventory = load_inventory(fleet.write(directory, process.listening))
        issuer_b = _issuer_pin(fleet, "backup")
        endpoints = tuple(
            _also_pinning(e, issuer_b) if e.name.startswith("healthy-") else e
            for e in inventory.endpoints
        )
        yield Served(fleet, endpoints)


def _issuer_pin(fleet: Fleet, scenario: str) -> Pin:
    """The pin of the issuer a scenario's endpoints send (the second certificate)."""
    site = next(e.site for e in fleet.endpoints if e.scenario.name == scenario and e.site)
    assert site.tls is not None
    blocks = [b for b in split_pem(site.tls.credential.chain_pem) if isinstance(b, bytes)]
    return pin_of_certificate(x509.load_der_x509_certificate(blocks[1]))


def _also_pinning(endpoint: Endpoint, pin: Pin) -> Endpoint:
    assert endpoint.pinset is not None
    return replace(endpoint, pinset=replace(endpoint.pinset, pins=(*endpoint.pinset.pins, pin)))


def scan(endpoints: Sequence[Endpoint], options: ScanOptions) -> ScanOutcome:
    return trio.run(lambda: run_scan(endpoints, now=NOW, options=options, stores=TrustStores()))


def _untimed(result: EndpointResult) -> EndpointResult:
    """The result without the durations the handshake measured."""

    def address(a: AddressResult) -> AddressResult:
        if a.observation is None:
            return a
        observation: Observation = replace(a.observation, connect_seconds=0, handshake_seconds=0)
        return replace(a, observation=observation)

    return replace(result, addresses=tuple(address(a) for a in result.addresses))


def _entry(result: EndpointResult) -> dict[str, Any]:
    entry = endpoint_entry(result, NOW)
    if entry["tls"] is not None:
        entry["tls"].pop("handshake_seconds")
    return entry


def differences(ours: EndpointResult, reference: EndpointResult) -> list[str]:
    name = ours.endpoint.name
    out = []
    a, b = _entry(ours), _entry(reference)
    for key in sorted(set(a) | set(b)):
        if a.get(key) != b.get(key):
            out.append(f"{name}: report field {key!r}: {a.get(key)!r} != {b.get(key)!r}")
    x, y = _untimed(ours), _untimed(reference)
    for f in fields(EndpointResult):
        if getattr(x, f.name) != getattr(y, f.name):
            out.append(f"{name}: result field {f.name!r} differs")
    return out


@pytest.mark.parametrize("concurrency", [1, 40])
def test_cached_and_incremental_verdicts_are_the_reference_verdicts(
    served: Served, concurrency: int
) -> None:
    ours = scan(served.endpoints, ScanOptions(concurrency=concurrency))
    reference = scan(served.endpoints, ScanOptions(concurrency=concurrency, reference=True))
    assert len(ours.results) == len(reference.results) == COPIES * len(NAMES)
    problems = [
        problem
        for mine, theirs in zip(ours.results, reference.results, strict=True)
        for problem in differences(mine, theirs)
    ]
    assert problems == []
    assert reference.rejudged == sum(1 for r in reference.results if r.attempts)
    if concurrency == 1:
        # the endpoints placed first waited for knowledge served later
        assert 0 < ours.rejudged < reference.rejudged


def test_the_fleet_covers_every_scenario(served: Served) -> None:
    scenarios = {e.scenario.name for e in served.fleet.endpoints}
    assert scenarios == {s.name for s in (*SCENARIOS, *FAULT_SCENARIOS, *PATH_SCENARIOS)}
