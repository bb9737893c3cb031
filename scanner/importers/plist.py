"""Property lists (Info.plist, a TrustKit dictionary): values from the stdlib's
``plistlib``, positions from the same XML read behind defusedxml.

``plistlib`` decides what the file means (XML or binary, exactly as Apple's
format defines it); a second, defused read of an XML plist maps every value
to its line and column, so that each problem can say where it is, and it
refuses entity declarations and external references before ``plistlib``
(whose expat reader does not) ever sees the bytes. Binary plists have no
lines: their problems point at the start of the file.

Like Apple's parser, whitespace (and a UTF-8 byte-order mark) before
``<?xml`` is accepted; positions still count from the file's first byte.
A file that is not a property list at all is an input error
(ClientConfigError), not an empty configuration.
"""

from __future__ import annotations

import plistlib
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from xml.parsers.expat import ExpatError

from scanner.importers._common import not_the_kind
from scanner.importers._xml import Element, parse_xml
from scanner.model import ConfigProblem, Location

__all__ = ["PathKey", "Plist", "load_plist"]

PathKey = tuple[object, ...]


@dataclass(frozen=True)
class Plist:
    """A parsed plist and where each of its values (and dictionary keys) is written."""

    source: str
    value: object
    values: Mapping[PathKey, Location] = field(default_factory=dict)
    keys: Mapping[PathKey, Location] = field(default_factory=dict)

    def at(self, path: PathKey) -> Location:
        """Where the value at `path` is written (the nearest known ancestor)."""
        while path:
            where = self.values.get(path)
            if where is not None:
                return where
            path = path[:-1]
        return self.values.get((), Location(self.source, 1, 1))

    def key_at(self, path: PathKey) -> Location:
        return self.keys.get(path) or self.at(path)

    def value_at(self, path: PathKey) -> object:
        """The value at `path` (None when there is none)."""
        value: object = self.value
        for step in path:
            if isinstance(value, dict):
                value = value.get(step)
            elif isinstance(value, list) and isinstance(step, int) and 0 <= step < len(value):
                value = value[step]
            else:
                return None
        return value


def _index(
    element: Element, path: PathKey, values: dict[PathKey, Location], keys: dict[PathKey, Location]
) -> None:
    values[path] = element.location
    if element.tag == "dict":
        children = element.children
        for n in range(0, len(children) - 1, 2):
            key, value = children[n], children[n + 1]
            if key.tag != "key":
                return
            child = (*path, key.text)
            keys[child] = key.location
            _index(value, child, values, keys)
    elif element.tag == "array":
        for n, item in enumerate(element.children):
            _index(item, (*path, n), values, keys)


_BOM = b"\xef\xbb\xbf"


def _leading(data: bytes) -> int:
    """How many bytes before ``<`` Apple's parser skips: a BOM, then whitespace."""
    i = len(_BOM) if data.startswith(_BOM) else 0
    while i < len(data) and data[i] in b" \t\r\n":
        i += 1
    return i


def load_plist(data: bytes, source: str, *, kind: str = "this kind") -> Plist | ConfigProblem:
    """The plist, or why the app would not accept it (it would not build or start).

    Raises ClientConfigError for a file that is not a property list, or an XML
    plist refused for safety."""
    where = Location(source, 1, 1)
    if data.startswith(b"bplist"):
        try:
            value = plistlib.loads(data, fmt=plistlib.FMT_BINARY)
        except (
            plistlib.InvalidFileException,
            ValueError,
            TypeError,
            OverflowError,
            KeyError,
            IndexError,
            RecursionError,
            MemoryError,
            struct.error,
        ) as exc:
            return ConfigProblem(where, f"invalid binary plist: {exc or type(exc).__name__}")
        return Plist(source, value)
    skip = _leading(data)
    body = data[skip:]
    if not body.startswith(b"<") or b"<plist" not in body[:65536]:
        raise not_the_kind(
            where,
            f"not a property list ({kind} reads an XML or binary .plist, such as Info.plist)",
        )
    lines = data.count(b"\n", 0, skip)
    columns = skip - (data.rfind(b"\n", 0, skip) + 1)
    values: dict[PathKey, Location] = {}
    keys: dict[PathKey, Location] = {}
    root = parse_xml(body, source, allow_doctype=True, offset=(lines, columns))
    if isinstance(root, ConfigProblem):
        return root
    if root.tag != "plist" or len(root.children) != 1:
        return ConfigProblem(root.location, "not a property list: expected <plist> with one value")
    _index(root.children[0], (), values, keys)
    try:
        value = plistlib.loads(body, fmt=plistlib.FMT_XML)
    except ExpatError as exc:  # pragma: no cover - parse_xml saw it first
        return ConfigProblem(Location(source, exc.lineno, exc.offset + 1), f"invalid plist: {exc}")
    except (plistlib.InvalidFileException, ValueError, TypeError, OverflowError) as exc:
        return ConfigProblem(values.get((), where), f"invalid plist: {exc}")
    return Plist(source, value, values, keys)
