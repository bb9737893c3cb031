"""Client pin-sets in an inventory: read from a client's own file (``from:``) or
from a copy written in YAML (``client:`` + ``rules:``, what ``pinaudit
import`` prints). Pure apart from reading the client files the inventory
names (through the importers).

Both forms give the same :class:`ClientPolicy`. An OkHttp pin-set may say
where the app runs (``platform: android`` or ``jvm``: on a JVM OkHttp pins
against the chain its own cleaner builds) and which OkHttp major version it
uses (``okhttp_version: 3``, ``4`` or ``5``: host and pattern rules differ),
in either form; both are checked here, a mistake reported with its file and
line. What the client itself would reject in its file is not an inventory
problem (the inventory is fine: the app is not): it is carried in the
policy, printed by ``pinaudit validate`` as a warning with the client file's
path and line, and reported by a scan as a ``client_config_error`` finding.
Only a file pinaudit cannot read (missing, hostile, not the kind named) is
an inventory problem.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import date, datetime, timezone

from yaml.nodes import MappingNode, Node, ScalarNode

from scanner.errors import ClientConfigError
from scanner.hostnames import PatternError, parse_okhttp_pattern
from scanner.inventory.reader import Entry, NodeReader
from scanner.model import (
    CONFIG_KINDS,
    DEFAULT_OKHTTP_VERSION,
    OKHTTP_PLATFORMS,
    OKHTTP_VERSIONS,
    Client,
    ClientPolicy,
    ConfigProblem,
    HostMode,
    Location,
    Pin,
    Platform,
    PolicyRule,
)

__all__ = ["CLIENT_PINSET_KEYS", "RULE_KEYS", "is_client_pinset_node", "read_client_pinset"]

CLIENT_PINSET_KEYS = (
    "from",
    "client",
    "rules",
    "errors",
    "platform",
    "okhttp_version",
    "list_timestamp",
    "debug_overrides",
    "ignore_user_anchors",
)
RULE_KEYS = (
    "host",
    "include_subdomains",
    "pins",
    "leaf_pins",
    "bad_pins",
    "dead_pins",
    "pinset",
    "expires",
    "enforce",
    "excluded",
    "report_only",
    "max_age",
    "override_pins",
    "trust_sources",
    "report_uris",
    "label",
    "written_pins",
    "errors",
)
_FROM_KEYS = (*CONFIG_KINDS, "pins")
_FROM_PINSET_KEYS = ("from", "platform", "okhttp_version")  # beside `from:` (OkHttp only)
_PLATFORMS = {
    Client.OKHTTP: OKHTTP_PLATFORMS,
    Client.TRUSTKIT: (Platform.IOS, Platform.MACOS, Platform.ANDROID),
}
_PROBLEM = re.compile(r"^(.+):([0-9]+):([0-9]+): (.*)$", re.DOTALL)


def is_client_pinset_node(node: Node) -> bool:
    """Whether a pin-set mapping is a client one (it has ``from`` or ``client``)."""
    if not isinstance(node, MappingNode):
        return False
    keys = {k.value for k, _ in node.value if isinstance(k, ScalarNode)}
    return "from" in keys or "client" in keys


def read_client_pinset(source: NodeReader, entry: Entry, path: str) -> ClientPolicy | None:
    """A ``from:`` or ``client:`` pin-set; None after reporting a problem."""
    entries = source.mapping(entry.value, path)
    if entries is None:
        return None
    keys = [e.key for e in entries]
    if "from" in keys:
        fields = source.fields(entries, _FROM_PINSET_KEYS, path)
        return _from_file(source, fields, path, entry.key)
    allowed = tuple(k for k in CLIENT_PINSET_KEYS if k != "from")
    fields = source.fields(entries, allowed, path)
    return _from_copy(source, fields, path, entry, entry.key)


def _okhttp_version(source: NodeReader, node: Node, path: str) -> tuple[int | None, bool]:
    """(the ``okhttp_version`` value, whether it is usable)."""
    value = source.integer(node, path)
    if value is None:
        return None, False
    if value not in OKHTTP_VERSIONS:
        choices = ", ".join(str(v) for v in OKHTTP_VERSIONS)
        source.report(node, path, f"okhttp_version must be one of {choices}; got {value}")
        return None, False
    return value, True


def _platform(
    source: NodeReader, node: Node, path: str, client: Client
) -> tuple[Platform | None, bool]:
    """(the ``platform`` value, whether it is usable) for a pin-set of `client`."""
    value = source.string(node, path)
    if value is None:
        return None, False
    allowed = _PLATFORMS.get(client)
    if allowed is None:
        source.report(node, path, "platform is for okhttp and trustkit pin-sets only")
        return None, False
    if value not in {p.value for p in allowed}:
        choices = ", ".join(p.value for p in allowed)
        source.report(node, path, f"unknown {client.value} platform {value!r} ({choices})")
        return None, False
    return Platform(value), True


def _from_file(
    source: NodeReader, pinset: dict[str, Node], path: str, name: str
) -> ClientPolicy | None:
    node = pinset["from"]
    entries = source.mapping(node, f"{path}.from")
    if entries is None:
        return None
    fields = source.fields(entries, _FROM_KEYS, f"{path}.from")
    kinds = [k for k in fields if k in CONFIG_KINDS]
    if len(kinds) != 1:
        source.report(
            node, f"{path}.from", f"name exactly one kind of file: {', '.join(CONFIG_KINDS)}"
        )
        return None
    kind = kinds[0]
    platform: Platform | None = None
    version: int | None = None
    for key in ("platform", "okhttp_version"):
        if key in pinset and kind != "okhttp":
            source.report(pinset[key], f"{path}.{key}", f"{key} beside from: is for okhttp only")
            return None
    if "platform" in pinset:
        platform, ok = _platform(source, pinset["platform"], f"{path}.platform", Client.OKHTTP)
        if not ok:
            return None
    if "okhttp_version" in pinset:
        version, ok = _okhttp_version(source, pinset["okhttp_version"], f"{path}.okhttp_version")
        if not ok:
            return None
    path = f"{path}.from"
    files = [source.file(fields[kind], f"{path}.{kind}")]
    if "pins" in fields:
        if kind != "chromium":
            source.report(fields["pins"], f"{path}.pins", "pins: is for the chromium kind only")
            return None
        files.append(source.file(fields["pins"], f"{path}.pins"))
    if any(f is None for f in files):
        return None
    (absolute, display), *rest = [f for f in files if f is not None]
    pins_path, pins_display = rest[0] if rest else (None, None)
    # Imported here: the parsers (and the XML and plist libraries they use) are
    # needed only by an inventory that reads an app's configuration, not by
    # every scan (~1.5 MiB of a scan's resident memory).
    from scanner.importers import read_policy

    try:
        policy = read_policy(
            kind,
            absolute,
            display=display,
            name=name,
            pins_path=pins_path,
            pins_display=pins_display,
            okhttp_version=version,
        )
    except ClientConfigError as exc:
        source.sink(exc.location, path, exc.message)
        return None
    return replace(policy, platform=platform) if platform is not None else policy


def _problems(source: NodeReader, node: Node, path: str) -> tuple[ConfigProblem, ...]:
    """``errors: ["file:line:col: message", ...]`` back to problems."""
    found: list[ConfigProblem] = []
    for index, item in enumerate(source.sequence(node, path) or ()):
        text = source.string(item, f"{path}[{index}]")
        if text is None:
            continue
        match = _PROBLEM.match(text)
        if match:
            where = Location(match[1], int(match[2]), int(match[3]))
            found.append(ConfigProblem(where, match[4]))
        else:
            found.append(ConfigProblem(source.at(item), text))
    return tuple(found)


def _strings(source: NodeReader, node: Node, path: str) -> tuple[str, ...]:
    found: list[str] = []
    for index, item in enumerate(source.sequence(node, path) or ()):
        text = source.string(item, f"{path}[{index}]")
        if text is not None:
            found.append(text)
    return tuple(found)


def _timestamp(source: NodeReader, node: Node, path: str) -> datetime | None:
    text = source.string(node, path)
    if text is None:
        return None
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace(" ", "T"))
    except ValueError:
        source.report(
            node, path, f"bad time {text!r}: expected ISO 8601, e.g. 2024-08-08T12:56:26Z"
        )
        return None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def _from_copy(
    source: NodeReader, fields: dict[str, Node], path: str, entry: Entry, name: str
) -> ClientPolicy | None:
    client_node = fields.get("client")
    if client_node is None:
        source.report(entry.value, path, "missing required key 'client'")
        return None
    text = source.string(client_node, f"{path}.client")
    try:
        client = Client(text) if text is not None else None
    except ValueError:
        choices = ", ".join(c.value for c in Client)
        source.report(client_node, f"{path}.client", f"unknown client {text!r} ({choices})")
        return None
    if client is None:
        return None
    platform = None
    if "platform" in fields:
        platform, ok = _platform(source, fields["platform"], f"{path}.platform", client)
        if not ok:
            return None
    elif client is Client.TRUSTKIT:
        platform = Platform.IOS
    version: int | None = None
    if "okhttp_version" in fields:
        if client is not Client.OKHTTP:
            source.report(
                fields["okhttp_version"],
                f"{path}.okhttp_version",
                "okhttp_version is for okhttp pin-sets only",
            )
            return None
        version, ok = _okhttp_version(source, fields["okhttp_version"], f"{path}.okhttp_version")
        if not ok:
            return None
    rules: list[PolicyRule] = []
    if "rules" in fields:
        for index, item in enumerate(source.sequence(fields["rules"], f"{path}.rules") or ()):
            rule = _rule(source, item, f"{path}.rules[{index}]", client, version)
            if rule is not None:
                rules.append(rule)
    ignore = True
    if "ignore_user_anchors" in fields:
        flag = source.boolean(fields["ignore_user_anchors"], f"{path}.ignore_user_anchors")
        ignore = True if flag is None else flag
    return ClientPolicy(
        name=name,
        client=client,
        rules=tuple(rules),
        problems=_problems(source, fields["errors"], f"{path}.errors")
        if "errors" in fields
        else (),
        platform=platform,
        okhttp_version=version,
        ignore_user_anchors=ignore,
        list_timestamp=_timestamp(source, fields["list_timestamp"], f"{path}.list_timestamp")
        if "list_timestamp" in fields
        else None,
        debug_overrides=_strings(source, fields["debug_overrides"], f"{path}.debug_overrides")
        if "debug_overrides" in fields
        else (),
        source=source.name,
        location=source.at(entry.key_node),
    )


def _rule(
    source: NodeReader, node: Node, path: str, client: Client, version: int | None
) -> PolicyRule | None:
    entries = source.mapping(node, path)
    if entries is None:
        return None
    fields = source.fields(entries, RULE_KEYS, path)
    if not source.require(fields, "host", node, path):
        return None
    host = source.string(fields["host"], f"{path}.host")
    if host is None:
        return None

    def flag(key: str, default: bool) -> bool:
        if key not in fields:
            return default
        value = source.boolean(fields[key], f"{path}.{key}")
        return default if value is None else value

    def pins(key: str) -> tuple[Pin, ...]:
        if key not in fields:
            return ()
        return source.pins(fields[key], f"{path}.{key}", None) or ()

    def strings(key: str) -> tuple[str, ...]:
        return _strings(source, fields[key], f"{path}.{key}") if key in fields else ()

    subdomains = flag("include_subdomains", False)
    excluded = flag("excluded", False)
    mode = HostMode.EXACT
    if client is Client.OKHTTP:
        try:
            host, mode = parse_okhttp_pattern(host, version or DEFAULT_OKHTTP_VERSION)
        except PatternError as exc:
            source.report(fields["host"], f"{path}.host", str(exc))
            return None
    elif subdomains:
        mode = HostMode.ONE_LEVEL if client is Client.IOS else HostMode.SUBTREE
    expires: date | None = None
    if "expires" in fields:
        expires = source.date(fields["expires"], f"{path}.expires")
    max_age = None
    if "max_age" in fields:
        max_age = source.integer(fields["max_age"], f"{path}.max_age")
    label = None
    if "label" in fields:
        label = source.string(fields["label"], f"{path}.label")
    elif client in (Client.OKHTTP, Client.IOS):
        label = source.string(fields["host"], f"{path}.host")  # the pattern as written
    return PolicyRule(
        host=host,
        mode=mode,
        pins=pins("pins"),
        leaf_pins=pins("leaf_pins"),
        bad_pins=pins("bad_pins"),
        dead_pins=strings("dead_pins"),
        has_pinset=flag("pinset", not excluded),
        expires=expires,
        enforce=flag("enforce", True),
        excluded=excluded,
        report_only=flag("report_only", False),
        max_age=max_age,
        override_pins=strings("override_pins"),
        trust_sources=strings("trust_sources"),
        report_uris=strings("report_uris"),
        label=label,
        written_pins=strings("written_pins"),
        problems=_problems(source, fields["errors"], f"{path}.errors")
        if "errors" in fields
        else (),
        location=source.at(node),
    )
