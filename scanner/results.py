"""Probe results + inventory → one verdict per endpoint. Pure.

The engine hands over what the network gave (observations and failures per
address); this module turns them into an `EndpointResult` with the chain
analysis and audit of each address. Knowledge gathered across the scan
(intermediates and keys seen at other endpoints) comes in as `ScanKnowledge`,
so a verdict can be recomputed once the whole scan has been seen.
"""

from __future__ import annotations

import enum
import functools
from collections import ChainMap
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from cryptography import x509

from scanner.audit import audit, fold_leaf_expiry, pin_paths, sort_findings
from scanner.caa import CaaLookup, IdentifierTable, bundled_identifiers
from scanner.chain import DEFAULT_CACHE, CertificateCache, analyze_chain
from scanner.clients import assess_clients
from scanner.ct import LogList, bundled_log_list
from scanner.model import (
    ChainReport,
    Check,
    ClientVerdict,
    Endpoint,
    Finding,
    Observation,
    PathStatus,
    Pin,
    PinPath,
    ProbeFailure,
    Severity,
)
from scanner.paths import PathSearch, search_paths
from scanner.protocol_audit import ProtocolFacts, protocol_findings
from scanner.rotation import Readiness, readiness
from scanner.trust import TrustStore

__all__ = [
    "UNJUDGED_REASONS",
    "AddressResult",
    "EndpointResult",
    "ResultStatus",
    "ScanKnowledge",
    "evaluate",
    "internal_error",
    "needs_second_look",
    "not_scanned",
    "unjudged",
    "unreachable",
    "with_rotation",
]


class ResultStatus(str, enum.Enum):
    OK = "ok"  # no warning or critical finding
    DRIFT = "drift"  # a warning or critical finding
    ERROR = "error"  # not scanned: the probe failed or the deadline passed


@dataclass(frozen=True)
class AddressResult:
    """What one address of an endpoint served, and its verdict."""

    address: str | None
    observation: Observation | None
    failure: ProbeFailure | None
    report: ChainReport | None
    findings: tuple[Finding, ...]
    client_verdicts: tuple[ClientVerdict, ...] = ()  # each client pin-set's verdict
    protocol: ProtocolFacts | None = None  # OCSP staple, CT, CAA as judged (when asked)
    # every path a client could build (the validated one first), judged against
    # the endpoint's pin-set; () without pins or without a path
    pin_paths: tuple[PinPath, ...] = ()


@dataclass(frozen=True)
class EndpointResult:
    endpoint: Endpoint
    status: ResultStatus
    findings: tuple[Finding, ...]
    addresses: tuple[AddressResult, ...] = ()
    attempts: int = 0
    rotation: Readiness | None = None  # of the primary address; None when not pinned
    key_changed_at: datetime | None = None  # from --state: when a new leaf key was first seen
    # per client pin-set (Android, OkHttp, ...), judged as that client does; of the primary
    client_verdicts: tuple[ClientVerdict, ...] = ()

    @property
    def primary(self) -> AddressResult | None:
        """The first address that completed a handshake, else the first address."""
        for result in self.addresses:
            if result.observation is not None:
                return result
        return self.addresses[0] if self.addresses else None

    @property
    def failure(self) -> ProbeFailure | None:
        primary = self.primary
        return primary.failure if primary is not None else None

    @property
    def distinct_chains(self) -> int:
        return len({a.observation.served for a in self.addresses if a.observation is not None})

    def worst(self) -> Severity | None:
        return max((f.severity for f in self.findings), key=lambda s: s.rank, default=None)


@dataclass
class ScanKnowledge:
    """Certificates seen anywhere in the scan: a pool of intermediates for
    telling a missing intermediate from an unknown CA, and the keys that
    resolve pins. Grows as results come in; the shell owns it."""

    pool: list[x509.Certificate] = field(default_factory=list)
    keys: dict[Pin, str] = field(default_factory=dict)
    ca_keys: dict[Pin, str] = field(default_factory=dict)  # keys of CA certificates seen
    _seen: set[bytes] = field(default_factory=set)

    def learn(self, served: Iterable[bytes], cache: CertificateCache = DEFAULT_CACHE) -> None:
        for der in served:
            entry = cache.get(der)
            if isinstance(entry, str):
                continue
            cert, facts = entry
            if facts.der_sha256 in self._seen:
                continue
            self._seen.add(facts.der_sha256)
            for pin in facts.pins:
                self.keys.setdefault(pin, facts.subject)
                if facts.is_ca:
                    self.ca_keys.setdefault(pin, facts.subject)
            if facts.is_ca and not facts.self_issued:
                self.pool.append(cert)


def unreachable(
    endpoint: Endpoint, failures: Sequence[ProbeFailure], attempts: int
) -> EndpointResult:
    addresses = tuple(AddressResult(f.address, None, f, None, ()) for f in failures)
    first = failures[0]
    where = f" ({first.address})" if first.address else ""
    tries = f" after {attempts} attempts" if attempts > 1 else ""
    finding = Finding(
        Check.UNREACHABLE, Severity.CRITICAL, f"{first.kind.value}{where}{tries}: {first.detail}"
    )
    return EndpointResult(endpoint, ResultStatus.ERROR, (finding,), addresses, attempts)


def not_scanned(endpoint: Endpoint, why: str) -> EndpointResult:
    finding = Finding(Check.NOT_SCANNED, Severity.CRITICAL, why)
    return EndpointResult(endpoint, ResultStatus.ERROR, (finding,))


def internal_error(endpoint: Endpoint, error: BaseException, attempts: int) -> EndpointResult:
    """An endpoint whose judgement failed on a bug: that endpoint's finding."""
    message = f"internal error while judging this endpoint: {type(error).__name__}: {error}"
    finding = Finding(Check.INTERNAL_ERROR, Severity.CRITICAL, message)
    return EndpointResult(endpoint, ResultStatus.ERROR, (finding,), attempts=attempts)


UNJUDGED_REASONS = {Check.NOT_SCANNED: "not_scanned", Check.INTERNAL_ERROR: "internal_error"}


def unjudged(result: EndpointResult) -> tuple[str, str] | None:
    """(reason, detail) of an endpoint that was never judged although no probe
    failed: the global deadline or an interrupt came first (not_scanned), or
    judging it hit a bug (internal_error)."""
    for finding in result.findings:
        reason = UNJUDGED_REASONS.get(finding.check)
        if reason is not None:
            return reason, finding.message
    return None


def _status(findings: Sequence[Finding]) -> ResultStatus:
    if any(f.severity is not Severity.INFO for f in findings):
        return ResultStatus.DRIFT
    return ResultStatus.OK


def _merge(per_address: Sequence[AddressResult]) -> tuple[Finding, ...]:
    """Findings of the first address, plus those only other addresses have
    (their message says which address)."""
    merged: list[Finding] = []
    keys: set[tuple[object, ...]] = set()
    for n, result in enumerate(per_address):
        for finding in result.findings:
            key = (finding.check, finding.severity, finding.certificate, finding.pin)
            if key in keys:
                continue
            keys.add(key)
            if n > 0 and result.address:
                merged.append(replace(finding, message=f"[{result.address}] {finding.message}"))
            else:
                merged.append(finding)
    return sort_findings(merged)


@functools.cache
def _bundled_logs() -> LogList:
    return bundled_log_list()


@functools.cache
def _bundled_identifiers() -> IdentifierTable:
    return bundled_identifiers()


def evaluate(
    endpoint: Endpoint,
    probed: Sequence[Observation | ProbeFailure],
    store: TrustStore,
    now: datetime,
    *,
    knowledge: ScanKnowledge | None = None,
    attempts: int = 1,
    cache: CertificateCache = DEFAULT_CACHE,
    caa: CaaLookup | None = None,
    logs: LogList | None = None,
    identifiers: IdentifierTable | None = None,
) -> EndpointResult:
    """The verdict for one endpoint from what each of its addresses gave.

    `caa` is the endpoint's CAA lookup (made by the engine when ``caa: true``);
    `logs` and `identifiers` default to the snapshots shipped in scanner/data."""
    observations = [p for p in probed if isinstance(p, Observation)]
    if not observations:
        failures = [p for p in probed if isinstance(p, ProbeFailure)]
        return unreachable(endpoint, failures, attempts)
    pool: Sequence[x509.Certificate] = knowledge.pool if knowledge else ()
    known: Mapping[Pin, str] = (
        ChainMap(knowledge.keys, dict(store.known_keys)) if knowledge else store.known_keys
    )
    per_address: list[AddressResult] = []
    for item in probed:
        if isinstance(item, ProbeFailure):
            finding = Finding(
                Check.UNREACHABLE,
                Severity.CRITICAL,
                f"{item.kind.value} ({item.address}): {item.detail}",
            )
            per_address.append(AddressResult(item.address, None, item, None, (finding,)))
            continue
        report = analyze_chain(
            item.served, store, endpoint.server_name, now, pool=pool, cache=cache
        )
        search = _search(endpoint, report, store, now, cache)
        findings = audit(endpoint, report, now, known_keys=known, search=search)
        verdicts, extra = assess_clients(
            endpoint, report, store, now, known_keys=known, cache=cache, search=search
        )
        protocol, facts = protocol_findings(
            endpoint, item, report, now, caa=caa,
            logs=logs or _bundled_logs(), identifiers=identifiers or _bundled_identifiers(),
        )  # fmt: skip
        if extra or protocol:
            findings = sort_findings(fold_leaf_expiry(findings + extra + protocol))
        judged = pin_paths(endpoint.pinset, report, search)
        per_address.append(
            AddressResult(
                item.address, item, None, report, findings, verdicts, facts, pin_paths=judged
            )
        )
    findings = _merge(per_address)
    primary = next(a for a in per_address if a.report is not None)
    result = EndpointResult(
        endpoint,
        _status(findings),
        findings,
        tuple(per_address),
        attempts,
        client_verdicts=primary.client_verdicts,
    )
    return with_rotation(result, store, knowledge)


def _search(
    endpoint: Endpoint,
    report: ChainReport,
    store: TrustStore,
    now: datetime,
    cache: CertificateCache,
) -> PathSearch | None:
    """Every path a client could build from what was served, when something is
    pinned and the chain validates (only then do the paths differ in more than
    the verdict clients already share: the chain fails for all of them)."""
    pinned = endpoint.pinset is not None and bool(endpoint.pinset.pins)
    if not report.valid or not (pinned or endpoint.client_policies):
        return None
    return search_paths([s.der for s in report.served], store, now, cache=cache)


def with_rotation(
    result: EndpointResult, store: TrustStore, knowledge: ScanKnowledge | None
) -> EndpointResult:
    """The result with its rotation readiness judged on the CA keys known now."""
    primary = result.primary
    if primary is None or primary.report is None:
        return result
    ca_keys: Mapping[Pin, str] = (
        ChainMap(knowledge.ca_keys, dict(store.known_keys)) if knowledge else store.known_keys
    )
    rotation = readiness(result.endpoint.pinset, primary.report, ca_keys, primary.pin_paths)
    return replace(result, rotation=rotation)


def needs_second_look(result: EndpointResult) -> bool:
    """Whether the verdict may change once the whole scan has been seen."""
    if any(f.check is Check.UNRESOLVED_PIN for f in result.findings):
        return True
    return any(
        a.report is not None and a.report.status is PathStatus.UNTRUSTED for a in result.addresses
    )
