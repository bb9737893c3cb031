"""Results → the stable JSON report (DESIGN §4). Pure: dicts in, dicts out.

``report(...)`` is the ``--format json`` document; ``endpoint_entry`` is one
line of ``--format jsonl``, followed by ``summary_line``. The shape is
documented in the README and checked by a JSON Schema in the tests.
"""

from __future__ import annotations

import functools
import json
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timezone
from typing import Any

from scanner.audit import pins_enforced, pinset_expiry
from scanner.model import CertFacts, ChainReport, ClientVerdict, Finding, Pin, PinPath
from scanner.protocol_audit import ProtocolFacts
from scanner.results import EndpointResult, ResultStatus, unjudged

__all__ = [
    "REPORT_VERSION",
    "endpoint_entry",
    "finding_entry",
    "report",
    "report_text",
    "role",
    "summary",
    "summary_line",
    "timestamp",
    "verdict_entry",
]

REPORT_VERSION = 1


@functools.lru_cache(maxsize=16384)
def _pin(pin: Pin) -> str:
    """``str(pin)``, made once per distinct pin (a fleet repeats a few pins in
    every endpoint's entry: pin-sets, chains, findings)."""
    return str(pin)


def timestamp(when: datetime) -> str:
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def role(facts: CertFacts, position: int) -> str:
    if position == 0:
        return "leaf"
    if facts.is_ca and facts.self_issued:
        return "root"
    return "intermediate" if facts.is_ca else "other"


def _chain(report: ChainReport) -> list[dict[str, Any]]:
    on_path = {pc.served_position for pc in report.path if pc.served_position is not None}
    chain: list[dict[str, Any]] = []
    for served in report.served:
        entry: dict[str, Any] = {"position": served.position, "in_path": served.position in on_path}
        facts = served.facts
        if facts is None:
            entry.update(role="unparsable", error=served.error, size=len(served.der))
        else:
            entry.update(
                role=role(facts, served.position),
                subject=facts.subject,
                issuer=facts.issuer,
                serial=format(facts.serial, "x"),
                spki_sha256=_pin(facts.spki_sha256),
                not_before=timestamp(facts.not_before),
                not_after=timestamp(facts.not_after),
                key=f"{facts.key_type.value}{facts.key_bits}",
                signature=facts.signature_algorithm,
                san=list(facts.san_dns + facts.san_ip),
                sct_count=facts.sct_count,
            )
        chain.append(entry)
    return chain


def _path_certificates(report: ChainReport) -> list[dict[str, Any]]:
    """Every certificate of the path (validated, or diagnostic when validation
    failed), leaf first, with its expiry: also the anchor the trust store
    supplied and intermediates found elsewhere, which `chain` (what was served)
    does not hold."""
    return [
        {
            "index": index,
            "position": pc.served_position,
            "role": role(pc.facts, index),
            "subject": pc.facts.subject,
            "issuer": pc.facts.issuer,
            "spki_sha256": _pin(pc.facts.spki_sha256),
            "not_before": timestamp(pc.facts.not_before),
            "not_after": timestamp(pc.facts.not_after),
        }
        for index, pc in enumerate(report.path)
    ]


def _pin_path(judged: PinPath, report: ChainReport) -> dict[str, Any]:
    served = {s.facts.der_sha256: s.position for s in report.served if s.facts is not None}
    return {
        "anchor": judged.anchor.subject,
        "verdict": "pass" if judged.passes else "fail",
        "matched": [_pin(p) for p in judged.matched],
        "certificates": [
            {
                "subject": facts.subject,
                "spki_sha256": _pin(facts.spki_sha256),
                "not_after": timestamp(facts.not_after),
                "position": served.get(facts.der_sha256),
            }
            for facts in judged.certs
        ],
    }


def finding_entry(finding: Finding) -> dict[str, Any]:
    return {
        "check": finding.check.value,
        "severity": finding.severity.value,
        "message": finding.message,
        "certificate": finding.certificate,
        "pin": _pin(finding.pin) if finding.pin else None,
        "subject": finding.subject,
    }


def _error(result: EndpointResult) -> dict[str, Any] | None:
    """Why the endpoint has no verdict: a probe failure, or the reason it was
    never judged (the same `reason` the metrics carry)."""
    failure = result.failure
    if failure is not None:
        return {"reason": failure.kind.value, "detail": failure.detail, "alert": failure.alert}
    missing = unjudged(result)
    if missing is not None:
        return {"reason": missing[0], "detail": missing[1], "alert": None}
    return None


def _when(value: datetime | None) -> str | None:
    return timestamp(value) if value is not None else None


def protocol_entries(facts: ProtocolFacts) -> dict[str, Any]:
    """The OCSP staple, CT and CAA judgements of an address (keys present when asked)."""
    out: dict[str, Any] = {}
    staple = facts.staple
    if staple is not None:
        out["ocsp"] = {
            "status": staple.status.value,
            "this_update": _when(staple.this_update),
            "next_update": _when(staple.next_update),
            "produced_at": _when(staple.produced_at),
            "revocation_time": _when(staple.revocation_time),
            "revocation_reason": staple.revocation_reason,
            "stale": staple.stale,
            "must_staple": staple.must_staple,
            "responder": staple.responder,
            "error": staple.error,
        }
    if facts.ct:
        out["ct"] = [
            {
                "policy": v.policy.value,
                "compliant": v.compliant,
                "reason": v.reason or None,
                "scts": {"embedded": v.embedded, "tls": v.tls, "ocsp": v.ocsp},
                "unknown_logs": v.unknown_logs,
                "operators": list(v.operators),
            }
            for v in facts.ct
        ]
    if facts.caa is not None:
        caa = facts.caa
        out["caa"] = {
            "outcome": caa.outcome.value,
            "name": caa.name,
            "found_at": caa.owner,
            "property": caa.property,
            "authorised": list(caa.authorised),
            "detail": caa.detail,
        }
    return out


def endpoint_entry(result: EndpointResult, now: datetime) -> dict[str, Any]:
    ep = result.endpoint
    primary = result.primary
    report = primary.report if primary else None
    observation = primary.observation if primary else None
    entry: dict[str, Any] = {
        "name": ep.name,
        "host": ep.host,
        "port": ep.port,
        "sni": ep.sni,
        "address": primary.address if primary else None,
        "labels": ep.label_map,
        "status": result.status.value,
        "chain": _chain(report) if report else [],
        "path": [_pin(pc.facts.spki_sha256) for pc in report.path]
        if report and report.valid
        else [],
        "path_status": report.status.value if report else None,
        "path_certificates": _path_certificates(report) if report else [],
        "pin_paths": [_pin_path(p, report) for p in primary.pin_paths]
        if primary is not None and report is not None
        else [],
        "findings": [finding_entry(f) for f in result.findings],
        "tls": {
            "version": observation.tls_version,
            "cipher": observation.cipher,
            "alpn": observation.alpn,
            "handshake_seconds": round(observation.handshake_seconds, 6),
        }
        if observation
        else None,
        "error": _error(result),
        "pinset": None,
        "attempts": result.attempts,
        "rotation": None,
    }
    if observation is not None:
        for key in ("starttls", "proxy"):
            if getattr(observation, key) is not None:
                entry["tls"][key] = getattr(observation, key)
    facts = primary.protocol if primary else None
    if facts is not None:
        entry.update(protocol_entries(facts))
    if result.rotation is not None:
        ready = result.rotation
        entry["rotation"] = {
            "leaf_renewal": {"ready": ready.leaf_renewal, "reason": ready.leaf_renewal_reason},
            "ca_switch": {"ready": ready.ca_switch, "reason": ready.ca_switch_reason},
        }
    if ep.pinset is not None:
        expiry = pinset_expiry(ep.pinset)
        entry["pinset"] = {
            "name": ep.pinset.name,
            "pins": [_pin(p) for p in ep.pinset.pins],
            "expires": timestamp(expiry) if expiry else None,
            "enforced": pins_enforced(ep.pinset, now),
            "offline": [_pin(p) for p in ep.pinset.pins if p in ep.pinset.offline],
        }
    if ep.all_addresses:
        entry["addresses"] = [
            {
                "address": a.address,
                "status": "error" if a.observation is None else "ok",
                "spki_sha256": _pin(a.report.leaf.spki_sha256)
                if a.report and a.report.leaf
                else None,
                "error": a.failure.kind.value if a.failure else None,
            }
            for a in result.addresses
        ]
        entry["distinct_chains"] = result.distinct_chains
    if ep.client_policies:  # each client pin-set's verdict (Android, OkHttp, TrustKit, ...)
        entry["client_verdicts"] = [verdict_entry(v) for v in result.client_verdicts]
    return entry


def summary(results: Sequence[EndpointResult]) -> dict[str, int]:
    counts = Counter(r.status for r in results)
    return {
        "endpoints": len(results),
        "ok": counts[ResultStatus.OK],
        "drift": counts[ResultStatus.DRIFT],
        "error": counts[ResultStatus.ERROR],
    }


def report(
    results: Sequence[EndpointResult],
    *,
    scanned_at: datetime,
    as_of: datetime,
    interrupted: bool = False,
) -> dict[str, Any]:
    return {
        "version": REPORT_VERSION,
        "scanned_at": timestamp(scanned_at),
        "as_of": timestamp(as_of),
        "complete": not interrupted,
        "summary": summary(results),
        "endpoints": [endpoint_entry(r, as_of) for r in results],
    }


def report_text(
    results: Sequence[EndpointResult],
    *,
    scanned_at: datetime,
    as_of: datetime,
    interrupted: bool = False,
) -> Iterator[str]:
    """``json.dumps(report(...)) + "\n"``, piece by piece: one endpoint's entry
    at a time, so that the whole document (its dicts and its text, ~6 KB per
    endpoint) is never held in memory. The text is the same, byte for byte."""
    head = report([], scanned_at=scanned_at, as_of=as_of, interrupted=interrupted)
    head["summary"] = summary(results)
    del head["endpoints"]
    yield json.dumps(head)[:-1] + ', "endpoints": ['
    for n, result in enumerate(results):
        entry = json.dumps(endpoint_entry(result, as_of))
        yield entry if n == 0 else ", " + entry
    yield "]}\n"


def summary_line(
    results: Sequence[EndpointResult], *, scanned_at: datetime, as_of: datetime
) -> dict[str, Any]:
    return {
        "version": REPORT_VERSION,
        "type": "summary",
        "scanned_at": timestamp(scanned_at),
        "as_of": timestamp(as_of),
        "summary": summary(results),
    }


def verdict_entry(verdict: ClientVerdict) -> dict[str, Any]:
    """One client verdict in the JSON report (``client_verdicts``)."""

    def pins(values: Iterable[Pin]) -> list[str]:
        return [_pin(p) for p in values]

    return {
        "pinset": verdict.policy,
        "client": verdict.client.value,
        "verdict": verdict.verdict.value,
        "host": verdict.host,
        "detail": verdict.detail,
        "rules": [r.pattern for r in verdict.rules],
        "pins": pins(verdict.pins),
        "leaf_pins": pins(verdict.leaf_pins),
        "bad_pins": pins(verdict.bad_pins),
        "dead_pins": list(verdict.dead_pins),
        "matched": pins(verdict.matched),
        "enforced_until": timestamp(verdict.enforce_until) if verdict.enforce_until else None,
        "enforced_until_latest": timestamp(verdict.enforce_until_latest)
        if verdict.enforce_until_latest
        else None,
        "problems": [str(p) for p in verdict.problems],
        "notes": list(verdict.notes),
        "paths": [{"path": pins(p.path), "verdict": p.verdict.value} for p in verdict.paths],
        "alternatives": [{"lookup": k, "verdict": v.value} for k, v in verdict.alternatives],
        "failure": dict(verdict.failure) if verdict.failure else None,
    }
