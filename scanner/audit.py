"""Endpoint + chain report + now → findings. Pure.

The catalogue of checks (code, severity, meaning) is ``CATALOGUE``; the
README's findings table is written from it and a test keeps the two equal.

Pins are matched against the path a client builds (leaf → trust anchor,
the anchor included even when the server does not send it), never against
served certificates off that path (OkHttp ``unrelatedPinned*`` tests,
pinning-semantics §8.5). Where cross-signs let clients build several valid
paths (``paths.search_paths``), every one is judged: ``pin_mismatch`` when
no path carries a pin, ``pin_path_dependent`` when some do and some do not
(the clients whose verifier builds a failing path refuse the connection).
A pin-set's ``expires`` date ends enforcement at 00:00 UTC of that date
(TrustKit's rule; Android devices stop between D-1 10:00Z and D 12:00Z
depending on their time zone).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

from scanner.model import (
    CertFacts,
    ChainReport,
    Check,
    Endpoint,
    Finding,
    HashAlg,
    KeyType,
    PathStatus,
    Pin,
    PinPath,
    Pinset,
    Severity,
)
from scanner.paths import PathSearch

__all__ = [
    "CATALOGUE",
    "audit",
    "chain_text",
    "client_paths",
    "fold_leaf_expiry",
    "path_budget_finding",
    "pin_paths",
    "pins_enforced",
    "pinset_expiry",
    "resolve_pin",
    "sort_findings",
]

Path = tuple[CertFacts, ...]

C, W, INFO = Severity.CRITICAL, Severity.WARNING, Severity.INFO
_NAME_CONSTRAINT = "name constraint"  # in the verifier's messages about nameConstraints

CATALOGUE: dict[Check, tuple[Severity, str]] = {
    Check.PIN_MISMATCH: (
        C,
        "No declared pin matches a key of the validated path, nor of any other valid path "
        "cross-signs allow: pinned clients fail (warning while the pin-set is not enforced "
        "any more).",
    ),
    Check.PIN_PATH_DEPENDENT: (
        W,
        "Cross-signs let clients build several valid paths and a pin matches some of them "
        "only: clients whose verifier builds a failing path refuse the connection (the "
        "message names those paths and why they fail). Critical pin_mismatch is for no "
        "path at all.",
    ),
    Check.PIN_OUTSIDE_PATH: (
        W,
        "A pin matches only a served certificate that is on no path a client builds; "
        "clients ignore it, so it protects nothing.",
    ),
    Check.PINSET_EXPIRED: (
        W,
        "The pin-set's expiration date has passed: clients no longer enforce the pins.",
    ),
    Check.PINSET_EXPIRING: (
        W,
        "The pin-set expires within pinset_warn_days: ship an app update with a new "
        "date or pins before then.",
    ),
    Check.SINGLE_PIN: (W, "Fewer than two pins: no backup pin is possible (RFC 7469 §4.3)."),
    Check.NO_BACKUP_PIN: (
        W,
        "Every pin matches the current paths: none is left for a key or CA not yet in use; "
        "or a pin declared an offline backup key is the key of a certificate served now.",
    ),
    Check.LEAF_ONLY_PIN: (
        W,
        "Only the leaf's key is matched: renewing the certificate with a new key breaks "
        "every pinned client (critical while the leaf expires within warn_days and no "
        "spare key is pinned: then it replaces the leaf's cert_expiring).",
    ),
    Check.LEGACY_SHA1_PIN: (W, "A sha1/ pin: only OkHttp accepts it; Android and iOS do not."),
    Check.UNRESOLVED_PIN: (
        INFO,
        "A pin names no known certificate (trust-store roots or certificates seen in "
        "this scan) and is not declared an offline backup key: check that it is a key you "
        "hold.",
    ),
    Check.CERT_EXPIRED: (C, "A certificate of the path has expired."),
    Check.CERT_EXPIRING: (
        W,
        "A certificate of the path expires within warn_days (critical within critical_days).",
    ),
    Check.CERT_NOT_YET_VALID: (C, "A certificate of the path is not valid yet."),
    Check.CHAIN_UNTRUSTED: (
        C,
        "No valid path to an anchor of the endpoint's trust store, or the path breaks "
        "a WebPKI rule.",
    ),
    Check.HOSTNAME_MISMATCH: (C, "The leaf is not valid for the server name."),
    Check.CHAIN_INCOMPLETE: (
        C,
        "The server does not send an intermediate that the path needs (it was found "
        "elsewhere in the scan).",
    ),
    Check.CHAIN_MISORDERED: (
        W,
        "The served chain is not in path order (critical when the first certificate "
        "is not the server's).",
    ),
    Check.CHAIN_EXTRA_CERTS: (
        W,
        "The server sends a certificate that is on no path a client builds (a cross-sign "
        "that only some clients use is not extra).",
    ),
    Check.CERT_UNPARSABLE: (C, "A served certificate does not parse."),
    Check.WEAK_KEY: (C, "An RSA or DSA key under 2048 bits, or an EC key under 256 bits."),
    Check.WEAK_SIGNATURE: (C, "A certificate of the path is signed with SHA-1 or MD5."),
    Check.UNREACHABLE: (C, "The endpoint could not be scanned: no chain was read."),
    Check.NOT_SCANNED: (
        C,
        "The scan's global deadline passed before this endpoint was scanned.",
    ),
    Check.INTERNAL_ERROR: (
        C,
        "pinaudit failed while judging this endpoint (a bug): the rest of the scan went on; "
        "the scan exits 70, and --traceback prints the trace.",
    ),
    Check.KEY_CHANGED: (
        W,
        "The leaf's key differs from the previous scan's (--state): a rotation happened; "
        "pins on the old leaf key no longer match.",
    ),
    Check.ISSUER_CHANGED: (
        W,
        "The key of the leaf's issuer differs from the previous scan's (--state): the CA or "
        "issuing intermediate changed.",
    ),
    Check.CHAIN_CHANGED: (
        INFO,
        "The served chain differs from the previous scan's (--state) while the leaf and "
        "issuer keys did not change (a renewal with the same keys, or intermediates changed).",
    ),
    Check.CLIENT_PIN_FAILURE: (
        C,
        "A client pin configuration (Android, OkHttp, TrustKit, iOS, HPKP, Chromium) judged "
        "as that client does: no pin matches, so it refuses the connection (warning when it "
        "only reports: TrustKit without enforcement, HPKP report-only).",
    ),
    Check.CLIENT_CONFIG_ERROR: (
        C,
        "The client rejects its own pin configuration (the app crashes or fails every "
        "connection, or the header is ignored): the reason and file:line are in the message.",
    ),
    Check.CLIENT_AMBIGUOUS: (
        W,
        "The client's verdict depends on the path its verifier builds (cross-signs) or on "
        "which of its implementations runs (critical when one of them fails).",
    ),
    Check.PINS_NOT_APPLIED: (
        W,
        "Pins written for this host do not apply to it as spelled (OkHttp with a trailing "
        "dot, a TrustKit key in capitals): the client connects unpinned.",
    ),
    Check.PINS_BYPASSED: (
        INFO,
        "The path ends at an anchor for which the client skips pin checks (a local or "
        "user-installed root, Android overridePins).",
    ),
    Check.DEAD_PIN: (
        W,
        "A pin the client accepts but that can never match (OkHttp does not check the "
        "digest length: sha256/AAAA, or hex written after sha256/).",
    ),
    Check.NAME_CONSTRAINTS_VIOLATED: (
        C,
        "A CA of the path restricts the names it may certify (nameConstraints) and the leaf "
        "names something outside them: clients refuse the chain whatever the server name.",
    ),
    Check.CERT_FIELD_UNREADABLE: (
        W,
        "A certificate on the path has a field pinaudit cannot read (e.g. an "
        "authorityKeyIdentifier with only one of authorityCertIssuer and "
        "authorityCertSerialNumber); the verifier accepted it, strict clients may not, and "
        "facts that depend on that field are missing.",
    ),
    Check.PATH_BUDGET_EXCEEDED: (
        W,
        "Listing the paths clients could build stopped at its budget (candidates, depth or "
        "signature checks): the served certificates form a mesh of cross-signs; verdicts "
        "cover the paths found before it stopped.",
    ),
    Check.OLD_TLS_VERSION: (
        W,
        "The handshake negotiated a TLS version below the endpoint's tls_min_version (TLS 1.2 "
        "unless set; RFC 8996); its severity is the endpoint's tls_version_severity.",
    ),
    Check.OCSP_REVOKED: (
        C,
        "The stapled OCSP response says the leaf is revoked (ocsp: true).",
    ),
    Check.OCSP_UNKNOWN: (
        W,
        "The stapled OCSP response says the responder does not know the leaf.",
    ),
    Check.OCSP_INVALID: (
        W,
        "The server staples an OCSP response that is not a valid answer about its leaf (wrong "
        "certificate, unauthorised responder, bad signature, error status).",
    ),
    Check.OCSP_STALE: (
        W,
        "The stapled OCSP response is past its nextUpdate: the server stopped refreshing it.",
    ),
    Check.MUST_STAPLE_MISSING: (
        C,
        "The leaf requires a staple (TLS Feature status_request, RFC 7633) and the server sends "
        "none: Firefox refuses the connection.",
    ),
    Check.CT_INSUFFICIENT: (
        C,
        "A publicly trusted leaf lacks the SCTs a CT policy (ct: chrome / apple) requires: that "
        "client refuses it.",
    ),
    Check.CAA_UNAUTHORIZED: (
        W,
        "The name's CAA records (caa: true) do not authorise the leaf's issuer: its next "
        "certificate from that CA will be refused.",
    ),
    Check.CAA_MISSING: (
        INFO,
        "A pinned name has no CAA records: CAA (with CT) is the usual way to restrict which CA may"
        " issue for it.",
    ),
    Check.CAA_LOOKUP_FAILED: (
        W,
        "The CAA lookup failed (SERVFAIL, REFUSED, timeout): CAs refuse to issue while it does.",
    ),
}

_CHECK_ORDER = {check: n for n, check in enumerate(Check)}


def sort_findings(findings: Iterable[Finding]) -> tuple[Finding, ...]:
    """Most severe first, then catalogue order, then certificate position."""
    return tuple(
        sorted(
            findings,
            key=lambda f: (
                -f.severity.rank,
                _CHECK_ORDER[f.check],
                -1 if f.certificate is None else f.certificate,
                str(f.pin or ""),
            ),
        )
    )


def _keys(path: Path) -> tuple[Pin, ...]:
    return tuple(c.spki_sha256 for c in path)


def client_paths(report: ChainReport, search: PathSearch | None = None) -> tuple[Path, ...]:
    """The paths clients could build: the report's path first, then, for a
    chain that validates, the other paths `search` found (one per sequence of
    keys: two certificates of one key are one pin candidate)."""
    primary = tuple(pc.facts for pc in report.path)
    if not primary:
        return ()
    found = [primary]
    if search is not None and report.valid:
        seen = {_keys(primary)}
        for path in search.paths:
            if path and _keys(path) not in seen:
                seen.add(_keys(path))
                found.append(path)
    return tuple(found)


def pin_paths(
    pinset: Pinset | None, report: ChainReport, search: PathSearch | None = None
) -> tuple[PinPath, ...]:
    """Every path clients could build, with the pins of `pinset` that name a
    key on it; () without pins or without a path."""
    if pinset is None or not pinset.pins:
        return ()
    return tuple(
        PinPath(path, tuple(p for p in pinset.pins if any(p in c.pins for c in path)))
        for path in client_paths(report, search)
    )


def chain_text(path: Path) -> str:
    """A path in words: the subjects, leaf → anchor."""
    return " → ".join(c.subject for c in path)


def fold_leaf_expiry(findings: Iterable[Finding]) -> tuple[Finding, ...]:
    """One finding for one risk: a ``leaf_only_pin`` on the leaf (which says when
    the leaf expires) replaces that leaf's ``cert_expiring``. For findings put
    together from several audits (the endpoint's and its client pin-sets')."""
    findings = tuple(findings)
    leaf_only = {f.certificate for f in findings if f.check is Check.LEAF_ONLY_PIN}
    return tuple(
        f
        for f in findings
        if not (f.check is Check.CERT_EXPIRING and f.certificate == 0 and 0 in leaf_only)
    )


def pinset_expiry(pinset: Pinset) -> datetime | None:
    """The last instant a pin-set is enforced: 00:00 UTC of its date."""
    if pinset.expires is None:
        return None
    return datetime.combine(pinset.expires, time(0), tzinfo=timezone.utc)


def aware(now: datetime) -> datetime:
    """`now` with a time zone: a naive `now` is UTC."""
    return now if now.tzinfo is not None else now.replace(tzinfo=timezone.utc)


def pins_enforced(pinset: Pinset, now: datetime) -> bool:
    """Clients enforce pins while ``now <= expiry`` (TrustKit: ``expirationDate <
    now`` ends it; Android: ``currentTimeMillis() > expirationTime``), to the
    fraction of a second: 00:00:00Z itself is still enforced."""
    expiry = pinset_expiry(pinset)
    return expiry is None or aware(now) <= expiry


def cert_time(now: datetime) -> datetime:
    """`now` as certificate validity is judged: certificate times have whole
    seconds and the second of `notAfter` is still valid (RFC 5280 §4.1.2.5:
    "notBefore through notAfter, inclusive"; the verifier drops fractions too)."""
    return aware(now).replace(microsecond=0)


def not_yet_valid(facts: CertFacts, now: datetime) -> bool:
    return cert_time(now) < facts.not_before


def expired(facts: CertFacts, now: datetime) -> bool:
    return cert_time(now) > facts.not_after


@dataclass(frozen=True, slots=True)
class _Cert:
    """A certificate the audit looks at: its facts and where it sits."""

    facts: CertFacts
    position: int | None  # served position
    path_index: int | None  # index in the path, None when not on it


def _days(delta: timedelta) -> str:
    days = delta.total_seconds() / 86400
    return f"{days:.1f} days" if days < 2 else f"{round(days)} days"


def _date(when: datetime | date) -> str:
    if isinstance(when, datetime):
        return when.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")
    return when.isoformat()


class _Audit:
    def __init__(
        self,
        endpoint: Endpoint,
        report: ChainReport,
        now: datetime,
        known_keys: Mapping[Pin, str],
        search: PathSearch | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.report = report
        self.now = aware(now)
        self.known_keys = known_keys
        self.findings: list[Finding] = []
        # Every path a client could build (the validated one first); a served
        # certificate on any of them is neither extra nor a pin outside the path.
        self.paths = client_paths(report, search)
        self.on_a_path = {c.der_sha256 for path in self.paths for c in path}
        on_path = {pc.facts.der_sha256: i for i, pc in enumerate(report.path)}
        self.path = [_Cert(pc.facts, pc.served_position, i) for i, pc in enumerate(report.path)]
        self.served = [
            _Cert(s.facts, s.position, on_path.get(s.facts.der_sha256))
            for s in report.served
            if s.facts is not None
        ]
        # What the time, key and signature checks look at: the path, or
        # failing that whatever was served.
        self.examined = self.path or self.served

    def add(
        self,
        check: Check,
        message: str,
        *,
        cert: _Cert | None = None,
        pin: Pin | None = None,
        severity: Severity | None = None,
        position: int | None = None,
    ) -> None:
        self.findings.append(
            Finding(
                check=check,
                severity=severity or CATALOGUE[check][0],
                message=message,
                certificate=cert.position if cert else position,
                pin=pin,
                subject=cert.facts.subject if cert else None,
            )
        )

    # --- chain ------------------------------------------------------------

    def chain(self) -> None:
        report = self.report
        on_path = {pc.served_position for pc in report.path}
        for s in report.served:
            if s.facts is None and s.position not in on_path:
                self.add(
                    Check.CERT_UNPARSABLE,
                    f"certificate {s.position} ({len(s.der)} bytes) does not parse: {s.error}",
                    position=s.position,
                )
        for cert in self.path:
            if cert.facts.unreadable:
                where = (
                    f"certificate {cert.position}"
                    if cert.position is not None
                    else f"{cert.facts.subject} (not served)"
                )
                self.add(
                    Check.CERT_FIELD_UNREADABLE,
                    f"{where} is on the path the verifier built, but a field of it cannot be "
                    f"read: {'; '.join(cert.facts.unreadable)}",
                    cert=cert,
                )
        if report.status is PathStatus.UNPARSABLE:
            return
        explained = False
        if report.hostname_ok is False:
            explained = True
            leaf = self.served[0]
            names = ", ".join(leaf.facts.san_dns + leaf.facts.san_ip) or "no subjectAltName"
            self.add(
                Check.HOSTNAME_MISMATCH,
                f"certificate is not valid for {report.server_name!r} (it names: {names})",
                cert=leaf,
            )
        if report.policy_error:
            explained = True
            if _NAME_CONSTRAINT in report.policy_error:
                self.name_constraints(report.policy_error)
            else:
                self.add(Check.CHAIN_UNTRUSTED, report.policy_error)
        explained |= self.validity()
        self.keys_and_signatures()
        if report.status is PathStatus.UNTRUSTED:
            self.untrusted()
        elif report.status is PathStatus.INCOMPLETE:
            missing = [c for c in self.path[1:-1] if c.position is None]
            names = "; ".join(c.facts.subject for c in missing) or "an intermediate"
            self.add(
                Check.CHAIN_INCOMPLETE,
                f"the server does not send {names}: clients that do not fetch missing "
                "intermediates fail",
            )
        elif report.status is PathStatus.INVALID and not explained:
            self.add(Check.CHAIN_UNTRUSTED, report.error or "the chain does not validate")
        self.order_and_extras()

    def name_constraints(self, error: str) -> None:
        leaf = self.served[0] if self.served else None
        names = ", ".join(leaf.facts.san_dns + leaf.facts.san_ip) if leaf else ""
        self.add(
            Check.NAME_CONSTRAINTS_VIOLATED,
            f"a CA's nameConstraints forbid a name of the leaf ({names or 'no subjectAltName'}): "
            f"{error}",
            cert=leaf,
        )

    def untrusted(self) -> None:
        error = self.report.error or ""
        if _NAME_CONSTRAINT in error:
            self.name_constraints(error)
            return
        self.add(
            Check.CHAIN_UNTRUSTED,
            f"no valid path to an anchor of trust store {self.endpoint.trust}: {error}",
        )

    def validity(self) -> bool:
        """Time checks on every certificate examined; True when one fails."""
        failed = False
        now, ep = self.now, self.endpoint
        for cert in self.examined:
            f = cert.facts
            if not_yet_valid(f, now):
                failed = True
                self.add(
                    Check.CERT_NOT_YET_VALID,
                    f"not valid before {_date(f.not_before)} ({_days(f.not_before - now)} "
                    "from now)",
                    cert=cert,
                )
            elif expired(f, now):
                failed = True
                self.add(
                    Check.CERT_EXPIRED,
                    f"expired {_date(f.not_after)} ({_days(now - f.not_after)} ago)",
                    cert=cert,
                )
            else:
                left = f.not_after - cert_time(now)
                if left <= timedelta(days=ep.critical_days):
                    severity = C
                elif left <= timedelta(days=ep.warn_days):
                    severity = W
                else:
                    continue
                self.add(
                    Check.CERT_EXPIRING,
                    f"expires {_date(f.not_after)} (in {_days(left)})",
                    cert=cert,
                    severity=severity,
                )
        return failed

    def keys_and_signatures(self) -> None:
        for n, cert in enumerate(self.examined):
            f = cert.facts
            weak = (f.key_type in (KeyType.RSA, KeyType.DSA) and f.key_bits < 2048) or (
                f.key_type is KeyType.EC and f.key_bits < 256
            )
            if weak:
                self.add(
                    Check.WEAK_KEY, f"{f.key_type.value.upper()} {f.key_bits}-bit key", cert=cert
                )
            is_anchor = bool(self.path) and n == len(self.path) - 1
            if f.signature_hash in ("sha1", "md5") and not is_anchor and not f.self_issued:
                self.add(
                    Check.WEAK_SIGNATURE,
                    f"signed with {f.signature_algorithm} ({f.signature_hash.upper()})",
                    cert=cert,
                )

    def order_and_extras(self) -> None:
        if not self.path:
            return
        first = self.served[0]
        later_leaf = [c for c in self.served[1:] if not c.facts.is_ca and c.path_index is None]
        if first.facts.is_ca and later_leaf:
            self.add(
                Check.CHAIN_MISORDERED,
                f"the first certificate sent is the CA {first.facts.subject}; clients take "
                f"it as the server's certificate (the server's is sent at position "
                f"{later_leaf[0].position})",
                cert=first,
                severity=C,
            )
        else:
            positions = [c.position for c in self.path if c.position is not None]
            if positions != sorted(positions):
                self.add(
                    Check.CHAIN_MISORDERED,
                    "served order "
                    + ", ".join(str(p) for p in positions)
                    + " does not follow the path leaf → anchor",
                )
        for cert in self.served:
            if cert.path_index is None and cert.facts.der_sha256 not in self.on_a_path:
                self.add(
                    Check.CHAIN_EXTRA_CERTS,
                    f"{cert.facts.subject} is sent but not on the path",
                    cert=cert,
                )

    # --- pins -------------------------------------------------------------

    def pins(self) -> None:
        pinset = self.endpoint.pinset
        if pinset is None:
            return
        pins = pinset.pins
        if not pins:
            self.add(Check.SINGLE_PIN, f"pin-set {pinset.name!r} is empty: pinning is disabled")
            return
        enforced = self.pinset_window(pinset)
        # Without a path every client fails already (chain_untrusted); pins
        # are only judged against a path, as clients judge them.
        judged = (
            tuple(
                PinPath(path, tuple(p for p in pins if any(p in c.pins for c in path)))
                for path in self.paths
            )
            if self.path
            else ()
        )
        matched = self.match(pinset, enforced, judged)
        seen = {p for c in self.served + self.path for p in c.facts.pins}
        seen |= {p for path in self.paths for c in path for p in c.pins}
        served_offline = [p for p in pins if p in pinset.offline and p in seen]
        if len(pins) < 2:
            self.add(Check.SINGLE_PIN, f"pin-set {pinset.name!r} has a single pin", pin=pins[0])
        elif len(matched) == len(pins) and not served_offline:
            self.add(
                Check.NO_BACKUP_PIN,
                f"all {len(pins)} pins of {pinset.name!r} match the current path: none is a backup",
            )
        for pin in served_offline:
            self.add(
                Check.NO_BACKUP_PIN,
                f"{pin} is declared an offline backup key, but it is the key of "
                f"{self.holder(pin)}: a key in use is no backup",
                pin=pin,
            )
        for pin in pins:
            if pin.alg is HashAlg.SHA1:
                self.add(Check.LEGACY_SHA1_PIN, f"{pin} is a legacy SHA-1 pin", pin=pin)
        for pin in pins:
            if pin not in seen and pin not in self.known_keys and pin not in pinset.offline:
                self.add(
                    Check.UNRESOLVED_PIN,
                    f"{pin} is not the key of any trust-store root or certificate seen",
                    pin=pin,
                )
        if judged:
            self.leaf_only(pinset, judged, seen)

    def holder(self, pin: Pin) -> str:
        """Which certificate of this chain has the key `pin` names, in words."""
        for cert in self.served:
            if pin in cert.facts.pins:
                return f"{cert.facts.subject}, served at position {cert.position}"
        for path in self.paths:
            for facts in path:
                if pin in facts.pins:
                    return f"{facts.subject}, on the path"
        return "a certificate of the chain"

    def match(self, pinset: Pinset, enforced: bool, judged: tuple[PinPath, ...]) -> set[Pin]:
        """The pins that match some path; the mismatch, path-dependence and
        pin-outside-path findings."""
        matched = {p for path in judged for p in path.matched}
        if not judged:
            return matched
        for pin in pinset.pins:
            if pin in matched:
                continue
            off_path = [
                c
                for c in self.served
                if c.facts.der_sha256 not in self.on_a_path and pin in c.facts.pins
            ]
            if off_path:
                self.add(
                    Check.PIN_OUTSIDE_PATH,
                    f"{pin} matches {off_path[0].facts.subject}, which is sent but not on the "
                    "validated path: clients ignore it",
                    cert=off_path[0],
                    pin=pin,
                )
        state = "" if enforced else " (pins not enforced any more)"
        pins_text = ", ".join(str(p) for p in pinset.pins)
        passing = [p for p in judged if p.passes]
        failing = [p for p in judged if not p.passes]
        if not passing and len(judged) == 1:
            keys = "; ".join(f"{c.spki_sha256}: {c.subject}" for c in judged[0].certs)
            self.add(
                Check.PIN_MISMATCH,
                f"no pin of {pinset.name!r} matches the path{state}. Path keys: {keys}. "
                f"Pins: {pins_text}",
                severity=C if enforced else W,
            )
        elif not passing:
            certs = {c.spki_sha256: c.subject for path in judged for c in path.certs}
            keys = "; ".join(f"{pin}: {subject}" for pin, subject in certs.items())
            paths = "; ".join(chain_text(p.certs) for p in judged)
            self.add(
                Check.PIN_MISMATCH,
                f"no pin of {pinset.name!r} matches any of the {len(judged)} paths a client "
                f"can build{state}. Paths: {paths}. Keys: {keys}. Pins: {pins_text}",
                severity=C if enforced else W,
            )
        elif failing:
            self.add(Check.PIN_PATH_DEPENDENT, _path_dependent(pinset, judged) + state)
        return matched

    def leaf_only(self, pinset: Pinset, judged: tuple[PinPath, ...], seen: set[Pin]) -> None:
        """`leaf_only_pin` when a path that passes does so by the leaf's key alone;
        escalated into one finding with the leaf's expiry when the renewal is due."""
        leaf = self.path[0]
        if leaf.facts.is_ca:
            return
        passing = [p for p in judged if p.passes]
        by_leaf = [p for p in passing if all(pin in leaf.facts.pins for pin in p.matched)]
        if not by_leaf:
            return
        pin = by_leaf[0].matched[0]
        if len(by_leaf) == len(passing):
            where = ""
        else:
            shown = "; ".join(chain_text(p.certs) for p in by_leaf)
            where = f" on {len(by_leaf)} of the {len(passing)} paths that pass ({shown})"
        spare = [
            p
            for p in pinset.pins
            if p not in seen and (p in pinset.offline or p not in self.known_keys)
        ]
        facts = leaf.facts
        left = facts.not_after - cert_time(self.now)
        due = (
            not not_yet_valid(facts, self.now)
            and not expired(facts, self.now)
            and left <= timedelta(days=self.endpoint.warn_days)
        )
        if not due:
            self.add(
                Check.LEAF_ONLY_PIN,
                f"only the leaf's key is pinned{where}: a renewal with a new key breaks pinned "
                "clients",
                cert=leaf,
                pin=pin,
            )
            return
        # The leaf's cert_expiring is this finding now: one risk, one finding.
        self.findings = [
            f
            for f in self.findings
            if not (f.check is Check.CERT_EXPIRING and f.certificate == leaf.position)
        ]
        expiry = f"the leaf expires {_date(facts.not_after)} (in {_days(left)})"
        urgent = left <= timedelta(days=self.endpoint.critical_days)
        if spare:
            kind = "offline backup key" if spare[0] in pinset.offline else "spare key"
            message = (
                f"only the leaf's key is pinned{where} and {expiry}: renew it with the "
                f"{kind} pinned in advance ({spare[0]}) or reuse the key; a renewal with any "
                "other key breaks every pinned client"
            )
            self.add(Check.LEAF_ONLY_PIN, message, cert=leaf, pin=pin, severity=C if urgent else W)
            return
        message = (
            f"only the leaf's key is pinned{where} and {expiry}: renewing it with a new key "
            "breaks every pinned client, and no spare key is pinned in advance. Reuse the key "
            "for the renewal, or ship the next key's pin in an app update first"
        )
        self.add(Check.LEAF_ONLY_PIN, message, cert=leaf, pin=pin, severity=C)

    def pinset_window(self, pinset: Pinset) -> bool:
        expiry = pinset_expiry(pinset)
        if expiry is None:
            return True
        if not pins_enforced(pinset, self.now):
            self.add(
                Check.PINSET_EXPIRED,
                f"pin-set {pinset.name!r} expired {pinset.expires}: clients do not enforce "
                "its pins any more",
            )
            return False
        left = expiry - self.now
        if left <= timedelta(days=self.endpoint.pinset_warn_days):
            self.add(
                Check.PINSET_EXPIRING,
                f"pin-set {pinset.name!r} stops being enforced on {pinset.expires} "
                f"(in {_days(left)})",
            )
        return True


def _path_dependent(pinset: Pinset, judged: Sequence[PinPath]) -> str:
    """The ``pin_path_dependent`` message: the paths that fail and why, those that pass."""
    passing = [p for p in judged if p.passes]
    failing = [p for p in judged if not p.passes]
    named = {
        c.subject: None for p in passing for c in p.certs if any(pin in c.pins for pin in p.matched)
    }
    fails = "; on ".join(
        f"{chain_text(p.certs)}: no pin names a key of it (the pins name "
        f"{', '.join(s for s in named if all(c.subject != s for c in p.certs))}, not on it)"
        for p in failing
    )
    passes = "; on ".join(
        f"{chain_text(p.certs)} ({', '.join(str(pin) for pin in p.matched)})" for p in passing
    )
    return (
        f"pin-set {pinset.name!r} matches {len(passing)} of the {len(judged)} paths a client "
        f"can build. It fails on {fails}. It passes on {passes}. Clients whose verifier builds "
        "a failing path refuse the connection; which path a client builds depends on its "
        "verifier and trust store"
    )


def audit(
    endpoint: Endpoint,
    report: ChainReport,
    now: datetime,
    *,
    known_keys: Mapping[Pin, str] | None = None,
    search: PathSearch | None = None,
) -> tuple[Finding, ...]:
    """Every finding for one endpoint's chain as of `now`, most severe first.

    `known_keys` maps pins of certificates known to the scan (trust-store
    roots, certificates seen at other endpoints) to their subjects; a pin
    found in none of them, nor in this chain, nor declared an offline backup
    key, is reported as unresolved. `search`: the other paths clients could
    build from the served chain (``paths.search_paths``); pins are judged on
    each, and a search that stopped at its budget is a finding."""
    run = _Audit(endpoint, report, now, known_keys or {}, search)
    run.chain()
    run.pins()
    if search is not None and report.valid:
        budget = path_budget_finding(search.exhausted, len(report.served))
        if budget is not None:
            run.findings.append(budget)
    return sort_findings(run.findings)


def resolve_pin(pin: Pin, report: ChainReport, known_keys: Mapping[Pin, str]) -> str | None:
    """Subject of the certificate a pin names, if known."""
    for cert in [pc.facts for pc in report.path] + [
        s.facts for s in report.served if s.facts is not None
    ]:
        if pin in cert.pins:
            return cert.subject
    return known_keys.get(pin)


def path_budget_finding(exhausted: str | None, served: int) -> Finding | None:
    """The finding for a client-path search (``paths.search_paths``) that
    stopped at its budget: the endpoint's own problem, said once."""
    if exhausted is None:
        return None
    return Finding(
        Check.PATH_BUDGET_EXCEEDED,
        CATALOGUE[Check.PATH_BUDGET_EXCEEDED][0],
        f"{exhausted}: the {served} served certificates offer more paths to an anchor than "
        "clients explore; client verdicts cover the paths found so far",
    )
