"""Client verdicts → findings for one endpoint's chain. Pure.

`assess_clients` is what the scan calls for each address: every client pin
configuration that applies to the endpoint judged on the chain (the
validated path and the other candidate paths cross-signs allow), the failure
attached as the client would show it, and the findings those verdicts give,
with the generic rotation-risk checks run on each client's pins.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from cryptography.hazmat.primitives.serialization import Encoding

from scanner.audit import audit, path_budget_finding
from scanner.chain import DEFAULT_CACHE, CertificateCache
from scanner.clients.failures import failure_formats
from scanner.clients.judge import (
    FAILS,
    Environment,
    Path,
    judge_endpoint,
    jvm_chain,
    okhttp_on_jvm,
    utc_text,
)
from scanner.model import (
    ChainReport,
    Check,
    Client,
    ClientVerdict,
    Endpoint,
    Finding,
    Pin,
    Pinset,
    Severity,
    Verdict,
)
from scanner.paths import PathSearch, search_paths
from scanner.trust import TrustStore

__all__ = ["assess_clients", "client_findings"]


_ROTATION_CHECKS = frozenset(
    {
        Check.SINGLE_PIN,
        Check.NO_BACKUP_PIN,
        Check.LEAF_ONLY_PIN,
        Check.LEGACY_SHA1_PIN,
        Check.UNRESOLVED_PIN,
        Check.PIN_OUTSIDE_PATH,
    }
)


def _who(verdict: ClientVerdict) -> str:
    return f"{verdict.client.value} (pin-set {verdict.policy!r})"


def client_findings(
    endpoint: Endpoint,
    verdicts: Sequence[ClientVerdict],
    report: ChainReport,
    now: datetime,
    *,
    known_keys: Mapping[Pin, str] | None = None,
) -> tuple[Finding, ...]:
    """Findings of the client verdicts, plus the generic rotation-risk checks on
    each client's pins (deduplicated)."""
    C, W, INFO = Severity.CRITICAL, Severity.WARNING, Severity.INFO
    findings: list[Finding] = []
    for v in verdicts:
        who = _who(v)
        if v.verdict is Verdict.CONFIG_ERROR:
            findings.append(Finding(Check.CLIENT_CONFIG_ERROR, C, f"{who}: {v.detail}"))
        elif v.verdict is Verdict.FAIL_ENFORCED:
            findings.append(
                Finding(Check.CLIENT_PIN_FAILURE, C, f"{who} refuses {v.host}: {v.detail}")
            )
        elif v.verdict is Verdict.FAIL_REPORT_ONLY:
            findings.append(
                Finding(Check.CLIENT_PIN_FAILURE, W, f"{who} reports {v.host}: {v.detail}")
            )
        elif v.verdict is Verdict.NOT_ENFORCED_EXPIRED:
            findings.append(Finding(Check.PINSET_EXPIRED, W, f"{who}: {v.detail}"))
        elif v.verdict is Verdict.BYPASSED_LOCAL_ANCHOR:
            findings.append(Finding(Check.PINS_BYPASSED, INFO, f"{who}: {v.detail}"))
        elif v.verdict in (Verdict.PATH_DEPENDENT, Verdict.AMBIGUOUS):
            risky = any(p.verdict in FAILS for p in v.paths) or any(
                verdict in FAILS for _, verdict in v.alternatives
            )
            findings.append(
                Finding(Check.CLIENT_AMBIGUOUS, C if risky else W, f"{who}: {v.detail}")
            )
        for note in v.notes:
            findings.append(Finding(Check.PINS_NOT_APPLIED, W, f"{who}: {note}"))
        for dead in v.dead_pins:
            why = (
                "TrustKit-Android compares pin strings and this one is not written the way it "
                "writes the key's pin (padded standard base64)"
                if v.client is Client.TRUSTKIT
                else "wrong digest length"
            )
            findings.append(
                Finding(
                    Check.DEAD_PIN,
                    W,
                    f"{who}: {dead} is accepted by the client but can never match ({why})",
                )
            )
        if v.verdict in (Verdict.PASS, *FAILS) and v.enforce_until is not None:
            left = v.enforce_until - now
            if timedelta(0) <= left <= timedelta(days=endpoint.pinset_warn_days):
                findings.append(
                    Finding(
                        Check.PINSET_EXPIRING,
                        W,
                        f"{who}: the pins stop being enforced from {utc_text(v.enforce_until)} "
                        f"(in {left.days} days)",
                    )
                )
        if v.verdict in (Verdict.PASS, Verdict.NOT_ENFORCED, *FAILS):
            findings += _rotation(endpoint, v, report, now, known_keys or {})
    unique: dict[tuple[object, ...], Finding] = {}
    for finding in findings:
        key: tuple[object, ...] = (
            finding.check,
            finding.severity,
            finding.certificate,
            finding.pin,
        )
        first = unique.get(key)
        if first is None:
            unique[key] = finding
        elif finding.check not in _ROTATION_CHECKS and finding.message not in first.message:
            # one finding per check and severity (results._merge keys on them): the
            # clients' messages are joined
            unique[key] = replace(first, message=f"{first.message}; {finding.message}")
    return tuple(unique.values())


def _rotation(
    endpoint: Endpoint,
    verdict: ClientVerdict,
    report: ChainReport,
    now: datetime,
    known_keys: Mapping[Pin, str],
) -> list[Finding]:
    pins = tuple(dict.fromkeys(verdict.pins + verdict.leaf_pins))
    name = f"{verdict.policy} ({verdict.client.value})"
    probe = replace(endpoint, pinset=Pinset(name, pins), client_policies=())
    return [
        f for f in audit(probe, report, now, known_keys=known_keys) if f.check in _ROTATION_CHECKS
    ]


def assess_clients(
    endpoint: Endpoint,
    report: ChainReport,
    store: TrustStore,
    now: datetime,
    *,
    known_keys: Mapping[Pin, str] | None = None,
    cache: CertificateCache = DEFAULT_CACHE,
    env: Environment | None = None,
    search: PathSearch | None = None,
) -> tuple[tuple[ClientVerdict, ...], tuple[Finding, ...]]:
    """Every client verdict on one address's chain, with the client's own failure
    format attached, and the findings they give. `search`: the client paths the
    caller listed already (it then reports a search that ran out of budget);
    without it they are listed here."""
    if not endpoint.client_policies:
        return (), ()
    served = [s.der for s in report.served]
    extra: tuple[Path, ...] = ()
    budget: Finding | None = None
    if report.valid and search is not None:
        extra = search.paths
    elif report.valid:
        search = search_paths(served, store, now, cache=cache)
        extra = search.paths
        budget = path_budget_finding(search.exhausted, len(report.served))
    # OkHttp on a JVM pins against the chain its own cleaner builds from what was served
    jvm = {
        policy.name: jvm_chain(policy, served, store.anchors, cache=cache)
        for policy in endpoint.client_policies
        if okhttp_on_jvm(policy) and report.valid
    }
    verdicts = judge_endpoint(
        endpoint, endpoint.client_policies, report, now, paths=extra, env=env, jvm=jvm
    )
    blocked = any(v.verdict in FAILS or v.verdict is Verdict.CHAIN_INVALID for v in verdicts)
    anchors_der = _anchor_ders(report, store) if blocked else {}
    policies = {p.name: p for p in endpoint.client_policies}
    shown = tuple(
        replace(
            v,
            failure=failure_formats(
                v,
                report,
                port=endpoint.port,
                now=now,
                anchors_der=anchors_der,
                platform=policies[v.policy].platform if v.policy in policies else None,
                policy=policies.get(v.policy),
                jvm=jvm.get(v.policy),
            )
            or None,
        )
        if v.verdict in FAILS
        or (v.client is Client.TRUSTKIT and v.verdict is Verdict.CHAIN_INVALID)
        else v
        for v in verdicts
    )
    findings = client_findings(endpoint, shown, report, now, known_keys=known_keys)
    return shown, (*findings, budget) if budget is not None else findings


def _anchor_ders(report: ChainReport, store: TrustStore) -> dict[bytes, bytes]:
    """DER of the path's anchor when it came from the store (for report formats)."""
    if not report.path or report.path[-1].served_position is not None:
        return {}
    anchor = report.path[-1].facts
    for cert in store.anchors:
        der = cert.public_bytes(Encoding.DER)
        if hashlib.sha256(der).digest() == anchor.der_sha256:
            return {anchor.der_sha256: der}
    return {}
