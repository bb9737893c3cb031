"""Typed readers over position-keeping YAML nodes. Pure.

A :class:`NodeReader` reads one file's nodes: each reader returns the value,
or None after reporting the problem with the node's file, line, column and
path (``endpoints[3].pins[0]``) to the run's sink. Nodes whose tag was
refused are skipped silently (they were reported once already). The schema
reader and the client pin-set reader both build on it.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping, Sequence
from datetime import date
from typing import NamedTuple

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from scanner.errors import PinError
from scanner.inventory.files import FileRef, locate
from scanner.inventory.yamlnodes import (
    BOOL,
    INT,
    MERGE,
    NULL,
    SCALARS,
    STR,
    TIMESTAMP,
    Position,
    Sink,
    join,
    kind_of,
)
from scanner.model import Location, Pin
from scanner.pins import parse_pin

__all__ = ["MAX_MERGE_DEPTH", "Entry", "NodeReader", "key_hint"]

MAX_MERGE_DEPTH = 16  # merge keys whose sources themselves merge
_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")


class Entry(NamedTuple):
    """One key of a mapping node, after merge keys and duplicates are dealt with.

    (A named tuple: one is made per key read, and it is quicker to make than
    a frozen dataclass.)"""

    key: str
    key_node: Node
    value: Node


# Entry(key, key_node, value), without the Python-level __new__ of a named
# tuple: one is made per key of every mapping read.
_entry = tuple.__new__


class _MergeTooDeep(Exception):
    """A merge key whose sources merge, and so on, beyond MAX_MERGE_DEPTH."""


class NodeReader:
    """Reads one file's node tree, reporting problems to `sink`."""

    def __init__(self, ref: FileRef, sink: Sink, bad: set[int]) -> None:
        self.ref = ref
        self.name = ref.name
        self.directory = ref.directory  # absolute: relative paths are resolved here
        self.sink = sink
        self.bad = bad  # ids of nodes with a rejected tag (already reported)

    # reporting

    def at(self, node: Node) -> Location:
        mark = node.start_mark
        return Location(self.name, mark.line + 1, mark.column + 1)

    def mark_location(self, mark: Position) -> Location:
        return Location(self.name, mark.line + 1, mark.column + 1)

    def report(self, node: Node, path: str, message: str) -> None:
        self.sink(self.at(node), path, message)

    def wrong_type(self, node: Node, path: str, expected: str) -> None:
        if id(node) not in self.bad:
            self.report(node, path, f"expected {expected}, got {kind_of(node)}")

    # generic readers: each returns None after reporting (or silently for bad tags)

    def mapping(self, node: Node, path: str) -> list[Entry] | None:
        if isinstance(node, MappingNode) and id(node) not in self.bad:
            try:
                return self.entries(node, path, 0)
            except _MergeTooDeep:
                message = f"merge keys nested deeper than {MAX_MERGE_DEPTH} levels"
                self.report(node, path, message)
                return None
        self.wrong_type(node, path, "a mapping")
        return None

    def entries(self, node: MappingNode, path: str, depth: int) -> list[Entry]:
        """Keys of a mapping in order; explicit keys win over merged ones (``<<``)."""
        own: dict[str, Entry] = {}
        merged: list[Entry] = []
        bad = self.bad
        for key_node, value in node.value:
            if not isinstance(key_node, ScalarNode) or (bad and id(key_node) in bad):
                if isinstance(key_node, ScalarNode) and key_node.tag == MERGE:
                    merged.extend(self.merge_sources(value, path, depth))
                else:
                    self.wrong_type(key_node, path, "a string key")
                continue
            key = key_node.value
            if key_node.tag == MERGE:
                merged.extend(self.merge_sources(value, path, depth))
            elif key in own:
                first = own[key].key_node.start_mark
                self.report(
                    key_node,
                    join(path, key),
                    f"duplicate key {key!r} "
                    f"(first at line {first.line + 1}, column {first.column + 1})",
                )
            else:
                own[key] = _entry(Entry, (key, key_node, value))
        result = list(own.values())
        for entry in merged:
            if entry.key not in own:
                own[entry.key] = entry
                result.append(entry)
        return result

    def merge_sources(self, node: Node, path: str, depth: int) -> list[Entry]:
        if depth >= MAX_MERGE_DEPTH:
            raise _MergeTooDeep
        sources = node.value if isinstance(node, SequenceNode) else [node]
        entries: list[Entry] = []
        for source in sources:
            if isinstance(source, MappingNode) and id(source) not in self.bad:
                entries.extend(self.entries(source, path, depth + 1))
            else:
                self.wrong_type(source, path, "a mapping or a list of mappings to merge")
        return entries

    def fields(self, entries: list[Entry], allowed: Sequence[str], path: str) -> dict[str, Node]:
        """The known keys' value nodes; every unknown key is reported at the key."""
        known: dict[str, Node] = {}
        for entry in entries:
            if entry.key in allowed:
                known[entry.key] = entry.value
            else:
                message = f"unknown key {entry.key!r} ({key_hint(entry.key, allowed)})"
                self.report(entry.key_node, join(path, entry.key), message)
        return known

    def require(self, fields: Mapping[str, Node], key: str, node: Node, path: str) -> bool:
        if key in fields:
            return True
        self.report(node, path, f"missing required key {key!r}")
        return False

    def sequence(self, node: Node, path: str) -> list[Node] | None:
        if isinstance(node, SequenceNode) and id(node) not in self.bad:
            return list(node.value)
        self.wrong_type(node, path, "a list")
        return None

    def string(self, node: Node, path: str) -> str | None:
        """Any non-null scalar, as written (so ``no`` stays "no", ``010`` stays "010")."""
        if (
            isinstance(node, ScalarNode)
            and node.tag != NULL
            and not (self.bad and id(node) in self.bad)
        ):
            return str(node.value)
        self.wrong_type(node, path, "a string")
        return None

    def integer(self, node: Node, path: str) -> int | None:
        """An integer scalar (booleans are not integers)."""
        if isinstance(node, ScalarNode) and node.tag == INT and id(node) not in self.bad:
            try:
                return SCALARS.construct_yaml_int(node)
            except Exception:  # PyYAML's reader raises ValueError, IndexError: translate here
                self.report(node, path, f"invalid integer {node.value!r}")
                return None
        self.wrong_type(node, path, "an integer")
        return None

    def float_value(self, node: ScalarNode, path: str) -> float | None:
        try:
            if node.tag == INT:
                return float(SCALARS.construct_yaml_int(node))
            return SCALARS.construct_yaml_float(node)
        except Exception:  # ValueError, IndexError, OverflowError: translate here
            self.report(node, path, f"invalid number {node.value!r}")
            return None

    def boolean(self, node: Node, path: str) -> bool | None:
        if isinstance(node, ScalarNode) and node.tag == BOOL and id(node) not in self.bad:
            return bool(SCALARS.construct_yaml_bool(node))
        self.wrong_type(node, path, "true or false")
        return None

    def date(self, node: Node, path: str) -> date | None:
        """A YAML date or a 'YYYY-MM-DD' string; a time of day is refused."""
        if not isinstance(node, ScalarNode) or node.tag not in (TIMESTAMP, STR):
            self.wrong_type(node, path, "a date (YYYY-MM-DD)")
            return None
        text = str(node.value)
        match = _DATE.fullmatch(text.strip())
        if match is None:
            self.report(node, path, f"bad date {text!r}: expected YYYY-MM-DD")
            return None
        try:
            return date(int(match[1]), int(match[2]), int(match[3]))
        except ValueError as exc:
            self.report(node, path, f"bad date {text!r}: {exc}")
            return None

    def pins(self, node: Node, path: str, digest: str | None) -> tuple[Pin, ...] | None:
        """A list of pins; duplicates collapse, first spelling's position kept."""
        items = self.sequence(node, path)
        if items is None:
            return None
        pins: dict[Pin, None] = {}
        for index, item in enumerate(items):
            where = f"{path}[{index}]"
            text = self.string(item, where)
            if text is None:
                continue
            try:
                pins.setdefault(parse_pin(text, digest=digest, where=where))
            except PinError as exc:
                self.report(item, where, str(PinError(exc.pin, exc.reason)))
        return tuple(pins)

    def file(self, node: Node, path: str) -> tuple[str, str] | None:
        """(absolute path, path as shown) of an existing file named relative to
        this file; None after reporting."""
        text = self.string(node, path)
        if text is None:
            return None
        absolute, exists = locate(self.directory, text)
        if not exists:
            self.report(node, path, f"file {text!r} not found (looked for {absolute})")
            return None
        return absolute, os.path.normpath(os.path.join(self.ref.display_dir, text))


def key_hint(key: str, allowed: Sequence[str]) -> str:
    close = difflib.get_close_matches(key, allowed, n=1)
    if close:
        return f"did you mean {close[0]!r}?"
    return "allowed: " + ", ".join(sorted(allowed))
