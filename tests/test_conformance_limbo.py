"""The yardstick: x509-limbo's server-validation cases through pinaudit's analysis.

tests/data/limbo/limbo-server.json.xz holds the SERVER cases of x509-limbo (C2SP,
Apache-2.0, tests/data/limbo/LICENSE and README.md say where they come from): each
case has trusted roots, untrusted intermediates, the peer certificate, a validation
time, the expected peer name and the expected result.

For every case, pinaudit analyses the chain as a server would send it (peer
certificate first, then the intermediates) against the trusted roots at the
validation time, and audits it; its verdict is FAILURE when the path does not
validate or the audit has a critical finding about the chain (an expiring
certificate or a pin is not a validation failure). `cryptography`'s verifier
alone judges the same inputs. Asserted:

- no case makes the analysis, the audit or the client-path search raise;
- pinaudit agrees with the expected result at least as often as the verifier;
- every case where pinaudit's verdict differs from the expected result is one
  of DIFFERENCES, with the reason, and docs/conformance.md lists each.
"""

from __future__ import annotations

import ipaddress
import json
import lzma
import warnings
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cache
from pathlib import Path

import cryptography
import pytest
from cryptography import x509
from cryptography.x509 import verification

from scanner.audit import audit
from scanner.chain import CertificateCache, analyze_chain
from scanner.model import Check, Endpoint, PathStatus, Severity
from scanner.paths import search_paths
from scanner.trust import store_from_pem

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data" / "limbo" / "limbo-server.json.xz"
DOCS = ROOT / "docs" / "conformance.md"
# Cases without a validation time are judged at one fixed moment (x509-limbo
# says "now"; its generated certificates are valid from 1970 to 2969).
DEFAULT_TIME = datetime(2026, 6, 1, tzinfo=timezone.utc)
NOT_FAILURES = frozenset({Check.CERT_EXPIRING})

# Where pinaudit's verdict is not the expected one, and why (docs/conformance.md).
CRL = "revocation is out of scope: pinaudit reads no CRL"
CA_LEAF = "the WebPKI profile refuses a CA certificate as the server's (RFC 5280 allows it)"
NO_DEPTH = "pinaudit has no max-depth input: clients' depth limits are not per endpoint"
VERIFIER = "the verifier accepts it; pinaudit adds no rule of its own for"
DIFFERENCES: dict[str, str] = {
    "crl::revoked-certificate-with-crl": CRL,
    "crl::crlnumber-missing": CRL,
    "crl::crlnumber-critical": CRL,
    "crl::issuer-missing-crlsign": CRL,
    "crl::issuer-no-keyusage-extension": "the verifier requires keyUsage on every CA",
    "pathlen::validation-ignores-pathlen-in-leaf": CA_LEAF,
    "rfc5280::ca-as-leaf": CA_LEAF,
    "pathlen::self-issued-certs-pathlen": "the verifier builds no path through these "
    "self-issued CAs (signature does not match)",
    "pathlen::max-chain-depth-0-exhausted": NO_DEPTH,
    "pathlen::max-chain-depth-1-exhausted": NO_DEPTH,
    "rfc5280::nc::permitted-dn-match": "the case names no peer; pinaudit always checks the "
    "endpoint's name (and the verifier has no directoryName constraints)",
    "rfc5280::aki::intermediate-missing-aki": f"{VERIFIER} a CA without authorityKeyIdentifier",
    "rfc5280::aki::cross-signed-root-missing-aki": f"{VERIFIER} a CA without "
    "authorityKeyIdentifier",
    "rfc5280::ski::root-missing-ski": f"{VERIFIER} a CA without subjectKeyIdentifier",
    "rfc5280::ski::intermediate-missing-ski": f"{VERIFIER} a CA without subjectKeyIdentifier",
    "rfc5280::nc::permitted-dns-match-noncritical": f"{VERIFIER} non-critical nameConstraints",
    "rfc5280::pc::ica-noncritical-pc": f"{VERIFIER} non-critical policyConstraints",
    "rfc5280::serial::zero": f"{VERIFIER} a serial number of zero",
    "webpki::aki::root-with-aki-authoritycertissuer": f"{VERIFIER} issuer fields in an "
    "anchor's authorityKeyIdentifier",
    "webpki::aki::root-with-aki-authoritycertserialnumber": f"{VERIFIER} issuer fields in an "
    "anchor's authorityKeyIdentifier (pinaudit reports it as cert_field_unreadable)",
    "webpki::aki::root-with-aki-all-fields": f"{VERIFIER} issuer fields in an anchor's "
    "authorityKeyIdentifier",
    "webpki::aki::root-with-aki-ski-mismatch": f"{VERIFIER} an anchor whose "
    "authorityKeyIdentifier differs from its subjectKeyIdentifier",
    "webpki::cn::ipv4-hex-mismatch": f"{VERIFIER} a commonName missing from the SANs "
    "(an issuance rule clients do not check)",
    "webpki::cn::ipv4-leading-zeros-mismatch": f"{VERIFIER} a commonName missing from the "
    "SANs (an issuance rule clients do not check)",
    "webpki::cn::ipv6-uppercase-mismatch": f"{VERIFIER} a commonName missing from the SANs "
    "(an issuance rule clients do not check)",
    "webpki::cn::ipv6-uncompressed-mismatch": f"{VERIFIER} a commonName missing from the "
    "SANs (an issuance rule clients do not check)",
    "webpki::cn::ipv6-non-rfc5952-mismatch": f"{VERIFIER} a commonName missing from the SANs "
    "(an issuance rule clients do not check)",
    "webpki::cn::punycode-not-in-san": f"{VERIFIER} a commonName missing from the SANs "
    "(an issuance rule clients do not check)",
    "webpki::cn::utf8-vs-punycode-mismatch": f"{VERIFIER} a commonName missing from the SANs "
    "(an issuance rule clients do not check)",
    "webpki::cn::not-in-san": f"{VERIFIER} a commonName missing from the SANs "
    "(an issuance rule clients do not check)",
    "webpki::cn::case-mismatch": f"{VERIFIER} a commonName missing from the SANs "
    "(an issuance rule clients do not check)",
    "webpki::eku::ee-anyeku": f"{VERIFIER} a leaf with anyExtendedKeyUsage",
    "webpki::eku::ee-without-eku": f"{VERIFIER} a leaf without extendedKeyUsage",
    "webpki::eku::root-has-eku": f"{VERIFIER} an anchor with extendedKeyUsage",
    "webpki::san::public-suffix-wildcard-san": f"{VERIFIER} a wildcard on a public suffix",
    "webpki::san::public-suffix-multi-label-wildcard-san": f"{VERIFIER} a wildcard on a "
    "public suffix",
    "webpki::san::public-suffix-private-namespace-wildcard-san": f"{VERIFIER} a wildcard on a "
    "public suffix",
    "webpki::forbidden-dsa-leaf": f"{VERIFIER} a 2048-bit DSA key (weak_key flags DSA "
    "under 2048 bits only)",
    "webpki::forbidden-rsa-not-divisible-by-8-in-root": f"{VERIFIER} an RSA modulus whose "
    "size is not a multiple of 8",
    "webpki::forbidden-rsa-key-not-divisible-by-8-in-leaf": f"{VERIFIER} an RSA modulus whose "
    "size is not a multiple of 8",
}
# The figures and the exact differences were measured with this verifier; another
# version may judge some cases otherwise (the other assertions hold for any).
MEASURED_WITH = "50.0.2"
MEASURED = (157, 158, 198)  # (verifier alone, pinaudit, cases) agreeing with the expected


@dataclass(frozen=True)
class Case:
    id: str
    expected: str  # SUCCESS or FAILURE
    roots: tuple[bytes, ...]  # PEM
    intermediates: tuple[x509.Certificate, ...]
    leaf: x509.Certificate
    when: datetime
    peer: str
    max_depth: int | None


@cache
def cases() -> tuple[Case, ...]:
    suite = json.loads(lzma.decompress(DATA.read_bytes()))
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the negative-serial cases warn on load
        for tc in suite["testcases"]:
            stamp = tc["validation_time"]
            when = datetime.fromisoformat(stamp.replace("Z", "+00:00")) if stamp else DEFAULT_TIME
            out.append(
                Case(
                    id=tc["id"],
                    expected=tc["expected_result"],
                    roots=tuple(p.encode() for p in tc["trusted_certs"]),
                    intermediates=tuple(
                        x509.load_pem_x509_certificate(p.encode())
                        for p in tc["untrusted_intermediates"]
                    ),
                    leaf=x509.load_pem_x509_certificate(tc["peer_certificate"].encode()),
                    when=when,
                    # one case (rfc5280::nc::permitted-dn-match) names no peer
                    peer=(tc["expected_peer_name"] or {"value": ""})["value"],
                    max_depth=tc["max_chain_depth"],
                )
            )
    return tuple(out)


def _der(cert: x509.Certificate) -> bytes:
    from cryptography.hazmat.primitives.serialization import Encoding

    return cert.public_bytes(Encoding.DER)


def verifier_result(case: Case) -> str:
    """cryptography's verifier alone, with every input the case gives."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the negative-serial cases warn on load
        roots = [x509.load_pem_x509_certificate(p) for p in case.roots]
    builder = verification.PolicyBuilder().store(verification.Store(roots)).time(case.when)
    if case.max_depth is not None:
        builder = builder.max_chain_depth(case.max_depth)
    try:
        peer: verification.Subject = x509.IPAddress(ipaddress.ip_address(case.peer))
    except ValueError:
        peer = x509.DNSName(case.peer)
    try:
        builder.build_server_verifier(peer).verify(case.leaf, list(case.intermediates))
    except (verification.VerificationError, ValueError):
        return "FAILURE"
    return "SUCCESS"


def pinaudit_result(case: Case) -> tuple[str, str]:
    """pinaudit's verdict and why: the analysis, the audit and the client-path search."""
    store = store_from_pem(b"".join(case.roots), "limbo-roots.pem")
    served = [_der(case.leaf), *(_der(c) for c in case.intermediates)]
    cache = CertificateCache()
    report = analyze_chain(served, store, case.peer, case.when, cache=cache)
    findings = audit(Endpoint("limbo", case.peer, 443, case.peer, None), report, case.when)
    search_paths(served, store, case.when, cache=cache)
    failing = [
        f for f in findings if f.severity is Severity.CRITICAL and f.check not in NOT_FAILURES
    ]
    if report.status is not PathStatus.VALID or failing:
        why = "; ".join(f"{f.check.value}: {f.message}" for f in failing) or str(report.error)
        return "FAILURE", why
    return "SUCCESS", ""


@cache
def results() -> dict[str, tuple[str, str, str]]:
    """id → (expected, verifier, pinaudit)."""
    return {c.id: (c.expected, verifier_result(c), pinaudit_result(c)[0]) for c in cases()}


def agreement() -> tuple[int, int, int]:
    table = results().values()
    return (
        sum(1 for e, v, _ in table if e == v),
        sum(1 for e, _, p in table if e == p),
        len(table),
    )


def test_the_shipped_suite_is_what_the_provenance_says() -> None:
    suite = json.loads(lzma.decompress(DATA.read_bytes()))
    assert (suite["source"], suite["commit"]) == (
        "C2SP/x509-limbo",
        "8a2e6f41023b1716dc16fe63335e4bb972e4c3f6",
    )
    assert {tc["validation_kind"] for tc in suite["testcases"]} == {"SERVER"}
    assert len(cases()) == 198


@pytest.mark.parametrize("chunk", range(0, 198, 33))
def test_no_case_makes_the_analysis_raise(chunk: int) -> None:
    for case in cases()[chunk : chunk + 33]:
        verdict, _why = pinaudit_result(case)  # raising fails the test with the case's id
        assert verdict in ("SUCCESS", "FAILURE"), case.id


def test_pinaudit_agrees_at_least_as_often_as_the_verifier_alone() -> None:
    verifier, pinaudit, total = agreement()
    assert pinaudit >= verifier
    if cryptography.__version__ == MEASURED_WITH:
        assert (verifier, pinaudit, total) == MEASURED


def test_pinaudit_is_wrong_where_the_verifier_is_right_only_deliberately() -> None:
    worse = {case for case, (e, v, p) in results().items() if p != e and v == e}
    assert worse <= set(DIFFERENCES)


def test_every_difference_from_the_expected_result_is_deliberate_and_documented() -> None:
    differs = {case for case, (e, _v, p) in results().items() if e != p}
    if cryptography.__version__ == MEASURED_WITH:
        assert differs == set(DIFFERENCES)
    documented = DOCS.read_text()
    for case, reason in DIFFERENCES.items():
        assert f"| `{case}` | {reason} |" in documented, case


def test_the_documented_figures_are_the_measured_ones() -> None:
    documented = DOCS.read_text()
    verifier, pinaudit, total = MEASURED
    assert f"`cryptography` {MEASURED_WITH}" in documented
    assert f"| `cryptography` verifier alone | {verifier} / {total} |" in documented
    assert f"| pinaudit (analysis + audit) | {pinaudit} / {total} |" in documented
