"""Differential property test: for generated chains with odd but valid extensions,
pinaudit's path status is the verifier's, and its audit never contradicts it.

Each example builds root → intermediates → leaf with draws of the knobs real
chains turn: path lengths, name constraints that permit or exclude the name,
certificate policies, unknown non-critical extensions, extra SANs, key types,
validity ending or starting at the very second of `now`, intermediates served
in any order, the root served along or not, the server name asked. The
verifier (``cryptography.x509.verification``) alone judges the same inputs.
"""

from __future__ import annotations

import ipaddress
from datetime import datetime, timedelta, timezone

from cryptography import x509
from cryptography.x509 import verification
from cryptography.x509.oid import CertificatePoliciesOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scanner.audit import audit
from scanner.chain import CertificateCache, analyze_chain
from scanner.fleet.pki import PKI, Issued, make_key
from scanner.model import Check, Endpoint, PathStatus
from scanner.trust import store_from_pem

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)
HOST = "api.example.com"
SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
_PKI = PKI(NOW)
_KEYS = {kind: [make_key(kind) for _ in range(4)] for kind in ("ec256", "ec384", "ed25519")}
_ROOT = _PKI.root("Differential Root", key=_KEYS["ec256"][0])
_STORE = store_from_pem(_ROOT.pem, "differential.pem")
_ODD = x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.55555.7"), b"\x05\x00")
_POLICIES = x509.CertificatePolicies(
    [
        x509.PolicyInformation(x509.ObjectIdentifier("2.23.140.1.2.1"), None),
        x509.PolicyInformation(CertificatePoliciesOID.ANY_POLICY, ["https://cps.example"]),
    ]
)
# Failures of the chain the audit reports; their absence on a valid path is asserted.
_CONTRADICTIONS = frozenset(
    {
        Check.CERT_EXPIRED,
        Check.CERT_NOT_YET_VALID,
        Check.CHAIN_UNTRUSTED,
        Check.HOSTNAME_MISMATCH,
        Check.CHAIN_INCOMPLETE,
        Check.NAME_CONSTRAINTS_VIOLATED,
    }
)

edges = st.sampled_from(
    [
        timedelta(seconds=-1),
        timedelta(0),
        timedelta(microseconds=500_000),
        timedelta(seconds=1),
        timedelta(days=30),
    ]
)


@st.composite
def name_constraints(draw: st.DrawFn) -> x509.NameConstraints | None:
    kind = draw(st.sampled_from(["none", "permit", "permit-other", "exclude", "exclude-other"]))
    if kind == "none":
        return None
    inside = x509.DNSName("example.com")
    other = x509.DNSName("example.org")
    if kind.startswith("permit"):
        return x509.NameConstraints([other if kind.endswith("other") else inside], None)
    return x509.NameConstraints(None, [other if kind.endswith("other") else inside])


@st.composite
def chains(draw: st.DrawFn) -> tuple[list[bytes], str, list[x509.Certificate], x509.Certificate]:
    depth = draw(st.integers(0, 3))
    issuer: Issued = _ROOT
    inters: list[Issued] = []
    for n in range(depth):
        extras: list[tuple[x509.ExtensionType, bool]] = []
        constraints = draw(name_constraints())
        if constraints is not None:
            extras.append((constraints, True))
        if draw(st.booleans()):
            extras.append((_POLICIES, False))
        if draw(st.booleans()):
            extras.append((_ODD, False))
        kind = draw(st.sampled_from(sorted(_KEYS)))
        issuer = _PKI.intermediate(
            f"Differential CA {n}",
            issuer,
            key=draw(st.sampled_from(_KEYS[kind])),
            path_length=draw(st.sampled_from([None, 0, 1, 2])),
            not_after=NOW + draw(st.one_of(st.just(timedelta(days=300)), edges)),
            extra_extensions=extras,
        )
        inters.append(issuer)
    extras = []
    if draw(st.booleans()):
        extras.append((_ODD, False))
    if draw(st.booleans()):
        extras.append((_POLICIES, False))
    dns = [HOST, *draw(st.lists(st.sampled_from(["www.example.com", "*.example.com"]), max_size=2))]
    ips = draw(st.lists(st.sampled_from(["192.0.2.7", "2001:db8::7"]), max_size=1))
    shift = draw(edges)
    timing = (
        {"not_after": NOW + shift, "days_before": 10}
        if draw(st.booleans())
        else {"not_before": NOW + shift, "days_after": 40}
    )
    leaf = _PKI.leaf(
        HOST,
        issuer,
        key=draw(st.sampled_from(_KEYS[draw(st.sampled_from(sorted(_KEYS)))])),
        dns=tuple(dict.fromkeys(dns)),
        ips=tuple(ips),
        extra_extensions=extras,
        **timing,  # type: ignore[arg-type]
    )
    served_inters = list(reversed(inters))
    if draw(st.booleans()):
        served_inters = draw(st.permutations(served_inters))
    if draw(st.booleans()):
        served_inters.append(_ROOT)
    names = [HOST, "API.Example.com.", "www.example.com", "other.example.org", "192.0.2.7"]
    name = draw(st.one_of(st.just(HOST), st.sampled_from([*names, "2001:db8::7"])))
    served = [leaf.der, *(c.der for c in served_inters)]
    return served, name, [c.cert for c in served_inters], leaf.cert


def verifier_accepts(
    name: str, leaf: x509.Certificate, inters: list[x509.Certificate], now: datetime
) -> bool:
    try:
        subject: verification.Subject = x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        subject = x509.DNSName(name.lower().rstrip("."))
    builder = verification.PolicyBuilder().store(_STORE.store).time(now)
    try:
        builder.build_server_verifier(subject).verify(leaf, inters)
    except verification.VerificationError:
        return False
    return True


@SETTINGS
@given(chains(), st.sampled_from([NOW, NOW + timedelta(microseconds=999_999)]))
def test_path_status_is_the_verifiers(
    chain: tuple[list[bytes], str, list[x509.Certificate], x509.Certificate], now: datetime
) -> None:
    served, name, inters, leaf = chain
    report = analyze_chain(served, _STORE, name, now, cache=CertificateCache())
    accepted = verifier_accepts(name, leaf, inters, now)
    assert (report.status is PathStatus.VALID) is accepted, report.error
    findings = audit(Endpoint("d", HOST, 443, name, None), report, now)
    if accepted:
        contradicting = [f for f in findings if f.check in _CONTRADICTIONS]
        assert contradicting == []
        assert report.path[0].served_position == 0
        assert report.path[-1].facts.spki_sha256 == _ROOT.pin
    else:
        assert any(f.check in _CONTRADICTIONS or f.severity.value == "critical" for f in findings)
