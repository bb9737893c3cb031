"""A client failure as the client itself shows it (pinning-semantics §1.4,
§3.4; RFC 7469 §3). Pure.

OkHttp's ``Certificate pinning failure!`` message, TrustKit-Android's, and
the JSON bodies TrustKit and HPKP clients POST to their report URIs: what an
app developer will find in a crash log or a report collector, so that a
finding can be matched with what users see.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from scanner.clients.judge import FAILS, Path, okhttp_on_jvm, utc_text
from scanner.clients.okhttp_jvm import JvmChain
from scanner.model import (
    DEFAULT_OKHTTP_VERSION,
    ChainReport,
    Client,
    ClientPolicy,
    ClientVerdict,
    Pin,
    Platform,
    PolicyRule,
    Verdict,
)
from scanner.pins import okio_base64

__all__ = [
    "HPKP_MAX_AGE_CAP",
    "TRUSTKIT_VERSION",
    "failure_formats",
    "hpkp_report",
    "okhttp_failure_message",
    "okhttp_pinned",
    "trustkit_android_failure_message",
    "trustkit_report",
]

HPKP_MAX_AGE_CAP = 86400 * 60  # Chromium's kMaxHPKPAgeSecs
TRUSTKIT_VERSION = "3.0.0"


def okhttp_pinned(rules: Sequence[PolicyRule], version: int = DEFAULT_OKHTTP_VERSION) -> list[str]:
    """The pins OkHttp lists under "Pinned certificates for": every pin of every
    matching pattern, in the order added, as ``alg/base64``. OkHttp keeps a set of
    (pattern, pin), so a pin under two patterns is listed twice; OkHttp 3 tells
    patterns apart as written, 4 and 5 in canonical form."""
    seen: set[tuple[str, str, bytes]] = set()
    shown: list[str] = []
    for rule in rules:
        written = rule.written_pins or (*(str(p) for p in rule.pins), *rule.dead_pins)
        pattern = rule.label if version < 4 and rule.label is not None else rule.pattern
        for text in written:
            alg, _, body = text.partition("/")
            raw = okio_base64(body) or b""
            key = (pattern, alg, raw)
            if key not in seen:
                seen.add(key)
                shown.append(f"{alg}/{base64.b64encode(raw).decode('ascii')}")
    return shown


def okhttp_failure_message(
    verdict: ClientVerdict,
    path: Path,
    *,
    version: int = DEFAULT_OKHTTP_VERSION,
    jvm: JvmChain | None = None,
) -> str:
    """OkHttp's ``SSLPeerUnverifiedException`` message, as the app would log it.

    On Android the chain is the validated path, each subject as Android prints
    it (RFC 2253, like ``CN=R3,O=Let's Encrypt,C=US``). On a JVM (`jvm`) it is
    the chain OkHttp's cleaner built, each subject as the JDK prints it
    (``CN=R3, O=Let's Encrypt, C=US``); when the cleaner itself gave up, its
    message (the JDK appends a dump of the whole certificate after the subject
    shown here)."""
    if jvm is not None and jvm.error is not None:
        return jvm.error
    chain = (
        [(c.facts.spki_sha256, c.subject) for c in jvm.certs]
        if jvm is not None
        else [(c.spki_sha256, c.subject) for c in path]
    )
    lines = ["Certificate pinning failure!", "  Peer certificate chain:"]
    lines += [f"    {key}: {subject}" for key, subject in chain]
    lines.append(f"  Pinned certificates for {verdict.host}:")
    lines += [f"    {p}" for p in okhttp_pinned(verdict.rules, version)]
    return "\n".join(lines)


def trustkit_android_failure_message(verdict: ClientVerdict, path: Path) -> str:
    """TrustKit-Android's pin failure message: the configured pins as written
    (a spelling it can never match among them)."""
    pins = " ".join([*(p.b64 for p in verdict.pins), *verdict.dead_pins])
    chain = "\n".join(f"    {c.spki_sha256.b64} - {c.subject}" for c in path)
    return (
        f"Pin verification failed\n  Configured pins: {pins}\n  Peer certificate chain: \n{chain}"
    )


def _pem(der: bytes) -> str:
    body = base64.b64encode(der).decode("ascii")
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return "-----BEGIN CERTIFICATE-----\n" + "\n".join(lines) + "\n-----END CERTIFICATE-----\n"


def _known_pins(pins: Iterable[Pin]) -> list[str]:
    return [f'pin-{p.alg.value}="{p.b64}"' for p in pins]


def trustkit_report(
    verdict: ClientVerdict,
    path_der: Sequence[bytes],
    served_der: Sequence[bytes],
    *,
    port: int,
    now: datetime,
    platform: Platform | None,
    result: int = 1,
) -> dict[str, Any]:
    """The JSON body TrustKit would POST to its report URIs (``TSKPinFailureReport``)."""
    rule = verdict.rules[0] if verdict.rules else None
    android = platform is Platform.ANDROID
    body: dict[str, Any] = {
        "app-bundle-id": verdict.policy,
        "app-version": "",
        "app-platform": "ANDROID"
        if android
        else ("MACOS" if platform is Platform.MACOS else "IOS"),
        "app-platform-version": "",
        "app-vendor-id": "",
        "trustkit-version": TRUSTKIT_VERSION,
        "date-time": utc_text(now),
        "hostname": verdict.host,
        "port": port,
        "noted-hostname": rule.host if rule else verdict.host,
        "include-subdomains": bool(rule and rule.include_subdomains),
        "enforce-pinning": bool(rule and rule.enforce),
        "validated-certificate-chain": [_pem(d) for d in path_der],
        "known-pins": _known_pins(verdict.pins),
        "validation-result": result,
    }
    if android:
        body["served-certificate-chain"] = [_pem(d) for d in served_der]
    else:
        expires = rule.expires if rule else None
        body["known-pins-expiration-date"] = expires.isoformat() if expires else None
    return body


def hpkp_report(
    verdict: ClientVerdict,
    path_der: Sequence[bytes],
    served_der: Sequence[bytes],
    *,
    port: int,
    now: datetime,
) -> dict[str, Any]:
    """The RFC 7469 §3 violation report a browser would POST to report-uri."""
    rule = verdict.rules[0] if verdict.rules else None
    max_age = min(rule.max_age or 0, HPKP_MAX_AGE_CAP) if rule else 0
    return {
        "date-time": utc_text(now),
        "hostname": verdict.host,
        "port": port,
        "effective-expiration-date": utc_text(now + timedelta(seconds=max_age)),
        "include-subdomains": bool(rule and rule.include_subdomains),
        "noted-hostname": rule.host if rule else verdict.host,
        "served-certificate-chain": [_pem(d) for d in served_der],
        "validated-certificate-chain": [_pem(d) for d in path_der],
        "known-pins": _known_pins(verdict.pins),
    }


def failure_formats(
    verdict: ClientVerdict,
    report: ChainReport,
    *,
    port: int,
    now: datetime,
    anchors_der: Mapping[bytes, bytes] | None = None,
    platform: Platform | None = None,
    policy: ClientPolicy | None = None,
    jvm: JvmChain | None = None,
) -> dict[str, Any]:
    """The failure as the client would show it: ``{"message": str}`` (OkHttp,
    TrustKit-Android) and/or ``{"report": {...}}`` (TrustKit, HPKP report JSON).
    `policy`: the verdict's policy (OkHttp: its version and platform); `jvm`:
    the chain OkHttp's cleaner built when it runs on a JVM."""
    trustkit_blocked = (
        verdict.client is Client.TRUSTKIT and verdict.verdict is Verdict.CHAIN_INVALID
    )
    if verdict.verdict not in FAILS and not trustkit_blocked:
        return {}
    path = tuple(pc.facts for pc in report.path)
    served = [s.der for s in report.served]
    by_digest = {s.facts.der_sha256: s.der for s in report.served if s.facts is not None}
    by_digest.update(anchors_der or {})
    path_der = [by_digest[c.der_sha256] for c in path if c.der_sha256 in by_digest]
    out: dict[str, Any] = {}
    if verdict.client is Client.OKHTTP:
        version = policy.okhttp_major if policy is not None else DEFAULT_OKHTTP_VERSION
        on_jvm = policy is not None and okhttp_on_jvm(policy)
        out["message"] = okhttp_failure_message(
            verdict, path, version=version, jvm=jvm if on_jvm else None
        )
    elif verdict.client is Client.TRUSTKIT:
        if trustkit_blocked:
            result = 2  # FailedInvalidCertificateChain: blocked even without enforcement
            if platform is Platform.ANDROID:
                out["message"] = f"Certificate validation failed for {verdict.host}"
        else:
            if platform is Platform.ANDROID:
                out["message"] = trustkit_android_failure_message(verdict, path)
            result = 5 if "ErrorCouldNotGenerateSpkiHash" in verdict.detail else 1
        out["report"] = trustkit_report(
            verdict, path_der, served, port=port, now=now, platform=platform, result=result
        )
    elif verdict.client is Client.HPKP:
        out["report"] = hpkp_report(verdict, path_der, served, port=port, now=now)
    return out
