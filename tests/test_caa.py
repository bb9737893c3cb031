"""CAA against a real DNS server from Debian's packages (Unbound on loopback,
answering from local zones written by the test): the lookup climbs as RFC
8659 §3 says, follows CNAMEs, and the served leaf's issuer is judged against
issue / issuewild with CAA identifiers declared or shipped for common CAs."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone

import pytest
import trio
from cryptography.x509.oid import NameOID
from protocol_peers import server_directory, unbound

from scanner.caa import (
    CaaLookup,
    CaaOutcome,
    CaaRecord,
    bundled_identifiers,
    caa_name,
    climb,
    judge_caa,
)
from scanner.fleet.pki import PKI
from scanner.probe import lookup_caa, parse_nameserver

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)
HOST = "127.90.50.1"
OURS = frozenset({"ca.pinaudit.test"})  # what the test CA would publish in its CPS

# Zones in the shapes seen on real domains: a set at the registered domain
# inherited by every name below it (the common case), a set that names
# another CA, issuewild ";" forbidding wildcards (Mozilla's and GitHub's
# zones do this), CAA parameters (Let's Encrypt's validationmethods), a
# critical unknown property, and a CNAME to a provider's name whose set then
# applies (the CDN case Sectigo's support notes describe as "inherited").
ZONES = [
    'local-zone: "example.test." static',
    "local-data: 'example.test. 300 IN CAA 0 issue \"ca.pinaudit.test\"'",
    "local-data: 'example.test. 300 IN CAA 0 iodef \"mailto:security@example.test\"'",
    "local-data: 'api.sub.example.test. 300 IN A 192.0.2.1'",
    'local-zone: "other.test." static',
    "local-data: 'other.test. 300 IN CAA 0 issue \"letsencrypt.org\"'",
    "local-data: 'other.test. 300 IN CAA 0 issue \"pki.goog\"'",
    'local-zone: "wild.test." static',
    "local-data: 'wild.test. 300 IN CAA 0 issue \"ca.pinaudit.test\"'",
    "local-data: 'wild.test. 300 IN CAA 0 issuewild \";\"'",
    'local-zone: "le.test." static',
    "local-data: 'le.test. 300 IN CAA 0 issue \"letsencrypt.org; validationmethods=dns-01\"'",
    'local-zone: "critical.test." static',
    "local-data: 'critical.test. 300 IN CAA 0 issue \"ca.pinaudit.test\"'",
    "local-data: 'critical.test. 300 IN CAA 128 tbs \"unknown\"'",
    'local-zone: "nocaa.test." static',
    "local-data: 'www.nocaa.test. 300 IN A 192.0.2.2'",
    'local-zone: "cname.test." static',
    "local-data: 'shop.cname.test. 300 IN CNAME edge.cdn.example.test.'",
    "local-data: 'edge.cdn.example.test. 300 IN CAA 0 issue \"digicert.com\"'",
    'local-zone: "refused.test." refuse',
]


@pytest.fixture(scope="module")
def dns_port() -> Iterator[int]:
    with server_directory("unbound") as directory, unbound(directory, HOST, ZONES) as port:
        yield port


def lookup(name: str, port: int) -> CaaLookup:
    return trio.run(lambda: lookup_caa(name, nameserver=(HOST, port), timeout=5))


@pytest.mark.peers
def test_climbs_to_the_registered_domain(dns_port: int) -> None:
    found = lookup("api.sub.example.test", dns_port)
    assert found.owner == "example.test"
    assert set(found.records) == {  # a set: DNS gives no order within an RRset
        CaaRecord(0, "issue", "ca.pinaudit.test"),
        CaaRecord(0, "iodef", "mailto:security@example.test"),
    }
    verdict = judge_caa(found, wildcard=False, issuer_identifiers=OURS)
    assert (verdict.outcome, verdict.detail) == (
        CaaOutcome.AUTHORIZED,
        "issue at example.test authorises ca.pinaudit.test",
    )


@pytest.mark.peers
def test_issuer_not_authorised(dns_port: int) -> None:
    verdict = judge_caa(lookup("www.other.test", dns_port), wildcard=False, issuer_identifiers=OURS)
    assert verdict.outcome is CaaOutcome.NOT_AUTHORIZED
    assert verdict.authorised == ("letsencrypt.org", "pki.goog")
    assert verdict.detail == (
        "issue at other.test authorises letsencrypt.org, pki.goog, not the issuer "
        "(ca.pinaudit.test)"
    )


@pytest.mark.peers
def test_no_caa_anywhere(dns_port: int) -> None:
    found = lookup("www.nocaa.test", dns_port)
    assert (found.owner, found.records, found.error) == (None, (), None)
    assert judge_caa(found, wildcard=False, issuer_identifiers=OURS).outcome is CaaOutcome.NO_CAA


@pytest.mark.peers
def test_wildcard_forbidden_by_issuewild(dns_port: int) -> None:
    name, wildcard = caa_name("api.wild.test", ["*.wild.test"])
    assert (name, wildcard) == ("wild.test", True)
    verdict = judge_caa(lookup(name, dns_port), wildcard=True, issuer_identifiers=OURS)
    assert (verdict.outcome, verdict.property) == (CaaOutcome.NOT_AUTHORIZED, "issuewild")
    assert verdict.detail == (
        'issuewild at wild.test authorises no CA (";"), not the issuer (ca.pinaudit.test)'
    )
    named = judge_caa(lookup(name, dns_port), wildcard=False, issuer_identifiers=OURS)
    assert named.outcome is CaaOutcome.AUTHORIZED  # the same set allows the plain name


@pytest.mark.peers
def test_bundled_identifiers_and_parameters(dns_port: int) -> None:
    pki = PKI(NOW, org="Let's Encrypt")
    intermediate = pki.intermediate("R13", pki.root("ISRG Root X1"))
    leaf = pki.leaf("www.le.test", intermediate)
    organisation = leaf.cert.issuer.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value
    identifiers = bundled_identifiers().for_issuer(str(organisation))
    assert identifiers == frozenset({"letsencrypt.org"})
    verdict = judge_caa(lookup("www.le.test", dns_port), wildcard=False,
                        issuer_identifiers=identifiers)  # fmt: skip
    assert verdict.outcome is CaaOutcome.AUTHORIZED


@pytest.mark.peers
def test_unknown_critical_property_forbids(dns_port: int) -> None:
    verdict = judge_caa(lookup("critical.test", dns_port), wildcard=False, issuer_identifiers=OURS)
    assert (verdict.outcome, verdict.detail) == (
        CaaOutcome.NOT_AUTHORIZED,
        "the CAA set at critical.test has an unknown critical property: tbs",
    )


@pytest.mark.peers
def test_cname_target_set_applies(dns_port: int) -> None:
    found = lookup("shop.cname.test", dns_port)
    assert found.owner == "shop.cname.test -> edge.cdn.example.test"
    assert found.records == (CaaRecord(0, "issue", "digicert.com"),)
    digicert = bundled_identifiers().for_issuer("DigiCert Inc")
    verdict = judge_caa(found, wildcard=False, issuer_identifiers=digicert)
    assert verdict.outcome is CaaOutcome.AUTHORIZED


@pytest.mark.peers
def test_issuer_identifiers_unknown(dns_port: int) -> None:
    verdict = judge_caa(lookup("other.test", dns_port), wildcard=False, issuer_identifiers=None)
    assert verdict.outcome is CaaOutcome.ISSUER_UNKNOWN
    assert verdict.detail == (
        "issue at other.test authorises letsencrypt.org, pki.goog; the issuer's CAA "
        "identifiers are not known"
    )


@pytest.mark.peers
def test_refused_lookup_is_a_failure_not_no_caa(dns_port: int) -> None:
    found = lookup("www.refused.test", dns_port)
    assert found.owner is None
    assert found.error is not None and found.error.startswith("www.refused.test: ")
    assert "REFUSED" in found.error
    verdict = judge_caa(found, wildcard=False, issuer_identifiers=OURS)
    assert verdict.outcome is CaaOutcome.LOOKUP_FAILED


def test_unanswering_server_times_out() -> None:
    """A DNS server that never answers (here: a UDP socket nobody reads)."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.90.50.2", 0))
        port = silent.getsockname()[1]
        found = trio.run(
            lambda: lookup_caa("example.test", nameserver=("127.90.50.2", port), timeout=0.5)
        )
    assert found.error is not None
    assert found.error.startswith("example.test: ")


# --------------------------------------------------------------------------- pure


def test_climb() -> None:
    assert climb("a.b.example.com.") == ["a.b.example.com", "b.example.com", "example.com", "com"]


def test_caa_name_uses_the_wildcard_base_only_when_needed() -> None:
    assert caa_name("www.example.com", ["www.example.com", "*.example.com"]) == (
        "www.example.com",
        False,
    )
    assert caa_name("api.example.com", ["*.example.com"]) == ("example.com", True)
    assert caa_name("api.example.com", ["other.example.com"]) == ("api.example.com", False)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("127.0.0.1", ("127.0.0.1", 53)), ("127.0.0.1:5353", ("127.0.0.1", 5353)),
     ("[::1]:5353", ("::1", 5353)), ("::1", ("::1", 53))],
)  # fmt: skip
def test_parse_nameserver(text: str, expected: tuple[str, int]) -> None:
    assert parse_nameserver(text) == expected


@pytest.mark.parametrize("text", ["dns.google", "127.0.0.1:0", "127.0.0.1:dns"])
def test_parse_nameserver_errors(text: str) -> None:
    with pytest.raises(ValueError):
        parse_nameserver(text)


def test_hostile_record_sets_are_bounded() -> None:
    records = tuple(CaaRecord(0, "issue", f"ca{i}.test") for i in range(1000))
    verdict = judge_caa(CaaLookup("x.test", "x.test", records), wildcard=False,
                        issuer_identifiers=frozenset({"ca999.test"}))  # fmt: skip
    assert verdict.outcome is CaaOutcome.NOT_AUTHORIZED  # beyond the first 64: not read
    assert len(verdict.authorised) == 64
