"""A client's failure as the client shows it, through the scan's own path
(``assess_clients``): OkHttp's exception message on Android and on a JVM,
TrustKit-Android's message, the TrustKit and HPKP report bodies, and which
client gets which. Written for what mutation testing (issue 19,
docs/mutation.md) showed nothing asserted; the formats themselves are
proved against the real OkHttp in ``test_okhttp_oracle.py``."""

from __future__ import annotations

import base64
import plistlib
from dataclasses import dataclass, replace
from datetime import datetime, timezone

import pytest

from scanner.chain import CertificateCache, analyze_chain
from scanner.clients import assess_clients
from scanner.clients.failures import (
    failure_formats,
    hpkp_report,
    okhttp_pinned,
    trustkit_report,
)
from scanner.clients.judge import jvm_chain
from scanner.fleet.pki import PKI, Issued
from scanner.importers.android import parse_trustkit_android
from scanner.importers.apple import parse_trustkit_plist
from scanner.importers.hpkp import parse_hpkp_headers
from scanner.importers.okhttp import parse_okhttp_list
from scanner.model import (
    ChainReport,
    Client,
    ClientPolicy,
    ClientVerdict,
    Endpoint,
    Platform,
    Verdict,
)
from scanner.trust import TrustStore, store_from_pem

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)
HOST = "api.example.com"
ORG = "O=pinaudit test PKI"
GARBAGE = b"\x30\x03\x02\x01\x01"


@dataclass(frozen=True)
class World:
    root: Issued
    other_root: Issued
    inter: Issued
    leaf: Issued
    stranger: Issued  # a key on no path: the pin that fails
    store: TrustStore


@pytest.fixture(scope="module")
def world() -> World:
    pki = PKI(NOW)
    other = pki.root("Other Root")
    root = pki.root("Root A")
    inter = pki.intermediate("Issuing CA", root)
    return World(
        root,
        other,
        inter,
        pki.leaf(HOST, inter),
        pki.root("Stranger"),
        # the path's anchor is not the store's first certificate
        store_from_pem(other.pem + root.pem, "roots.pem"),
    )


def report_of(world: World, served: list[bytes] | None = None) -> ChainReport:
    served = served if served is not None else [world.leaf.der, world.inter.der]
    return analyze_chain(served, world.store, HOST, NOW, cache=CertificateCache())


def assess(world: World, policy: ClientPolicy, served: list[bytes] | None = None) -> ClientVerdict:
    endpoint = Endpoint(HOST, HOST, 443, HOST, None, client_policies=(policy,))
    verdicts, _ = assess_clients(endpoint, report_of(world, served), world.store, NOW)
    return verdicts[0]


def pem(issued: Issued) -> str:
    body = base64.b64encode(issued.der).decode("ascii")
    lines = "\n".join(body[i : i + 64] for i in range(0, len(body), 64))
    return f"-----BEGIN CERTIFICATE-----\n{lines}\n-----END CERTIFICATE-----\n"


def okhttp(text: str, version: int | None = None) -> ClientPolicy:
    return parse_okhttp_list(text.encode(), "pins.txt", name="app", version=version)


def hpkp(world: World, *, subdomains: bool = False) -> ClientPolicy:
    flag = " includeSubDomains;" if subdomains else ""
    text = (
        f"https://{'example.com' if subdomains else HOST}/\n"
        f'Public-Key-Pins-Report-Only: max-age=600;{flag} pin-sha256="{world.stranger.pin.b64}"; '
        f'pin-sha256="{world.other_root.pin.b64}"; report-uri="https://r.example/"\n'
    )
    return parse_hpkp_headers(text.encode(), "headers.txt", name="site")


def trustkit(world: World, platform: Platform = Platform.IOS) -> ClientPolicy:
    domains = {
        "example.com": {
            "TSKIncludeSubdomains": True,
            "TSKPublicKeyHashes": [world.stranger.pin.b64, world.other_root.pin.b64],
        }
    }
    data = plistlib.dumps({"TSKConfiguration": {"TSKPinnedDomains": domains}})
    return parse_trustkit_plist(data, "Info.plist", name="app", platform=platform)


# --- OkHttp -----------------------------------------------------------------------


def test_okhttp_on_android_shows_the_validated_path(world: World) -> None:
    got = assess(world, okhttp(f"{HOST}: {world.stranger.pin}"))
    assert got.verdict is Verdict.FAIL_ENFORCED
    assert got.failure == {
        "message": "Certificate pinning failure!\n"
        "  Peer certificate chain:\n"
        f"    {world.leaf.pin}: {ORG},CN={HOST}\n"
        f"    {world.inter.pin}: {ORG},CN=Issuing CA\n"
        f"    {world.root.pin}: {ORG},CN=Root A\n"
        f"  Pinned certificates for {HOST}:\n"
        f"    {world.stranger.pin}"
    }


def test_okhttp_on_a_jvm_shows_the_chain_its_cleaner_built(world: World) -> None:
    policy = replace(okhttp(f"{HOST}: {world.stranger.pin}"), platform=Platform.JVM)
    got = assess(world, policy)
    assert got.failure == {
        "message": "Certificate pinning failure!\n"
        "  Peer certificate chain:\n"
        f"    {world.leaf.pin}: {ORG}, CN={HOST}\n"
        f"    {world.inter.pin}: {ORG}, CN=Issuing CA\n"
        f"    {world.root.pin}: {ORG}, CN=Root A\n"
        f"  Pinned certificates for {HOST}:\n"
        f"    {world.stranger.pin}"
    }


def test_a_jvm_chain_is_ignored_for_okhttp_on_android(world: World) -> None:
    policy = okhttp(f"{HOST}: {world.stranger.pin}")
    report = report_of(world)
    got = assess(world, policy)
    cleaned = jvm_chain(policy, [world.leaf.der, world.inter.der], world.store.anchors)
    shown = failure_formats(got, report, port=443, now=NOW, policy=policy, jvm=cleaned)
    assert shown == got.failure
    assert f"{ORG},CN=Issuing CA" in shown["message"]


@pytest.mark.parametrize(("version", "listed"), [(3, 2), (4, 1), (None, 1)])
def test_okhttp_lists_a_pin_once_per_pattern_as_the_version_compares_them(
    world: World, version: int | None, listed: int
) -> None:
    """OkHttp 3 tells ``*.Example.com`` and ``*.example.com`` apart as written,
    4 and 5 in canonical form (one pattern: the pin is listed once)."""
    text = f"*.Example.com: {world.stranger.pin}\n*.example.com: {world.stranger.pin}\n"
    policy = okhttp(text, version)
    got = assess(world, policy)
    assert got.verdict is Verdict.FAIL_ENFORCED
    pinned = got.failure["message"].split(f"Pinned certificates for {HOST}:\n")[1]
    assert pinned.splitlines() == [f"    {world.stranger.pin}"] * listed
    # without the policy, the default version (4) lists it once
    bare = failure_formats(got, report_of(world), port=443, now=NOW)
    assert bare["message"].count(str(world.stranger.pin)) == 1
    assert okhttp_pinned(policy.rules, 3) == [str(world.stranger.pin)] * 2


def test_a_passing_verdict_has_no_failure(world: World) -> None:
    got = assess(world, okhttp(f"{HOST}: {world.root.pin}"))
    assert got.verdict is Verdict.PASS and got.failure is None
    assert failure_formats(got, report_of(world), port=443, now=NOW) == {}


# --- TrustKit -----------------------------------------------------------------------


def test_trustkit_ios_reports_without_a_message(world: World) -> None:
    got = assess(world, trustkit(world))
    assert got.verdict is Verdict.FAIL_ENFORCED
    assert set(got.failure) == {"report"}
    body = got.failure["report"]
    assert body["noted-hostname"] == "example.com"
    assert body["include-subdomains"] is True
    assert body["enforce-pinning"] is True
    assert body["validation-result"] == 1
    assert body["app-platform"] == "IOS"
    # the anchor comes from the store (the second certificate in it)
    assert body["validated-certificate-chain"] == [
        pem(world.leaf),
        pem(world.inter),
        pem(world.root),
    ]


def test_trustkit_android_shows_its_message_and_the_served_chain(world: World) -> None:
    xml = (
        "<network-security-config><domain-config><domain>api.example.com</domain>"
        f'<pin-set><pin digest="SHA-256">{world.stranger.pin.b64}</pin>'
        f'<pin digest="SHA-256">{world.other_root.pin.b64}</pin></pin-set>'
        '<trustkit-config enforcePinning="true"/></domain-config></network-security-config>'
    ).encode()
    policy = parse_trustkit_android(xml, "nsc.xml", name="tk")
    got = assess(world, policy)
    assert got.failure is not None
    assert got.failure["message"] == (
        "Pin verification failed\n"
        f"  Configured pins: {world.stranger.pin.b64} {world.other_root.pin.b64}\n"
        "  Peer certificate chain: \n"
        f"    {world.leaf.pin.b64} - {ORG},CN={HOST}\n"
        f"    {world.inter.pin.b64} - {ORG},CN=Issuing CA\n"
        f"    {world.root.pin.b64} - {ORG},CN=Root A"
    )
    body = got.failure["report"]
    assert body["app-platform"] == "ANDROID"
    assert body["served-certificate-chain"] == [pem(world.leaf), pem(world.inter)]


@pytest.mark.parametrize(
    ("platform", "message"),
    [
        (Platform.IOS, None),
        (Platform.ANDROID, f"Certificate validation failed for {HOST}"),
    ],
)
def test_trustkit_blocks_an_invalid_chain_with_result_2(
    world: World, platform: Platform, message: str | None
) -> None:
    got = assess(world, trustkit(world, platform), [world.leaf.der])  # incomplete
    assert got.verdict is Verdict.CHAIN_INVALID
    assert got.failure is not None
    assert got.failure.get("message") == message
    assert got.failure["report"]["validation-result"] == 2


def test_trustkit_report_defaults(world: World) -> None:
    got = assess(world, trustkit(world))
    body = trustkit_report(got, [], [], port=443, now=NOW, platform=None)
    assert body["validation-result"] == 1
    assert body["app-platform"] == "IOS"
    ruleless = replace(got, rules=())
    body = trustkit_report(ruleless, [], [], port=443, now=NOW, platform=None)
    assert (body["noted-hostname"], body["include-subdomains"]) == (HOST, False)
    assert body["enforce-pinning"] is False


# --- HPKP ----------------------------------------------------------------------------


def test_hpkp_report_keeps_every_served_certificate(world: World) -> None:
    """A served certificate that does not parse is still in the served chain
    the browser reports (it sent what it received)."""
    served = [world.leaf.der, GARBAGE, world.inter.der]
    got = assess(world, hpkp(world), served)
    assert got.verdict is Verdict.FAIL_REPORT_ONLY
    body = got.failure["report"]
    garbage_pem = (
        "-----BEGIN CERTIFICATE-----\n"
        + base64.b64encode(GARBAGE).decode()
        + "\n-----END CERTIFICATE-----\n"
    )
    assert body["served-certificate-chain"] == [pem(world.leaf), garbage_pem, pem(world.inter)]
    assert body["validated-certificate-chain"] == [
        pem(world.leaf),
        pem(world.inter),
        pem(world.root),
    ]
    assert body["effective-expiration-date"] == "2026-01-01T00:10:00Z"


def test_hpkp_report_without_a_rule_expires_now(world: World) -> None:
    got = replace(assess(world, hpkp(world)), rules=())
    body = hpkp_report(got, [], [], port=443, now=NOW)
    assert body["effective-expiration-date"] == body["date-time"] == "2026-01-01T00:00:00Z"
    assert body["noted-hostname"] == HOST


def test_client_is_what_picks_the_format(world: World) -> None:
    got = assess(world, hpkp(world))
    assert got.client is Client.HPKP and set(got.failure) == {"report"}
