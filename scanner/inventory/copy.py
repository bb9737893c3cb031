"""An inventory written from a client pin configuration (``pinaudit import``). Pure.

The copy is YAML that the inventory reads back as the same ``ClientPolicy``
(``client:`` + ``rules:``, see ``scanner.inventory.client_pinsets``), with
one endpoint per exact host the configuration pins.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import timezone

from scanner.model import Client, ClientPolicy, HostMode, Pin, PolicyRule

__all__ = ["copy_lines", "endpoint_hosts", "inventory_text"]


def _q(text: str) -> str:
    """A YAML scalar: JSON-quoted (a subset of YAML), so nothing is misread."""
    return json.dumps(text, ensure_ascii=False)


def _list(items: Sequence[str]) -> str:
    return "[" + ", ".join(_q(i) for i in items) + "]"


def _rule_lines(rule: PolicyRule, client: Client) -> list[str]:
    host = rule.pattern if client is Client.OKHTTP else rule.host
    lines = [f"      - host: {_q(host)}"]

    def add(key: str, value: str) -> None:
        lines.append(f"        {key}: {value}")

    if client is not Client.OKHTTP and rule.include_subdomains:
        add("include_subdomains", "true")
    if rule.excluded:
        add("excluded", "true")
    if not rule.has_pinset and not rule.excluded:
        add("pinset", "false")

    def pin_list(key: str, pins: Sequence[Pin]) -> None:
        if not pins:
            add(key, "[]")
            return
        add(key, "")
        lines[-1] = lines[-1].rstrip()
        lines.extend(f"          - {_q(str(p))}" for p in pins)

    if rule.has_pinset and not rule.excluded:
        pin_list("pins", rule.pins)
    for key, values in (("leaf_pins", rule.leaf_pins), ("bad_pins", rule.bad_pins)):
        if values:
            pin_list(key, values)
    if rule.dead_pins:
        add("dead_pins", _list(rule.dead_pins))
    if rule.written_pins:
        add("written_pins", _list(rule.written_pins))
    if rule.expires is not None:
        add("expires", rule.expires.isoformat())
    if not rule.enforce:
        add("enforce", "false")
    if rule.report_only:
        add("report_only", "true")
    if rule.max_age is not None:
        add("max_age", str(rule.max_age))
    for key, strings in (
        ("override_pins", rule.override_pins),
        ("trust_sources", rule.trust_sources),
        ("report_uris", rule.report_uris),
    ):
        if strings:
            add(key, _list(strings))
    if rule.label is not None and rule.label != host:
        add("label", _q(rule.label))
    if rule.problems:
        add("errors", _list([str(p) for p in rule.problems]))
    return lines


def copy_lines(policy: ClientPolicy) -> list[str]:
    """The pin-set as YAML lines (indented for ``pinsets:``)."""
    lines = [f"  {policy.name}:", f"    client: {policy.client.value}"]
    if policy.platform is not None:
        lines.append(f"    platform: {policy.platform.value}")
    if policy.okhttp_version is not None:
        lines.append(f"    okhttp_version: {policy.okhttp_version}")
    if not policy.ignore_user_anchors:
        lines.append("    ignore_user_anchors: false")
    if policy.list_timestamp is not None:
        stamp = policy.list_timestamp.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        lines.append(f"    list_timestamp: {_q(stamp)}")
    if policy.debug_overrides:
        lines.append(f"    debug_overrides: {_list(policy.debug_overrides)}")
    if policy.problems:
        lines.append("    errors:")
        lines += [f"      - {_q(str(p))}" for p in policy.problems]
    if policy.rules:
        lines.append("    rules:")
        for rule in policy.rules:
            lines += _rule_lines(rule, policy.client)
    else:
        lines.append("    rules: []")
    return lines


def endpoint_hosts(policy: ClientPolicy) -> list[str]:
    """One host per rule that names a concrete host the rule pins (not ``*.``)."""
    hosts: dict[str, None] = {}
    for rule in policy.rules:
        if rule.mode is HostMode.ONE_LABEL or rule.excluded or rule.report_only:
            continue
        host = rule.host.rstrip(".")
        if host and "*" not in host:
            hosts.setdefault(host)
    return list(hosts)


def inventory_text(policy: ClientPolicy, *, command: str) -> str:
    """A whole inventory: the pin-set copied, and an endpoint per exact host."""
    lines = [
        f"# {command}",
        f"# written by pinaudit from {policy.source}: the pins, host rules and expiry",
        f"# of that {policy.client.value} configuration, judged as {policy.client.value} does.",
        "version: 1",
        "pinsets:",
        *copy_lines(policy),
    ]
    comments = [f"# note: {note}" for note in policy.notes]
    comments += [f"# unresolved: {missing}" for missing in policy.unresolved]
    lines[3:3] = [" ".join(line.split()) for line in comments]
    hosts = endpoint_hosts(policy)
    if hosts:
        lines.append("endpoints:")
        for host in hosts:
            lines += [f"  - host: {_q(host)}", f"    pinset: {_q(policy.name)}"]
    else:
        lines.append("endpoints: []")
    return "\n".join(lines) + "\n"
