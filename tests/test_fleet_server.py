"""The simulated fleet server: behaviours, exact chains, scale, config file, child process."""

from __future__ import annotations

import re
import resource
import ssl
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import peers
import pytest
import trio
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from peers import require_program, with_fleet

from scanner.fleet.pki import PKI, Issued, standard_chain
from scanner.fleet.server import (
    HTTP_200,
    HTTP_400,
    TARPIT_HEADER,
    Behaviour,
    Credential,
    FleetProcess,
    Site,
    TlsConfig,
    load_config,
    raise_nofile_limit,
    write_config,
)
from scanner.probe import (
    Observation,
    ProbeErrorKind,
    ProbeFailure,
    ProbeResult,
    make_client_context,
    probe_address,
)

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)
TIMEOUT = 5.0


@pytest.fixture(scope="module")
def pki() -> PKI:
    return PKI(NOW)


@pytest.fixture(scope="module")
def chain(pki: PKI) -> list[Issued]:
    """leaf, intermediate, root: enough to build any order."""
    std = standard_chain(pki, "a.test")
    return [std.leaf, std.intermediate, std.root]


def tls(address: str, *certs: Issued, port: int = 0, **options: object) -> Site:
    return Site(address, port, Behaviour.TLS, TlsConfig(Credential.of(*certs), **options))  # type: ignore[arg-type]


async def connect(address: str, port: int) -> trio.SocketStream:
    return await trio.open_tcp_stream(address, port)


# --------------------------------------------------------------------------- sites


def test_tls_site_needs_a_tls_config() -> None:
    with pytest.raises(ValueError, match="needs a TlsConfig"):
        Site("127.0.0.1", 8443, Behaviour.TLS)


def test_served_chain_is_the_configured_list_in_order(chain: list[Issued], pki: PKI) -> None:
    leaf, inter, root = chain
    unrelated = pki.root("Unrelated")
    orders = [[leaf], [leaf, inter], [leaf, root, inter], [leaf, unrelated, inter, root]]
    sites = [tls("127.0.0.1", *order) for order in orders]
    ctx = make_client_context()

    async def body(bound: list[tuple[str, int]]) -> list[ProbeResult]:
        return [await probe_address(a, p, "a.test", ctx, timeout=TIMEOUT) for a, p in bound]

    results = with_fleet(sites, body)
    served = [r.served if isinstance(r, Observation) else r for r in results]
    assert served == [tuple(c.der for c in order) for order in orders]


@pytest.mark.peers
def test_openssl_s_client_sees_the_configured_order(chain: list[Issued], pki: PKI) -> None:
    """A client nobody here wrote reads the same chain, in the same order."""
    openssl = require_program("openssl")
    leaf, inter, root = chain
    order = [leaf, pki.root("Unrelated"), root, inter]

    async def body(bound: list[tuple[str, int]]) -> str:
        address, port = bound[0]
        command = [openssl, "s_client", "-connect", f"{address}:{port}"]
        command += ["-servername", "a.test", "-showcerts"]
        done = await trio.to_thread.run_sync(
            lambda: subprocess.run(command, input=b"", capture_output=True, timeout=20, check=False)
        )
        return done.stdout.decode()

    output = with_fleet([tls("127.0.0.1", *order)], body)
    blocks = re.findall(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----\n", output, re.S)
    shown = [x509.load_pem_x509_certificate(b.encode()) for b in blocks]
    assert [c.public_bytes(serialization.Encoding.DER) for c in shown] == [c.der for c in order]


def test_hundreds_of_listeners_on_many_loopback_addresses(chain: list[Issued]) -> None:
    leaf, inter, _ = chain
    addresses = [f"127.0.{2 + i // 200}.{1 + i % 200}" for i in range(300)]
    addresses += [f"127.0.10.{i}" for i in range(1, 21)]
    config = TlsConfig(Credential.of(leaf, inter))
    sites = [Site(address, 0, Behaviour.TLS, config) for address in addresses]
    ctx = make_client_context()
    sample = [*range(0, len(sites), 16), len(sites) - 1]

    async def body(bound: list[tuple[str, int]]) -> tuple[list[tuple[str, int]], list[object]]:
        results: list[object] = [None] * len(sample)

        async def one(slot: int, index: int) -> None:
            address, port = bound[index]
            results[slot] = await probe_address(address, port, "a.test", ctx, timeout=TIMEOUT)

        async with trio.open_nursery() as nursery:
            for slot, index in enumerate(sample):
                nursery.start_soon(one, slot, index)
        return bound, results

    bound, results = with_fleet(sites, body)
    assert [address for address, _ in bound] == addresses
    assert len(set(bound)) == len(bound)
    for result in results:
        assert isinstance(result, Observation), result
        assert result.served == (leaf.der, inter.der)
    assert [r.address for r in results if isinstance(r, Observation)] == [
        addresses[i] for i in sample
    ]


def test_raise_nofile_limit_reaches_the_hard_limit() -> None:
    soft = raise_nofile_limit()
    assert soft == resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    assert hard in (soft, resource.RLIM_INFINITY)


# --------------------------------------------------------------------------- behaviours


def test_broken_behaviours_on_the_wire() -> None:
    """What each broken behaviour puts on the wire, read with a raw TCP client."""
    kinds = [Behaviour.HTTP, Behaviour.TARPIT, Behaviour.CLOSE, Behaviour.SILENT]
    sites = [Site("127.0.0.1", 0, kind) for kind in kinds]

    async def read_all(address: str, port: int, send: bytes, limit: int) -> bytes:
        stream = await connect(address, port)
        received = b""
        with trio.move_on_after(0.5):
            if send:
                await stream.send_all(send)
            for _ in range(16):
                chunk = await stream.receive_some()
                received += chunk
                if not chunk or len(received) >= limit:
                    break
        await stream.aclose()
        return received

    async def body(bound: list[tuple[str, int]]) -> list[bytes]:
        http, tarpit, close, silent = bound
        return [
            await read_all(*http, b"\x16\x03\x01\x00\x05hello", 1000),
            await read_all(*tarpit, b"", len(TARPIT_HEADER)),
            await read_all(*close, b"", 1000),
            await read_all(*silent, b"\x16\x03\x01\x00\x05hello", 1000),
        ]

    http, tarpit, close, silent = with_fleet(sites, body)
    assert http == HTTP_400
    assert tarpit == TARPIT_HEADER
    assert close == b""  # EOF without a byte
    assert silent == b""  # nothing within the wait


def test_reset_behaviour_resets() -> None:
    async def body(bound: list[tuple[str, int]]) -> BaseException | bytes:
        stream = await connect(*bound[0])
        try:
            await stream.send_all(b"\x16\x03\x01\x00\x05hello")
            return await stream.receive_some()
        except trio.BrokenResourceError as exc:
            return exc.__cause__ or exc
        finally:
            await stream.aclose()

    outcome = with_fleet([Site("127.0.0.1", 0, Behaviour.RESET)], body)
    assert isinstance(outcome, ConnectionResetError), outcome


def test_tls_site_answers_a_request_after_the_handshake(chain: list[Issued]) -> None:
    # A plain stdlib client: this reads an HTTP answer over TLS, which the probe never does.
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE

    async def body(bound: list[tuple[str, int]]) -> bytes:
        stream = trio.SSLStream(await connect(*bound[0]), ctx, server_hostname="a.test")
        await stream.send_all(b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n")
        response = b""
        for _ in range(8):
            chunk = await stream.receive_some()
            response += chunk
            if not chunk or len(response) >= len(HTTP_200):
                break
        await trio.aclose_forcefully(stream)
        return response

    assert with_fleet([tls("127.0.0.1", chain[0])], body) == HTTP_200


def test_listeners_survive_misbehaving_clients(chain: list[Issued]) -> None:
    leaf, inter, _ = chain
    sites = [tls("127.0.0.1", leaf, inter), Site("127.0.0.1", 0, Behaviour.HTTP)]
    ctx = make_client_context()

    async def abuse(address: str, port: int) -> None:
        for payload in (b"", b"garbage" * 100, b"\x16\x03\x01\x02\x00\x01"):
            stream = await connect(address, port)
            if payload:
                await stream.send_all(payload)
            await trio.aclose_forcefully(stream)
        # a client that gives up in the middle of the handshake
        await probe_address(address, port, "a.test", ctx, timeout=0.001)

    async def body(bound: list[tuple[str, int]]) -> list[ProbeResult]:
        for address, port in bound:
            await abuse(address, port)
        return [await probe_address(a, p, "a.test", ctx, timeout=TIMEOUT) for a, p in bound]

    good, http = with_fleet(sites, body)
    assert isinstance(good, Observation) and good.served == (leaf.der, inter.der)
    assert isinstance(http, ProbeFailure) and http.kind is ProbeErrorKind.NOT_TLS


# --------------------------------------------------------------------------- config and process


@pytest.fixture(scope="module")
def other(pki: PKI) -> list[Issued]:
    std = standard_chain(pki, "b.test", prefix="B")
    return [std.leaf, std.intermediate]


def _sample_sites(chain: list[Issued], other: list[Issued]) -> list[Site]:
    leaf, inter, root = chain
    config = TlsConfig(
        Credential.of(leaf, inter),
        sni=(("b.test", Credential.of(*other)),),
        sni_strict=True,
        alpn=("h2", "http/1.1"),
    )
    return [
        Site("127.0.0.3", 0, Behaviour.TLS, config),
        tls("127.0.0.3", leaf, root, inter, max_version=ssl.TLSVersion.TLSv1_2),
        Site("127.0.0.3", 0, Behaviour.HTTP),
    ]


def test_config_round_trip(chain: list[Issued], other: list[Issued], tmp_path: Path) -> None:
    sites = _sample_sites(chain, other)
    assert load_config(write_config(sites, tmp_path)) == sites


def test_fleet_in_a_child_process(chain: list[Issued], other: list[Issued], tmp_path: Path) -> None:
    leaf, inter, root = chain
    sites = _sample_sites(chain, other)
    ctx = make_client_context()

    async def scan(listening: list[tuple[str, int]]) -> list[ProbeResult]:
        with trio.fail_after(30):
            names = ["b.test", "a.test", "a.test"]
            return [
                await probe_address(a, p, n, ctx, timeout=TIMEOUT)
                for (a, p), n in zip(listening, names, strict=True)
            ]

    with FleetProcess(write_config(sites, tmp_path)) as fleet:
        listening = fleet.listening
        results = trio.run(scan, listening)
    assert [address for address, _ in listening] == ["127.0.0.3"] * 3
    sni_site, tls12_site, http_site = results
    assert isinstance(sni_site, Observation)
    assert sni_site.served == tuple(c.der for c in other)
    assert sni_site.alpn == "h2"
    assert isinstance(tls12_site, Observation) and tls12_site.tls_version == "TLSv1.2"
    assert tls12_site.served == (leaf.der, root.der, inter.der)
    assert isinstance(http_site, ProbeFailure) and http_site.kind is ProbeErrorKind.NOT_TLS
    after = trio.run(lambda: probe_address(*listening[0], None, ctx, timeout=TIMEOUT))
    assert isinstance(after, ProbeFailure) and after.kind is ProbeErrorKind.REFUSED


# --------------------------------------------------------------------------- test peers helper


def test_missing_peer_skips_locally(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(peers.REQUIRE_PEERS_ENV, raising=False)
    with pytest.raises(pytest.skip.Exception, match="not installed"):
        require_program("pinaudit-no-such-program")


def test_missing_peer_fails_when_required(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(peers.REQUIRE_PEERS_ENV, "1")
    with pytest.raises(pytest.fail.Exception, match="PINAUDIT_REQUIRE_PEERS=1"):
        require_program("pinaudit-no-such-program")
