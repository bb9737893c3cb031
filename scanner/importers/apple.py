"""TrustKit's iOS/macOS configuration (pinning-semantics §3.1) and App Transport
Security ``NSPinnedDomains`` (§4), from an Info.plist or a bare dictionary.

TrustKit raises an exception at initialisation for a configuration it does not
accept (the app crashes): those are fatal problems. ATS silently skips
malformed entries: those are notes, and a pinned domain left without a usable
identity is a problem of that rule only (the host can never connect).

The TrustKit reader also serves :mod:`scanner.importers.trustkit_code`: a
dictionary written in Swift or Objective-C arrives as the same structure, its
unevaluable values as :class:`Computed`, which become "pins computed at run
time: not imported", never a problem of the app.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from scanner.hostnames import is_public_suffix, public_suffix
from scanner.importers._common import (
    Collector,
    not_the_kind,
    sha256_pin,
    stem_name,
    strict_base64,
)
from scanner.importers.plist import PathKey, Plist, load_plist
from scanner.model import (
    Client,
    ClientPolicy,
    ConfigProblem,
    HostMode,
    Location,
    Pin,
    Platform,
    PolicyRule,
)

__all__ = [
    "EXCLUDE_KEY",
    "Computed",
    "parse_ats_plist",
    "parse_trustkit_plist",
    "report_unused_pins",
    "trustkit_policy",
]

EXCLUDE_KEY = "kSKExcludeSubdomainFromParentPolicy"  # sic: TrustKit 3.0.0's literal string
_IGNORE_USER_ANCHORS = "TSKIgnorePinningForUserDefinedTrustAnchors"
_DOCUMENTED_EXCLUDE_KEY = "TSKExcludeSubdomainFromParentPolicy"
_DOMAIN_KEYS = {
    "TSKPublicKeyHashes",
    "TSKEnforcePinning",
    "TSKIncludeSubdomains",
    "TSKExpirationDate",
    "TSKReportUris",
    "TSKDisableDefaultReportUri",
    "TSKPublicKeyAlgorithms",
    EXCLUDE_KEY,
}
_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:[^\s]+")


@dataclass(frozen=True)
class Computed:
    """A value of a TrustKit dictionary written in code that pinaudit cannot evaluate."""

    text: str
    reason: str
    where: Location

    def __str__(self) -> str:
        return self.text


_GLOBAL_KEYS = {"TSKSwizzleNetworkDelegates", "TSKPinnedDomains", _IGNORE_USER_ANCHORS}


class _TrustKit:
    def __init__(self, plist: Plist, out: Collector) -> None:
        self.plist = plist
        self.out = out
        self.rules: list[PolicyRule] = []
        self.ignore_user_anchors = True
        self.visited: set[Location] = set()  # where the pins it read (or reported) are written

    def fail(self, path: PathKey, message: str, *, key: bool = False) -> ConfigProblem:
        where = self.plist.key_at(path) if key else self.plist.at(path)
        return self.out.problem(where, f"TrustKit configuration invalid: {message}")

    def read(self) -> None:
        top = self.plist.value
        if not isinstance(top, dict):
            raise not_the_kind(
                self.plist.at(()),
                "not a TrustKit configuration: the property list is not a dictionary",
            )
        base: PathKey = ()
        config = top
        if "TSKConfiguration" in top:
            base = ("TSKConfiguration",)
            config = top["TSKConfiguration"]
            if not isinstance(config, dict):
                self.fail(base, "TSKConfiguration must be a dictionary")
                return
        elif "TSKPinnedDomains" not in top:
            raise not_the_kind(
                self.plist.at(()),
                "not a TrustKit configuration: no TSKConfiguration (or TSKPinnedDomains) "
                "dictionary in this property list",
            )
        for key in config:
            if key in _GLOBAL_KEYS:
                continue
            at = self.plist.key_at((*base, key))
            if key in _DOMAIN_KEYS:
                self.out.note(
                    at, f"{key} at the top level is ignored: TrustKit reads it per domain"
                )
            else:
                self.out.note(at, f"unknown key {str(key)!r} is ignored")
        ignore = config.get(_IGNORE_USER_ANCHORS, True)
        if isinstance(ignore, Computed):
            self.out.note(ignore.where, f"{_IGNORE_USER_ANCHORS} is computed at run time")
        elif not isinstance(ignore, bool):
            self.fail((*base, _IGNORE_USER_ANCHORS), "expected a boolean")
        else:
            self.ignore_user_anchors = ignore
        domains = config.get("TSKPinnedDomains")
        where = (*base, "TSKPinnedDomains")
        if isinstance(domains, Computed):
            self.out.not_imported(
                domains.where, f"TSKPinnedDomains is `{domains.text}`: {domains.reason}"
            )
            return
        if not isinstance(domains, dict) or not domains:
            self.fail(
                where if domains is not None else base,
                "TSKPinnedDomains must be a dictionary with at least one domain",
            )
            return
        for host, policy in domains.items():
            if isinstance(host, Computed):
                self.skip(
                    policy, (*where, host), f"its domain is computed at run time ({host.reason})"
                )
                continue
            self.domain(str(host), policy, (*where, host), domains)

    def skip(self, policy: object, path: PathKey, why: str) -> None:
        """A domain pinaudit cannot import: each of its pins is reported where it is written."""
        hashes = policy.get("TSKPublicKeyHashes") if isinstance(policy, dict) else None
        reported = False
        if isinstance(hashes, list):
            for n, item in enumerate(hashes):
                at = self.plist.at((*path, "TSKPublicKeyHashes", n))
                self.visited.add(at)
                self.out.not_imported(at, f"the pin {_shown(item)}: {why}")
                reported = True
        if not reported:
            shown = _shown(hashes) if hashes is not None else "none given"
            self.out.not_imported(self.plist.key_at(path), f"the pins ({shown}): {why}")

    def account(self, path: PathKey) -> None:
        """The pins under `path` are accounted for (imported or reported)."""
        hashes = _get(self.plist.value_at(path), "TSKPublicKeyHashes")
        if isinstance(hashes, list):
            for n in range(len(hashes)):
                self.visited.add(self.plist.at((*path, "TSKPublicKeyHashes", n)))

    def domain(self, host: str, policy: object, path: PathKey, domains: dict[str, object]) -> None:
        if isinstance(policy, Computed):
            self.out.not_imported(
                policy.where, f"the policy of {host!r} is `{policy.text}`: {policy.reason}"
            )
            return
        if not isinstance(policy, dict):
            self.fail(path, f"the policy of {host!r} must be a dictionary")
            return
        self.account(path)
        if public_suffix(host) is None:
            self.fail(
                path,
                f"invalid domain {host!r}: no known public suffix (TrustKit "
                "accepts only names under a registry suffix)",
                key=True,
            )
            return
        if host != host.lower():
            self.out.note(
                self.plist.key_at(path),
                f"domain {host!r} is not lower-case: TrustKit looks hosts up case-sensitively, "
                "so this policy never matches a lower-case host name",
            )
        for key in policy:
            if key == _DOCUMENTED_EXCLUDE_KEY:
                self.out.note(
                    self.plist.key_at((*path, key)),
                    f"{key} is ignored: TrustKit 3.0.0 reads the literal key {EXCLUDE_KEY}",
                )
            elif key == "TSKPublicKeyAlgorithms":
                self.out.note(self.plist.key_at((*path, key)), f"{key} is deprecated and ignored")
            elif key not in _DOMAIN_KEYS:
                self.out.note(
                    self.plist.key_at((*path, key)), f"unknown key {str(key)!r} is ignored"
                )
        if policy.get(EXCLUDE_KEY) is True:
            self.exclusion(host, policy, path, domains)
            return
        enforce = self.boolean(policy, path, "TSKEnforcePinning", True)
        subdomains = self.boolean(policy, path, "TSKIncludeSubdomains", False)
        if subdomains and is_public_suffix(host):
            self.fail(
                (*path, "TSKIncludeSubdomains"),
                f"TSKIncludeSubdomains on {host!r}, which is a public suffix",
            )
        pins = self.pins(host, policy, path, enforce)
        if pins is None:
            return
        expires = self.expiration(policy, path)
        uris = self.report_uris(policy, path)
        self.boolean(policy, path, "TSKDisableDefaultReportUri", False)
        self.rules.append(
            PolicyRule(
                host=host,
                mode=HostMode.SUBTREE if subdomains else HostMode.EXACT,
                pins=pins,
                expires=expires,
                enforce=enforce is not False,
                report_uris=uris,
                location=self.plist.key_at(path),
            )
        )

    def exclusion(
        self, host: str, policy: dict[str, object], path: PathKey, domains: dict[str, object]
    ) -> None:
        others = [k for k in policy if k != EXCLUDE_KEY]
        if others:
            self.fail(
                path,
                f"{host!r} excludes itself from its parent's policy and may not "
                f"set other keys ({', '.join(sorted(map(str, others)))})",
            )
        parent = any(
            isinstance(p, dict)
            and p.get("TSKIncludeSubdomains") is True
            and host.endswith("." + str(d))
            for d, p in domains.items()
        )
        if not parent:
            self.fail(
                path,
                f"{host!r} excludes itself from a parent policy, but no policy "
                "with TSKIncludeSubdomains covers it",
            )
        self.rules.append(
            PolicyRule(host=host, excluded=True, has_pinset=False, location=self.plist.key_at(path))
        )

    def boolean(
        self, policy: dict[str, object], path: PathKey, key: str, default: bool
    ) -> bool | None:
        """The flag; None when it is computed at run time (reported, the default applies)."""
        value = policy.get(key, default)
        if isinstance(value, Computed):
            self.out.not_imported(
                value.where,
                f"{key} is `{value.text}`: {value.reason}; imported with TrustKit's default "
                f"({'YES' if default else 'NO'})",
            )
            return None
        if isinstance(value, int) and not isinstance(value, bool):
            return value != 0  # an NSNumber: TrustKit reads its boolValue
        if not isinstance(value, bool):
            self.fail((*path, key), f"{key} must be a boolean")
            return default
        return value

    def pins(
        self, host: str, policy: dict[str, object], path: PathKey, enforce: bool | None
    ) -> tuple[Pin, ...] | None:
        """The domain's pins; None when none of them can be imported."""
        where = (*path, "TSKPublicKeyHashes")
        hashes = policy.get("TSKPublicKeyHashes")
        if isinstance(hashes, Computed):
            self.out.not_imported(
                hashes.where,
                f"the pins of {host!r} are `{hashes.text}`: {hashes.reason}",
            )
            return None
        if not isinstance(hashes, list):
            self.fail(
                where if hashes is not None else path,
                "TSKPublicKeyHashes must be an array of base64 SHA-256 hashes",
            )
            return ()
        pins: dict[Pin, None] = {}
        unknown = 0
        for n, text in enumerate(hashes):
            if isinstance(text, Computed):
                self.out.not_imported(
                    text.where, f"the pin `{text.text}` for {host!r}: {text.reason}"
                )
                unknown += 1
                continue
            value = strict_base64(text) if isinstance(text, str) else None
            if value is None or len(value) != 32:
                self.fail(
                    (*where, n),
                    f"TSKPublicKeyHashes[{n}] {text!r} is not a base64 SHA-256 hash (32 bytes)",
                )
                continue
            pins.setdefault(sha256_pin(value))
        if unknown and not pins:
            return None
        required = 2 if enforce is not False else 1
        if not unknown and enforce is not None and len(pins) < required:
            self.fail(
                where,
                f"less than {required} pin{'s' if required > 1 else ''} "
                f"({len(pins)} distinct)" + (" (ie. no backup pins)" if enforce else ""),
            )
        return tuple(pins)

    def expiration(self, policy: dict[str, object], path: PathKey) -> date | None:
        value = policy.get("TSKExpirationDate")
        if value is None:
            return None
        if isinstance(value, Computed):
            self.out.not_imported(
                value.where,
                f"TSKExpirationDate is `{value.text}`: {value.reason}; imported without an expiry",
            )
            return None
        match = _DATE.fullmatch(value) if isinstance(value, str) else None
        if match is not None:
            try:
                return date(int(match[1]), int(match[2]), int(match[3]))
            except ValueError:
                pass
        self.out.note(
            self.plist.at((*path, "TSKExpirationDate")),
            f"TSKExpirationDate {value!r} does not parse as yyyy-MM-dd: TrustKit "
            "treats the pins as never expiring",
        )
        return None

    def report_uris(self, policy: dict[str, object], path: PathKey) -> tuple[str, ...]:
        value = policy.get("TSKReportUris")
        if value is None:
            return ()
        where = (*path, "TSKReportUris")
        if isinstance(value, Computed):
            self.out.note(value.where, f"TSKReportUris is computed at run time: {value.reason}")
            return ()
        if not isinstance(value, list):
            self.fail(where, "TSKReportUris must be an array of URLs")
            return ()
        uris: list[str] = []
        for n, uri in enumerate(value):
            if isinstance(uri, Computed):
                self.out.note(uri.where, f"a report URI is computed at run time: {uri.reason}")
                continue
            if not isinstance(uri, str) or not _URL.fullmatch(uri):
                self.fail((*where, n), f"invalid report URI {uri!r}")
                continue
            uris.append(uri)
        return tuple(uris)


def _get(value: object, key: str) -> object:
    return value.get(key) if isinstance(value, dict) else None


def _shown(value: object) -> str:
    return f"`{value.text}`" if isinstance(value, Computed) else repr(value)


_PIN_SHAPED = re.compile(r"[A-Za-z0-9+/_-]{42,43}=?=?")


def report_unused_pins(plist: Plist, visited: set[Location], out: Collector, skip: str) -> None:
    """Every pin-shaped string of an XML plist that the reader did not account for
    (outside the `skip` subtree, the other kind's configuration)."""
    if not plist.values:
        return  # a binary plist has no positions
    lines = out.reported_lines()
    for path, where in plist.values.items():
        if skip in path or where in visited or where.line in lines:
            continue
        value = plist.value_at(path)
        if isinstance(value, str) and _PIN_SHAPED.fullmatch(value.strip()):
            out.not_imported(
                where,
                f"the pin-shaped string {value.strip()!r} at {'/'.join(map(str, path))} is "
                "not part of the configuration this importer reads",
            )
            lines.add(where.line)


def parse_trustkit_plist(
    data: bytes, source: str, *, name: str | None = None, platform: Platform = Platform.IOS
) -> ClientPolicy:
    """TrustKit's configuration from an Info.plist (``TSKConfiguration``) or a bare dictionary."""
    out = Collector(source)
    loaded = load_plist(data, source, kind="TrustKit")
    rules: tuple[PolicyRule, ...] = ()
    ignore = True
    if isinstance(loaded, ConfigProblem):
        out.problems.append(loaded)
    else:
        reader = _TrustKit(loaded, out)
        reader.read()
        rules, ignore = tuple(reader.rules), reader.ignore_user_anchors
        report_unused_pins(loaded, reader.visited, out, "NSAppTransportSecurity")
    return trustkit_policy(out, rules, ignore, source, name=name, platform=platform)


def trustkit_policy(
    out: Collector,
    rules: tuple[PolicyRule, ...],
    ignore: bool,
    source: str,
    *,
    name: str | None,
    platform: Platform = Platform.IOS,
) -> ClientPolicy:
    return ClientPolicy(
        name=name or stem_name(source),
        client=Client.TRUSTKIT,
        rules=rules,
        problems=tuple(dict.fromkeys(out.problems)),
        notes=tuple(dict.fromkeys(out.notes)),
        unresolved=tuple(dict.fromkeys(out.unresolved)),
        platform=platform,
        ignore_user_anchors=ignore,
        source=source,
        location=Location(source, 1, 1),
    )


# --- ATS NSPinnedDomains -----------------------------------------------------------


def _identities(
    plist: Plist,
    policy: dict[str, object],
    path: PathKey,
    key: str,
    out: Collector,
    *,
    visited: set[Location],
) -> tuple[tuple[Pin, ...], bool]:
    """(identities, the key is present) of one category; malformed entries are skipped."""
    if key not in policy:
        return (), False
    where = (*path, key)
    items = policy[key]
    if not isinstance(items, list):
        out.note(plist.at(where), f"{key} is not an array: ignored by ATS")
        return (), True
    pins: dict[Pin, None] = {}
    for n, item in enumerate(items):
        visited.add(plist.at((*where, n)))
        visited.add(plist.at((*where, n, "SPKI-SHA256-BASE64")))
        text = item.get("SPKI-SHA256-BASE64") if isinstance(item, dict) else None
        value = strict_base64(text) if isinstance(text, str) else None
        if value is None or len(value) != 32:
            shown = text if isinstance(text, str) else item
            out.note(
                plist.at((*where, n)),
                f"{key}[{n}] {shown!r} is not a "
                "{SPKI-SHA256-BASE64: base64 SHA-256} dictionary: ATS skips it",
            )
            continue
        pins.setdefault(sha256_pin(value))
    return tuple(pins), True


def parse_ats_plist(data: bytes, source: str, *, name: str | None = None) -> ClientPolicy:
    """``NSAppTransportSecurity/NSPinnedDomains`` of an Info.plist (or a bare
    ``NSPinnedDomains`` dictionary)."""
    out = Collector(source)
    rules: list[PolicyRule] = []
    loaded = load_plist(data, source, kind="ios (ATS NSPinnedDomains)")
    if isinstance(loaded, ConfigProblem):
        out.problems.append(loaded)
    else:
        visited: set[Location] = set()
        rules = _ats_rules(loaded, out, visited)
        report_unused_pins(loaded, visited, out, "TSKConfiguration")
    return ClientPolicy(
        name=name or stem_name(source),
        client=Client.IOS,
        rules=tuple(rules),
        problems=tuple(out.problems),
        notes=tuple(out.notes),
        unresolved=tuple(out.unresolved),
        source=source,
        location=Location(source, 1, 1),
    )


def _ats_rules(plist: Plist, out: Collector, visited: set[Location]) -> list[PolicyRule]:
    top = plist.value
    path: PathKey = ()
    domains: object = None
    ats = top.get("NSAppTransportSecurity") if isinstance(top, dict) else None
    if isinstance(ats, dict) and "NSPinnedDomains" in ats:
        path = ("NSAppTransportSecurity", "NSPinnedDomains")
        domains = ats["NSPinnedDomains"]
    elif isinstance(top, dict) and "NSPinnedDomains" in top:
        path = ("NSPinnedDomains",)
        domains = top["NSPinnedDomains"]
    else:
        raise not_the_kind(
            plist.at(()),
            "not an ATS pinning configuration: no NSAppTransportSecurity/NSPinnedDomains "
            "in this property list",
        )
    if not isinstance(domains, dict):
        out.note(
            plist.at(path),
            "no NSAppTransportSecurity/NSPinnedDomains dictionary: nothing is pinned",
        )
        return []
    rules: list[PolicyRule] = []
    for host, policy in domains.items():
        where = (*path, host)
        if not isinstance(policy, dict):
            out.note(plist.key_at(where), f"{host!r}: not a dictionary, ATS skips it")
            continue
        subdomains = policy.get("NSIncludesSubdomains", False) is True
        ca, has_ca = _identities(plist, policy, where, "NSPinnedCAIdentities", out, visited=visited)
        leaf, has_leaf = _identities(
            plist, policy, where, "NSPinnedLeafIdentities", out, visited=visited
        )
        problems: list[ConfigProblem] = []
        at = plist.key_at(where)
        if not has_ca and not has_leaf:
            problems.append(
                ConfigProblem(
                    at, f"{host!r} has neither NSPinnedCAIdentities nor NSPinnedLeafIdentities"
                )
            )
        for present, found, key in (
            (has_ca, ca, "NSPinnedCAIdentities"),
            (has_leaf, leaf, "NSPinnedLeafIdentities"),
        ):
            if present and not found:
                problems.append(
                    ConfigProblem(
                        at,
                        f"{host!r}: {key} holds no usable identity, "
                        "so ATS can never accept a chain for it",
                    )
                )
        rules.append(
            PolicyRule(
                host=str(host).lower().rstrip("."),
                mode=HostMode.ONE_LEVEL if subdomains else HostMode.EXACT,
                pins=ca,
                leaf_pins=leaf,
                label=str(host),
                problems=tuple(problems),
                location=at,
            )
        )
    return rules
