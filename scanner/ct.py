"""Certificate Transparency: the SCTs a leaf comes with, and whether they
satisfy the Chrome and Apple CT policies. Pure: bytes, a log list and `now`.

SCTs arrive three ways (RFC 6962 §3.3): embedded in the certificate (the
precertificate SCT extension), in the TLS ``signed_certificate_timestamp``
extension, and in a stapled OCSP response's single-response extension. Each
is a ``SignedCertificateTimestampList``; this module reads them all the same
way, bounded, without verifying log signatures (that needs the logs' keys
and the precertificate; the judgement here is about counts, logs and
operators, which is what the policies count).
"""

from __future__ import annotations

import base64
import enum
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

from cryptography import x509

from scanner import data

__all__ = [
    "MAX_SCTS",
    "CtLog",
    "CtPolicy",
    "CtVerdict",
    "LogList",
    "LogState",
    "Sct",
    "SctSource",
    "all_scts",
    "bundled_log_list",
    "embedded_scts",
    "judge_ct",
    "lifetime_days",
    "load_log_list",
    "parse_sct_list",
    "sct_list_of_extension",
    "tls_extension_scts",
]

MAX_SCTS = 64  # a list longer than this is cut (real certificates carry 2-5)
_EXT_SCT = 18


# --------------------------------------------------------------------------- wire


class _Reader:
    """A bounded cursor over TLS-encoded bytes; ValueError on any overrun."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.at = 0

    def take(self, count: int) -> bytes:
        if count < 0 or self.at + count > len(self.data):
            raise ValueError("truncated")
        chunk = self.data[self.at : self.at + count]
        self.at += count
        return chunk

    def number(self, size: int) -> int:
        return int.from_bytes(self.take(size), "big")

    def vector(self, size: int) -> bytes:
        return self.take(self.number(size))

    @property
    def done(self) -> bool:
        return self.at >= len(self.data)


def _extension(extensions: bytes, wanted: int) -> bytes | None:
    reader = _Reader(extensions)
    while not reader.done:
        kind = reader.number(2)
        body = reader.vector(2)
        if kind == wanted:
            return body
    return None


def _server_hello_extensions(message: bytes) -> bytes:
    reader = _Reader(_Reader(message[1:]).vector(3))  # type, 24-bit length, body
    reader.take(2 + 32)  # legacy_version, random
    reader.vector(1)  # session id
    reader.take(2 + 1)  # cipher suite, compression method
    return b"" if reader.done else reader.vector(2)


def _certificate13_leaf_extensions(message: bytes) -> bytes:
    reader = _Reader(_Reader(message[1:]).vector(3))
    reader.vector(1)  # certificate_request_context
    entries = _Reader(reader.vector(3))
    if entries.done:
        return b""
    entries.vector(3)  # the leaf's cert_data
    return entries.vector(2)


def tls_extension_scts(
    server_hello: bytes | None, certificate: bytes | None, *, tls13: bool
) -> bytes:
    """The SignedCertificateTimestampList a server sent in the TLS extension,
    from the handshake messages that carry it: the ServerHello up to TLS 1.2,
    the leaf's CertificateEntry in TLS 1.3 (RFC 8446 §4.4.2). b"" when none
    or when the message does not parse (the handshake itself accepted it)."""
    try:
        if tls13:
            if certificate is None:
                return b""
            found = _extension(_certificate13_leaf_extensions(certificate), _EXT_SCT)
        else:
            if server_hello is None:
                return b""
            found = _extension(_server_hello_extensions(server_hello), _EXT_SCT)
    except ValueError:
        return b""
    return found or b""


class SctSource(str, enum.Enum):
    EMBEDDED = "embedded"
    TLS = "tls"
    OCSP = "ocsp"


@dataclass(frozen=True)
class Sct:
    """One SCT as read (its signature is not verified)."""

    log_id: bytes  # SHA-256 of the log's key
    timestamp: datetime  # aware, UTC
    source: SctSource
    version: int = 0  # v1 = 0


def parse_sct_list(data: bytes, source: SctSource) -> tuple[Sct, ...]:
    """The SCTs of a TLS-encoded SignedCertificateTimestampList (RFC 6962
    §3.3); a list that does not parse yields the SCTs read before the fault.
    SCT versions other than v1 are skipped (their layout is unknown)."""
    scts: list[Sct] = []
    try:
        outer = _Reader(data)
        items = _Reader(outer.vector(2))
        while not items.done and len(scts) < MAX_SCTS:
            one = _Reader(items.vector(2))
            version = one.number(1)
            if version != 0:
                continue
            log_id = one.take(32)
            millis = one.number(8)
            try:
                stamp = datetime.fromtimestamp(millis / 1000, tz=timezone.utc)
            except (OverflowError, ValueError, OSError):
                continue
            scts.append(Sct(log_id, stamp, source, version))
    except ValueError:
        pass
    return tuple(scts)


def sct_list_of_extension(value: bytes) -> bytes:
    """The SCT list inside a certificate's or OCSP response's SCT extension
    value: an OCTET STRING wrapping the TLS-encoded list (RFC 6962 §3.3)."""
    if len(value) < 2 or value[0] != 0x04:
        return b""
    size, at = value[1], 2
    if size & 0x80:
        count = size & 0x7F
        if count == 0 or count > 3 or len(value) < 2 + count:
            return b""
        size, at = int.from_bytes(value[2 : 2 + count], "big"), 2 + count
    return value[at : at + size] if at + size <= len(value) else b""


def all_scts(lists: Sequence[tuple[bytes, SctSource]]) -> tuple[Sct, ...]:
    """Every SCT of several lists, in order, duplicates kept (policies count logs)."""
    out: list[Sct] = []
    for scts, source in lists:
        out.extend(parse_sct_list(scts, source))
    return tuple(out)


# --------------------------------------------------------------------------- embedded

_PRECERT_SCTS = "1.3.6.1.4.1.11129.2.4.2"


def embedded_scts(leaf: x509.Certificate) -> tuple[Sct, ...]:
    """The SCTs embedded in a certificate (RFC 6962 §3.3); none when the
    extension is absent or malformed (a malformed one is not counted)."""
    try:
        for ext in leaf.extensions:
            if ext.oid.dotted_string != _PRECERT_SCTS:
                continue
            value = ext.value
            raw = (
                value.value
                if isinstance(value, x509.UnrecognizedExtension)
                else bytes(value.public_bytes())
            )
            return parse_sct_list(sct_list_of_extension(raw), SctSource.EMBEDDED)
    except (ValueError, x509.DuplicateExtension, x509.UnsupportedGeneralNameType):
        return ()
    return ()


# --------------------------------------------------------------------------- log list


class LogState(str, enum.Enum):
    """A log's state in Chrome's (and Apple's) lifecycle."""

    PENDING = "pending"
    QUALIFIED = "qualified"
    USABLE = "usable"
    READONLY = "readonly"
    RETIRED = "retired"
    REJECTED = "rejected"


_CURRENT = frozenset({LogState.QUALIFIED, LogState.USABLE, LogState.READONLY})


@dataclass(frozen=True)
class CtLog:
    log_id: bytes
    description: str
    operator: str
    state: LogState
    state_since: datetime

    def counts_now(self) -> bool:
        """Qualified, usable or read-only at the time of check."""
        return self.state in _CURRENT

    def counted(self, sct: Sct) -> bool:
        """Once or currently approved: current, or retired after issuing `sct`."""
        if self.state in _CURRENT:
            return True
        return self.state is LogState.RETIRED and sct.timestamp < self.state_since


@dataclass(frozen=True)
class LogList:
    version: str
    timestamp: datetime
    logs: Mapping[bytes, CtLog]

    @property
    def date(self) -> str:
        return self.timestamp.date().isoformat()


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(timezone.utc)


def load_log_list(text: str) -> LogList:
    """A log list in pinaudit's trimmed form (scanner/data/ct_log_list.json)
    or in Chrome's v3 schema (operators → logs / tiled_logs → state)."""
    doc = json.loads(text)
    logs: dict[bytes, CtLog] = {}
    for operator in doc["operators"]:
        entries = [*operator.get("logs", ()), *operator.get("tiled_logs", ())]
        for entry in entries:
            if "state" in entry and isinstance(entry["state"], dict):  # Chrome's v3 schema
                (name, detail), *_ = entry["state"].items()
                state, since = name, detail["timestamp"]
            else:
                state, since = entry["state"], entry["state_since"]
            log_id = base64.b64decode(entry["log_id"])
            logs[log_id] = CtLog(
                log_id, entry["description"], operator["name"], LogState(state), _instant(since)
            )
    return LogList(str(doc["version"]), _instant(doc["log_list_timestamp"]), logs)


def bundled_log_list() -> LogList:
    """The snapshot shipped in scanner/data (its date: `LogList.date`)."""
    return load_log_list(data.text("ct_log_list.json"))


# --------------------------------------------------------------------------- policies


class CtPolicy(str, enum.Enum):
    CHROME = "chrome"  # googlechrome.github.io/CertificateTransparency/ct_policy.html
    APPLE = "apple"  # support.apple.com/103214


@dataclass(frozen=True)
class CtVerdict:
    policy: CtPolicy
    compliant: bool
    reason: str  # why not compliant ("" when compliant)
    embedded: int  # SCTs by how they arrived
    tls: int
    ocsp: int
    unknown_logs: int  # SCTs from logs the list does not name
    operators: tuple[str, ...]  # distinct operators of the SCTs that count


def lifetime_days(not_before: datetime, not_after: datetime) -> int:
    """RFC 5280's validity period, notBefore through notAfter inclusive, in
    days of 86 400 s, any part of a day counting as a day (Apple's rule)."""
    seconds = (not_after - not_before).total_seconds() + 1
    return max(0, -(-int(seconds) // 86400))


def _required_embedded(days: int) -> int:
    return 2 if days <= 180 else 3


def _distinct_logs(scts: Sequence[Sct], logs: LogList, usable: str) -> list[CtLog]:
    seen: dict[bytes, CtLog] = {}
    for sct in scts:
        log = logs.logs.get(sct.log_id)
        if log is None or sct.log_id in seen:
            continue
        if log.counts_now() if usable == "now" else log.counted(sct):
            seen[sct.log_id] = log
    return list(seen.values())


def _operators(found: Sequence[CtLog]) -> set[str]:
    return {log.operator for log in found}


def _capped(found: Sequence[CtLog], per_operator: int) -> int:
    """How many logs count when each operator counts at most `per_operator` times."""
    counts: dict[str, int] = {}
    for log in found:
        counts[log.operator] = min(per_operator, counts.get(log.operator, 0) + 1)
    return sum(counts.values())


def judge_ct(
    not_before: datetime,
    not_after: datetime,
    scts: Sequence[Sct],
    logs: LogList,
    policy: CtPolicy,
) -> CtVerdict:
    """Whether `scts` make a certificate valid from `not_before` to `not_after`
    CT-compliant under `policy`, with log states as of the log list."""
    embedded = [s for s in scts if s.source is SctSource.EMBEDDED]
    delivered = [s for s in scts if s.source is not SctSource.EMBEDDED]
    unknown = sum(1 for s in scts if s.log_id not in logs.logs)
    days = lifetime_days(not_before, not_after)
    need = _required_embedded(days)
    counted = _distinct_logs(scts, logs, "once")
    if policy is CtPolicy.CHROME:
        embedded_now = _distinct_logs(embedded, logs, "now")
        embedded_once = _distinct_logs(embedded, logs, "once")
        delivered_now = _distinct_logs(delivered, logs, "now")
        by_embedding = (
            bool(embedded_now)
            and len(embedded_once) >= need
            and len(_operators(embedded_once)) >= 2
        )
        by_delivery = len(delivered_now) >= 2 and len(_operators(delivered_now)) >= 2
        compliant = by_embedding or by_delivery
        reason = (
            ""
            if compliant
            else (
                f"{len(embedded_once)} embedded SCT(s) from distinct qualifying logs "
                f"({len(_operators(embedded_once))} operator(s)) where a {days}-day certificate "
                f"needs {need} from 2 operators, and {len(delivered_now)} delivered by TLS or "
                "OCSP where 2 from 2 operators would do"
            )
        )
    else:
        per_operator = 1 if days <= 180 else 2
        current = _distinct_logs(scts, logs, "now")
        delivered_now = _distinct_logs(delivered, logs, "now")
        embedded_now = _distinct_logs(embedded, logs, "now")
        embedded_once = _distinct_logs(embedded, logs, "once")
        by_delivery = len(current) >= 2 and bool(delivered_now)
        by_embedding = bool(embedded_now) and _capped(embedded_once, per_operator) >= need
        compliant = len(counted) >= 2 and (by_delivery or by_embedding)
        reason = (
            ""
            if compliant
            else (
                f"{_capped(embedded_once, per_operator)} embedded SCT(s) counting toward the "
                f"{need} a {days}-day certificate needs (at most {per_operator} per operator), "
                f"and {len(delivered_now)} delivered by TLS or OCSP"
            )
        )
    if not compliant and unknown:
        reason += f"; {unknown} SCT(s) from logs not in the log list of {logs.date}"
    return CtVerdict(
        policy,
        compliant,
        reason,
        embedded=len(embedded),
        tls=sum(1 for s in delivered if s.source is SctSource.TLS),
        ocsp=sum(1 for s in delivered if s.source is SctSource.OCSP),
        unknown_logs=unknown,
        operators=tuple(sorted(_operators(counted))),
    )
