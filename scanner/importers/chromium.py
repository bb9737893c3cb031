"""Chromium's static pins (pinning-semantics §6): the pinsets/entries JSON
(``transport_security_state_static_pins.json``, ``//`` comment lines
allowed) and the ``.pins`` file that gives each pin name its key and the list
its timestamp (``PinsListTimestamp``).

What Chromium's generator refuses (an unknown pin or pinset name, an entry
with both subdomain flags) stops the list from being built: fatal problems.
"""

from __future__ import annotations

import base64
import bisect
import json
import re
import warnings
from datetime import datetime, timezone
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_pem_public_key,
)

from scanner.errors import PinError
from scanner.importers._common import Collector, decode_text, lines_of, not_the_kind, stem_name
from scanner.model import Client, ClientPolicy, HostMode, Location, Pin, PolicyRule
from scanner.pins import parse_pin, pin_of_certificate, pins_of_spki

__all__ = ["parse_chromium", "parse_pins_file", "strip_comments"]

_NAME = re.compile(r"[A-Za-z0-9_]+")
_BLOCK = re.compile(r"-----BEGIN ([A-Z ]+)-----.*?-----END \1-----", re.DOTALL)


def parse_pins_file(
    data: bytes, source: str, out: Collector
) -> tuple[dict[str, Pin], datetime | None]:
    """Name → SPKI pin of a ``.pins`` file, and its PinsListTimestamp."""
    text = decode_text(data, source)
    lines = lines_of(text)
    names: dict[str, Pin] = {}
    stamp: datetime | None = None
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        if not line or line.startswith("#"):
            i += 1
            continue
        where = Location(source, i + 1, 1)
        if not _NAME.fullmatch(line):
            out.problem(where, f"expected a name, got {line!r}")
            i += 1
            continue
        name = line
        i += 1
        while i < len(lines) and not lines[i].strip():
            i += 1
        if i >= len(lines):
            out.problem(where, f"{name}: no value follows")
            break
        value = lines[i].strip()
        if name == "PinsListTimestamp":
            if value.isdigit():
                stamp = datetime.fromtimestamp(int(value), timezone.utc)
            else:
                out.problem(
                    Location(source, i + 1, 1), f"PinsListTimestamp {value!r} is not a Unix time"
                )
            i += 1
            continue
        if value.startswith("-----BEGIN"):
            end = i
            while end < len(lines) and not lines[end].strip().startswith("-----END"):
                end += 1
            block = "\n".join(lines[i : end + 1])
            pin, said = _pem_pin(block)
            if said is not None:
                out.note(Location(source, i + 1, 1), f"{name}: the X.509 library warns: {said}")
            if pin is None:
                out.problem(Location(source, i + 1, 1), f"{name}: the PEM block does not parse")
            else:
                names[name] = pin
            i = end + 1
            continue
        try:
            names[name] = parse_pin(value)
        except PinError as exc:
            out.problem(Location(source, i + 1, 1), f"{name}: {exc.reason}")
        i += 1
    return names, stamp


def _pem_pin(block: str) -> tuple[Pin | None, str | None]:
    """The SPKI pin of a PEM certificate or public key, and what the library
    warned about while reading it (kept off stderr: the caller notes it)."""
    data = block.encode("ascii", "replace")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            if "CERTIFICATE" in block.split("\n", 1)[0]:
                pin: Pin | None = pin_of_certificate(x509.load_pem_x509_certificate(data))
            else:
                key = load_pem_public_key(data)
                spki = key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
                pin = pins_of_spki(spki)[0]
        except (ValueError, TypeError):
            pin = _certificate_spki_pin(block)
    said = "; ".join(" ".join(str(w.message).split()) for w in caught)
    return pin, said or None


def _certificate_spki_pin(block: str) -> Pin | None:
    """The pin of a certificate the X.509 library refuses (a zero or negative
    serial, an odd encoding of an old root): its subjectPublicKeyInfo is still
    what Chromium's generator hashes."""
    lines = [ln.strip() for ln in block.splitlines() if ln.strip() and "-----" not in ln]
    try:
        der = base64.b64decode("".join(lines), validate=True)
        cert = _der_children(der, 0)
        tbs = _der_children(der, cert[0][0]) if cert else []
        fields = tbs[1:] if tbs and der[tbs[0][0]] == 0xA0 else tbs  # skip [0] version
        start, end = fields[5]  # serial, signature, issuer, validity, subject, SPKI
    except (ValueError, IndexError):
        return None
    return pins_of_spki(der[start:end])[0]


def _der_children(der: bytes, start: int) -> list[tuple[int, int]]:
    """(start, end) of each element inside the constructed DER element at `start`."""

    def header(at: int) -> tuple[int, int]:
        length = der[at + 1]
        if length < 0x80:
            return at + 2, length
        count = length & 0x7F
        if not 1 <= count <= 4:
            raise ValueError("bad DER length")
        return at + 2 + count, int.from_bytes(der[at + 2 : at + 2 + count], "big")

    body, length = header(start)
    end = body + length
    if end > len(der):
        raise ValueError("truncated DER")
    children: list[tuple[int, int]] = []
    at = body
    while at < end:
        inner, size = header(at)
        children.append((at, inner + size))
        at = inner + size
    return children


def strip_comments(text: str) -> str:
    """Blank out ``//`` comment lines, keeping line numbers."""
    return "\n".join("" if line.lstrip().startswith("//") else line for line in text.split("\n"))


_NAME_FIELD = re.compile(r'"name"\s*:\s*("(?:[^"\\\n]|\\.)*")')


class _Locator:
    """Line and column of ``"name": "VALUE"`` occurrences, in file order.

    One pass over the text indexes every occurrence (the combined HSTS list of
    2017 has some 33,000): each lookup is then a bisection, not a rescan."""

    def __init__(self, text: str, source: str) -> None:
        self.source = source
        self.cursor = 0
        self.lines = [0] + [m.end() for m in re.finditer("\n", text)]
        self.found: dict[str, list[int]] = {}
        for match in _NAME_FIELD.finditer(text):
            try:
                value = json.loads(match.group(1))
            except ValueError:
                continue
            if isinstance(value, str):
                self.found.setdefault(value, []).append(match.start())

    def find(self, value: str) -> Location:
        starts = self.found.get(value)
        if not starts:
            return Location(self.source, 1, 1)
        n = bisect.bisect_left(starts, self.cursor)
        index = starts[n] if n < len(starts) else starts[0]
        self.cursor = index + 1
        line = bisect.bisect_right(self.lines, index)
        return Location(self.source, line, index - self.lines[line - 1] + 1)


def parse_chromium(
    data: bytes,
    source: str,
    *,
    pins_data: bytes | None = None,
    pins_source: str | None = None,
    name: str | None = None,
) -> ClientPolicy:
    """The static pins JSON, its names resolved through the ``.pins`` file."""
    out = Collector(source)
    names: dict[str, Pin] = {}
    stamp = None
    if pins_data is not None:
        names, stamp = parse_pins_file(pins_data, pins_source or "<pins>", out)
    else:
        out.note(Location(source, 1, 1), "no .pins file: pin names cannot be resolved")
    text = strip_comments(decode_text(data, source))
    rules: list[PolicyRule] = []
    keys = ('"pinsets"', '"entries"')
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        if not any(key in text for key in keys):
            raise not_the_kind(
                Location(source, 1, 1),
                f"not a Chromium static pins list: not JSON ({exc.msg} at line {exc.lineno})",
            ) from None
        out.problem(Location(source, exc.lineno, exc.colno), f"invalid JSON: {exc.msg}")
        document = None
    if document is not None and not (
        isinstance(document, dict) and ("pinsets" in document or "entries" in document)
    ):
        raise not_the_kind(
            Location(source, 1, 1),
            "not a Chromium static pins list: expected a JSON object with pinsets and entries",
        )
    if isinstance(document, dict):
        rules = _rules(document, names, _Locator(text, source), out, source)
    return ClientPolicy(
        name=name or stem_name(source),
        client=Client.CHROMIUM,
        rules=tuple(rules),
        problems=tuple(out.problems),
        notes=tuple(out.notes),
        list_timestamp=stamp,
        source=source,
        location=Location(source, 1, 1),
    )


def _hashes(
    items: Any, names: dict[str, Pin], where: Location, what: str, out: Collector
) -> tuple[Pin, ...]:
    if items is None:
        return ()
    if not isinstance(items, list):
        out.problem(where, f"{what} must be a list of pin names")
        return ()
    pins: dict[Pin, None] = {}
    for item in items:
        pin = names.get(item) if isinstance(item, str) else None
        if pin is None:
            out.problem(where, f"{what}: could not find the SPKI hash {item!r} in the .pins file")
            continue
        pins.setdefault(pin)
    return tuple(pins)


def _rules(
    document: dict[str, Any],
    names: dict[str, Pin],
    locate: _Locator,
    out: Collector,
    source: str,
) -> list[PolicyRule]:
    pinsets: dict[str, tuple[tuple[Pin, ...], tuple[Pin, ...], str | None]] = {}
    for item in document.get("pinsets") or []:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            out.problem(Location(source, 1, 1), f"a pinset without a name: {item!r}")
            continue
        where = locate.find(item["name"])
        good = _hashes(
            item.get("static_spki_hashes"),
            names,
            where,
            f"pinset {item['name']!r} static_spki_hashes",
            out,
        )
        bad = _hashes(
            item.get("bad_static_spki_hashes"),
            names,
            where,
            f"pinset {item['name']!r} bad_static_spki_hashes",
            out,
        )
        uri = item.get("report_uri")
        pinsets[item["name"]] = (good, bad, uri if isinstance(uri, str) else None)
    rules: list[PolicyRule] = []
    for entry in document.get("entries") or []:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            out.problem(Location(source, 1, 1), f"an entry without a name: {entry!r}")
            continue
        where = locate.find(entry["name"])
        pinset = entry.get("pins")
        if pinset is None:
            continue  # an HSTS-only entry: not about pinning
        subdomains = entry.get("include_subdomains") is True
        for_pinning = entry.get("include_subdomains_for_pinning") is True
        if subdomains and for_pinning:
            out.problem(
                where,
                f"entry {entry['name']!r} sets both include_subdomains and "
                "include_subdomains_for_pinning",
            )
        found = pinsets.get(pinset) if isinstance(pinset, str) else None
        if found is None:
            out.problem(where, f"entry {entry['name']!r} names an unknown pinset {pinset!r}")
            continue
        good, bad, uri = found
        rules.append(
            PolicyRule(
                host=entry["name"].lower().rstrip("."),
                mode=HostMode.SUBTREE if subdomains or for_pinning else HostMode.EXACT,
                pins=good,
                bad_pins=bad,
                label=pinset,
                report_uris=(uri,) if uri else (),
                location=where,
            )
        )
    return rules
