"""Client pin policies: value objects. Pure, no I/O.

A :class:`ClientPolicy` is what one client configuration file says (an
Android network-security-config, OkHttp ``CertificatePinner`` calls, a
TrustKit dictionary, ATS ``NSPinnedDomains``, HPKP headers, Chromium's
static pins): the client it comes from, its host rules with their pins, and
everything the client itself would reject in it. ``scanner.importers``
builds them from files, the inventory from a copy written in YAML, and
``scanner.clients`` judges a chain against them the way that client would.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from scanner.model.base import Location, Pin

__all__ = [
    "CONFIG_KINDS",
    "DEFAULT_OKHTTP_PLATFORM",
    "DEFAULT_OKHTTP_VERSION",
    "OKHTTP_PLATFORMS",
    "OKHTTP_VERSIONS",
    "Client",
    "ClientPolicy",
    "ClientVerdict",
    "ConfigProblem",
    "HostMode",
    "PathVerdict",
    "Platform",
    "PolicyRule",
    "Verdict",
]


class Client(str, enum.Enum):
    """The client whose rules a policy follows."""

    OKHTTP = "okhttp"  # CertificatePinner
    ANDROID = "android"  # network-security-config (the platform)
    TRUSTKIT = "trustkit"  # TrustKit (iOS/macOS plist, or TrustKit-Android XML)
    IOS = "ios"  # App Transport Security NSPinnedDomains
    HPKP = "hpkp"  # RFC 7469 headers (Public-Key-Pins, -Report-Only)
    CHROMIUM = "chromium"  # Chromium static pins
    GENERIC = "generic"  # an inventory pin-set: pins of the path, 00:00 UTC expiry


class HostMode(str, enum.Enum):
    """How a rule's host matches (pinning-semantics §8.1)."""

    EXACT = "exact"
    ONE_LABEL = "one_label"  # OkHttp "*.": exactly one label (the empty label too)
    ANY_DEPTH = "any_depth"  # OkHttp "**.": the suffix itself and any depth below
    SUBTREE = "subtree"  # includeSubdomains: the domain and any depth below
    ONE_LEVEL = "one_level"  # ATS NSIncludesSubdomains: the domain and one more label


class Platform(str, enum.Enum):
    """Where a TrustKit or OkHttp policy runs: the rules differ (§1.3, §3)."""

    IOS = "ios"
    MACOS = "macos"
    ANDROID = "android"
    JVM = "jvm"  # OkHttp off Android: its own chain cleaner picks the chain it pins against


# OkHttp: where it runs and its major version (3: 3.x and 4.0-4.2, 4: 4.3-4.12, 5: 5.x)
OKHTTP_PLATFORMS = (Platform.ANDROID, Platform.JVM)
DEFAULT_OKHTTP_PLATFORM = Platform.ANDROID
OKHTTP_VERSIONS = (3, 4, 5)
DEFAULT_OKHTTP_VERSION = 4

# The kinds of client configuration file scanner.importers reads (`import KIND`,
# a client pin-set's `from: {KIND: FILE}`); here so that naming them does not
# import every parser.
CONFIG_KINDS = ("android", "okhttp", "trustkit", "trustkit-android", "ios", "hpkp", "chromium")


@dataclass(frozen=True)
class ConfigProblem:
    """Something in a client configuration, with where it was written."""

    location: Location
    message: str

    def __str__(self) -> str:
        return f"{self.location}: {self.message}"


@dataclass(frozen=True)
class PolicyRule:
    """One host rule and the pins that apply through it.

    Which fields matter depends on the client: ``leaf_pins`` for ATS
    (``pins`` are then its CA identities), ``bad_pins`` for Chromium,
    ``dead_pins`` for OkHttp (spellings it accepts that can never match),
    ``expires`` for Android and TrustKit, ``enforce`` for TrustKit and HPKP
    report-only, ``excluded`` for TrustKit's excluded subdomains,
    ``override_pins`` for Android trust-anchor sources whose anchors skip the
    pin check. ``has_pinset`` is False for an Android domain-config that
    neither declares nor inherits a ``<pin-set>`` (not pinned), as opposed to
    an empty ``<pin-set/>`` (pinning switched off).
    """

    host: str
    mode: HostMode = HostMode.EXACT
    pins: tuple[Pin, ...] = ()
    leaf_pins: tuple[Pin, ...] = ()
    bad_pins: tuple[Pin, ...] = ()
    dead_pins: tuple[str, ...] = ()
    has_pinset: bool = True
    expires: date | None = None
    enforce: bool = True
    excluded: bool = False
    report_only: bool = False  # HPKP Public-Key-Pins-Report-Only
    max_age: int | None = None  # HPKP, seconds as written
    override_pins: tuple[str, ...] = ()  # Android: "system", "user", "@raw/name"
    trust_sources: tuple[str, ...] = ()  # Android: effective <certificates src> list
    report_uris: tuple[str, ...] = ()
    label: str | None = None  # Chromium pinset name; the pattern as written otherwise
    # OkHttp: the add() call's pins as written, in order, dead ones included (the
    # failure message lists them so); empty: pins, then dead_pins
    written_pins: tuple[str, ...] = ()
    problems: tuple[ConfigProblem, ...] = ()  # the client rejects this rule only
    location: Location | None = field(default=None, compare=False)

    @property
    def pattern(self) -> str:
        """The rule as the client's syntax writes it."""
        if self.mode is HostMode.ONE_LABEL:
            return f"*.{self.host}"
        if self.mode is HostMode.ANY_DEPTH:
            return f"**.{self.host}"
        return self.host

    @property
    def include_subdomains(self) -> bool:
        return self.mode in (HostMode.SUBTREE, HostMode.ONE_LEVEL, HostMode.ANY_DEPTH)


@dataclass(frozen=True)
class ClientPolicy:
    """Every rule of one client configuration, and what the client rejects in it.

    ``problems`` are fatal: the client refuses the whole configuration (the
    app crashes at start or fails every TLS connection), so every endpoint
    the policy applies to gets CONFIG_ERROR. ``notes`` are accepted by the
    client but worth knowing (a pin that can never match, a TrustKit key
    in capitals). ``unresolved`` are the importer's own limits, not the
    client's: pins computed at run time (``BuildConfig``, remote config,
    another file) that were not imported, each with where it is written.
    """

    name: str
    client: Client
    rules: tuple[PolicyRule, ...] = ()
    problems: tuple[ConfigProblem, ...] = ()
    notes: tuple[ConfigProblem, ...] = field(default=(), compare=False)
    # pins or hosts the importer could not evaluate (computed at run time): not
    # imported, reported with their place; never a CONFIG_ERROR of the client
    unresolved: tuple[ConfigProblem, ...] = field(default=(), compare=False)
    platform: Platform | None = None  # TrustKit; OkHttp (None: DEFAULT_OKHTTP_PLATFORM)
    okhttp_version: int | None = None  # OkHttp major version (None: DEFAULT_OKHTTP_VERSION)
    ignore_user_anchors: bool = True  # TrustKit macOS TSKIgnorePinningForUserDefinedTrustAnchors
    list_timestamp: datetime | None = None  # Chromium: PinsListTimestamp
    debug_overrides: tuple[str, ...] = ()  # Android: <debug-overrides> sources
    source: str | None = field(default=None, compare=False)  # the file read
    location: Location | None = field(default=None, compare=False)

    @property
    def okhttp_platform(self) -> Platform:
        """Where an OkHttp policy runs (the default when the pin-set does not say)."""
        return self.platform if self.platform in OKHTTP_PLATFORMS else DEFAULT_OKHTTP_PLATFORM

    @property
    def okhttp_major(self) -> int:
        """The OkHttp major version an OkHttp policy is judged as."""
        return self.okhttp_version or DEFAULT_OKHTTP_VERSION


class Verdict(str, enum.Enum):
    """What a client does with a chain (pinning-semantics §8.6)."""

    NOT_PINNED = "not_pinned"  # no rule applies (or an exclusion does)
    NOT_ENFORCED = "not_enforced"  # a rule applies but its pin-set is empty
    NOT_ENFORCED_EXPIRED = "not_enforced_expired"  # the rule's enforcement window is over
    BYPASSED_LOCAL_ANCHOR = "bypassed_local_anchor"  # the anchor skips pin checks
    CHAIN_INVALID = "chain_invalid"  # normal validation fails: blocked regardless of pins
    PASS = "pass"
    FAIL_ENFORCED = "fail_enforced"  # the client refuses the connection
    FAIL_REPORT_ONLY = "fail_report_only"  # the client connects and reports the failure
    CONFIG_ERROR = "config_error"  # the client rejects (or crashes on) the configuration
    PATH_DEPENDENT = "path_dependent"  # the verdict differs between valid paths
    AMBIGUOUS = "ambiguous"  # the client's own implementations disagree


@dataclass(frozen=True)
class PathVerdict:
    """The verdict on one candidate path (leaf → anchor keys)."""

    path: tuple[Pin, ...]
    verdict: Verdict


@dataclass(frozen=True)
class ClientVerdict:
    """One client policy's verdict on one endpoint's chain."""

    policy: str
    client: Client
    verdict: Verdict
    host: str  # the name as the client compares it
    detail: str  # why, in words
    rules: tuple[PolicyRule, ...] = ()  # the rule(s) the client selected
    pins: tuple[Pin, ...] = ()  # pins in force for the host (ATS: CA identities)
    leaf_pins: tuple[Pin, ...] = ()
    bad_pins: tuple[Pin, ...] = ()
    dead_pins: tuple[str, ...] = ()
    matched: tuple[Pin, ...] = ()  # pins found on the judged path
    enforce_until: datetime | None = None  # first instant some client stops enforcing
    enforce_until_latest: datetime | None = None  # ... and the last (Android: device time zone)
    problems: tuple[ConfigProblem, ...] = ()
    notes: tuple[str, ...] = ()
    paths: tuple[PathVerdict, ...] = ()  # per path when several were judged
    alternatives: tuple[tuple[str, Verdict], ...] = ()  # AMBIGUOUS: (lookup, verdict)
    # the failure as the client shows it: {"message": OkHttp/TrustKit-Android text,
    # "report": TrustKit/HPKP report JSON}; only on FAIL verdicts of a scan
    failure: Mapping[str, Any] | None = field(default=None, compare=False)

    @property
    def failing(self) -> bool:
        return self.verdict in (
            Verdict.FAIL_ENFORCED,
            Verdict.FAIL_REPORT_ONLY,
            Verdict.CONFIG_ERROR,
        )
