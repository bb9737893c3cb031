"""Probing through real proxies from Debian's packages: tinyproxy (HTTP
CONNECT, with and without Basic authentication) and Dante (SOCKS5, names
resolved here or by the proxy). A proxy that will not connect is the
``proxy_refused`` reason, naming the proxy without its credentials."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest
import trio
from peers import free_port, with_fleet
from protocol_peers import dante, postfix, server_directory, tinyproxy, write_tls

from scanner.fleet.pki import PKI, StandardChain, standard_chain
from scanner.fleet.server import Behaviour, Credential, Site, TlsConfig
from scanner.probe import (
    Observation,
    Phase,
    ProbeErrorKind,
    ProbeFailure,
    ProbeResult,
    make_client_context,
    probe,
)
from scanner.proxy import Proxy, ProxyScheme, parse_proxy, proxy_for

NOW = datetime.now(timezone.utc)
TIMEOUT = 10.0
TLS_HOST = "127.90.20.1"  # the TLS site the proxies reach


@pytest.fixture(scope="module")
def chain() -> StandardChain:
    return standard_chain(PKI(NOW), "a.test")


@pytest.fixture
def directory() -> Iterator[Path]:
    with server_directory("proxy") as path:
        yield path


def tls_site(chain: StandardChain, address: str = TLS_HOST) -> Site:
    credential = Credential.of(chain.leaf, chain.intermediate)
    return Site(address, free_port(address), Behaviour.TLS, TlsConfig(credential))


def through(
    site: Site, target: str, proxy: str, **options: object
) -> Callable[[list[tuple[str, int]]], Awaitable[list[ProbeResult]]]:
    ctx = make_client_context()

    async def body(bound: list[tuple[str, int]]) -> list[ProbeResult]:
        port = bound[0][1]
        return await probe(target, port, "a.test", ctx, timeout=TIMEOUT, proxy=proxy, **options)  # type: ignore[arg-type]

    return body


def observed(results: list[ProbeResult]) -> Observation:
    (result,) = results
    assert isinstance(result, Observation), result
    return result


def failed(results: list[ProbeResult]) -> ProbeFailure:
    (result,) = results
    assert isinstance(result, ProbeFailure), result
    return result


# --------------------------------------------------------------------------- HTTP CONNECT


@pytest.mark.peers
def test_tinyproxy_connect(chain: StandardChain, directory: Path) -> None:
    site = tls_site(chain)
    with tinyproxy(directory, "127.90.8.1", connect_ports=(site.port,), auth=None) as port:
        proxy = f"http://127.90.8.1:{port}"
        result = observed(with_fleet([site], through(site, TLS_HOST, proxy)))
    assert result.served == (chain.leaf.der, chain.intermediate.der)
    assert (result.proxy, result.address) == (proxy, TLS_HOST)


@pytest.mark.peers
def test_tinyproxy_refuses_a_port_it_does_not_allow(chain: StandardChain, directory: Path) -> None:
    site = tls_site(chain)
    with tinyproxy(directory, "127.90.8.2", connect_ports=(443,), auth=None) as port:
        proxy = f"http://127.90.8.2:{port}"
        failure = failed(with_fleet([site], through(site, TLS_HOST, proxy)))
    assert (failure.kind, failure.phase) == (ProbeErrorKind.PROXY_REFUSED, Phase.PROXY)
    assert failure.detail == (
        f"proxy {proxy} refused CONNECT {TLS_HOST}:{site.port}: 'HTTP/1.1 403 Access violation'"
    )


@pytest.mark.peers
def test_tinyproxy_basic_auth(chain: StandardChain, directory: Path) -> None:
    site = tls_site(chain)
    auth = ("scanner", "s3cret-2026")
    with tinyproxy(directory, "127.90.8.3", connect_ports=(site.port,), auth=auth) as port:
        bare = f"http://127.90.8.3:{port}"
        with_password = f"http://scanner:s3cret%2D2026@127.90.8.3:{port}"  # %2D is "-"
        denied = failed(with_fleet([site], through(site, TLS_HOST, bare)))
        allowed = observed(with_fleet([site], through(site, TLS_HOST, with_password)))
    assert denied.kind is ProbeErrorKind.PROXY_REFUSED
    assert denied.detail == (
        f"proxy {bare} refused CONNECT {TLS_HOST}:{site.port}: "
        "'HTTP/1.0 407 Proxy Authentication Required'"
    )
    assert allowed.served == (chain.leaf.der, chain.intermediate.der)
    assert allowed.proxy == bare  # the credentials never reach a report
    assert "s3cret" not in repr(parse_proxy(with_password))


@pytest.mark.peers
def test_tinyproxy_then_starttls_smtp(chain: StandardChain, directory: Path) -> None:
    """Through the proxy, then SMTP's opening, then TLS: postfix's greeting may
    arrive in the same read as the proxy's answer and must not be lost."""
    tls_dir = directory / "tls"
    tls_dir.mkdir()
    tls = write_tls(tls_dir, chain.leaf, chain.intermediate)
    (directory / "postfix").mkdir()
    (directory / "tinyproxy").mkdir()
    with (
        postfix(directory / "postfix", "127.90.8.4", tls) as smtp_port,
        tinyproxy(
            directory / "tinyproxy", "127.90.8.5", connect_ports=(smtp_port,), auth=None
        ) as port,
    ):
        ctx = make_client_context()
        results = trio.run(
            lambda: probe(
                "127.90.8.4",
                smtp_port,
                "a.test",
                ctx,
                timeout=TIMEOUT,
                proxy=f"http://127.90.8.5:{port}",
                starttls="smtp",
            )
        )
    result = observed(results)
    assert result.served == (chain.leaf.der, chain.intermediate.der)
    assert (result.starttls, result.proxy) == ("smtp", f"http://127.90.8.5:{port}")


def test_proxy_that_is_not_listening_is_refused_and_named() -> None:
    port = free_port("127.90.8.6")
    ctx = make_client_context()
    proxy = f"http://127.90.8.6:{port}"
    failure = failed(
        trio.run(lambda: probe("a.test", 443, "a.test", ctx, timeout=TIMEOUT, proxy=proxy))
    )
    assert (failure.kind, failure.phase) == (ProbeErrorKind.REFUSED, Phase.CONNECT)
    assert failure.detail == (
        f"proxy {proxy}: [Errno 111] Error connecting to ('127.90.8.6', {port}): Connection refused"
    )


# --------------------------------------------------------------------------- SOCKS5


@pytest.mark.peers
def test_dante_socks5_with_local_resolution(chain: StandardChain, directory: Path) -> None:
    site = tls_site(chain)
    with dante(directory, "127.90.9.1", blocked_port=9) as port:
        proxy = f"socks5://127.90.9.1:{port}"
        result = observed(with_fleet([site], through(site, TLS_HOST, proxy)))
    assert result.served == (chain.leaf.der, chain.intermediate.der)
    assert result.proxy == proxy


@pytest.mark.peers
def test_dante_socks5h_resolves_the_name_at_the_proxy(
    chain: StandardChain, directory: Path
) -> None:
    site = tls_site(chain, "127.0.0.1")
    with dante(directory, "127.90.9.2", blocked_port=9) as port:
        proxy = f"socks5h://127.90.9.2:{port}"
        result = observed(with_fleet([site], through(site, "localhost", proxy)))
    assert result.served == (chain.leaf.der, chain.intermediate.der)
    assert result.address == "localhost"  # the proxy resolved it: no address here


@pytest.mark.peers
def test_dante_refuses_by_its_rules(chain: StandardChain, directory: Path) -> None:
    site = tls_site(chain)
    with dante(directory, "127.90.9.3", blocked_port=site.port) as port:
        proxy = f"socks5://127.90.9.3:{port}"
        failure = failed(with_fleet([site], through(site, TLS_HOST, proxy)))
    assert (failure.kind, failure.phase) == (ProbeErrorKind.PROXY_REFUSED, Phase.PROXY)
    assert failure.detail == (
        f"proxy {proxy} refused CONNECT {TLS_HOST}:{site.port}: connection not allowed by ruleset"
    )


# --------------------------------------------------------------------------- URLs, environment


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://proxy.corp:3128", Proxy(ProxyScheme.HTTP, "proxy.corp", 3128)),
        ("HTTP://Proxy.Corp:3128/", Proxy(ProxyScheme.HTTP, "proxy.corp", 3128)),
        ("socks5://10.0.0.1", Proxy(ProxyScheme.SOCKS5, "10.0.0.1", 1080)),
        ("socks5h://u:p%40ss@[2001:db8::1]:1080", Proxy(ProxyScheme.SOCKS5H, "2001:db8::1", 1080,
                                                        "u", "p@ss")),
    ],
)  # fmt: skip
def test_parse_proxy(url: str, expected: Proxy) -> None:
    parsed = parse_proxy(url)
    assert parsed == expected
    assert (parsed.username, parsed.password) == (expected.username, expected.password)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("https://proxy:443", "unsupported proxy scheme 'https://' (use http://, socks5://, "
                              "socks5h://)"),
        ("proxy:3128", "a proxy URL looks like http://host:port or socks5://host:port"),
        ("http://proxy:0", "the proxy port is not a number in 1-65535"),
        ("http://proxy:http", "the proxy port is not a number in 1-65535"),
        ("http://:3128", "a proxy URL needs a host"),
        ("http://user:secret@proxy/path", "a proxy URL has no path, query or fragment"),
    ],
)  # fmt: skip
def test_parse_proxy_errors_never_echo_the_password(url: str, message: str) -> None:
    with pytest.raises(ValueError) as raised:
        parse_proxy(url)
    assert str(raised.value) == message
    assert "secret" not in str(raised.value)


@pytest.mark.parametrize(
    ("environ", "host", "expected"),
    [
        ({"HTTPS_PROXY": "http://p:3128"}, "api.example.com", "http://p:3128"),
        ({"https_proxy": "http://lower:1", "HTTPS_PROXY": "http://upper:2"}, "a.test",
         "http://lower:1"),
        ({"ALL_PROXY": "socks5h://s:1080"}, "a.test", "socks5h://s:1080"),
        ({"HTTPS_PROXY": "p:3128"}, "a.test", "http://p:3128"),  # curl's default scheme
        ({"HTTPS_PROXY": "http://p:1", "NO_PROXY": "example.com"}, "api.example.com", None),
        ({"HTTPS_PROXY": "http://p:1", "NO_PROXY": ".example.com"}, "example.com", None),
        ({"HTTPS_PROXY": "http://p:1", "NO_PROXY": "example.com"}, "notexample.com",
         "http://p:1"),
        ({"HTTPS_PROXY": "http://p:1", "no_proxy": "*"}, "anything", None),
        ({"HTTPS_PROXY": "http://p:1", "NO_PROXY": "10.0.0.0/8, 192.168.1.7"}, "10.2.3.4", None),
        ({"HTTPS_PROXY": "http://p:1", "NO_PROXY": "10.0.0.0/8"}, "192.168.1.7", "http://p:1"),
        ({"HTTPS_PROXY": "http://p:1", "NO_PROXY": "::1"}, "[::1]", None),
        ({"HTTP_PROXY": "http://p:1"}, "a.test", None),  # plain HTTP's variable: not for TLS
        ({}, "a.test", None),
    ],
)  # fmt: skip
def test_proxy_from_environment_as_curl(
    environ: dict[str, str], host: str, expected: str | None
) -> None:
    """curl's rules (its libcurl-env and NO_PROXY documentation): lower case
    first, https_proxy for TLS, all_proxy as the fallback, NO_PROXY names match
    the domain and its subdomains, IP addresses and CIDR ranges match, "*" all."""
    assert proxy_for(host, environ) == expected
