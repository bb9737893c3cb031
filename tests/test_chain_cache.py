"""The cache of chain analyses gives, field by field, the analysis the uncached
code gives (issue 11 item 1: validation once per distinct chain).

`chain.AnalysisCache` keeps one analysis per (served chain, trust store,
instant, name class): every server name the verifier takes is either named by
the leaf's subjectAltName or not (`chain.NameClass`), and the analysis
depends on the name through that alone. The host name is then checked
against the leaf by `chain.leaf_names_match`, written after the rules of
cryptography's verifier (RFC 6125 as it applies them). Both halves are
compared with the real thing:

- hand cases from where host-name checks have gone wrong in real clients:
  wildcards (RFC 6125 6.4.3: one whole left-most label, never the bare
  domain, never a partial label such as ``f*.example.com``), IP addresses in
  dNSName entries (Python's ``ssl.match_hostname`` matched them until 3.7),
  IPv4-mapped IPv6 literals, punycode (``xn--``) names and the U-labels the
  verifier refuses, CN-only leaves (Chrome 58 stopped reading the CN; so does
  the verifier), trailing dots and upper case (normalised before the check),
  names the verifier refuses (``my_host.internal``, 64-character labels, 254
  characters);
- generated leaves and names (hypothesis): the verifier's own verdict on
  each name is the class `name_class` gives it, and the cached analysis of
  each name, after other names of the same chain filled the cache, equals
  the uncached one;
- every server case of x509-limbo (tests/data/limbo), each analysed for its
  own peer name and a few others through one cache.
"""

from __future__ import annotations

import ipaddress
from dataclasses import fields
from datetime import datetime, timedelta, timezone

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import verification
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_conformance_limbo import Case, cases

from scanner.chain import (
    AnalysisCache,
    CertificateCache,
    NameClass,
    analyze_chain,
    leaf_names_match,
    name_class,
    normalise_name,
    parse_certificate,
    verifier_dns_name,
)
from scanner.fleet.pki import PKI, Issued, make_key
from scanner.model import CertFacts, ChainReport, PathStatus
from scanner.trust import TrustStore, store_from_pem

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)
_PKI = PKI(NOW)
_LEAF_KEY = make_key("ec256")
_ROOT = _PKI.root("Cache Test Root")
_INTER = _PKI.intermediate("Cache Test Issuing CA", _ROOT)
_STORE = store_from_pem(_ROOT.pem, "cache-test.pem")


def _leaf(dns: tuple[str, ...] = (), ips: tuple[str, ...] = (), **kw: object) -> Issued:
    return _PKI.issue("leaf.example.com", issuer=_INTER, key=_LEAF_KEY, dns=dns, ips=ips, **kw)  # type: ignore[arg-type]


def verifier_class(name: str, leaf: Issued) -> NameClass:
    """What cryptography's verifier itself says of `name` against `leaf` (a
    leaf otherwise valid under _INTER at NOW): refused, match or mismatch."""
    literal = normalise_name(name)
    subject: verification.Subject
    try:
        subject = x509.IPAddress(ipaddress.ip_address(literal.strip("[]")))
    except ValueError:
        try:
            subject = x509.DNSName(literal)
        except ValueError:
            return NameClass.REFUSED
    builder = verification.PolicyBuilder().store(_STORE.store).time(NOW)
    try:
        verifier = builder.build_server_verifier(subject)
    except ValueError:
        return NameClass.REFUSED
    try:
        verifier.verify(leaf.cert, [_INTER.cert])
    except verification.VerificationError:
        return NameClass.MISMATCH
    return NameClass.MATCH


def ours(name: str, leaf: Issued) -> NameClass:
    return name_class(normalise_name(name), parse_certificate(leaf.der))[0]


def differences(cached: ChainReport, uncached: ChainReport) -> list[str]:
    return [
        f"{f.name}: cached {getattr(cached, f.name)!r} != uncached {getattr(uncached, f.name)!r}"
        for f in fields(ChainReport)
        if getattr(cached, f.name) != getattr(uncached, f.name)
    ]


def check_names(
    served: list[bytes],
    store: TrustStore,
    names: list[str],
    when: datetime,
    *,
    analyses: AnalysisCache,
    pool: tuple[x509.Certificate, ...] = (),
) -> None:
    """Each name through the shared cache equals its uncached analysis."""
    certificates = CertificateCache()
    for name in names:
        cached = analyze_chain(
            served, store, name, when, pool=pool, cache=certificates, analyses=analyses
        )
        uncached = analyze_chain(served, store, name, when, pool=pool, cache=CertificateCache())
        assert differences(cached, uncached) == [], name


# --- hand cases: the verifier's rules, one by one -----------------------------------

WILDCARD = _leaf(("*.example.com",))
HAND_CASES: list[tuple[Issued, str, NameClass]] = [
    (WILDCARD, "api.example.com", NameClass.MATCH),
    (WILDCARD, "API.Example.COM", NameClass.MATCH),  # case folded
    (WILDCARD, "api.example.com.", NameClass.MATCH),  # one trailing dot dropped
    (WILDCARD, "example.com", NameClass.MISMATCH),  # never the bare domain
    (WILDCARD, "a.b.example.com", NameClass.MISMATCH),  # one label only
    (WILDCARD, "api.example.com..", NameClass.REFUSED),  # an empty label
    (_leaf(("*.EXAMPLE.com",)), "www.example.com", NameClass.MATCH),  # upper-case pattern
    (_leaf(("f*.example.com",)), "foo.example.com", NameClass.MISMATCH),  # no partial label
    (_leaf(("*oo.example.com",)), "foo.example.com", NameClass.MISMATCH),
    (_leaf(("www.*.example.com",)), "www.a.example.com", NameClass.MISMATCH),  # left-most only
    (_leaf(("*",)), "localhost", NameClass.MISMATCH),
    (_leaf(("*.com",)), "example.com", NameClass.MATCH),  # the verifier has no PSL rule
    (_leaf(("*.*.example.com",)), "a.b.example.com", NameClass.MISMATCH),
    (_leaf(("example.com.",)), "example.com", NameClass.MISMATCH),  # a dotted pattern is void
    (_leaf(("exa_mple.com",)), "exa_mple.com", NameClass.REFUSED),
    (_leaf(("exa_mple.com", "example.com")), "example.com", NameClass.MATCH),
    # IP addresses: iPAddress entries only, never a dNSName that spells one
    (_leaf(("192.0.2.1",)), "192.0.2.1", NameClass.MISMATCH),
    (_leaf(ips=("192.0.2.1",)), "192.0.2.1", NameClass.MATCH),
    (_leaf(ips=("192.0.2.1",)), "192.0.2.2", NameClass.MISMATCH),
    (_leaf(ips=("2001:db8::1",)), "2001:db8::1", NameClass.MATCH),
    (_leaf(ips=("2001:db8::1",)), "[2001:db8::1]", NameClass.MATCH),
    (_leaf(ips=("2001:db8::1",)), "2001:DB8:0:0:0:0:0:1", NameClass.MATCH),
    (_leaf(ips=("192.0.2.1",)), "::ffff:192.0.2.1", NameClass.MISMATCH),  # v4-mapped is v6
    (_leaf(ips=("::ffff:192.0.2.1",)), "192.0.2.1", NameClass.MISMATCH),
    (_leaf(("api.example.com",), ("192.0.2.1",)), "192.0.2.1", NameClass.MATCH),
    # punycode: A-labels compare as ASCII; U-labels are refused
    (_leaf(("xn--bcher-kva.example",)), "xn--bcher-kva.example", NameClass.MATCH),
    (_leaf(("*.xn--bcher-kva.example",)), "shop.xn--bcher-kva.example", NameClass.MATCH),
    (_leaf(("xn--bcher-kva.example",)), "bücher.example", NameClass.REFUSED),
    # CN-only: no subjectAltName, no name matches
    (_leaf(()), "leaf.example.com", NameClass.MISMATCH),
    # names the verifier refuses
    (WILDCARD, "my_host.example.com", NameClass.REFUSED),
    (WILDCARD, "-api.example.com", NameClass.REFUSED),
    (WILDCARD, "a" * 64 + ".example.com", NameClass.REFUSED),
    (WILDCARD, ".".join(["a" * 63] * 4)[:254], NameClass.REFUSED),
    (WILDCARD, "", NameClass.REFUSED),
    (WILDCARD, "api example.com", NameClass.REFUSED),
]


@pytest.mark.parametrize(
    ("leaf", "name", "expected"),
    HAND_CASES,
    ids=[f"{case[1] or 'empty'}-{case[2].value}" for case in HAND_CASES],
)
def test_the_name_class_is_the_verifiers_verdict(
    leaf: Issued, name: str, expected: NameClass
) -> None:
    assert (verifier_class(name, leaf), ours(name, leaf)) == (expected, expected)


def test_every_hand_case_is_cached_as_the_uncached_analysis_says() -> None:
    analyses = AnalysisCache()
    by_leaf: dict[bytes, list[str]] = {}
    for leaf, name, _expected in HAND_CASES:
        by_leaf.setdefault(leaf.der, []).append(name)
    for der, names in by_leaf.items():
        # every name twice: the second time it is served from the cache
        check_names([der, _INTER.der], _STORE, names + names, NOW, analyses=analyses)
    # refused names are analysed each time, never cached; every other name the
    # second time at the latest comes from the cache
    taken = sum(1 for _leaf, _name, expected in HAND_CASES if expected is not NameClass.REFUSED)
    assert analyses.hits + analyses.misses == 2 * taken
    assert analyses.misses == len(analyses) <= taken <= analyses.hits


def test_one_analysis_serves_every_name_of_its_class() -> None:
    analyses = AnalysisCache()
    served = [WILDCARD.der, _INTER.der]
    names = [f"host-{n}.example.com" for n in range(50)] + ["example.com", "other.test"]
    check_names(served, _STORE, names, NOW, analyses=analyses)
    assert (analyses.misses, analyses.hits, len(analyses)) == (2, 50, 2)


def test_a_report_that_used_the_pool_is_not_reused_once_the_pool_changed() -> None:
    analyses = AnalysisCache()
    served = [WILDCARD.der]  # the issuer not sent: INCOMPLETE only with it from the pool
    first = analyze_chain(served, _STORE, "a.example.com", NOW, analyses=analyses)
    with_pool = analyze_chain(
        served, _STORE, "b.example.com", NOW, pool=(_INTER.cert,), analyses=analyses
    )
    again = analyze_chain(
        served, _STORE, "c.example.com", NOW, pool=[_INTER.cert], analyses=analyses
    )
    assert (first.status, with_pool.status, again.status) == (
        PathStatus.UNTRUSTED,
        PathStatus.INCOMPLETE,
        PathStatus.INCOMPLETE,
    )
    assert (analyses.misses, analyses.hits) == (2, 1)
    check_names(served, _STORE, ["d.example.com"], NOW, analyses=analyses, pool=(_INTER.cert,))


def test_the_instant_and_the_store_are_part_of_the_key() -> None:
    analyses = AnalysisCache()
    expiring = _leaf(("*.example.com",), days_after=2)
    served = [expiring.der, _INTER.der]
    other_store = store_from_pem(_PKI.root("Unrelated Root").pem, "other.pem")
    for when in (NOW, NOW + timedelta(days=3)):
        for store in (_STORE, other_store):
            check_names(served, store, ["x.example.com", "y.example.com"], when, analyses=analyses)
    assert (analyses.misses, analyses.hits) == (4, 4)


def test_the_cache_is_bounded() -> None:
    analyses = AnalysisCache(max_entries=3)
    for n in range(6):
        leaf = _leaf((f"*.n{n}.example",))
        analyze_chain([leaf.der, _INTER.der], _STORE, f"a.n{n}.example", NOW, analyses=analyses)
    assert len(analyses) == 3


# --- generated leaves and names ------------------------------------------------------

_LABELS = st.one_of(
    st.sampled_from(["api", "API", "www", "example", "com", "test", "xn--bcher-kva", "a", "*"]),
    st.text(alphabet="aZ09-_*", min_size=0, max_size=5),
    st.just("b" * 63),
    st.just("c" * 64),
)
_DNS = st.lists(_LABELS, min_size=1, max_size=4).map(".".join)
_SAN_DNS = st.one_of(_DNS, _DNS.map(lambda d: "*." + d), st.just("*"))
_IPS = st.sampled_from(["192.0.2.1", "192.0.2.2", "2001:db8::1", "::ffff:192.0.2.1"])
_NAMES = st.one_of(
    _DNS,
    _DNS.map(str.upper),
    _DNS.map(lambda d: d + "."),
    _IPS,
    _IPS.map(lambda ip: f"[{ip}]" if ":" in ip else ip),
    st.text(max_size=12),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    dns=st.lists(_SAN_DNS, max_size=3),
    ips=st.lists(_IPS, max_size=2),
    names=st.lists(_NAMES, min_size=1, max_size=4),
    data=st.data(),
)
def test_generated_names_and_leaves_agree_with_the_verifier(
    dns: list[str], ips: list[str], names: list[str], data: st.DataObject
) -> None:
    try:
        leaf = _leaf(tuple(dns), tuple(ips))
    except ValueError:  # a SAN the builder cannot encode (non-ASCII): not a certificate
        return
    # names that the leaf surely matches, derived from its own SAN entries
    names += [d.replace("*", data.draw(st.sampled_from(["x", "AbC"])), 1) for d in dns]
    for name in names:
        assert ours(name, leaf) is verifier_class(name, leaf), (name, dns, ips)
    check_names([leaf.der, _INTER.der], _STORE, names + names, NOW, analyses=AnalysisCache())


@given(st.text(max_size=70))
@settings(max_examples=300, deadline=None)
def test_dns_name_syntax_is_the_verifiers(text: str) -> None:
    try:
        subject = x509.DNSName(text)
    except ValueError:
        return  # the library itself refuses it (non-ASCII): never reaches the verifier
    builder = verification.PolicyBuilder().store(_STORE.store).time(NOW)
    try:
        builder.build_server_verifier(subject)
        accepted = True
    except ValueError:
        accepted = False
    assert verifier_dns_name(text) is accepted


def test_leaf_names_match_reads_only_the_subject_alt_name() -> None:
    cn_only = parse_certificate(_leaf(()).der)
    assert "CN=leaf.example.com" in cn_only.subject
    assert not leaf_names_match(x509.DNSName("leaf.example.com"), cn_only)


# --- x509-limbo: every server case through one cache per case ------------------------


def _limbo_names(case: Case) -> list[str]:
    names = [case.peer, case.peer.upper(), "not-named.example", "203.0.113.9", case.peer]
    leaf = parse_certificate_or_none(case)
    if leaf is not None:
        names += [d.replace("*", "w", 1) for d in leaf.san_dns[:3]]
        names += list(leaf.san_ip[:2])
    return names


def parse_certificate_or_none(case: Case) -> CertFacts | None:
    try:
        return parse_certificate(case.leaf.public_bytes(Encoding.DER))
    except ValueError:
        return None


@pytest.mark.parametrize("chunk", range(4))
def test_every_limbo_case_is_cached_as_the_uncached_analysis_says(chunk: int) -> None:
    hits = 0
    for case in cases()[chunk::4]:
        store = store_from_pem(b"".join(case.roots), "limbo-roots.pem")
        served = [case.leaf.public_bytes(Encoding.DER)]
        served += [c.public_bytes(Encoding.DER) for c in case.intermediates]
        analyses = AnalysisCache()
        try:
            check_names(served, store, _limbo_names(case), case.when, analyses=analyses)
        except AssertionError as exc:
            raise AssertionError(f"{case.id}: {exc}") from None
        hits += analyses.hits
    assert hits > 0
