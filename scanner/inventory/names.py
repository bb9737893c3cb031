"""What names in an inventory must look like: hosts, labels, pin-sets. Pure.

Each check returns None for a good name, else the problem in words, so the
schema reader can report it at the node with its position.
"""

from __future__ import annotations

import re

from scanner.exporters.contract import RESERVED_LABELS
from scanner.units import is_ip_address

__all__ = [
    "AUTO",
    "INLINE",
    "default_name",
    "host_problem",
    "ip_literal",
    "label_name_problem",
    "pinset_name_problem",
]

AUTO = "auto"  # `pinset: auto`: every client pin-set whose rules concern the endpoint
INLINE = "inline"  # name of the pin-set of inline pins without a named pin-set
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
PINSET_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
_DNS_LABEL = re.compile(r"(?!-)[A-Za-z0-9_-]{1,63}(?<!-)")
# The spellings nearly every inventory uses, recognised in one match (the
# checks below give the same answer for them, more slowly): a dotted IPv4
# address as `ipaddress` reads it (decimal, no leading zero), and a host name
# of valid labels with an optional final dot.
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
_IPV4 = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}")
_LABEL = r"(?!-)[A-Za-z0-9_-]{1,63}(?<!-)"
_HOST_NAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*\.?")


def ip_literal(text: str) -> bool:
    """An IPv4 or IPv6 literal, without brackets (``scanner.units.is_ip_address``,
    without its cost for the common spellings)."""
    if _IPV4.fullmatch(text):
        return True
    if ":" not in text:  # an IPv6 literal has one; an IPv4 literal is matched above
        return False
    return is_ip_address(text)


def label_name_problem(name: str) -> str | None:
    if not LABEL_NAME.fullmatch(name):
        return f"invalid label name {name!r} (must match [a-zA-Z_][a-zA-Z0-9_]*)"
    if name.startswith("__"):
        return f"label name {name!r} is reserved (names starting with __ are Prometheus' own)"
    if name in RESERVED_LABELS:
        return f"label name {name!r} clashes with a label pinaudit sets itself"
    return None


def pinset_name_problem(name: str) -> str:
    if name == INLINE:
        return f"pinset name {INLINE!r} is reserved (it names an endpoint's inline pins)"
    if name == AUTO:
        return f"pinset name {AUTO!r} is reserved (pinset: auto picks client pin-sets by host)"
    return f"invalid pinset name {name!r} (must match [A-Za-z0-9_][A-Za-z0-9_.-]*)"


def host_problem(text: str, what: str) -> str | None:
    """Why `text` is not a DNS name or an IP literal, or None when it is one."""
    if _IPV4.fullmatch(text):
        return None
    if _HOST_NAME.fullmatch(text):
        name = text[:-1] if text.endswith(".") else text
        if len(name) <= 253 and not name.rpartition(".")[2].isdigit():
            return None
    return _host_problem(text, what)


def _host_problem(text: str, what: str) -> str | None:
    """host_problem(), every check in turn."""
    if not text.strip():
        return f"{what} must not be empty"
    if "/" in text:
        return f"{what} must be a host name or IP address, not a URL or path: {text!r}"
    if any(c.isspace() for c in text):
        return f"{what} must not contain spaces: {text!r}"
    if is_ip_address(text):
        return None
    if text.startswith("[") and text.endswith("]") and is_ip_address(text[1:-1]):
        return f"write IPv6 addresses without brackets: {text[1:-1]!r}"
    head, colon, tail = text.rpartition(":")
    bracketed = head.startswith("[") and head.endswith("]")
    if colon and head and (":" not in head or bracketed) and tail.isascii() and tail.isdigit():
        return f"{what} must not include a port: {text!r} (use port: {tail})"
    if ":" in text:
        return f"invalid IP address {text!r}"
    if not text.isascii():
        return _non_ascii_problem(text, what)
    name = text[:-1] if text.endswith(".") else text
    labels = name.split(".")
    if len(name) > 253 or not all(_DNS_LABEL.fullmatch(label) for label in labels):
        return f"{what} {text!r} is not a valid host name"
    if labels[-1].isdigit():
        return f"invalid IP address {text!r}"
    return None


def _non_ascii_problem(text: str, what: str) -> str:
    try:
        ascii_form = text.encode("idna").decode("ascii")
    except UnicodeError:
        return f"{what} {text!r} is not a valid host name"
    return f"{what} {text!r} is not ASCII: write it as {ascii_form!r}"


def default_name(host: str, port: int, sni: str | None) -> str:
    """``host:port`` (``[v6]:port``), or ``sni@host:port`` when the SNI is another name."""
    shown = f"[{host}]" if ":" in host else host
    name = f"{shown}:{port}"
    return name if sni is None or sni == host else f"{sni}@{name}"
