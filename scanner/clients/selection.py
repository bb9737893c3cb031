"""Which rule(s) of a client pin configuration apply to a host, as that
client decides (pinning-semantics §8.2 and §8.3). Pure.

Each client canonicalises the host its own way (OkHttp's
``toCanonicalHost``, IDNA for the platforms, none at all for TrustKit on iOS)
and selects its own way: a union of every matching pattern for OkHttp and
ATS, the single most specific rule for Android, TrustKit and Chromium,
HPKP's walk up the labels. Used by the judge and by the inventory
(``pinset: auto``).
"""

from __future__ import annotations

from dataclasses import dataclass

from scanner.hostnames import idna_ascii, okhttp_canonical_host, public_suffix
from scanner.model import Client, ClientPolicy, HostMode, Platform, PolicyRule

__all__ = ["Selection", "applies", "canonical_host", "select"]


def canonical_host(policy: ClientPolicy, host: str) -> str:
    """The name as the client compares it (§8.2)."""
    client = policy.client
    if client is Client.OKHTTP:
        text = host.strip()
        return okhttp_canonical_host(text, policy.okhttp_major) or text.lower()
    if client is Client.TRUSTKIT and policy.platform is not Platform.ANDROID:
        return host  # TrustKit iOS/macOS: no normalisation at all
    name = idna_ascii(host.strip())
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


def _okhttp_matches(rule: PolicyRule, host: str, version: int) -> bool:
    suffix = rule.host
    if rule.mode is HostMode.ONE_LABEL and version < 4:
        # OkHttp 3: what follows the host's first dot (the whole host when it has
        # none: "*.intranet" pins "intranet")
        return host[host.find(".") + 1 :] == suffix
    if rule.mode is HostMode.ONE_LABEL:
        return host.endswith("." + suffix) and "." not in host[: -len(suffix) - 1]
    if rule.mode is HostMode.ANY_DEPTH:
        return host == suffix or host.endswith("." + suffix)
    return host == suffix


def _select_okhttp(policy: ClientPolicy, host: str) -> Selection:
    version = policy.okhttp_major
    rules = tuple(r for r in policy.rules if _okhttp_matches(r, host, version))
    if rules or not host.endswith("."):
        return Selection(rules)
    bare = host[:-1]
    missed = tuple(r for r in policy.rules if _okhttp_matches(r, bare, version))
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
