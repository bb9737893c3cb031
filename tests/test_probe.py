"""probe.py over real TLS on loopback: the simulated fleet, openssl s_server and nginx."""

from __future__ import annotations

import errno
import socket
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pytest
import trio
from OpenSSL import SSL
from peers import free_port, nginx_command, require_program, running, with_fleet

from scanner.fleet.pki import PKI, Issued, StandardChain, standard_chain
from scanner.fleet.server import Behaviour, Credential, Site, TlsConfig
from scanner.probe import (
    ClientContext,
    Observation,
    Phase,
    ProbeErrorKind,
    ProbeFailure,
    ProbeResult,
    classify,
    make_client_context,
    probe,
    probe_address,
    probe_addresses,
    resolve,
    served_chain,
)

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)
TIMEOUT = 5.0


@dataclass(frozen=True)
class Certs:
    a: StandardChain  # root → intermediate → leaf for a.test
    b: StandardChain  # another CA, for b.test
    deep_root: Issued
    tier_a: Issued  # issued by deep_root
    tier_b: Issued  # issued by tier_a
    deep_leaf: Issued  # issued by tier_b
    unrelated: Issued  # a root that has nothing to do with any chain


@pytest.fixture(scope="module")
def certs() -> Certs:
    pki = PKI(NOW)
    deep_root = pki.root("Deep Root")
    tier_a = pki.intermediate("Tier A", deep_root, path_length=1)
    tier_b = pki.intermediate("Tier B", tier_a)
    return Certs(
        a=standard_chain(pki, "a.test", prefix="A"),
        b=standard_chain(pki, "b.test", prefix="B"),
        deep_root=deep_root,
        tier_a=tier_a,
        tier_b=tier_b,
        deep_leaf=pki.leaf("deep.test", tier_b),
        unrelated=pki.root("Unrelated Root"),
    )


def tls_site(address: str, *chain: Issued, port: int = 0, **options: object) -> Site:
    config = TlsConfig(Credential.of(*chain), **options)  # type: ignore[arg-type]
    return Site(address, port, Behaviour.TLS, config)


def probe_one(site: Site, sni: str | None = "a.test", ctx: ClientContext | None = None, *,
              timeout: float = TIMEOUT) -> ProbeResult:  # fmt: skip
    client = ctx if ctx is not None else make_client_context()

    async def body(bound: list[tuple[str, int]]) -> ProbeResult:
        address, port = bound[0]
        return await probe_address(address, port, sni, client, timeout=timeout)

    return with_fleet([site], body)


def observed(result: ProbeResult | Sequence[ProbeResult]) -> Observation:
    if not isinstance(result, (Observation, ProbeFailure)):
        assert len(result) == 1, result
        result = result[0]
    assert isinstance(result, Observation), result
    return result


def failed(result: ProbeResult) -> ProbeFailure:
    assert isinstance(result, ProbeFailure), result
    return result


def client_context(*, minimum: str = "TLSv1", maximum: str | None = None) -> ClientContext:
    return make_client_context(minimum_version=minimum, maximum_version=maximum)


# --------------------------------------------------------------------------- served chains


def test_healthy_site_serves_leaf_then_intermediate(certs: Certs) -> None:
    site = tls_site("127.0.0.1", certs.a.leaf, certs.a.intermediate)
    result = observed(probe_one(site))
    assert result.served == (certs.a.leaf.der, certs.a.intermediate.der)
    assert result.address == "127.0.0.1"
    assert result.tls_version == "TLSv1.3"
    assert result.cipher == "TLS_AES_256_GCM_SHA384"
    assert result.alpn is None
    assert result.connect_seconds >= 0
    assert result.handshake_seconds >= 0


def test_misordered_chain_is_captured_in_served_order(certs: Certs) -> None:
    site = tls_site("127.0.0.1", certs.deep_leaf, certs.tier_a, certs.tier_b)
    result = observed(probe_one(site, "deep.test"))
    assert result.served == (certs.deep_leaf.der, certs.tier_a.der, certs.tier_b.der)


def test_extra_unrelated_certificate_is_kept_in_place(certs: Certs) -> None:
    site = tls_site("127.0.0.1", certs.a.leaf, certs.unrelated, certs.a.intermediate)
    result = observed(probe_one(site))
    assert result.served == (certs.a.leaf.der, certs.unrelated.der, certs.a.intermediate.der)


def test_leaf_only_site(certs: Certs) -> None:
    result = observed(probe_one(tls_site("127.0.0.1", certs.a.leaf)))
    assert result.served == (certs.a.leaf.der,)


@pytest.mark.parametrize(
    ("server_alpn", "expected"),
    [(("http/1.1",), "http/1.1"), (("h2", "http/1.1"), "h2"), (("spdy/3",), None)],
)
def test_alpn(certs: Certs, server_alpn: tuple[str, ...], expected: str | None) -> None:
    site = tls_site("127.0.0.1", certs.a.leaf, certs.a.intermediate, alpn=server_alpn)
    assert observed(probe_one(site)).alpn == expected


def test_tls12_server(certs: Certs) -> None:
    site = tls_site("127.0.0.1", certs.a.leaf, max_version=ssl.TLSVersion.TLSv1_2)
    result = observed(probe_one(site))
    assert result.tls_version == "TLSv1.2"
    assert result.cipher == "ECDHE-ECDSA-AES256-GCM-SHA384"
    assert result.served == (certs.a.leaf.der,)


def test_tls10_only_server_still_completes(certs: Certs) -> None:
    """The shared context keeps TLS 1.0 and security level 0 for old servers."""
    tls1 = ssl.TLSVersion.TLSv1
    site = tls_site("127.0.0.1", certs.a.leaf, min_version=tls1, max_version=tls1)
    result = observed(probe_one(site))
    assert result.tls_version == "TLSv1"
    assert result.served == (certs.a.leaf.der,)


def test_ipv6_listener(certs: Certs) -> None:
    site = tls_site("::1", certs.a.leaf, certs.a.intermediate)
    result = observed(probe_one(site))
    assert result.address == "::1"
    assert result.served == (certs.a.leaf.der, certs.a.intermediate.der)


# --------------------------------------------------------------------------- client certificates


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_client_certificate_is_presented(
    certs: Certs, tmp_path: Path, version: ssl.TLSVersion
) -> None:
    """An mTLS endpoint (the server demands a certificate its CA issued): with
    the client's chain and key the handshake completes and the server's chain
    is read; without them TLS 1.2 fails with the server's alert."""
    client = PKI(NOW).leaf("client.test", certs.a.intermediate, eku_server=False)
    (tmp_path / "client.pem").write_bytes(client.pem + certs.a.intermediate.pem)
    (tmp_path / "client.key").write_bytes(client.key_pem())
    site = tls_site(
        "127.0.0.1", certs.b.leaf, certs.b.intermediate,
        client_ca=certs.a.root.pem, max_version=version,
    )  # fmt: skip
    with_cert = make_client_context(
        client_cert=str(tmp_path / "client.pem"), client_key=str(tmp_path / "client.key")
    )
    result = observed(probe_one(site, "b.test", with_cert))
    assert result.served == (certs.b.leaf.der, certs.b.intermediate.der)
    if version is ssl.TLSVersion.TLSv1_2:
        failure = failed(probe_one(site, "b.test"))
        assert (failure.kind, failure.alert) == (ProbeErrorKind.TLS_ALERT, "handshake_failure")


# --------------------------------------------------------------------------- SNI


def test_sni_selects_the_chain(certs: Certs) -> None:
    default = Credential.of(certs.deep_leaf, certs.tier_b, certs.tier_a)
    config = TlsConfig(
        default,
        sni=(
            ("a.test", Credential.of(certs.a.leaf, certs.a.intermediate)),
            ("b.test", Credential.of(certs.b.leaf, certs.b.intermediate)),
        ),
    )
    site = Site("127.0.0.1", 0, Behaviour.TLS, config)
    ctx = make_client_context()

    async def body(bound: list[tuple[str, int]]) -> list[ProbeResult]:
        address, port = bound[0]
        names = ["a.test", "b.test", None, "B.TEST", "other.test"]
        return [await probe_address(address, port, n, ctx, timeout=TIMEOUT) for n in names]

    by_a, by_b, no_sni, upper_b, other = (observed(r).served for r in with_fleet([site], body))
    assert by_a == (certs.a.leaf.der, certs.a.intermediate.der)
    assert by_b == (certs.b.leaf.der, certs.b.intermediate.der)
    assert no_sni == (certs.deep_leaf.der, certs.tier_b.der, certs.tier_a.der)
    assert upper_b == by_b  # server names compare case-insensitively
    assert other == no_sni


def test_strict_sni_server_alerts_unrecognized_name(certs: Certs) -> None:
    site = tls_site("127.0.0.1", certs.a.leaf, sni_strict=True)
    failure = failed(probe_one(site, "unknown.test"))
    assert (failure.kind, failure.alert) == (ProbeErrorKind.TLS_ALERT, "unrecognized_name")
    assert failure.phase is Phase.HANDSHAKE


# --------------------------------------------------------------------------- failures


def test_closed_port_is_refused() -> None:
    port = free_port()
    results = trio.run(lambda: probe("127.0.0.1", port, None, make_client_context(), timeout=5))
    failure = failed(results[0])
    assert (failure.kind, failure.address, failure.phase) == (
        ProbeErrorKind.REFUSED,
        "127.0.0.1",
        Phase.CONNECT,
    )
    assert "refused" in failure.detail


@pytest.mark.parametrize("behaviour", [Behaviour.SILENT, Behaviour.TARPIT])
def test_unanswered_handshake_times_out(behaviour: Behaviour) -> None:
    failure = failed(probe_one(Site("127.0.0.1", 0, behaviour), timeout=0.5))
    assert failure.kind is ProbeErrorKind.TIMEOUT
    assert failure.phase is Phase.HANDSHAKE
    assert failure.detail == "timed out during handshake"


def test_full_accept_queue_times_out_in_connect() -> None:
    """A listener whose accept queue is full drops SYNs: the connect never completes."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        held = [socket.socket() for _ in range(4)]
        try:
            for sock in held:
                sock.setblocking(False)
                sock.connect_ex(("127.0.0.1", port))
            ctx = make_client_context()
            result = trio.run(lambda: probe_address("127.0.0.1", port, None, ctx, timeout=0.5))
        finally:
            for sock in held:
                sock.close()
    failure = failed(result)
    assert (failure.kind, failure.phase) == (ProbeErrorKind.TIMEOUT, Phase.CONNECT)
    assert failure.detail == "timed out during connect"


@pytest.mark.parametrize(
    ("behaviour", "kind", "reason"),
    [
        (Behaviour.RESET, ProbeErrorKind.RESET, "Connection reset by peer"),
        (Behaviour.HTTP, ProbeErrorKind.NOT_TLS, "WRONG_VERSION_NUMBER"),
        (Behaviour.CLOSE, ProbeErrorKind.CLOSED, "UNEXPECTED_EOF_WHILE_READING"),
    ],
)
def test_broken_endpoints(behaviour: Behaviour, kind: ProbeErrorKind, reason: str) -> None:
    failure = failed(probe_one(Site("127.0.0.1", 0, behaviour)))
    assert (failure.kind, failure.alert, failure.phase) == (kind, None, Phase.HANDSHAKE)
    assert reason in failure.detail


def test_unresolvable_name() -> None:
    ctx = make_client_context()
    results = trio.run(lambda: probe("nonexistent.invalid", 443, None, ctx, timeout=5))
    assert len(results) == 1
    failure = failed(results[0])
    assert (failure.kind, failure.address, failure.phase) == (ProbeErrorKind.DNS, None, Phase.DNS)


@pytest.mark.parametrize(
    ("server", "client"),
    [
        ({"min_version": ssl.TLSVersion.TLSv1_3}, {"maximum": "TLSv1.2"}),
        ({"max_version": ssl.TLSVersion.TLSv1_2}, {"minimum": "TLSv1.3"}),
    ],
    ids=["server-1.3-only", "server-1.2-max"],
)
def test_no_common_version_is_a_protocol_version_alert(
    certs: Certs, server: dict[str, ssl.TLSVersion], client: dict[str, str]
) -> None:
    site = tls_site("127.0.0.1", certs.a.leaf, **server)
    failure = failed(probe_one(site, ctx=client_context(**client)))
    assert (failure.kind, failure.alert) == (ProbeErrorKind.TLS_ALERT, "protocol_version")
    assert "TLSV1_ALERT_PROTOCOL_VERSION" in failure.detail


def test_no_shared_cipher_is_a_handshake_failure_alert(certs: Certs) -> None:
    # Anonymous DH only: the client's DEFAULT list never offers aNULL suites.
    site = tls_site(
        "127.0.0.1",
        certs.a.leaf,
        max_version=ssl.TLSVersion.TLSv1_2,
        ciphers="ADH-AES128-GCM-SHA256:@SECLEVEL=0",
    )
    failure = failed(probe_one(site))
    assert (failure.kind, failure.alert) == (ProbeErrorKind.TLS_ALERT, "handshake_failure")
    assert failure.detail == "[SSL: TLS_ALERT_HANDSHAKE_FAILURE] tls alert handshake failure"


def test_client_without_usable_versions_is_tls_version(certs: Certs) -> None:
    ctx = client_context(minimum="TLSv1.3", maximum="TLSv1.2")
    failure = failed(probe_one(tls_site("127.0.0.1", certs.a.leaf), ctx=ctx))
    assert failure.kind is ProbeErrorKind.TLS_VERSION
    assert "NO_PROTOCOLS_AVAILABLE" in failure.detail


@pytest.mark.parametrize("sni", ["", ".leading.dot"])
def test_unusable_sni_is_a_failure_value(sni: str) -> None:
    failure = failed(probe_one(Site("127.0.0.1", 0, Behaviour.HTTP), sni))
    assert (failure.kind, failure.phase) == (ProbeErrorKind.OS_ERROR, Phase.HANDSHAKE)
    assert "server_hostname cannot be an empty string" in failure.detail


def test_overlong_name_is_a_dns_failure() -> None:
    ctx = make_client_context()
    results = trio.run(lambda: probe("a" * 64 + ".test", 443, None, ctx, timeout=5))
    assert [(r.kind, r.phase) for r in map(failed, results)] == [(ProbeErrorKind.DNS, Phase.DNS)]


def test_cancellation_is_not_swallowed() -> None:
    ctx = make_client_context()

    async def body(bound: list[tuple[str, int]]) -> tuple[bool, list[ProbeResult]]:
        address, port = bound[0]
        results: list[ProbeResult] = []
        with trio.move_on_after(0.3) as scope:
            results.append(await probe_address(address, port, None, ctx, timeout=60))
        return scope.cancelled_caught, results

    cancelled, results = with_fleet([Site("127.0.0.1", 0, Behaviour.SILENT)], body)
    assert cancelled
    assert results == []


# --------------------------------------------------------------------------- addresses


def test_resolve_ip_literals_without_dns() -> None:
    assert trio.run(resolve, "127.0.0.1", 443) == ["127.0.0.1"]
    assert trio.run(resolve, "::1", 443) == ["::1"]
    assert trio.run(lambda: resolve("::1", 443, family=socket.AF_INET)) == []


def test_resolve_localhost_deduplicates() -> None:
    addresses = trio.run(resolve, "localhost", 443)
    assert "127.0.0.1" in addresses
    assert len(addresses) == len(set(addresses))


def _same_port_sites(addresses: Sequence[str], chains: Sequence[Sequence[Issued]]) -> list[Site]:
    """One TLS site per address, all on one port that is free on every address."""
    for _ in range(20):  # bounded: another process may grab the port in between
        port = free_port(addresses[0])
        if all(_is_free(address, port) for address in addresses[1:]):
            return [tls_site(a, *c, port=port) for a, c in zip(addresses, chains, strict=True)]
    pytest.fail(f"no port free on all of {addresses}")


def _is_free(address: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((address, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return False
            raise
    return True


def test_probe_addresses_keeps_order_and_sees_each_chain(certs: Certs) -> None:
    addresses = ["127.0.0.2", "::1", "127.0.10.7"]
    chains = [
        (certs.a.leaf, certs.a.intermediate),
        (certs.b.leaf, certs.b.intermediate),
        (certs.a.leaf,),
    ]
    sites = _same_port_sites(addresses, chains)
    ctx = make_client_context()

    async def body(bound: list[tuple[str, int]]) -> list[ProbeResult]:
        return await probe_addresses(addresses, bound[0][1], "a.test", ctx, timeout=TIMEOUT)

    results = [observed(r) for r in with_fleet(sites, body)]
    assert [r.address for r in results] == addresses
    assert [r.served for r in results] == [tuple(i.der for i in c) for c in chains]


def test_all_addresses_of_localhost(certs: Certs) -> None:
    addresses = trio.run(resolve, "localhost", 443)
    if len(addresses) < 2:
        pytest.skip(f"localhost resolves to {addresses} only on this machine (no ::1 entry)")
    chains = [(certs.a.leaf, certs.a.intermediate)] * len(addresses)
    sites = _same_port_sites(addresses, chains)
    ctx = make_client_context()

    async def body(bound: list[tuple[str, int]]) -> list[ProbeResult]:
        port = bound[0][1]
        return await probe("localhost", port, "a.test", ctx, timeout=TIMEOUT, all_addresses=True)

    results = [observed(r) for r in with_fleet(sites, body)]
    assert [r.address for r in results] == addresses
    assert {r.served for r in results} == {(certs.a.leaf.der, certs.a.intermediate.der)}


def test_first_address_only_by_default(certs: Certs) -> None:
    site = tls_site("127.0.0.1", certs.a.leaf)
    ctx = make_client_context()

    async def body(bound: list[tuple[str, int]]) -> list[ProbeResult]:
        return await probe("127.0.0.1", bound[0][1], None, ctx, timeout=TIMEOUT)

    assert observed(with_fleet([site], body)).served == (certs.a.leaf.der,)


# --------------------------------------------------------------------------- served_chain


@pytest.mark.peers
def test_served_chain_reads_der_in_served_order(certs: Certs, tmp_path: Path) -> None:
    """OpenSSL's peer chain on a client is the Certificate message as received:
    a misordered chain stays misordered, each certificate byte-identical."""
    chain = [certs.deep_leaf, certs.tier_a, certs.tier_b]
    port = free_port()
    with running(_s_server(tmp_path, port, chain=chain), host="127.0.0.1", port=port):
        result = observed(_probe_port(port, "deep.test"))
    assert result.served == (certs.deep_leaf.der, certs.tier_a.der, certs.tier_b.der)
    assert all(type(der) is bytes for der in result.served)


def test_served_chain_of_an_unstarted_connection_is_empty() -> None:
    conn = SSL.Connection(make_client_context().openssl_context(scts=False), None)
    assert served_chain(conn) == ()


def test_client_context_settings() -> None:
    """Nothing verified, no CA store loaded, TLS 1.0 and security level 0 allowed."""
    ctx = make_client_context()
    plain = ctx.openssl_context(scts=False)
    assert plain.get_verify_mode() == SSL.VERIFY_NONE
    assert ctx.minimum_version == "TLSv1"
    assert ctx.openssl_context(scts=True) is ctx.openssl_context(scts=True)
    assert ctx.openssl_context(scts=True) is not plain
    with pytest.raises(ValueError, match="unknown TLS version 'TLSv2'"):
        make_client_context(minimum_version="TLSv2")


# --------------------------------------------------------------------------- classify

_ALERTS = [
    ("tls alert handshake failure", "handshake_failure"),  # OpenSSL 4 spelling
    ("sslv3 alert handshake failure", "handshake_failure"),  # before OpenSSL 4
    ("tlsv1 alert protocol version", "protocol_version"),
    ("tlsv1 unrecognized name", "unrecognized_name"),
    ("tlsv13 alert certificate required", "certificate_required"),
    ("tlsv1 alert internal error", "internal_error"),
    ("tlsv1 alert no application protocol", "no_application_protocol"),
]


def _ssl_error(reason: str, library: str = "SSL routines") -> SSL.Error:
    """A pyOpenSSL error as it raises them: a list of (library, function, reason)."""
    return SSL.Error([(library, "", reason)])


@pytest.mark.parametrize(("reason", "alert"), _ALERTS)
def test_classify_alerts(reason: str, alert: str) -> None:
    failure = classify(_ssl_error(reason), address="192.0.2.1", phase=Phase.HANDSHAKE)
    assert (failure.kind, failure.alert, failure.address) == (
        ProbeErrorKind.TLS_ALERT,
        alert,
        "192.0.2.1",
    )
    mnemonic = reason.upper().replace(" ", "_")
    assert failure.detail == f"[SSL: {mnemonic}] {reason}"


def _broken(cause: BaseException | None) -> trio.BrokenResourceError:
    exc = trio.BrokenResourceError()
    exc.__cause__ = cause
    return exc


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (socket.gaierror(socket.EAI_NONAME, "Name or service not known"), ProbeErrorKind.DNS),
        (UnicodeError("label too long"), ProbeErrorKind.DNS),
        (ConnectionRefusedError(errno.ECONNREFUSED, "refused"), ProbeErrorKind.REFUSED),
        (_broken(ConnectionResetError(errno.ECONNRESET, "reset")), ProbeErrorKind.RESET),
        (_broken(BrokenPipeError(errno.EPIPE, "pipe")), ProbeErrorKind.RESET),
        (OSError(errno.ENETUNREACH, "Network is unreachable"), ProbeErrorKind.UNREACHABLE),
        (OSError(errno.EHOSTUNREACH, "No route to host"), ProbeErrorKind.UNREACHABLE),
        (OSError(errno.EADDRNOTAVAIL, "Cannot assign"), ProbeErrorKind.OS_ERROR),
        (TimeoutError(errno.ETIMEDOUT, "Connection timed out"), ProbeErrorKind.TIMEOUT),
        (trio.TooSlowError(), ProbeErrorKind.TIMEOUT),
        (SSL.SysCallError(-1, "Unexpected EOF"), ProbeErrorKind.CLOSED),
        (SSL.SysCallError(errno.ECONNRESET, "ECONNRESET"), ProbeErrorKind.RESET),
        (SSL.ZeroReturnError(), ProbeErrorKind.CLOSED),
        (_ssl_error("unexpected eof while reading"), ProbeErrorKind.CLOSED),
        (_broken(None), ProbeErrorKind.CLOSED),
        (_ssl_error("wrong version number"), ProbeErrorKind.NOT_TLS),
        (_ssl_error("packet length too long"), ProbeErrorKind.NOT_TLS),
        (_ssl_error("unsupported protocol"), ProbeErrorKind.TLS_VERSION),
        (_ssl_error("no protocols available"), ProbeErrorKind.TLS_VERSION),
        (_ssl_error("bad ecpoint"), ProbeErrorKind.PROTOCOL_ERROR),
        (_ssl_error("ASN1 lib"), ProbeErrorKind.PROTOCOL_ERROR),
        (SSL.Error([]), ProbeErrorKind.PROTOCOL_ERROR),
        (OverflowError("port must be 0-65535"), ProbeErrorKind.OS_ERROR),
    ],
)
def test_classify_table(exc: Exception, kind: ProbeErrorKind) -> None:
    failure = classify(exc, phase=Phase.HANDSHAKE)
    assert (failure.kind, failure.alert, failure.phase) == (kind, None, Phase.HANDSHAKE)
    assert failure.detail


def test_classify_timeout_names_the_phase() -> None:
    assert classify(trio.TooSlowError(), phase=Phase.CONNECT).detail == "timed out during connect"


def test_classify_never_swallows_cancellation() -> None:
    with pytest.raises(KeyboardInterrupt):
        classify(KeyboardInterrupt())


# --------------------------------------------------------------------------- real servers


def _write_chain(tmp_path: Path, leaf: Issued, *rest: Issued) -> tuple[Path, Path, Path]:
    """leaf.pem, chain.pem (the rest, in order), key.pem."""
    leaf_file, chain_file, key_file = (tmp_path / n for n in ("leaf.pem", "chain.pem", "key.pem"))
    leaf_file.write_bytes(leaf.pem)
    chain_file.write_bytes(b"".join(c.pem for c in rest))
    key_file.write_bytes(leaf.key_pem())
    return leaf_file, chain_file, key_file


def _probe_port(port: int, sni: str | None, ctx: ClientContext | None = None) -> list[ProbeResult]:
    client = ctx if ctx is not None else make_client_context()
    return trio.run(lambda: probe("127.0.0.1", port, sni, client, timeout=TIMEOUT))


def _s_server(tmp_path: Path, port: int, *args: str, chain: Sequence[Issued]) -> list[str]:
    openssl = require_program("openssl")
    leaf_file, chain_file, key_file = _write_chain(tmp_path, *chain)
    command = [openssl, "s_server", "-quiet", "-www", "-accept", f"127.0.0.1:{port}"]
    command += ["-cert", str(leaf_file), "-key", str(key_file)]
    if len(chain) > 1:
        command += ["-cert_chain", str(chain_file)]
    return [*command, *args]


@pytest.mark.peers
@pytest.mark.parametrize("order", ["standard", "misordered"])
def test_openssl_s_server_chain_is_byte_identical(certs: Certs, tmp_path: Path, order: str) -> None:
    chain = (
        [certs.a.leaf, certs.a.intermediate]
        if order == "standard"
        else [certs.deep_leaf, certs.tier_a, certs.tier_b]
    )
    port = free_port()
    with running(_s_server(tmp_path, port, chain=chain), host="127.0.0.1", port=port):
        result = observed(_probe_port(port, "a.test"))
    assert result.served == tuple(c.der for c in chain)
    assert result.tls_version == "TLSv1.3"


@pytest.mark.peers
def test_openssl_s_server_sni_switch_and_fatal_mismatch(certs: Certs, tmp_path: Path) -> None:
    """s_server answers the -servername name with -cert2 (no chain), other names with a
    fatal unrecognized_name alert."""
    port = free_port()
    command = _s_server(tmp_path, port, chain=[certs.a.leaf, certs.a.intermediate])
    (tmp_path / "b.pem").write_bytes(certs.b.leaf.pem)
    (tmp_path / "b.key").write_bytes(certs.b.leaf.key_pem())
    command += ["-servername", "b.test", "-servername_fatal"]
    command += ["-cert2", str(tmp_path / "b.pem"), "-key2", str(tmp_path / "b.key")]
    with running(command, host="127.0.0.1", port=port):
        wrong = failed(_probe_port(port, "other.test")[0])
        named = observed(_probe_port(port, "b.test"))
        no_sni = observed(_probe_port(port, None))
    assert (wrong.kind, wrong.alert) == (ProbeErrorKind.TLS_ALERT, "unrecognized_name")
    assert "TLSV1_UNRECOGNIZED_NAME" in wrong.detail
    assert named.served == (certs.b.leaf.der,)
    assert no_sni.served == (certs.a.leaf.der, certs.a.intermediate.der)


@pytest.mark.peers
def test_openssl_s_server_tls13_only_against_tls12_client(certs: Certs, tmp_path: Path) -> None:
    port = free_port()
    command = _s_server(tmp_path, port, "-tls1_3", chain=[certs.a.leaf])
    ctx = client_context(maximum="TLSv1.2")
    with running(command, host="127.0.0.1", port=port):
        failure = failed(_probe_port(port, "a.test", ctx)[0])
    assert (failure.kind, failure.alert) == (ProbeErrorKind.TLS_ALERT, "protocol_version")


@pytest.mark.peers
@pytest.mark.parametrize(("order", "protocol"), [("standard", "TLSv1.3"), ("extra", "TLSv1.2")])
def test_nginx_fullchain_is_byte_identical(
    certs: Certs, tmp_path: Path, order: str, protocol: str
) -> None:
    chain = [certs.a.leaf, certs.a.intermediate]
    if order == "extra":
        chain = [certs.a.leaf, certs.unrelated, certs.a.intermediate]
    (tmp_path / "fullchain.pem").write_bytes(b"".join(c.pem for c in chain))
    (tmp_path / "key.pem").write_bytes(certs.a.leaf.key_pem())
    port = free_port()
    command = nginx_command(
        tmp_path,
        port=port,
        chain=tmp_path / "fullchain.pem",
        key=tmp_path / "key.pem",
        name="a.test",
        protocols=protocol,
    )
    with running(command, host="127.0.0.1", port=port):
        result = observed(_probe_port(port, "a.test"))
    assert result.served == tuple(c.der for c in chain)
    assert result.tls_version == protocol
    assert result.alpn == "http/1.1"
