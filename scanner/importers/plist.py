"""Property lists (Info.plist, a TrustKit dictionary): values from the stdlib's
``plistlib``, positions from the same XML read behind defusedxml.

``plistlib`` decides what the file means (XML or binary, exactly as Apple's
format defines it); a second, defused read of an XML plist maps every value
to its line and column, so that each problem can say where it is. Binary
plists have no lines: their problems point at the start of the file.
"""

from __future__ import annotations

import plistlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from xml.parsers.expat import ExpatError

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


def load_plist(data: bytes, source: str) -> Plist | ConfigProblem:
    """The plist, or why it is not one (the app would not build or start).

    Raises ClientConfigError for an XML plist refused for safety."""
    values: dict[PathKey, Location] = {}
    keys: dict[PathKey, Location] = {}
    if not data.startswith(b"bplist"):
        root = parse_xml(data, source, allow_doctype=True)
        if isinstance(root, ConfigProblem):
            return root
        if root.tag != "plist" or len(root.children) != 1:
            return ConfigProblem(
                root.location, "not a property list: expected <plist> with one value"
            )
        _index(root.children[0], (), values, keys)
    try:
        value = plistlib.loads(data)
    except ExpatError as exc:  # pragma: no cover - parse_xml saw it first
        return ConfigProblem(Location(source, exc.lineno, exc.offset + 1), f"invalid plist: {exc}")
    except (plistlib.InvalidFileException, ValueError, TypeError, OverflowError) as exc:
        return ConfigProblem(values.get((), Location(source, 1, 1)), f"invalid plist: {exc}")
    return Plist(source, value, values, keys)
