"""Scan results → the Prometheus samples of DESIGN §5. Pure.

No clock, no I/O and no prometheus_client here: the shell passes the scan's
times in (`ScanRecord`), and `exporters/prometheus.py` hands the resulting
`Exposition` to prometheus_client. The families, their labels and help are
the contract in ``scanner.exporters.contract``.

Label rules:
- per-endpoint series carry ``endpoint`` plus every inventory label key used
  by any endpoint of the scan, so that a family's label set is uniform; an
  endpoint without that key gets ``""`` (which Prometheus treats as absent);
- per-address families also carry ``address`` when any endpoint of the scan
  has ``all_addresses``: the probed address for those endpoints, ``""`` for
  the others (so their series identity never follows DNS);
- label names are never rewritten: the inventory loader rejects names that
  are not Prometheus label names or clash with ours (``RESERVED_LABELS``);
- label values come from the inventory and closed sets, except on
  ``_info`` series, whose certificate-derived values are clipped to
  ``MAX_INFO_VALUE`` characters.

Retention: when a probe fails, the chain and pin facts of the last
successful probe of the same endpoint (and address) stay exported for
``retention`` beside ``pinaudit_endpoint_up 0``; `History` carries them from
one scan to the next (the exporter keeps it; a one-shot job has none).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from scanner.audit import pins_enforced, pinset_expiry
from scanner.errors import ConfigError
from scanner.exporters.contract import (
    BY_NAME,
    MAX_CHAIN_POSITIONS,
    MAX_INFO_VALUE,
    NOT_SCANNED_REASON,
    ORDER,
    RESERVED_LABELS,
    SPECS,
    MetricSpec,
    Scope,
    own_label_names,
)
from scanner.exporters.jsonreport import role
from scanner.model import CertFacts, ChainReport, Endpoint
from scanner.protocol_audit import ProtocolFacts
from scanner.results import AddressResult, EndpointResult, ResultStatus, unjudged
from scanner.rotation import Rotation
from scanner.settings import DEFAULT_RETENTION

__all__ = [
    "BuildInfo",
    "EndpointId",
    "Exposition",
    "Family",
    "History",
    "ReloadState",
    "Retained",
    "ScanRecord",
    "endpoint_id",
    "examined_certificates",
    "job_exposition",
    "offpath_certificates",
    "process_exposition",
    "scan_exposition",
]

# --- the result: families of samples -----------------------------------------


@dataclass(frozen=True)
class Family:
    """One metric family, gauge typed: label names, then (label values, value) pairs."""

    name: str
    help: str
    label_names: tuple[str, ...]
    samples: tuple[tuple[tuple[str, ...], float], ...]


@dataclass(frozen=True)
class Exposition:
    """An immutable set of families, in contract order: what one scrape shows."""

    families: tuple[Family, ...] = ()

    def merged(self, *others: Exposition) -> Exposition:
        families = [f for part in (self, *others) for f in part.families]
        names = [f.name for f in families]
        if len(set(names)) != len(names):
            raise ValueError(f"families appear twice: {sorted(names)}")
        return Exposition(tuple(sorted(families, key=lambda f: ORDER.get(f.name, len(ORDER)))))

    def samples(self) -> set[tuple[str, frozenset[tuple[str, str]], float]]:
        """(name, labels, value) of every sample: what tests compare."""
        return {
            (f.name, frozenset(zip(f.label_names, values, strict=True)), value)
            for f in self.families
            for values, value in f.samples
        }


# --- the inputs ---------------------------------------------------------------

EndpointId = tuple[str, str, int, str | None]  # name, host, port, sni


def endpoint_id(endpoint: Endpoint) -> EndpointId:
    return (endpoint.name, endpoint.host, endpoint.port, endpoint.sni)


@dataclass(frozen=True)
class ScanRecord:
    """A complete scan, with the times only the shell can know."""

    results: tuple[EndpointResult, ...]
    as_of: datetime  # the `now` the verdicts were judged at (--now)
    finished_at: datetime  # wall clock at the end of the scan
    duration: float  # seconds
    shards: int | None = None  # N of --shard I/N
    interval: float | None = None  # the exporter's --interval, seconds


@dataclass(frozen=True)
class Retained:
    """The last successful probe of one address, and when it was read."""

    address: AddressResult
    read_at: datetime


@dataclass(frozen=True)
class History:
    """What the previous scans read successfully, per endpoint and address key."""

    addresses: Mapping[EndpointId, Mapping[str, Retained]] = field(default_factory=dict)
    divergence: Mapping[EndpointId, tuple[int, datetime]] = field(default_factory=dict)


@dataclass(frozen=True)
class ReloadState:
    """Outcome of the exporter's last inventory (re)load, and when a load last
    succeeded (the start counts)."""

    success: bool
    at: datetime
    last_success: datetime | None = None


@dataclass(frozen=True)
class BuildInfo:
    """The labels of pinaudit_build_info; the shell fills in what it can know."""

    version: str
    revision: str = "unknown"
    python_version: str = "unknown"


# --- building -------------------------------------------------------------------


class _Families:
    """Collects samples per family with the scan's uniform label names."""

    def __init__(self, inventory_keys: Sequence[str], with_address: bool) -> None:
        clash = sorted(set(inventory_keys) & (own_label_names() | RESERVED_LABELS))
        if clash:
            raise ConfigError(f"inventory label {clash[0]!r} clashes with a label pinaudit sets")
        self.keys = tuple(inventory_keys)
        self.with_address = with_address
        self.samples: dict[str, list[tuple[tuple[str, ...], float]]] = {}

    def label_names(self, spec: MetricSpec) -> tuple[str, ...]:
        if spec.scope is Scope.ADDRESS:
            lead = ("endpoint", "address") if self.with_address else ("endpoint",)
            return (*lead, *spec.labels, *self.keys)
        if spec.scope is Scope.ENDPOINT:
            return ("endpoint", *spec.labels, *self.keys)
        return spec.labels

    def add(
        self,
        name: str,
        value: float,
        endpoint: Endpoint | None = None,
        address: str = "",
        extra: Sequence[str] = (),
    ) -> None:
        spec = BY_NAME[name]
        if len(extra) != len(spec.labels):
            raise ValueError(f"{name}: expected labels {spec.labels}, got {tuple(extra)}")
        values: tuple[str, ...] = tuple(extra)
        if endpoint is not None:
            labels = endpoint.label_map
            inventory = tuple(labels.get(key, "") for key in self.keys)
            lead: tuple[str, ...] = (endpoint.name,)
            if spec.scope is Scope.ADDRESS and self.with_address:
                lead = (endpoint.name, address)
            values = (*lead, *values, *inventory)
        self.samples.setdefault(name, []).append((values, float(value)))

    def exposition(self) -> Exposition:
        families = []
        for spec in SPECS:
            samples = self.samples.get(spec.name)
            if samples:  # empty families are left out (the Pushgateway rejects them)
                families.append(
                    Family(spec.name, spec.help, self.label_names(spec), tuple(samples))
                )
        return Exposition(tuple(families))


def _clip(text: str) -> str:
    return text if len(text) <= MAX_INFO_VALUE else text[: MAX_INFO_VALUE - 1] + "…"


def examined_certificates(report: ChainReport) -> list[tuple[int, str, CertFacts]]:
    """(position, role, facts) of the path leaf → anchor, or of the parsable served
    certificates (served positions) when no path could be built."""
    if report.path:
        certs = [(n, pc.facts) for n, pc in enumerate(report.path)]
    else:
        certs = [(s.position, s.facts) for s in report.served if s.facts is not None]
    return [(position, role(facts, position), facts) for position, facts in certs]


def offpath_certificates(report: ChainReport) -> list[tuple[int, str, CertFacts]]:
    """(served position, role, facts) of the parsable served certificates that
    are not on the path (none when no path exists: then the served ones are
    the examined ones)."""
    if not report.path:
        return []
    on_path = {pc.served_position for pc in report.path}
    return [
        (s.position, role(s.facts, s.position), s.facts)
        for s in report.served
        if s.facts is not None and s.position not in on_path
    ]


def _usable(address: AddressResult) -> bool:
    return address.observation is not None and address.report is not None


def _current(result: EndpointResult) -> list[tuple[str, AddressResult]]:
    """(address key, result) of each address probed this scan."""
    if result.endpoint.all_addresses:
        return [(a.address or "", a) for a in result.addresses]
    primary = result.primary
    return [("", primary)] if primary is not None else []


def _facts(out: _Families, endpoint: Endpoint, key: str, kept: Retained) -> None:
    """The chain and pin facts of one successful probe."""
    report = kept.address.report
    assert report is not None  # only usable probes are kept
    out.add("pinaudit_last_success_timestamp_seconds", kept.read_at.timestamp(), endpoint, key)
    out.add("pinaudit_chain_valid", 1 if report.valid else 0, endpoint, key)
    certs = examined_certificates(report)
    for position, cert_role, facts in certs:
        if position < MAX_CHAIN_POSITIONS:
            out.add(
                "pinaudit_cert_not_after_timestamp_seconds",
                facts.not_after.timestamp(),
                endpoint,
                key,
                (str(position), cert_role),
            )
    for position, cert_role, facts in offpath_certificates(report):
        if position < MAX_CHAIN_POSITIONS:
            out.add(
                "pinaudit_offpath_cert_not_after_timestamp_seconds",
                facts.not_after.timestamp(),
                endpoint,
                key,
                (str(position), cert_role),
            )
    if certs:
        earliest = min(facts.not_after for _, _, facts in certs)
        out.add("pinaudit_chain_expiry_timestamp_seconds", earliest.timestamp(), endpoint, key)
    leaf = report.leaf
    if leaf is not None:
        out.add(
            "pinaudit_leaf_info",
            1,
            endpoint,
            key,
            (
                _clip(leaf.subject),
                _clip(leaf.issuer),
                str(leaf.spki_sha256),
                format(leaf.serial, "x"),
            ),
        )
    pinset = endpoint.pinset
    if pinset is not None and pinset.pins:
        judged = kept.address.pin_paths
        declared = set(pinset.pins)
        matching = {pin for path in judged for pin in path.matched}
        passing = sum(1 for path in judged if path.passes)
        out.add("pinaudit_pin_match", 1 if passing else 0, endpoint, key)
        out.add("pinaudit_pin_paths", passing, endpoint, key, ("match",))
        out.add("pinaudit_pin_paths", len(judged) - passing, endpoint, key, ("mismatch",))
        out.add("pinaudit_backup_pins", len(declared - matching), endpoint, key)


def _protocol(out: _Families, endpoint: Endpoint, key: str, facts: ProtocolFacts) -> None:
    """The OCSP staple, CT and CAA judgements of one address, when asked for."""
    staple = facts.staple
    if staple is not None:
        out.add("pinaudit_ocsp_status", 1, endpoint, key, (staple.status.value,))
        if staple.next_update is not None:
            when = staple.next_update.timestamp()
            out.add("pinaudit_ocsp_next_update_timestamp_seconds", when, endpoint, key)
    for verdict in facts.ct:
        compliant = 1 if verdict.compliant else 0
        out.add("pinaudit_ct_compliant", compliant, endpoint, key, (verdict.policy.value,))
    if facts.caa is not None:
        out.add("pinaudit_caa_result", 1, endpoint, key, (facts.caa.outcome.value,))


def _fresh(kept: Retained | None, now: datetime, retention: timedelta) -> bool:
    return kept is not None and now - kept.read_at <= retention


def scan_exposition(
    scan: ScanRecord,
    *,
    history: History | None = None,
    retention: timedelta = DEFAULT_RETENTION,
) -> tuple[Exposition, History]:
    """The per-endpoint and scan families of one complete scan, and the history
    to pass to the next one."""
    history = history if history is not None else History()
    keys = sorted({key for r in scan.results for key, _ in r.endpoint.labels})
    out = _Families(keys, any(r.endpoint.all_addresses for r in scan.results))
    now = scan.finished_at
    kept_addresses: dict[EndpointId, dict[str, Retained]] = {}
    kept_divergence: dict[EndpointId, tuple[int, datetime]] = {}
    for result in scan.results:
        endpoint = result.endpoint
        eid = endpoint_id(endpoint)
        current = _current(result)
        for key, address in current:
            observation = address.observation
            out.add("pinaudit_endpoint_up", 1 if observation else 0, endpoint, key)
            if address.failure is not None:
                reason = address.failure.kind.value
                out.add("pinaudit_probe_error", 1, endpoint, key, (reason,))
            if observation is not None:
                seconds = observation.connect_seconds + observation.handshake_seconds
                out.add("pinaudit_handshake_duration_seconds", seconds, endpoint, key)
                tls = (observation.tls_version, observation.cipher, observation.alpn or "")
                out.add("pinaudit_tls_info", 1, endpoint, key, tls)
            if address.protocol is not None:
                _protocol(out, endpoint, key, address.protocol)
        if not current:  # never probed (the deadline passed) or never judged (a bug)
            missing = unjudged(result)
            reason = missing[0] if missing is not None else NOT_SCANNED_REASON
            out.add("pinaudit_endpoint_up", 0, endpoint)
            out.add("pinaudit_probe_error", 1, endpoint, "", (reason,))

        previous = history.addresses.get(eid, {})
        sources = {key: Retained(a, now) for key, a in current if _usable(a)}
        if sources:  # addresses that failed this time keep their last facts
            for key, address in current:
                old = previous.get(key)
                if not _usable(address) and old is not None and _fresh(old, now, retention):
                    sources.setdefault(key, old)
        else:  # nothing read at all: every address keeps its last facts
            sources = {k: old for k, old in previous.items() if _fresh(old, now, retention)}
        for key in sorted(sources):
            _facts(out, endpoint, key, sources[key])
        if sources:
            kept_addresses[eid] = sources

        if any(_usable(a) for _, a in current):
            kept_divergence[eid] = (result.distinct_chains, now)
        else:
            old_divergence = history.divergence.get(eid)
            if old_divergence is not None and now - old_divergence[1] <= retention:
                kept_divergence[eid] = old_divergence
        if eid in kept_divergence:
            out.add("pinaudit_chain_divergence", kept_divergence[eid][0], endpoint)
        if result.rotation is not None:
            for rotation in Rotation:
                ready = result.rotation.ready(rotation)
                out.add(
                    "pinaudit_rotation_ready", 1 if ready else 0, endpoint, extra=(rotation.value,)
                )
        if result.key_changed_at is not None:
            out.add(
                "pinaudit_leaf_key_changed_timestamp_seconds",
                result.key_changed_at.timestamp(),
                endpoint,
            )

        pinset = endpoint.pinset
        if pinset is not None:
            enforced = bool(pinset.pins) and pins_enforced(pinset, scan.as_of)
            out.add("pinaudit_pins_enforced", 1 if enforced else 0, endpoint)
            expiry = pinset_expiry(pinset)
            if expiry is not None:
                out.add(
                    "pinaudit_pinset_expiry_timestamp_seconds",
                    expiry.timestamp(),
                    endpoint,
                    extra=(pinset.name,),
                )
        counts = Counter((f.check.value, f.severity.value) for f in result.findings)
        for (check, severity), count in sorted(counts.items()):
            out.add("pinaudit_findings", count, endpoint, extra=(check, severity))

    out.add("pinaudit_scan_duration_seconds", scan.duration)
    out.add("pinaudit_scan_timestamp_seconds", scan.finished_at.timestamp())
    outcomes = Counter(r.status for r in scan.results)
    for status in ResultStatus:
        out.add("pinaudit_scan_endpoints", outcomes[status], extra=(status.value,))
    if scan.shards is not None:
        out.add("pinaudit_scan_shards", scan.shards)
    if scan.interval is not None:
        out.add("pinaudit_scan_interval_seconds", scan.interval)
    return out.exposition(), History(kept_addresses, kept_divergence)


def process_exposition(build: BuildInfo | str, reload: ReloadState | None = None) -> Exposition:
    """Families about the process: build info, and the exporter's reload state."""
    if isinstance(build, str):
        build = BuildInfo(build)
    out = _Families((), False)
    out.add("pinaudit_build_info", 1, extra=(build.version, build.revision, build.python_version))
    if reload is not None:
        out.add("pinaudit_inventory_reload_success", 1 if reload.success else 0)
        out.add("pinaudit_inventory_reload_timestamp_seconds", reload.at.timestamp())
        out.add("pinaudit_config_last_reload_successful", 1 if reload.success else 0)
        last = reload.last_success if reload.last_success is not None else None
        if last is None and reload.success:
            last = reload.at
        if last is not None:
            out.add("pinaudit_config_last_reload_success_timestamp_seconds", last.timestamp())
    return out.exposition()


def job_exposition(scan: ScanRecord, build: BuildInfo | str) -> Exposition:
    """What a one-shot job (textfile, Pushgateway) exports: no history."""
    families, _ = scan_exposition(scan)
    return process_exposition(build).merged(families)
