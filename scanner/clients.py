"""Judge a chain the way each pinning client would (pinning-semantics §8). Pure.

For one endpoint and one :class:`ClientPolicy` this module does what that
client does: canonicalises the host as it does (§8.2), selects the rule(s)
as it does (§8.3: a union for OkHttp and ATS, the single most specific rule
for Android, TrustKit and Chromium, HPKP's walk up the labels), applies its
enforcement window (§8.4) and gives its verdict (§8.6) on the validated
path, or on each candidate path when cross-signs allow several.

Nothing here reads the clock or the network: `now` is a parameter, chains
come as ``ChainReport``/``CertFacts``.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, time, timedelta, timezone
from typing import Any

from scanner.audit import audit
from scanner.chain import DEFAULT_CACHE, CertificateCache
from scanner.importers.apple import public_suffix
from scanner.importers.okhttp import canonical_host as okhttp_canonical_host
from scanner.model import (
    CertFacts,
    ChainReport,
    Check,
    Endpoint,
    Finding,
    KeyType,
    Pin,
    Severity,
)
from scanner.paths import candidate_paths
from scanner.policy import (
    Client,
    ClientPolicy,
    ClientVerdict,
    HostMode,
    PathVerdict,
    Platform,
    PolicyRule,
    Verdict,
)
from scanner.trust import TrustStore

Path = tuple[CertFacts, ...]

CHROMIUM_MAX_LIST_AGE_DAYS = 70  # IsStaticPKPListTimely
HPKP_MAX_AGE_CAP = 86400 * 60  # Chromium's kMaxHPKPAgeSecs
TRUSTKIT_VERSION = "3.0.0"
_FAILS = (Verdict.FAIL_ENFORCED, Verdict.FAIL_REPORT_ONLY)
# TrustKit rebuilds the SPKI only for these keys (§3.3); any other stops the walk.
_TRUSTKIT_KEYS = {(KeyType.RSA, 2048), (KeyType.RSA, 3072), (KeyType.RSA, 4096)}
_TRUSTKIT_CURVES = {"secp256r1", "secp384r1"}


@dataclass(frozen=True)
class Environment:
    """What the scan cannot see on a device, given by the caller.

    ``local_anchors``: keys (SHA-256 pins) of anchors installed by a user or
    an administrator rather than shipped with the platform: Chromium and
    TrustKit on macOS skip pins for chains ending there, Android only when the
    domain-config's ``user`` anchors say ``overridePins``. ``debuggable``: the
    Android app is a debug build (``<debug-overrides>`` apply)."""

    local_anchors: frozenset[Pin] = frozenset()
    debuggable: bool = False


# --- host names -----------------------------------------------------------------


def _idna(host: str) -> str:
    if host.isascii():
        return host.lower()
    try:
        import idna

        return str(idna.encode(host, uts46=True).decode("ascii"))
    except Exception:  # idna raises several types for names it refuses
        return host.lower()


def canonical_host(policy: ClientPolicy, host: str) -> str:
    """The name as the client compares it (§8.2)."""
    client = policy.client
    if client is Client.OKHTTP:
        return okhttp_canonical_host(host.strip()) or host.strip().lower()
    if client is Client.TRUSTKIT and policy.platform is not Platform.ANDROID:
        return host  # TrustKit iOS/macOS: no normalisation at all
    name = _idna(host.strip())
    if client in (Client.HPKP, Client.CHROMIUM):
        return name.rstrip(".")
    return name[:-1] if name.endswith(".") else name


def _suffixes(host: str) -> list[str]:
    """host, its parent, ... up to the last label."""
    labels = host.split(".")
    return [".".join(labels[i:]) for i in range(len(labels)) if labels[i]]


@dataclass(frozen=True)
class Selection:
    """The rule(s) a client picks for a host, and what is worth saying about it."""

    rules: tuple[PolicyRule, ...] = ()
    notes: tuple[str, ...] = ()
    not_applied: tuple[str, ...] = ()  # pins that would apply to another spelling of the host
    reason: str = ""
    alternatives: tuple[tuple[str, tuple[PolicyRule, ...]], ...] = ()  # AMBIGUOUS lookups


def _okhttp_matches(rule: PolicyRule, host: str) -> bool:
    suffix = rule.host
    if rule.mode is HostMode.ONE_LABEL:
        return host.endswith("." + suffix) and "." not in host[: -len(suffix) - 1]
    if rule.mode is HostMode.ANY_DEPTH:
        return host == suffix or host.endswith("." + suffix)
    return host == suffix


def _select_okhttp(policy: ClientPolicy, host: str) -> Selection:
    rules = tuple(r for r in policy.rules if _okhttp_matches(r, host))
    if rules or not host.endswith("."):
        return Selection(rules)
    bare = host[:-1]
    missed = tuple(r for r in policy.rules if _okhttp_matches(r, bare))
    if not missed:
        return Selection()
    patterns = ", ".join(r.pattern for r in missed)
    message = (
        f"OkHttp does not apply the pins of {patterns} to the absolute name {host!r}: "
        "the trailing dot bypasses pinning (lysine-dev/okhttp #9724)"
    )
    return Selection(not_applied=(message,), reason="the trailing dot bypasses the pins")


def _select_most_specific(policy: ClientPolicy, host: str) -> Selection:
    """Android NSC and TrustKit-Android: an exact domain, else the longest
    includeSubdomains suffix."""
    exact = [r for r in policy.rules if r.host == host]
    if exact:
        return Selection((exact[-1] if policy.client is Client.TRUSTKIT else exact[0],))
    below = [r for r in policy.rules if r.mode is HostMode.SUBTREE and host.endswith("." + r.host)]
    if not below:
        return Selection()
    return Selection((max(below, key=lambda r: len(r.host)),))


def _trustkit_is_subdomain(domain: str, host: str) -> bool:
    suffix = public_suffix(host)
    if suffix is None or public_suffix(domain) != suffix:
        return False
    head = host[: -len(suffix) - 1]
    domain_head = domain[: -len(suffix) - 1]
    return bool(domain_head) and head.endswith("." + domain_head)


def _select_trustkit_ios(policy: ClientPolicy, host: str) -> Selection:
    exact = [r for r in policy.rules if r.host == host]
    if exact:
        rule = exact[-1]
        if rule.excluded:
            return Selection(reason=f"{host} is excluded from its parent's policy")
        return Selection((rule,))
    below = [
        r
        for r in policy.rules
        if r.mode is HostMode.SUBTREE and not r.excluded and _trustkit_is_subdomain(r.host, host)
    ]
    if below:
        return Selection((max(below, key=lambda r: len(r.host)),))
    near = [r for r in policy.rules if r.host.lower() == host.lower() and r.host != host]
    if near:
        message = (
            f"TrustKit policy {near[0].host!r} does not apply to {host!r}: TrustKit looks "
            "domains up case-sensitively"
        )
        return Selection(not_applied=(message,), reason="the policy key differs in case")
    return Selection()


def _select_ats(policy: ClientPolicy, host: str) -> Selection:
    parent = host.split(".", 1)[1] if "." in host else None
    rules = tuple(
        r
        for r in policy.rules
        if r.host == host
        or (r.mode is HostMode.ONE_LEVEL and parent is not None and r.host == parent)
    )
    return Selection(rules)


def _select_hpkp(policy: ClientPolicy, host: str) -> Selection:
    noted: dict[str, PolicyRule] = {}
    for header in policy.rules:  # a later header for a host replaces an earlier one
        rule = header
        if not rule.report_only and not rule.problems and rule.max_age != 0:
            noted[rule.host] = rule
        elif not rule.report_only:
            noted.pop(rule.host, None)
    exact = [r for r in policy.rules if r.host == host and not r.report_only]
    if exact and (exact[-1].problems or exact[-1].max_age == 0):
        return Selection((exact[-1],))
    report_only = [r for r in policy.rules if r.host == host and r.report_only]
    ro = (report_only[-1],) if report_only else ()
    for suffix in _suffixes(host):
        found = noted.get(suffix)
        if found is None:
            continue
        if suffix == host or found.mode is HostMode.SUBTREE:
            return Selection((found, *ro))
        return Selection(
            ro,
            reason=f"{suffix} is pinned without includeSubDomains, which ends the walk",
        )
    return Selection(ro)


def _select_chromium(policy: ClientPolicy, host: str) -> Selection:
    by_host: dict[str, PolicyRule] = {}
    for rule in policy.rules:
        by_host.setdefault(rule.host, rule)
    component: PolicyRule | None = None
    trie: PolicyRule | None = None
    first = True
    for suffix in _suffixes(host):
        entry = by_host.get(suffix)
        if entry is None:
            continue
        applies = suffix == host or entry.mode is HostMode.SUBTREE
        if first:
            trie = entry if applies else None
            first = False
        if applies:
            component = entry
            break
    if component is trie:
        return Selection((component,) if component else ())
    return Selection(
        alternatives=(
            ("component-updated list", (component,) if component else ()),
            ("compiled-in list", (trie,) if trie else ()),
        ),
        reason="Chromium's two lookups disagree for this host",
    )


def select(policy: ClientPolicy, host: str) -> Selection:
    """The rule(s) `policy`'s client applies to `host` (already canonical)."""
    client = policy.client
    if client is Client.OKHTTP:
        return _select_okhttp(policy, host)
    if client is Client.ANDROID:
        return _select_most_specific(policy, host)
    if client is Client.TRUSTKIT:
        if policy.platform is Platform.ANDROID:
            return _select_most_specific(policy, host)
        return _select_trustkit_ios(policy, host)
    if client is Client.IOS:
        return _select_ats(policy, host)
    if client is Client.HPKP:
        return _select_hpkp(policy, host)
    if client is Client.CHROMIUM:
        return _select_chromium(policy, host)
    return Selection(tuple(r for r in policy.rules if r.host == host))


def applies(policy: ClientPolicy, host: str) -> bool:
    """Whether any rule of `policy` concerns `host` (``pinset: auto``)."""
    found = select(policy, canonical_host(policy, host))
    return bool(found.rules or found.not_applied or found.alternatives)


# --- enforcement windows (§8.4) -------------------------------------------------


_FIRST = datetime.min.replace(tzinfo=timezone.utc)
_LAST = datetime.max.replace(tzinfo=timezone.utc)


def _shift(when: datetime, delta: timedelta) -> datetime:
    """`when + delta`, held at the ends of time (an expiry written 0001-01-01 or
    9999-12-31 is legal in every client format)."""
    try:
        return when + delta
    except OverflowError:
        return _FIRST if delta < timedelta(0) else _LAST


def enforcement_window(
    policy: ClientPolicy, rule: PolicyRule
) -> tuple[datetime | None, datetime | None]:
    """(first, last) instant at which some device stops enforcing; None: never."""
    if policy.client is Client.CHROMIUM and policy.list_timestamp is not None:
        end = _shift(policy.list_timestamp, timedelta(days=CHROMIUM_MAX_LIST_AGE_DAYS))
        return end, end
    if rule.expires is None:
        return None, None
    midnight = datetime.combine(rule.expires, time(0), tzinfo=timezone.utc)
    if policy.client is Client.ANDROID or (
        policy.client is Client.TRUSTKIT and policy.platform is Platform.ANDROID
    ):
        # local midnight at the start of the date, on devices from UTC+14 to UTC-12
        return _shift(midnight, timedelta(hours=-14)), _shift(midnight, timedelta(hours=12))
    if policy.client is Client.TRUSTKIT:
        return midnight, midnight
    return None, None


# --- matching ----------------------------------------------------------------------


def _keys(cert: CertFacts) -> frozenset[Pin]:
    return cert.pins


def _hits(pins: Iterable[Pin], certs: Iterable[CertFacts]) -> tuple[Pin, ...]:
    keys: set[Pin] = set()
    for cert in certs:
        keys |= _keys(cert)
    return tuple(p for p in pins if p in keys)


def _trustkit_supported(cert: CertFacts) -> bool:
    if cert.key_type is KeyType.EC:
        return cert.key_curve in _TRUSTKIT_CURVES
    return (cert.key_type, cert.key_bits) in _TRUSTKIT_KEYS


@dataclass(frozen=True)
class _Judged:
    verdict: Verdict
    detail: str
    matched: tuple[Pin, ...] = ()
    result: int | None = None  # TrustKit validation-result


class _Judge:
    """One policy, one host, its selected rule(s): the verdict on a path."""

    def __init__(
        self,
        policy: ClientPolicy,
        host: str,
        rules: tuple[PolicyRule, ...],
        env: Environment,
        now: datetime,
    ) -> None:
        self.policy = policy
        self.host = host
        self.rules = rules
        self.env = env
        self.now = now
        self.pins = tuple(dict.fromkeys(p for r in rules for p in r.pins))
        self.leaf_pins = tuple(dict.fromkeys(p for r in rules for p in r.leaf_pins))
        self.bad_pins = tuple(dict.fromkeys(p for r in rules for p in r.bad_pins))
        self.dead_pins = tuple(dict.fromkeys(p for r in rules for p in r.dead_pins))
        self.enforce = all(r.enforce for r in rules)
        self.window = self._window()

    def _window(self) -> tuple[datetime | None, datetime | None]:
        firsts: list[datetime] = []
        lasts: list[datetime] = []
        for rule in self.rules:
            first, last = enforcement_window(self.policy, rule)
            if first is not None and last is not None:
                firsts.append(first)
                lasts.append(last)
        if not firsts:
            return None, None
        return min(firsts), max(lasts)

    # before any chain is looked at

    def static(self) -> _Judged | None:
        """CONFIG_ERROR, NOT_PINNED, NOT_ENFORCED(_EXPIRED) need no chain."""
        rules, client = self.rules, self.policy.client
        problems = [p for r in rules for p in r.problems]
        if problems:
            return _Judged(Verdict.CONFIG_ERROR, "; ".join(p.message for p in problems))
        pinning = [r for r in rules if r.has_pinset and not r.excluded]
        if client is Client.HPKP and any(r.max_age == 0 and not r.report_only for r in rules):
            pinning = []
        if not pinning:
            if any(r.max_age == 0 for r in rules):
                return _Judged(Verdict.NOT_PINNED, "max-age=0: the header deletes noted pins")
            return _Judged(Verdict.NOT_PINNED, "the selected rule declares no pin-set")
        if (
            client is Client.HPKP
            and all(r.report_only for r in rules)
            and not any(r.report_uris for r in rules)
        ):
            return _Judged(
                Verdict.NOT_PINNED,
                "a Public-Key-Pins-Report-Only header without report-uri does nothing",
            )
        if not (self.pins or self.leaf_pins or self.bad_pins or self.dead_pins):
            return _Judged(Verdict.NOT_ENFORCED, "the pin-set is empty: pinning is disabled")
        last = self.window[1]
        if last is not None and self.now > last:
            if client is Client.CHROMIUM:
                stamp = self.policy.list_timestamp
                age = (self.now - stamp).days if stamp else 0
                why = f"the static pins list is {age} days old (not enforced from 70 days)"
            else:
                why = f"the pins stopped being enforced at {_ts(last)}"
            return _Judged(Verdict.NOT_ENFORCED_EXPIRED, why)
        return None

    def on_path(self, path: Path, valid: bool) -> _Judged:
        """The verdict on one path (leaf first, anchor last)."""
        if not valid or not path:
            return _Judged(
                Verdict.CHAIN_INVALID,
                "the chain does not validate: the client refuses it whatever the pins",
                result=2,
            )
        bypass = self.bypass(path)
        if bypass is not None:
            return bypass
        client = self.policy.client
        if client is Client.IOS:
            return self.ats(path)
        if client is Client.CHROMIUM:
            return self.chromium(path)
        if client is Client.TRUSTKIT and self.policy.platform is not Platform.ANDROID:
            return self.trustkit(path)
        if client is Client.HPKP:
            return self.hpkp(path)
        matched = _hits(self.pins, path)
        if matched:
            return _Judged(Verdict.PASS, f"{matched[0]} is on the path", matched)
        return self.failed("no pin matches the path")

    def failed(self, why: str, result: int = 1) -> _Judged:
        first, last = self.window
        if self.policy.client is Client.TRUSTKIT and not self.enforce and result == 1:
            return _Judged(Verdict.FAIL_REPORT_ONLY, why + " (TSKEnforcePinning is off)", (), 1)
        if first is not None and last is not None and first < self.now <= last:
            why += (
                f"; devices stop enforcing between {_ts(first)} and {_ts(last)} depending on "
                "their time zone, so some still refuse"
            )
        return _Judged(Verdict.FAIL_ENFORCED, why, (), result)

    def bypass(self, path: Path) -> _Judged | None:
        anchor = path[-1]
        local = anchor.spki_sha256 in self.env.local_anchors
        client = self.policy.client
        if client is Client.ANDROID:
            overrides = {s for r in self.rules for s in r.override_pins}
            if self.env.debuggable:
                overrides |= set(self.policy.debug_overrides)
            sources = {s for r in self.rules for s in r.trust_sources}
            if local and "user" in overrides:
                return _Judged(
                    Verdict.BYPASSED_LOCAL_ANCHOR,
                    "the path ends at a user-installed CA whose source has overridePins",
                )
            if local and "user" not in sources and not self.env.debuggable:
                return _Judged(
                    Verdict.CHAIN_INVALID,
                    "the path ends at a user-installed CA the configuration does not trust",
                )
            if not local and "system" in overrides:
                return _Judged(
                    Verdict.BYPASSED_LOCAL_ANCHOR,
                    'the path ends at a system CA and <certificates src="system" '
                    'overridePins="true"/> skips the pins',
                )
            return None
        if local and client in (Client.CHROMIUM, Client.HPKP):
            return _Judged(
                Verdict.BYPASSED_LOCAL_ANCHOR,
                "the path ends at a locally installed root: pins are not checked (no report)",
            )
        return None

    def trustkit(self, path: Path) -> _Judged:
        for cert in reversed(path):  # anchor first, down to the leaf
            if not _trustkit_supported(cert):
                return _Judged(
                    Verdict.FAIL_ENFORCED,
                    f"TrustKit cannot rebuild the SPKI of {cert.subject} ({cert.key_type.value} "
                    f"{cert.key_bits}) before finding a pin: it blocks the connection "
                    "(ErrorCouldNotGenerateSpkiHash)",
                    result=5,
                )
            hit = _hits(self.pins, (cert,))
            if hit:
                return _Judged(Verdict.PASS, f"{hit[0]} is on the path", hit, 0)
        anchor = path[-1]
        if (
            self.policy.platform is Platform.MACOS
            and self.policy.ignore_user_anchors
            and anchor.spki_sha256 in self.env.local_anchors
        ):
            return _Judged(
                Verdict.BYPASSED_LOCAL_ANCHOR,
                "no pin matches, but the path ends at a user-defined trust anchor "
                "(TSKIgnorePinningForUserDefinedTrustAnchors): allowed, no report",
            )
        return self.failed("no pin matches the path")

    def ats(self, path: Path) -> _Judged:
        matched: list[Pin] = []
        failures: list[str] = []
        if self.leaf_pins:
            hit = _hits(self.leaf_pins, path[:1])
            matched += hit
            if not hit:
                failures.append("no leaf identity matches the leaf")
        if self.pins:
            hit = _hits(self.pins, path[1:]) if len(path) >= 2 else ()
            matched += hit
            if not hit:
                failures.append("no CA identity matches a CA of the path")
        if failures:
            return self.failed(" and ".join(failures))
        return _Judged(Verdict.PASS, "every pinned category matches", tuple(matched))

    def chromium(self, path: Path) -> _Judged:
        bad = _hits(self.bad_pins, path)
        if bad:
            return self.failed(f"the path contains a bad pin ({bad[0]})")
        if not self.pins:
            return _Judged(Verdict.PASS, "no bad pin on the path (the pinset lists only bad pins)")
        matched = _hits(self.pins, path)
        if matched:
            return _Judged(Verdict.PASS, f"{matched[0]} is on the path", matched)
        return self.failed("no static pin matches the path")

    def hpkp(self, path: Path) -> _Judged:
        noted = [r for r in self.rules if not r.report_only]
        report_only = [r for r in self.rules if r.report_only]
        if noted:
            rule = noted[0]
            live = _hits(rule.pins, path)
            backup = [p for p in rule.pins if p not in live]
            if len(rule.pins) < 2 or not live or not backup:
                if len(rule.pins) < 2:
                    why = "fewer than two pins (no backup pin, RFC 7469 §4.3)"
                elif not live:
                    why = "no pin matches the validated chain (no live pin)"
                else:
                    why = "every pin matches the chain (no backup pin)"
                return _Judged(
                    Verdict.CONFIG_ERROR,
                    f"Public-Key-Pins is not noted: {why}; a client that noted an earlier "
                    "header would check those pins instead",
                )
            verdict = _Judged(Verdict.PASS, f"{live[0]} is on the path; noted", live)
        else:
            verdict = _Judged(Verdict.NOT_PINNED, "only a report-only header applies")
        for rule in report_only:
            if not rule.report_uris:
                continue
            if not _hits(rule.pins, path):
                return _Judged(
                    Verdict.FAIL_REPORT_ONLY,
                    "no Public-Key-Pins-Report-Only pin matches the path: a report is sent, "
                    "the connection goes on",
                )
            if verdict.verdict is Verdict.NOT_PINNED:
                verdict = _Judged(
                    Verdict.PASS, "the report-only pins match", _hits(rule.pins, path)
                )
        return verdict


def _ts(when: datetime) -> str:
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _path_key(path: Path) -> tuple[Pin, ...]:
    return tuple(c.spki_sha256 for c in path)


def judge(
    policy: ClientPolicy,
    host: str,
    paths: Sequence[Path],
    now: datetime,
    *,
    valid: bool = True,
    env: Environment | None = None,
) -> ClientVerdict:
    """`policy`'s client's verdict for `host` on candidate `paths` (the first is
    the one a verifier builds; several when cross-signs or trust stores give
    more). `valid` is whether normal validation succeeds."""
    env = env or Environment()
    if now.tzinfo is None:
        now = now.replace(tzinfo=timezone.utc)
    name = canonical_host(policy, host)
    base = ClientVerdict(policy.name, policy.client, Verdict.NOT_PINNED, name, "")
    if policy.problems:
        first = policy.problems[0]
        more = len(policy.problems) - 1
        detail = f"{first}" + (f" (and {more} more)" if more else "")
        return replace(
            base,
            verdict=Verdict.CONFIG_ERROR,
            detail=f"the client rejects the configuration: {detail}",
            problems=policy.problems,
        )
    selection = select(policy, name)
    run = _Run(policy, name, paths, now, valid, env, base)
    if selection.alternatives:
        return _ambiguous(run, selection)
    if not selection.rules:
        detail = selection.reason or "no rule of the policy matches this host"
        return replace(base, detail=detail, notes=selection.not_applied)
    return _verdict(run, selection.rules, selection)


@dataclass(frozen=True)
class _Run:
    """What every verdict of one judge() call shares."""

    policy: ClientPolicy
    name: str
    paths: Sequence[Path]
    now: datetime
    valid: bool
    env: Environment
    base: ClientVerdict


def _verdict(run: _Run, rules: tuple[PolicyRule, ...], selection: Selection) -> ClientVerdict:
    policy, name, paths, now, valid, env, base = (
        run.policy,
        run.name,
        run.paths,
        run.now,
        run.valid,
        run.env,
        run.base,
    )
    judge_ = _Judge(policy, name, rules, env, now)
    first, last = judge_.window
    out = replace(
        base,
        rules=rules,
        pins=judge_.pins,
        leaf_pins=judge_.leaf_pins,
        bad_pins=judge_.bad_pins,
        dead_pins=judge_.dead_pins,
        enforce_until=first,
        enforce_until_latest=last,
        problems=tuple(p for r in rules for p in r.problems),
        notes=selection.not_applied,
    )
    static = judge_.static()
    if static is not None:
        return replace(out, verdict=static.verdict, detail=static.detail)
    unique: dict[tuple[Pin, ...], Path] = {}
    for path in paths or [()]:
        unique.setdefault(_path_key(path), path)
    judged = [(key, judge_.on_path(path, valid)) for key, path in unique.items()]
    verdicts = {j.verdict for _, j in judged}
    first_judged = judged[0][1]
    if len(verdicts) == 1:
        return replace(
            out,
            verdict=first_judged.verdict,
            detail=first_judged.detail,
            matched=first_judged.matched,
        )
    per_path = tuple(PathVerdict(key, j.verdict) for key, j in judged)
    shown = "; ".join(
        f"path ending {key[-1] if key else '-'} ({len(key)} certificates): {j.verdict.value}"
        for key, j in judged
    )
    return replace(
        out,
        verdict=Verdict.PATH_DEPENDENT,
        detail=f"the verdict depends on the path the verifier builds: {shown}",
        matched=first_judged.matched,
        paths=per_path,
    )


def _ambiguous(run: _Run, selection: Selection) -> ClientVerdict:
    results: list[tuple[str, ClientVerdict]] = []
    for lookup, rules in selection.alternatives:
        if rules:
            results.append((lookup, _verdict(run, rules, Selection())))
        else:
            results.append((lookup, replace(run.base, detail="no entry applies")))
    verdicts = {v.verdict for _, v in results}
    if len(verdicts) == 1:
        return results[0][1]
    shown = "; ".join(f"{lookup}: {v.verdict.value}" for lookup, v in results)
    chosen = next((v for _, v in results if v.rules), results[0][1])
    return replace(
        chosen,
        verdict=Verdict.AMBIGUOUS,
        detail=f"{selection.reason}: {shown}",
        alternatives=tuple((lookup, v.verdict) for lookup, v in results),
    )


# --- an endpoint's verdicts and findings ----------------------------------------


def judge_profiles(
    policy: ClientPolicy,
    host: str,
    reports: Sequence[ChainReport],
    now: datetime,
    *,
    env: Environment | None = None,
) -> ClientVerdict:
    """One verdict from chain reports built against several trust-store profiles
    (certifi, Android, Apple, ...): PATH_DEPENDENT when they disagree (§8.7
    trust_store_dependence)."""
    judged = [judge(policy, host, report_paths(r), now, valid=r.valid, env=env) for r in reports]
    if len({v.verdict for v in judged}) <= 1:
        return judged[0]
    per_path = tuple(
        PathVerdict(tuple(pc.facts.spki_sha256 for pc in r.path), v.verdict)
        for r, v in zip(reports, judged, strict=True)
    )
    shown = "; ".join(f"profile {n + 1}: {v.verdict.value}" for n, v in enumerate(judged))
    return replace(
        judged[0],
        verdict=Verdict.PATH_DEPENDENT,
        detail=f"the verdict depends on the trust store the client has: {shown}",
        paths=per_path,
    )


def report_paths(report: ChainReport, extra: Iterable[Path] = ()) -> list[Path]:
    """The report's path first, then other candidate paths."""
    primary = tuple(pc.facts for pc in report.path)
    found = [primary] if primary else []
    found += [p for p in extra if p and _path_key(p) != _path_key(primary)]
    return found


def judge_endpoint(
    endpoint: Endpoint,
    policies: Sequence[ClientPolicy],
    report: ChainReport,
    now: datetime,
    *,
    paths: Sequence[Path] = (),
    env: Environment | None = None,
) -> tuple[ClientVerdict, ...]:
    """Every client's verdict on one endpoint's chain, in policy order."""
    candidates = report_paths(report, paths)
    host = endpoint.server_name
    return tuple(
        judge(policy, host, candidates, now, valid=report.valid, env=env) for policy in policies
    )


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
            risky = any(p.verdict in _FAILS for p in v.paths) or any(
                verdict in _FAILS for _, verdict in v.alternatives
            )
            findings.append(
                Finding(Check.CLIENT_AMBIGUOUS, C if risky else W, f"{who}: {v.detail}")
            )
        for note in v.notes:
            findings.append(Finding(Check.PINS_NOT_APPLIED, W, f"{who}: {note}"))
        for dead in v.dead_pins:
            findings.append(
                Finding(
                    Check.DEAD_PIN,
                    W,
                    f"{who}: {dead} is accepted by the client but can never match "
                    "(wrong digest length)",
                )
            )
        if v.verdict in (Verdict.PASS, *_FAILS) and v.enforce_until is not None:
            left = v.enforce_until - now
            if timedelta(0) <= left <= timedelta(days=endpoint.pinset_warn_days):
                findings.append(
                    Finding(
                        Check.PINSET_EXPIRING,
                        W,
                        f"{who}: the pins stop being enforced from {_ts(v.enforce_until)} "
                        f"(in {left.days} days)",
                    )
                )
        if v.verdict in (Verdict.PASS, Verdict.NOT_ENFORCED, *_FAILS):
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
    from scanner.model import Pinset

    pins = tuple(dict.fromkeys(verdict.pins + verdict.leaf_pins))
    name = f"{verdict.policy} ({verdict.client.value})"
    probe = replace(endpoint, pinset=Pinset(name, pins), client_policies=())
    return [
        f for f in audit(probe, report, now, known_keys=known_keys) if f.check in _ROTATION_CHECKS
    ]


# --- the client's own failure formats (§1.4, §3.4, RFC 7469 §3) ------------------


def okhttp_failure_message(verdict: ClientVerdict, path: Path) -> str:
    """OkHttp's ``SSLPeerUnverifiedException`` message, as the app would log it."""
    lines = ["Certificate pinning failure!", "  Peer certificate chain:"]
    lines += [f"    {c.spki_sha256}: {c.subject}" for c in path]
    lines.append(f"  Pinned certificates for {verdict.host}:")
    lines += [f"    {p}" for p in verdict.pins]
    for dead in verdict.dead_pins:
        alg, _, body = dead.partition("/")
        from scanner.importers._common import okio_base64

        raw = okio_base64(body) or b""
        lines.append(f"    {alg}/{base64.b64encode(raw).decode('ascii')}")
    return "\n".join(lines)


def trustkit_android_failure_message(verdict: ClientVerdict, path: Path) -> str:
    """TrustKit-Android's pin failure message."""
    pins = " ".join(p.b64 for p in verdict.pins)
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
        "date-time": _ts(now),
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
        "date-time": _ts(now),
        "hostname": verdict.host,
        "port": port,
        "effective-expiration-date": _ts(now + timedelta(seconds=max_age)),
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
) -> dict[str, Any]:
    """The failure as the client would show it: ``{"message": str}`` (OkHttp,
    TrustKit-Android) and/or ``{"report": {...}}`` (TrustKit, HPKP report JSON)."""
    trustkit_blocked = (
        verdict.client is Client.TRUSTKIT and verdict.verdict is Verdict.CHAIN_INVALID
    )
    if verdict.verdict not in _FAILS and not trustkit_blocked:
        return {}
    path = tuple(pc.facts for pc in report.path)
    served = [s.der for s in report.served]
    by_digest = {s.facts.der_sha256: s.der for s in report.served if s.facts is not None}
    by_digest.update(anchors_der or {})
    path_der = [by_digest[c.der_sha256] for c in path if c.der_sha256 in by_digest]
    out: dict[str, Any] = {}
    if verdict.client is Client.OKHTTP:
        out["message"] = okhttp_failure_message(verdict, path)
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


# --- what results.evaluate calls ------------------------------------------------------


def assess_clients(
    endpoint: Endpoint,
    report: ChainReport,
    store: TrustStore,
    now: datetime,
    *,
    known_keys: Mapping[Pin, str] | None = None,
    cache: CertificateCache = DEFAULT_CACHE,
    env: Environment | None = None,
) -> tuple[tuple[ClientVerdict, ...], tuple[Finding, ...]]:
    """Every client verdict on one address's chain, with the client's own failure
    format attached, and the findings they give."""
    if not endpoint.client_policies:
        return (), ()
    extra: tuple[Path, ...] = ()
    if report.valid:
        extra = candidate_paths([s.der for s in report.served], store, now, cache=cache)
    verdicts = judge_endpoint(endpoint, endpoint.client_policies, report, now, paths=extra, env=env)
    blocked = any(v.verdict in _FAILS or v.verdict is Verdict.CHAIN_INVALID for v in verdicts)
    anchors_der = _anchor_ders(report, store) if blocked else {}
    platforms = {p.name: p.platform for p in endpoint.client_policies}
    shown = tuple(
        replace(
            v,
            failure=failure_formats(
                v,
                report,
                port=endpoint.port,
                now=now,
                anchors_der=anchors_der,
                platform=platforms.get(v.policy),
            )
            or None,
        )
        if v.verdict in _FAILS
        or (v.client is Client.TRUSTKIT and v.verdict is Verdict.CHAIN_INVALID)
        else v
        for v in verdicts
    )
    findings = client_findings(endpoint, shown, report, now, known_keys=known_keys)
    return shown, findings


def _anchor_ders(report: ChainReport, store: TrustStore) -> dict[bytes, bytes]:
    """DER of the path's anchor when it came from the store (for report formats)."""
    if not report.path or report.path[-1].served_position is not None:
        return {}
    anchor = report.path[-1].facts
    import hashlib

    from cryptography.hazmat.primitives.serialization import Encoding

    for cert in store.anchors:
        der = cert.public_bytes(Encoding.DER)
        if hashlib.sha256(der).digest() == anchor.der_sha256:
            return {anchor.der_sha256: der}
    return {}


def verdict_entry(verdict: ClientVerdict) -> dict[str, Any]:
    """One client verdict in the JSON report (``client_verdicts``)."""

    def pins(values: Iterable[Pin]) -> list[str]:
        return [str(p) for p in values]

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
        "enforced_until": _ts(verdict.enforce_until) if verdict.enforce_until else None,
        "enforced_until_latest": _ts(verdict.enforce_until_latest)
        if verdict.enforce_until_latest
        else None,
        "problems": [str(p) for p in verdict.problems],
        "notes": list(verdict.notes),
        "paths": [{"path": pins(p.path), "verdict": p.verdict.value} for p in verdict.paths],
        "alternatives": [{"lookup": k, "verdict": v.value} for k, v in verdict.alternatives],
        "failure": dict(verdict.failure) if verdict.failure else None,
    }
