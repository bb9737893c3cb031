"""The engine over real TLS on loopback: retries, deadlines, one result per
endpoint, the open-files guard, and per-address verdicts."""

from __future__ import annotations

import resource
from datetime import datetime, timezone
from pathlib import Path

import pytest
import trio

from scanner.engine import FD_RESERVE, ScanOptions, ensure_open_files, run_scan
from scanner.errors import ConfigError
from scanner.fleet.pki import PKI, standard_chain
from scanner.fleet.server import Behaviour, Credential, Site, TlsConfig, serve_sites
from scanner.model import Endpoint, Observation, Pinset, TrustKind, TrustSpec
from scanner.results import EndpointResult, ResultStatus, evaluate
from scanner.trust import TrustStores, store_from_pem

NOW = datetime.now(timezone.utc)


@pytest.fixture(scope="module")
def pki() -> PKI:
    return PKI(NOW)


def _endpoint(name: str, port: int, address: str, **kw: object) -> Endpoint:
    return Endpoint(
        name=name,
        host=address,
        port=port,
        sni="svc.example.com",
        pinset=None,
        **kw,  # type: ignore[arg-type]
    )


def test_retries_a_transient_failure_then_reports_attempts(tmp_path: Path) -> None:
    async def main() -> tuple[EndpointResult, ...]:
        async with trio.open_nursery() as nursery:
            [(address, port)] = await nursery.start(
                serve_sites, [Site("127.0.5.1", 0, Behaviour.SILENT)]
            )
            endpoint = _endpoint("silent", port, address, timeout=0.2)
            outcome = await run_scan(
                [endpoint], now=NOW, options=ScanOptions(retries=2, backoff=0.01)
            )
            nursery.cancel_scope.cancel()
        return outcome.results

    (result,) = trio.run(main)
    assert result.status is ResultStatus.ERROR
    assert result.attempts == 3
    assert [f.message for f in result.findings] == [
        "timeout (127.0.5.1) after 3 attempts: timed out during handshake"
    ]


def test_refused_is_not_retried() -> None:
    async def main() -> tuple[EndpointResult, ...]:
        endpoint = _endpoint("closed", 9, "127.0.5.2", timeout=1.0)
        outcome = await run_scan([endpoint], now=NOW, options=ScanOptions(retries=3))
        return outcome.results

    (result,) = trio.run(main)
    assert result.attempts == 1
    assert result.failure.kind.value == "refused"


def test_more_endpoints_than_workers_each_get_one_result(pki: PKI, tmp_path: Path) -> None:
    chain = standard_chain(pki, "svc.example.com")
    bundle = TrustSpec(TrustKind.BUNDLE, str(_write(tmp_path, "trust.pem", chain.root.pem)))
    config = TlsConfig(Credential.of(chain.leaf, chain.intermediate))
    sites = [Site(f"127.0.6.{n}", 0, Behaviour.TLS, config) for n in range(1, 41)]
    sites += [Site(f"127.0.6.{n}", 0, Behaviour.SILENT) for n in range(41, 46)]
    seen: list[str] = []

    async def main() -> tuple[EndpointResult, ...]:
        async with trio.open_nursery() as nursery:
            bound = await nursery.start(serve_sites, sites)
            endpoints = [
                _endpoint(f"ep{n}", port, address, timeout=0.5, trust=bundle)
                for n, (address, port) in enumerate(bound)
            ]
            outcome = await run_scan(
                endpoints,
                now=NOW,
                options=ScanOptions(concurrency=7),
                sinks=[lambda r: seen.append(r.endpoint.name)],
            )
            nursery.cancel_scope.cancel()
        return outcome.results

    results = trio.run(main)
    assert [r.endpoint.name for r in results] == [f"ep{n}" for n in range(45)]
    assert sorted(seen) == sorted(f"ep{n}" for n in range(45))  # streamed once each
    statuses = [r.status for r in results]
    assert statuses == [ResultStatus.OK] * 40 + [ResultStatus.ERROR] * 5


def _write(directory: Path, name: str, data: bytes) -> Path:
    path = directory / name
    path.write_bytes(data)
    return path


def test_open_files_guard_refuses_an_impossible_concurrency() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        pytest.skip("no hard open-files limit on this machine")
    with pytest.raises(ConfigError) as caught:
        ensure_open_files(hard)
    assert str(caught.value) == (
        f"a concurrency of {hard} needs about {hard + FD_RESERVE} open files, but the limit "
        f"is {hard} (hard limit {hard}): lower the concurrency to {hard - FD_RESERVE} "
        "or raise the limit (ulimit -n)"
    )
    assert ensure_open_files(100) >= 100 + FD_RESERVE
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_every_address_is_judged_and_differences_are_named(pki: PKI) -> None:
    """all_addresses: a partial rollout serves a new leaf key on one address."""
    chain = standard_chain(pki, "svc.example.com")
    rotated = pki.leaf("svc.example.com", chain.intermediate)
    store = store_from_pem(chain.root.pem, "test")
    endpoint = Endpoint(
        name="svc",
        host="svc.example.com",
        port=443,
        sni="svc.example.com",
        pinset=Pinset("app", (chain.leaf.pin, chain.root.pin)),
        all_addresses=True,
    )

    def observed(address: str, leaf_der: bytes) -> Observation:
        served = (leaf_der, chain.intermediate.der)
        return Observation(address, 443, served, "TLSv1.3", "TLS_AES_128_GCM_SHA256", None, 0, 0)

    result = evaluate(
        endpoint,
        [observed("192.0.2.1", chain.leaf.der), observed("192.0.2.2", rotated.der)],
        store,
        NOW,
    )
    assert result.distinct_chains == 2
    assert result.status is ResultStatus.DRIFT
    first, second = result.addresses
    assert [f.check.value for f in first.findings] == ["no_backup_pin"]
    # the second address no longer serves the pinned leaf: its pin names nothing seen there
    assert [f.check.value for f in second.findings] == ["unresolved_pin"]
    assert [(f.check.value, f.message.split(" ")[0]) for f in result.findings] == [
        ("no_backup_pin", "all"),
        ("unresolved_pin", "[192.0.2.2]"),
    ]


def test_trust_store_problems_stop_the_scan_before_any_traffic(tmp_path: Path) -> None:
    from scanner.errors import TrustStoreError

    missing = TrustSpec(TrustKind.BUNDLE, "/nonexistent/bundle.pem")
    endpoint = _endpoint("x", 443, "127.0.5.3", trust=missing)
    with pytest.raises(TrustStoreError) as caught:
        trio.run(lambda: run_scan([endpoint], now=NOW, stores=TrustStores()))
    assert str(caught.value) == (
        "/nonexistent/bundle.pem: cannot read trust bundle: No such file or directory"
    )


def test_a_client_certificate_that_cannot_be_loaded_is_that_endpoints_error(
    tmp_path: Path,
) -> None:
    """The pair is checked when the inventory is loaded, but files change under a
    long-running exporter: the TLS context failing is that endpoint's finding,
    the others are scanned (before, the error escaped the nursery: exit 70)."""
    gone = str(tmp_path / "removed.pem")
    endpoints = [
        Endpoint("mtls", "127.0.0.1", 9, None, None, timeout=1.0, client_cert=gone),
        Endpoint("plain", "127.0.0.1", 9, None, None, timeout=1.0),
    ]
    now = datetime.now(timezone.utc)
    outcome = trio.run(lambda: run_scan(endpoints, now=now))
    mtls, plain = outcome.results
    assert mtls.status is ResultStatus.ERROR
    failure = mtls.failure
    assert failure is not None and failure.kind.value == "os_error"
    assert failure.detail == (
        "cannot use client_cert/client_key: cannot read the client certificate or key: "
        "No such file or directory"
    )
    assert plain.failure is not None and plain.failure.kind.value == "refused"
