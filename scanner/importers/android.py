"""Android network-security-config XML, read as the platform reads it
(pinning-semantics §2), and the same file as TrustKit-Android reads it (§3.5).

Pure: bytes in, a ClientPolicy out. What the platform rejects (a
ParserException: the app fails at its first TLS connection) is a fatal
problem of the policy, with the file, line and column; nothing is fixed up.
A file that is not a network-security-config at all (Kotlin source, a plist,
an XML file with another root) is an input error: ClientConfigError.

TrustKit-Android compares pins as trimmed base64 *strings*
(``PublicKeyPin.equals``) with the one it computes
(``Base64.encodeToString(hash, DEFAULT).trim()``: standard alphabet,
padded). A pin written any other way (no padding, the URL-safe alphabet,
non-zero trailing bits, whitespace inside) decodes to the right 32 bytes but
never equals that string: TrustKit keeps it as written, in ``dead_pins``,
with a note; the platform (API 24+) compares bytes and still matches it.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from datetime import date

from scanner.importers._common import (
    Collector,
    android_base64,
    not_the_kind,
    sha256_pin,
    stem_name,
)
from scanner.importers._xml import Element, parse_xml
from scanner.model import Client, ClientPolicy, HostMode, Location, Pin, Platform, PolicyRule

__all__ = ["parse_network_security_config", "parse_trustkit_android"]

_ROOT = "network-security-config"
_DATE = re.compile(r"([0-9]+)-([0-9]+)-([0-9]+)")
_SOURCES = ("system", "user", "wfa")


@dataclass(frozen=True)
class _PinSet:
    pins: tuple[Pin, ...]
    expires: date | None


@dataclass(frozen=True)
class _Anchors:
    sources: tuple[tuple[str, bool], ...]  # (src, overridePins)


_PLATFORM_DEFAULT = _Anchors((("system", False),))


def _bool(value: str | None, default: bool) -> bool:
    """XmlUtils.convertValueToBoolean: "true" (any case) or a non-zero number."""
    if value is None:
        return default
    text = value.strip()
    if text.lower() == "true":
        return True
    try:
        return int(text) != 0
    except ValueError:
        return False


def _expiration(text: str, where: Location, out: Collector, what: str) -> date | None:
    """SimpleDateFormat("yyyy-MM-dd"), not lenient: text after the date is ignored."""
    match = _DATE.match(text)
    if match is not None:
        try:
            parsed = date(int(match[1]), int(match[2]), int(match[3]))
        except ValueError:
            parsed = None
        if parsed is not None:
            if match.end() != len(text):
                out.note(where, f"{what}: text after the date is ignored: {text!r}")
            return parsed
    out.problem(where, f"Invalid expiration date in pin-set: {text!r} (expected yyyy-MM-dd)")
    return None


class _NscReader:
    """The platform's XmlConfigSource rules."""

    def __init__(self, name: str, out: Collector) -> None:
        self.name = name
        self.out = out
        self.rules: list[PolicyRule] = []
        self.seen_domains: dict[str, Location] = {}
        self.debug_sources: tuple[str, ...] = ()

    def read(self, root: Element) -> None:
        base: _Anchors | None = None
        base_seen = debug_seen = False
        domain_configs: list[Element] = []
        for child in root.children:
            if child.tag == "base-config":
                if base_seen:
                    self.out.problem(child.location, "Only one base-config allowed")
                base_seen = True
                base = self.base_config(child)
            elif child.tag == "domain-config":
                domain_configs.append(child)
            elif child.tag == "debug-overrides":
                if debug_seen:
                    self.out.problem(child.location, "Only one debug-overrides allowed")
                debug_seen = True
                anchors = self.anchors_only(child, "debug-overrides", debug=True)
                self.debug_sources = tuple(s for s, override in anchors.sources if override)
        parent = base or _PLATFORM_DEFAULT
        for config in domain_configs:  # a base-config written after them is still their parent
            self.domain_config(config, None, parent)

    def anchors_only(self, element: Element, what: str, *, debug: bool = False) -> _Anchors:
        anchors: _Anchors | None = None
        for child in element.children:
            if child.tag == "trust-anchors":
                if anchors is not None:
                    self.out.problem(child.location, "Multiple trust-anchor elements not allowed")
                anchors = self.trust_anchors(child, debug)
            elif child.tag in ("domain", "pin-set", "domain-config"):
                self.out.problem(child.location, f"<{child.tag}> is not allowed in <{what}>")
        return anchors or _Anchors(())

    def base_config(self, element: Element) -> _Anchors | None:
        has = any(c.tag == "trust-anchors" for c in element.children)
        anchors = self.anchors_only(element, "base-config")
        return anchors if has else None

    def trust_anchors(self, element: Element, debug: bool) -> _Anchors:
        sources: list[tuple[str, bool]] = []
        for child in element.children:
            if child.tag != "certificates":
                continue
            src = child.attrib.get("src")
            if src is None or not src.strip():
                self.out.problem(child.location, "certificates element missing src attribute")
                continue
            src = src.strip()
            if src not in _SOURCES and not src.startswith("@raw/"):
                self.out.problem(child.location, f"Unknown certificates src {src!r}")
                continue
            override = _bool(child.attrib.get("overridePins"), debug)
            sources.append((src, override))
        # the same anchor in an overriding and a normal source overrides: sort overriding first
        return _Anchors(tuple(sorted(sources, key=lambda s: not s[1])))

    def pin_set(self, element: Element) -> _PinSet:
        expires = None
        if "expiration" in element.attrib:
            expires = _expiration(
                element.attrib["expiration"], element.location, self.out, "pin-set expiration"
            )
        pins: dict[Pin, None] = {}
        for child in element.children:
            if child.tag != "pin":
                continue
            pin = self.pin(child)
            if pin is not None:
                pins.setdefault(pin)
        return _PinSet(tuple(pins), expires)

    def pin(self, element: Element) -> Pin | None:
        digest = element.attrib.get("digest")
        if digest is None or digest.strip().upper() != "SHA-256" or digest != digest.strip():
            shown = "none" if digest is None else repr(digest)
            self.out.problem(element.location, f"Unsupported pin digest algorithm: {shown}")
            return None
        if element.children:
            self.out.problem(element.location, "<pin> must not contain elements")
            return None
        text = element.text.strip()
        value = android_base64(text)
        if value is None:
            self.out.problem(element.location, f"Invalid pin digest: {text!r} is not base64")
            return None
        if len(value) != 32:
            self.out.problem(
                element.location,
                f"digest length {len(value)} does not match expected length for SHA-256 of 32",
            )
            return None
        return sha256_pin(value)

    def domain_config(self, element: Element, inherited: _PinSet | None, anchors: _Anchors) -> None:
        domains: list[tuple[str, bool, Location]] = []
        pin_set: _PinSet | None = None
        own_anchors: _Anchors | None = None
        nested: list[Element] = []
        for child in element.children:
            if child.tag == "domain":
                domain = self.domain(child)
                if domain is not None:
                    domains.append(domain)
            elif child.tag == "pin-set":
                if pin_set is not None:
                    self.out.problem(child.location, "Multiple pin-set elements not allowed")
                    continue
                pin_set = self.pin_set(child)
            elif child.tag == "trust-anchors":
                if own_anchors is not None:
                    self.out.problem(child.location, "Multiple trust-anchor elements not allowed")
                    continue
                own_anchors = self.trust_anchors(child, False)
            elif child.tag == "domain-config":
                nested.append(child)
        if not domains and not any(c.tag == "domain" for c in element.children):
            self.out.problem(element.location, "No domain elements in domain-config")
        effective_pins = pin_set if pin_set is not None else inherited
        effective_anchors = own_anchors if own_anchors is not None else anchors
        for host, subdomains, where in domains:
            self.rules.append(
                PolicyRule(
                    host=host,
                    mode=HostMode.SUBTREE if subdomains else HostMode.EXACT,
                    pins=effective_pins.pins if effective_pins else (),
                    has_pinset=effective_pins is not None,
                    expires=effective_pins.expires if effective_pins else None,
                    override_pins=tuple(s for s, o in effective_anchors.sources if o),
                    trust_sources=tuple(s for s, _ in effective_anchors.sources),
                    location=where,
                )
            )
        for child in nested:
            self.domain_config(child, effective_pins, effective_anchors)

    def domain(self, element: Element) -> tuple[str, bool, Location] | None:
        if element.children:
            self.out.problem(element.location, "<domain> must not contain elements")
            return None
        host = element.text.strip().lower()
        if not host:
            self.out.problem(element.location, "empty <domain>")
            return None
        first = self.seen_domains.get(host)
        if first is not None:
            self.out.problem(
                element.location,
                f"Duplicate domain name {host!r}: it has already been specified (at line "
                f"{first.line})",
            )
            return None
        self.seen_domains[host] = element.location
        subdomains = _bool(element.attrib.get("includeSubdomains"), False)
        raw = element.attrib.get("includeSubdomains")
        if raw is not None and raw.strip().lower() not in ("true", "false"):
            self.out.note(element.location, f"includeSubdomains={raw!r} is read as {subdomains}")
        return host, subdomains, element.location


def _document(data: bytes, source: str, out: Collector, what: str) -> Element | None:
    """The root element; None after recording why the XML is not well-formed.

    Raises ClientConfigError for a file that is not a network-security-config."""
    parsed = parse_xml(data, source)
    if isinstance(parsed, Element):
        if parsed.tag != _ROOT:
            raise not_the_kind(
                parsed.location,
                f"not {what}: the root element is <{parsed.tag}>, not <{_ROOT}>",
            )
        return parsed
    if f"<{_ROOT}".encode() not in data:
        raise not_the_kind(
            Location(source, 1, 1), f"not {what}: not an XML <{_ROOT}> file ({parsed.message})"
        )
    out.problems.append(parsed)  # the right file, broken: the app fails on it
    return None


def parse_network_security_config(
    data: bytes, source: str, *, name: str | None = None
) -> ClientPolicy:
    """An Android network-security-config file as the platform reads it."""
    out = Collector(source)
    root = _document(data, source, out, "an Android network-security-config")
    reader = _NscReader(source, out)
    if root is not None:
        reader.read(root)
    return ClientPolicy(
        name=name or stem_name(source),
        client=Client.ANDROID,
        rules=tuple(reader.rules),
        problems=tuple(out.problems),
        notes=tuple(out.notes),
        debug_overrides=reader.debug_sources,
        source=source,
        location=Location(source, 1, 1),
    )


# --- TrustKit-Android ---------------------------------------------------------


@dataclass(frozen=True)
class _TkState:
    """What a TrustKit-Android domain-config inherits from its parent builder."""

    subdomains: bool = False
    pins: tuple[Pin, ...] | None = None
    dead: tuple[str, ...] = ()  # pins as written that TrustKit's string compare never matches
    expires: date | None = None
    enforce: bool = False
    report_uris: tuple[str, ...] = ()
    disable_default_uri: bool = False


class _TrustKitReader:
    """TrustKitConfigurationParser: the same file, read by TrustKit-Android."""

    def __init__(self, out: Collector) -> None:
        self.out = out
        self.rules: list[PolicyRule] = []

    def read(self, root: Element) -> None:
        for child in root.children:
            if child.tag == "domain-config":
                self.domain_config(child, _TkState())

    def domain_config(self, element: Element, parent: _TkState) -> None:
        state = parent
        host: tuple[str, Location] | None = None
        domains = [c for c in element.children if c.tag == "domain"]
        for n, child in enumerate(domains):
            text = child.text.strip().lower()
            if n < len(domains) - 1:
                self.out.note(
                    child.location,
                    f"TrustKit keeps only the last <domain> of a domain-config: {text!r} is not "
                    "pinned by TrustKit (the platform still pins it on API 24+)",
                )
                continue
            host = (text, child.location)
            raw = child.attrib.get("includeSubdomains")
            if raw is not None:
                state = _replace(state, subdomains=raw.strip().lower() == "true")
        for child in element.children:
            if child.tag == "pin-set":
                state = self.pin_set(child, state)
            elif child.tag == "trustkit-config":
                state = self.trustkit_config(child, state)
        if host is not None and state.pins is not None:
            self.rule(host, state, element.location)
        for child in element.children:
            if child.tag == "domain-config":
                self.domain_config(child, state)

    def pin_set(self, element: Element, state: _TkState) -> _TkState:
        expires = state.expires
        if "expiration" in element.attrib:
            expires = _expiration(
                element.attrib["expiration"], element.location, self.out, "pin-set expiration"
            )
        pins: dict[Pin, None] = {}
        spellings: dict[str, None] = {}
        for child in element.children:
            if child.tag != "pin":
                continue
            digest = child.attrib.get("digest")
            if digest != "SHA-256":
                self.out.problem(
                    child.location,
                    f'TrustKit supports only digest="SHA-256" (exactly), got {digest!r}',
                )
                continue
            text = _java_trim(child.text)
            value = android_base64(text)
            if value is None or len(value) != 32:
                self.out.problem(child.location, f"Invalid pin {text!r}: not a base64 SHA-256")
                continue
            canonical = base64.b64encode(value).decode("ascii")
            if text == canonical:
                pins.setdefault(sha256_pin(value))
                continue
            spellings.setdefault(text)
            self.out.note(
                child.location,
                f"pin {text!r} is not written as TrustKit-Android writes the key's pin "
                f"({canonical!r}): it compares the strings, so this pin never matches in "
                "TrustKit's own check (API < 24); the platform compares bytes (API 24+)",
            )
        return _replace(state, pins=tuple(pins), dead=tuple(spellings), expires=expires)

    def trustkit_config(self, element: Element, state: _TkState) -> _TkState:
        enforce = element.attrib.get("enforcePinning")
        disable = element.attrib.get("disableDefaultReportUri")
        uris = tuple(
            c.text.strip() for c in element.children if c.tag == "report-uri" and c.text.strip()
        )
        return _replace(
            state,
            enforce=(enforce.strip().lower() == "true") if enforce is not None else False,
            disable_default_uri=(disable or "").strip().lower() == "true"
            if disable is not None
            else state.disable_default_uri,
            report_uris=uris or state.report_uris,
        )

    def rule(self, host: tuple[str, Location], state: _TkState, config_at: Location) -> None:
        pins = state.pins or ()
        name, where = host
        if state.enforce and len(pins) + len(state.dead) < 2:
            what = "an empty pin-set" if not pins and not state.dead else "less than two pins"
            self.out.problem(
                config_at,
                f"{name}: {what} with enforcePinning=true: TrustKit-Android refuses the "
                "configuration (ConfigurationException)",
            )
        self.rules.append(
            PolicyRule(
                host=name,
                mode=HostMode.SUBTREE if state.subdomains else HostMode.EXACT,
                pins=pins,
                dead_pins=state.dead,
                expires=state.expires,
                enforce=state.enforce,
                report_uris=state.report_uris,
                location=where,
            )
        )


def _java_trim(text: str) -> str:
    """String.trim(): every character up to U+0020 off both ends."""
    start, end = 0, len(text)
    while start < end and text[start] <= " ":
        start += 1
    while end > start and text[end - 1] <= " ":
        end -= 1
    return text[start:end]


def _replace(state: _TkState, **changes: object) -> _TkState:
    from dataclasses import replace

    return replace(state, **changes)  # type: ignore[arg-type]


def parse_trustkit_android(data: bytes, source: str, *, name: str | None = None) -> ClientPolicy:
    """The same network-security-config file as TrustKit-Android reads it."""
    out = Collector(source)
    root = _document(data, source, out, "a TrustKit-Android configuration")
    reader = _TrustKitReader(out)
    if root is not None:
        reader.read(root)
    return ClientPolicy(
        name=name or stem_name(source),
        client=Client.TRUSTKIT,
        rules=tuple(reader.rules),
        problems=tuple(out.problems),
        notes=tuple(out.notes),
        unresolved=tuple(out.unresolved),
        platform=Platform.ANDROID,
        source=source,
        location=Location(source, 1, 1),
    )
