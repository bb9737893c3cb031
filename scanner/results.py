"""Probe results + inventory → one verdict per endpoint. Pure.

The engine hands over what the network gave (observations and failures per
address); this module turns them into an `EndpointResult` with the chain
analysis and audit of each address. Knowledge gathered across the scan
(intermediates and keys seen at other endpoints) comes in as `ScanKnowledge`,
so a verdict can be recomputed once the whole scan has been seen.

The second look is incremental. A verdict reads scan-wide knowledge only
through lookups (is this pin the key of a certificate seen? of a CA seen?
which intermediates were seen?), and `evaluate` notes in a `Dependencies`
every lookup whose answer may still change: a pin the scan does not know yet,
the pool of intermediates if the chain analysis consulted it. The knowledge
keeps an index of those (pin → endpoints waiting for it). When a later
endpoint serves that key, the waiting endpoints are marked; at the end of the
scan only marked endpoints are judged again (and one that only waits for CA
keys gets its rotation readiness again, nothing else). Judging is a pure
function of the endpoint, what it served and those answers, so an endpoint
none of whose answers changed already has its final verdict, and a pin that
is never seen costs nothing at the end.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from cryptography import x509

from scanner.audit import audit, fold_leaf_expiry, pin_paths, sort_findings
from scanner.caa import CaaLookup, IdentifierTable, bundled_identifiers
from scanner.chain import DEFAULT_CACHE, AnalysisCache, CertificateCache, analyze_chain
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
    "Dependencies",
    "EndpointResult",
    "Rejudge",
    "ResultStatus",
    "ScanKnowledge",
    "analyse",
    "analysed",
    "evaluate",
    "internal_error",
    "needs_search",
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


@dataclass(frozen=True, slots=True)
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


@dataclass(frozen=True, slots=True)
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


class Rejudge(enum.IntEnum):
    """What an endpoint needs once knowledge it depends on has grown."""

    ROTATION = 1  # only CA keys it looked up became known: its rotation readiness
    FULL = 2  # a key or the pool of intermediates: the whole verdict


@dataclass(slots=True)
class Dependencies:
    """What one verdict read of the scan-wide knowledge that may still change."""

    keys: set[Pin] = field(default_factory=set)  # looked up, not (yet) seen in the scan
    ca_keys: set[Pin] = field(default_factory=set)  # looked up, no CA with that key seen yet
    pool: int | None = None  # the pool's size when the analysis consulted it
    everything: bool = False  # the knowledge was read whole (iterated): any change counts


class _Known(Mapping[Pin, str]):
    """Keys the scan has seen, then the trust store's: the mapping the audit and
    rotation readiness read. A lookup whose answer changes if a later endpoint
    serves the key is noted in `pending`: whether a pin is known when it is
    not, the subject of a pin only the store knows (the scan's comes first)."""

    __slots__ = ("_pending", "_scan", "_store", "_whole")

    def __init__(
        self,
        scan: Mapping[Pin, str],
        store: Mapping[Pin, str],
        pending: set[Pin] | None,
        whole: Dependencies | None,
    ) -> None:
        self._scan = scan
        self._store = store
        self._pending = pending
        self._whole = whole

    def _unseen(self, pin: object) -> None:
        if self._pending is not None and isinstance(pin, Pin):
            self._pending.add(pin)

    def __getitem__(self, pin: Pin) -> str:
        value = self._scan.get(pin)
        if value is not None:
            return value
        self._unseen(pin)
        return self._store[pin]

    def __contains__(self, pin: object) -> bool:
        if pin in self._scan or pin in self._store:
            return True  # stays true: the scan's keys only grow
        self._unseen(pin)
        return False

    def __bool__(self) -> bool:
        # Always true: ``known_keys or {}`` must keep this view (and its notes),
        # and asking whether it is empty is not reading it whole.
        return True

    def __iter__(self) -> Iterator[Pin]:
        if self._whole is not None:
            self._whole.everything = True
        yield from self._scan
        yield from (pin for pin in self._store if pin not in self._scan)

    def __len__(self) -> int:
        if self._whole is not None:
            self._whole.everything = True
        return len(self._scan) + sum(1 for pin in self._store if pin not in self._scan)


class _Pool(Sequence[x509.Certificate]):
    """The scan's intermediates as the chain analysis sees them: any look at
    them is noted (the analysis then depends on what the pool holds)."""

    __slots__ = ("_certs", "_depends")

    def __init__(self, certs: list[x509.Certificate], depends: Dependencies) -> None:
        self._certs = certs
        self._depends = depends

    def _note(self) -> None:
        self._depends.pool = len(self._certs)

    def __len__(self) -> int:
        self._note()
        return len(self._certs)

    def __iter__(self) -> Iterator[x509.Certificate]:
        self._note()
        return iter(self._certs)

    def __getitem__(self, index: int) -> x509.Certificate:  # type: ignore[override]
        self._note()
        return self._certs[index]

    def __contains__(self, cert: object) -> bool:
        self._note()
        return cert in self._certs


@dataclass
class ScanKnowledge:
    """Certificates seen anywhere in the scan: a pool of intermediates for
    telling a missing intermediate from an unknown CA, and the keys that
    resolve pins. Grows as results come in; the shell owns it.

    It also indexes who waits for what (`watch`): each pin some verdict
    looked up without finding it, with the endpoints (tokens) that did, and
    the endpoints whose chain analysis consulted the pool. `learn` marks the
    waiting endpoints when a key or an intermediate arrives; `take_changed`
    hands them over for the second look."""

    pool: list[x509.Certificate] = field(default_factory=list)
    keys: dict[Pin, str] = field(default_factory=dict)
    ca_keys: dict[Pin, str] = field(default_factory=dict)  # keys of CA certificates seen
    _seen: set[bytes] = field(default_factory=set)
    _waiting_keys: dict[Pin, list[Hashable]] = field(default_factory=dict)
    _waiting_ca: dict[Pin, list[Hashable]] = field(default_factory=dict)
    _waiting_pool: list[Hashable] = field(default_factory=list)
    _everything: list[Hashable] = field(default_factory=list)
    _changed: dict[Hashable, Rejudge] = field(default_factory=dict)

    def learn(self, served: Iterable[bytes], cache: CertificateCache = DEFAULT_CACHE) -> None:
        for der in served:
            entry = cache.get(der)
            if isinstance(entry, str):
                continue
            cert, facts = entry
            if facts.der_sha256 in self._seen:
                continue
            self._seen.add(facts.der_sha256)
            self.learn_facts(facts.pins, facts.subject, is_ca=facts.is_ca)
            if facts.is_ca and not facts.self_issued:
                self.add_to_pool(cert)

    def learn_facts(self, pins: Iterable[Pin], subject: str, *, is_ca: bool) -> None:
        """Keys of one certificate seen (here or, with workers, in another process)."""
        for pin in pins:
            if pin not in self.keys:
                self.keys[pin] = subject
                self._mark(self._waiting_keys.pop(pin, ()), Rejudge.FULL)
            if is_ca and pin not in self.ca_keys:
                self.ca_keys[pin] = subject
                self._mark(self._waiting_ca.pop(pin, ()), Rejudge.ROTATION)

    def add_to_pool(self, cert: x509.Certificate) -> None:
        if cert in self.pool:
            return
        self.pool.append(cert)
        self._mark(self._waiting_pool, Rejudge.FULL)
        self._waiting_pool = []

    def _mark(self, tokens: Iterable[Hashable], level: Rejudge) -> None:
        for token in tokens:
            if self._changed.get(token, 0) < level:
                self._changed[token] = level
        if self._everything:
            for token in self._everything:
                self._changed[token] = Rejudge.FULL
            self._everything = []

    def known_keys(self, store: Mapping[Pin, str], depends: Dependencies | None) -> _Known:
        """The keys a verdict sees (the scan's, then the store's), noting lookups."""
        return _Known(self.keys, store, None if depends is None else depends.keys, depends)

    def known_ca_keys(self, store: Mapping[Pin, str], depends: Dependencies | None) -> _Known:
        pending = None if depends is None else depends.ca_keys
        return _Known(self.ca_keys, store, pending, depends)

    def pool_view(self, depends: Dependencies | None) -> Sequence[x509.Certificate]:
        return self.pool if depends is None else _Pool(self.pool, depends)

    def watch(self, token: Hashable, depends: Dependencies) -> None:
        """Index a verdict's pending lookups under `token` (an endpoint's)."""
        if depends.everything:
            self._everything.append(token)
            return
        for pin in depends.keys:
            self._waiting_keys.setdefault(pin, []).append(token)
        for pin in depends.ca_keys:
            self._waiting_ca.setdefault(pin, []).append(token)
        if depends.pool is not None:
            if depends.pool != len(self.pool):  # pragma: no cover - learn runs before judging
                self._changed[token] = Rejudge.FULL
            else:
                self._waiting_pool.append(token)

    def take_changed(self) -> dict[Hashable, Rejudge]:
        """Endpoints whose pending lookups have other answers now, and what to redo."""
        changed, self._changed = self._changed, {}
        return changed

    def waiting(self) -> int:
        """How many (pin, endpoint) lookups are pending (for figures and tests)."""
        return (
            sum(len(t) for t in self._waiting_keys.values())
            + sum(len(t) for t in self._waiting_ca.values())
            + len(self._waiting_pool)
            + len(self._everything)
        )


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
    analyses: AnalysisCache | None = None,
    depends: Dependencies | None = None,
) -> EndpointResult:
    """The verdict for one endpoint from what each of its addresses gave.

    `caa` is the endpoint's CAA lookup (made by the engine when ``caa: true``);
    `logs` and `identifiers` default to the snapshots shipped in scanner/data.
    `analyses` caches chain analyses per distinct chain; `depends`, when
    given, receives the lookups of `knowledge` whose answers may still
    change (see `ScanKnowledge.watch`)."""
    observations = [p for p in probed if isinstance(p, Observation)]
    if not observations:
        failures = [p for p in probed if isinstance(p, ProbeFailure)]
        return unreachable(endpoint, failures, attempts)
    pool: Sequence[x509.Certificate] = knowledge.pool_view(depends) if knowledge else ()
    known: Mapping[Pin, str] = (
        knowledge.known_keys(store.known_keys, depends) if knowledge else store.known_keys
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
            item.served, store, endpoint.server_name, now, pool=pool, cache=cache,
            analyses=analyses,
        )  # fmt: skip
        search = _search(endpoint, report, store, now, cache, analyses=analyses)
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
    return with_rotation(result, store, knowledge, depends)


def _search(
    endpoint: Endpoint,
    report: ChainReport,
    store: TrustStore,
    now: datetime,
    cache: CertificateCache,
    *,
    analyses: AnalysisCache | None = None,
) -> PathSearch | None:
    """Every path a client could build from what was served, when something is
    pinned and the chain validates (only then do the paths differ in more than
    the verdict clients already share: the chain fails for all of them).
    Searched once per distinct chain when `analyses` is given."""
    if not needs_search(endpoint, report):
        return None
    served = [s.der for s in report.served]
    if analyses is None:
        return search_paths(served, store, now, cache=cache)
    return analyses.remember_search(
        served, store, now, lambda: search_paths(served, store, now, cache=cache)
    )


def analysed(
    endpoint: Endpoint,
    served: Sequence[bytes],
    store: TrustStore,
    now: datetime,
    *,
    pool: Sequence[x509.Certificate],
    cache: CertificateCache,
    analyses: AnalysisCache,
) -> bool:
    """Whether judging `endpoint` on `served` finds its chain analysis (and its
    client-path search, when it needs one) in `analyses`: then judging costs
    little, else it validates, diagnoses and searches (see `analyse`)."""
    server_name = endpoint.server_name
    report = analyses.cached_analysis(served, store, server_name, now, pool=pool, cache=cache)
    if report is None:
        return False
    return not needs_search(endpoint, report) or analyses.has_search(served, store, now)


def analyse(
    endpoint: Endpoint,
    served: Sequence[bytes],
    store: TrustStore,
    now: datetime,
    *,
    pool: Sequence[x509.Certificate],
    cache: CertificateCache,
    analyses: AnalysisCache,
) -> None:
    """Fill `analyses` with what judging `endpoint` on `served` will ask for:
    the CPU-heavy part of `evaluate` (path validation, diagnosis, client-path
    search), bounded by the verifier's and `paths.Budget`'s limits. Safe to
    run in a worker thread given a `pool` of its own (a snapshot)."""
    report = analyze_chain(
        served, store, endpoint.server_name, now, pool=pool, cache=cache, analyses=analyses
    )
    _search(endpoint, report, store, now, cache, analyses=analyses)


def needs_search(endpoint: Endpoint, report: ChainReport) -> bool:
    """Whether judging `endpoint` lists the client paths of its (valid) chain."""
    pinned = endpoint.pinset is not None and bool(endpoint.pinset.pins)
    return report.valid and (pinned or bool(endpoint.client_policies))


def with_rotation(
    result: EndpointResult,
    store: TrustStore,
    knowledge: ScanKnowledge | None,
    depends: Dependencies | None = None,
) -> EndpointResult:
    """The result with its rotation readiness judged on the CA keys known now."""
    primary = result.primary
    if primary is None or primary.report is None:
        return result
    ca_keys: Mapping[Pin, str] = (
        knowledge.known_ca_keys(store.known_keys, depends) if knowledge else store.known_keys
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
