"""Observation + chain report + now → the protocol findings: TLS version, the
OCSP staple, Certificate Transparency, CAA. Pure.

Each judgement runs only where the endpoint asks for it (``ocsp: true``,
``ct: [chrome, apple]``, ``caa: true``); the TLS version is always judged
against the endpoint's ``tls_min_version``. The facts behind the findings
(`ProtocolFacts`) go to the JSON report and the metrics.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509

from scanner.caa import (
    CaaLookup,
    CaaOutcome,
    CaaVerdict,
    IdentifierTable,
    caa_name,
    judge_caa,
)
from scanner.ct import (
    CtPolicy,
    CtVerdict,
    LogList,
    SctSource,
    embedded_scts,
    judge_ct,
    parse_sct_list,
    sct_list_of_extension,
)
from scanner.model import (
    ChainReport,
    Check,
    Endpoint,
    Finding,
    Observation,
    PathStatus,
    Severity,
    TrustKind,
)
from scanner.ocsp import OcspStatus, StapleReport, judge_staple, staple_scts
from scanner.tlsversion import below

__all__ = ["ProtocolFacts", "caa_query_name", "issuer_organization", "protocol_findings"]

C, W, INFO = Severity.CRITICAL, Severity.WARNING, Severity.INFO
_PUBLIC = frozenset({TrustKind.CERTIFI, TrustKind.SYSTEM})


@dataclass(frozen=True, slots=True)
class ProtocolFacts:
    """What was judged for one address, besides the chain."""

    staple: StapleReport | None = None  # None: not asked (ocsp: false)
    ct: tuple[CtVerdict, ...] = ()  # one per policy asked, when the leaf is publicly trusted
    caa: CaaVerdict | None = None  # None: not asked, or nothing to look up


# What an address without OCSP, CT or CAA judging has: one for the whole scan.
_NO_FACTS = ProtocolFacts()


# What reading a hostile certificate's fields raises besides ValueError.
_X509_ERRORS = (ValueError, x509.DuplicateExtension, x509.UnsupportedGeneralNameType,
                x509.InvalidVersion)  # fmt: skip


def _leaf(observation: Observation) -> x509.Certificate | None:
    if not observation.served:
        return None
    try:
        return x509.load_der_x509_certificate(observation.served[0])
    except _X509_ERRORS:
        return None


def _issuer_der(report: ChainReport) -> bytes | None:
    """The leaf's issuer as served (the path's second certificate), if it was."""
    if len(report.path) < 2 or report.path[1].served_position is None:
        return None
    position = report.path[1].served_position
    return report.served[position].der if position < len(report.served) else None


def issuer_organization(leaf_der: bytes) -> str | None:
    """The organizationName of the leaf's issuer (what CAA identifiers are keyed by)."""
    try:
        leaf = x509.load_der_x509_certificate(leaf_der)
        values = leaf.issuer.get_attributes_for_oid(x509.NameOID.ORGANIZATION_NAME)
    except _X509_ERRORS:
        return None
    return str(values[0].value) if values else None


def caa_query_name(endpoint: Endpoint, leaf_der: bytes) -> tuple[str, bool]:
    """The name whose CAA set governs the endpoint, and whether by wildcard."""
    try:
        leaf = x509.load_der_x509_certificate(leaf_der)
        sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = sans.get_values_for_type(x509.DNSName)
    except (*_X509_ERRORS, x509.ExtensionNotFound):
        names = []
    return caa_name(endpoint.server_name, names)


def _tls_version(endpoint: Endpoint, observation: Observation) -> list[Finding]:
    if not below(observation.tls_version, endpoint.tls_min_version):
        return []
    return [
        Finding(
            Check.OLD_TLS_VERSION,
            endpoint.tls_version_severity,
            f"the handshake negotiated {observation.tls_version or 'no version'}, below "
            f"{endpoint.tls_min_version} (TLS 1.0 and 1.1 are deprecated: RFC 8996)",
        )
    ]


def _staple(report: StapleReport) -> list[Finding]:
    found: list[Finding] = []
    if report.status is OcspStatus.REVOKED:
        when = report.revocation_time.isoformat() if report.revocation_time else "an unknown time"
        why = f" ({report.revocation_reason})" if report.revocation_reason else ""
        found.append(
            Finding(Check.OCSP_REVOKED, C, f"the stapled OCSP response says revoked at {when}{why}")
        )
    elif report.status is OcspStatus.UNKNOWN:
        found.append(
            Finding(Check.OCSP_UNKNOWN, W, "the stapled OCSP response says the leaf is unknown")
        )
    elif report.status is OcspStatus.INVALID:
        found.append(Finding(Check.OCSP_INVALID, W, f"the stapled OCSP response: {report.error}"))
    elif report.status is OcspStatus.ABSENT and report.must_staple:
        found.append(
            Finding(
                Check.MUST_STAPLE_MISSING,
                C,
                "the leaf requires a staple (TLS Feature status_request) and none was stapled",
            )
        )
    if report.stale and report.next_update is not None:
        found.append(
            Finding(
                Check.OCSP_STALE,
                W,
                f"the stapled OCSP response expired at {report.next_update.isoformat()} "
                "(nextUpdate)",
            )
        )
    return found


def _ct(
    endpoint: Endpoint,
    observation: Observation,
    report: ChainReport,
    leaf: x509.Certificate,
    logs: LogList,
) -> tuple[list[Finding], tuple[CtVerdict, ...]]:
    if report.status is not PathStatus.VALID or endpoint.trust.kind not in _PUBLIC:
        return [], ()  # CT policies apply to publicly trusted leaves only
    scts = list(embedded_scts(leaf))
    if observation.tls_scts:
        scts += parse_sct_list(observation.tls_scts, SctSource.TLS)
    if observation.ocsp_response:
        extension = staple_scts(observation.ocsp_response)
        scts += parse_sct_list(sct_list_of_extension(extension), SctSource.OCSP)
    verdicts = tuple(
        judge_ct(leaf.not_valid_before_utc, leaf.not_valid_after_utc, scts, logs, CtPolicy(p))
        for p in endpoint.ct
    )
    found = [
        Finding(Check.CT_INSUFFICIENT, C, f"{v.policy.value} CT policy: {v.reason}")
        for v in verdicts
        if not v.compliant
    ]
    return found, verdicts


def _caa(
    endpoint: Endpoint, lookup: CaaLookup, leaf_der: bytes, identifiers: IdentifierTable
) -> tuple[list[Finding], CaaVerdict]:
    _, wildcard = caa_query_name(endpoint, leaf_der)
    if endpoint.caa_identifiers:
        identifiers = identifiers.with_declared(dict(endpoint.caa_identifiers))
    ids = identifiers.for_issuer(issuer_organization(leaf_der))
    verdict = judge_caa(lookup, wildcard=wildcard, issuer_identifiers=ids)
    found: list[Finding] = []
    if verdict.outcome is CaaOutcome.NOT_AUTHORIZED:
        found.append(Finding(Check.CAA_UNAUTHORIZED, W, f"CAA for {lookup.name}: {verdict.detail}"))
    elif verdict.outcome is CaaOutcome.LOOKUP_FAILED:
        found.append(
            Finding(Check.CAA_LOOKUP_FAILED, W, f"CAA for {lookup.name}: {verdict.detail}")
        )
    elif verdict.outcome is CaaOutcome.NO_CAA and endpoint.pinset is not None:
        found.append(
            Finding(
                Check.CAA_MISSING,
                INFO,
                f"{lookup.name} is pinned and has no CAA records: CAA restricts which CA "
                "may issue for it without pinning's risks",
            )
        )
    return found, verdict


def protocol_findings(
    endpoint: Endpoint,
    observation: Observation,
    report: ChainReport,
    now: datetime,
    *,
    logs: LogList,
    identifiers: IdentifierTable,
    caa: CaaLookup | None = None,
) -> tuple[tuple[Finding, ...], ProtocolFacts]:
    """The protocol findings of one address, and the facts behind them."""
    found = _tls_version(endpoint, observation)
    if not (endpoint.ocsp or endpoint.ct or endpoint.caa):
        return tuple(found), _NO_FACTS
    with warnings.catch_warnings():
        # Odd but readable fields (a negative serial) make the library warn
        # when read: a served certificate must not print to the scan's stderr.
        warnings.simplefilter("ignore")
        more, facts = _judged(
            endpoint, observation, report, now, logs=logs, identifiers=identifiers, caa=caa
        )
    return (*found, *more), facts


def _judged(  # the judgements an endpoint asked for
    endpoint: Endpoint,
    observation: Observation,
    report: ChainReport,
    now: datetime,
    *,
    logs: LogList,
    identifiers: IdentifierTable,
    caa: CaaLookup | None,
) -> tuple[tuple[Finding, ...], ProtocolFacts]:
    found: list[Finding] = []
    leaf = _leaf(observation)
    if leaf is None:
        return tuple(found), _NO_FACTS
    staple = None
    if endpoint.ocsp and observation.ocsp_response is not None:
        staple = judge_staple(observation.ocsp_response, observation.served[0],
                              _issuer_der(report), now)  # fmt: skip
        if staple is not None and not (
            staple.status is OcspStatus.INVALID and _issuer_der(report) is None
        ):  # an issuer that was not served is the chain's finding, not the staple's
            found += _staple(staple)
    ct_verdicts: tuple[CtVerdict, ...] = ()
    if endpoint.ct:
        more, ct_verdicts = _ct(endpoint, observation, report, leaf, logs)
        found += more
    caa_verdict = None
    if endpoint.caa and caa is not None:
        more, caa_verdict = _caa(endpoint, caa, observation.served[0], identifiers)
        found += more
    return tuple(found), ProtocolFacts(staple, ct_verdicts, caa_verdict)
