"""A client's verdict on a chain (pinning-semantics §8.4 to §8.6). Pure.

For one :class:`ClientPolicy` and one host, `judge` does what that client
does: selects the rule(s) (``scanner.clients.selection``), applies the
enforcement window (Android's device time zones, TrustKit's UTC midnight,
Chromium's list age), and gives the verdict on the validated path, or on
each candidate path when cross-signs allow several. Nothing here reads the
clock or the network: `now` is a parameter, chains come as ``CertFacts``.

Where a client decides the chain itself, it gets one verdict: OkHttp on a
JVM pins against the chain its cleaner builds from the served certificates
(``scanner.clients.okhttp_jvm``), whatever other paths a verifier could
build. A client that takes the chain from its platform's verifier (Android,
Apple, a browser) gets PATH_DEPENDENT when cross-signs allow several paths
with different verdicts, and the finding says whose choice it is.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, time, timedelta, timezone

from cryptography import x509

from scanner.chain import DEFAULT_CACHE, CertificateCache
from scanner.clients.okhttp_jvm import JvmChain, clean_chain
from scanner.clients.selection import Selection, canonical_host, select
from scanner.model import (
    CertFacts,
    ChainReport,
    Client,
    ClientPolicy,
    ClientVerdict,
    Endpoint,
    KeyType,
    PathVerdict,
    Pin,
    Platform,
    PolicyRule,
    Verdict,
)

__all__ = [
    "CHROMIUM_MAX_LIST_AGE_DAYS",
    "FAILS",
    "Environment",
    "Path",
    "enforcement_window",
    "judge",
    "judge_endpoint",
    "jvm_chain",
    "okhttp_on_jvm",
    "report_paths",
    "utc_text",
]

Path = tuple[CertFacts, ...]

CHROMIUM_MAX_LIST_AGE_DAYS = 70  # IsStaticPKPListTimely
FAILS = (Verdict.FAIL_ENFORCED, Verdict.FAIL_REPORT_ONLY)
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
                why = f"the pins stopped being enforced at {utc_text(last)}"
            return _Judged(Verdict.NOT_ENFORCED_EXPIRED, why)
        return None

    def on_path(self, path: Path, valid: bool) -> _Judged:
        """The verdict on one path (leaf first, anchor last)."""
        if not valid or not path:
            return _Judged(
                Verdict.CHAIN_INVALID,
                "the chain does not validate: the client refuses it whatever the pins",
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

    def failed(self, why: str) -> _Judged:
        first, last = self.window
        if self.policy.client is Client.TRUSTKIT and not self.enforce:
            return _Judged(Verdict.FAIL_REPORT_ONLY, why + " (TSKEnforcePinning is off)")
        if first is not None and last is not None and first < self.now <= last:
            why += (
                f"; devices stop enforcing between {utc_text(first)} and {utc_text(last)} "
                "depending on their time zone, so some still refuse"
            )
        return _Judged(Verdict.FAIL_ENFORCED, why)

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
                )
            hit = _hits(self.pins, (cert,))
            if hit:
                return _Judged(Verdict.PASS, f"{hit[0]} is on the path", hit)
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


def utc_text(when: datetime) -> str:
    """An instant as 2026-01-01T00:00:00Z."""
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _path_key(path: Path) -> tuple[Pin, ...]:
    return tuple(c.spki_sha256 for c in path)


def okhttp_on_jvm(policy: ClientPolicy) -> bool:
    """Whether `policy` is OkHttp running off Android (its cleaner picks the chain)."""
    return policy.client is Client.OKHTTP and policy.okhttp_platform is Platform.JVM


def jvm_chain(
    policy: ClientPolicy,
    served: Sequence[bytes],
    anchors: Sequence[x509.Certificate],
    *,
    cache: CertificateCache = DEFAULT_CACHE,
) -> JvmChain:
    """The chain `policy`'s OkHttp pins against on a JVM (OkHttp 5 checks the
    signers' CA bit and path length, 3 and 4 do not)."""
    return clean_chain(served, anchors, check_constraints=policy.okhttp_major >= 5, cache=cache)


def judge(
    policy: ClientPolicy,
    host: str,
    paths: Sequence[Path],
    now: datetime,
    *,
    valid: bool = True,
    env: Environment | None = None,
    jvm: JvmChain | None = None,
) -> ClientVerdict:
    """`policy`'s client's verdict for `host` on candidate `paths` (the first is
    the one a verifier builds; several when cross-signs or trust stores give
    more). `valid` is whether normal validation succeeds. `jvm`: for OkHttp on
    a JVM, the chain its cleaner built (``jvm_chain``); without it the first
    path stands for it."""
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
    run = _Run(policy, name, paths, now, valid, env, base, jvm)
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
    jvm: JvmChain | None = None


def _chain_text(path: Path) -> str:
    return " → ".join(c.subject for c in path) or "-"


def _on_jvm(run: _Run, judge_: _Judge, out: ClientVerdict) -> ClientVerdict:
    """OkHttp on a JVM: one verdict, on the chain its cleaner builds."""
    if not run.valid or run.jvm is None:
        path = run.paths[0] if run.paths else ()
        judged = judge_.on_path(path, run.valid)
        return replace(out, verdict=judged.verdict, detail=judged.detail, matched=judged.matched)
    if run.jvm.error is not None:
        return replace(
            out,
            verdict=Verdict.FAIL_ENFORCED,
            detail=f"OkHttp's chain cleaner (JVM) refuses the served chain: {run.jvm.error}",
        )
    path = run.jvm.path
    judged = judge_.on_path(path, True)
    detail = f"{judged.detail} (the chain OkHttp's cleaner builds on a JVM)"
    validated = run.paths[0] if run.paths else ()
    if _path_key(validated) != _path_key(path):
        detail += (
            f"; it differs from the validated path: {_chain_text(path)} instead of "
            f"{_chain_text(validated)}"
        )
    return replace(out, verdict=judged.verdict, detail=detail, matched=judged.matched)


def _path_choice(policy: ClientPolicy) -> str:
    """Who picks among several valid paths, for a client that does not pick itself."""
    client = policy.client
    if client is Client.OKHTTP:
        return (
            "OkHttp on Android pins against the chain the platform's trust manager builds, "
            "and pinaudit does not know which of these paths a given Android version builds"
        )
    if client is Client.ANDROID or (
        client is Client.TRUSTKIT and policy.platform is Platform.ANDROID
    ):
        return "the Android platform's verifier builds the chain, which path is not fixed"
    if client in (Client.IOS, Client.TRUSTKIT):
        return "Apple's trust evaluation builds the chain, which path is not fixed"
    if client in (Client.CHROMIUM, Client.HPKP):
        return "the browser's verifier builds the chain; it differs by platform and version"
    return "which path a verifier builds is not fixed"


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
    if okhttp_on_jvm(policy):
        return _on_jvm(run, judge_, out)
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
        detail=f"the verdict depends on the path the verifier builds ({_path_choice(policy)}): "
        f"{shown}",
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
    jvm: Mapping[str, JvmChain] | None = None,
) -> tuple[ClientVerdict, ...]:
    """Every client's verdict on one endpoint's chain, in policy order (`jvm`:
    the cleaned chain of each OkHttp-on-a-JVM policy, by policy name)."""
    candidates = report_paths(report, paths)
    host = endpoint.server_name
    chains = jvm or {}
    return tuple(
        judge(
            policy,
            host,
            candidates,
            now,
            valid=report.valid,
            env=env,
            jvm=chains.get(policy.name),
        )
        for policy in policies
    )
