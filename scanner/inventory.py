"""Inventory loader: YAML files (schema version 1, DESIGN §3) to an Inventory.

Pure apart from reading the inventory files themselves (and checking that a
trust bundle path exists): no network, no clock.

Every problem in every file is collected and raised at once as one
:class:`InventoryError`, each with file, 1-based line and column, and a path
such as ``endpoints[3].pins[0]``. Nothing but InventoryError ever escapes,
whatever the input.

The loader works on YAML *nodes*, never on constructed Python objects, so
that every value keeps its position. Hostile files are bounded: a size limit
per file; limits on nesting and on the number of nodes while composing; and a
limit on the number of nodes once aliases are expanded ("billion laughs"),
computed on the composed node graph with memoisation before anything walks
it. Only the standard YAML tags are accepted (no ``!!python/...``). Merge
keys (``<<: *anchor``) work as in ``yaml.safe_load``. Events come from
libyaml when PyYAML has it (several times faster), else from PyYAML's own
parser; the composer on top is the same.

Decisions the design leaves open are written down at the constant or function
they concern; the user-facing ones are also in ``inventories/example.yaml``.
"""

from __future__ import annotations

import difflib
import glob
import ipaddress
import math
import os
import re
import stat
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.error import MarkedYAMLError
from yaml.events import AliasEvent, Event
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.reader import ReaderError

from scanner.clients import applies
from scanner.errors import ConfigError, InventoryError, InventoryProblem, PinError
from scanner.inventory_clients import AUTO, is_client_pinset_node, read_client_pinset
from scanner.model import Endpoint, Inventory, Location, Pin, Pinset, TrustKind, TrustSpec
from scanner.pins import parse_digest_name, parse_pin
from scanner.policy import ClientPolicy

__all__ = [
    "MAX_DAYS",
    "MAX_DEPTH",
    "MAX_FILE_BYTES",
    "MAX_NODES",
    "RESERVED_LABELS",
    "SCHEMA_VERSION",
    "load_inventory",
    "load_inventory_text",
    "parse_duration",
]

SCHEMA_VERSION = 1
MAX_FILE_BYTES = 8 * 1024 * 1024  # per file
MAX_NODES = 1_000_000  # per file, counted with every alias expanded
MAX_DEPTH = 64  # nesting of YAML collections
MAX_MERGE_DEPTH = 16  # merge keys whose sources themselves merge
MAX_DAYS = 36_500  # day thresholds: 100 years keeps date arithmetic in range

# Labels pinaudit puts on its own series (DESIGN §5) plus Prometheus' target
# labels: an inventory label with one of these names would clash.
RESERVED_LABELS = frozenset(
    {
        "endpoint",
        "address",
        "reason",
        "check",
        "severity",
        "pinset",
        "position",
        "role",
        "subject",
        "issuer",
        "spki_sha256",
        "serial",
        "result",
        "version",
        "kind",
        "instance",
        "job",
    }
)

_DEFAULT_KEYS = (
    "port",
    "timeout",
    "warn_days",
    "critical_days",
    "pinset_warn_days",
    "trust",
    "labels",
    "all_addresses",
    "client_cert",
    "client_key",
)
_ROOT_KEYS = ("version", "defaults", "include", "pinsets", "endpoints")
_PINSET_KEYS = ("pins", "expires", "digest")
_ENDPOINT_KEYS = ("host", "name", "port", "sni", "pinset", "pins", *_DEFAULT_KEYS[1:])

_TAG = "tag:yaml.org,2002:"
_STR, _INT, _FLOAT, _BOOL, _NULL = (_TAG + t for t in ("str", "int", "float", "bool", "null"))
_TIMESTAMP, _MERGE, _VALUE = (_TAG + t for t in ("timestamp", "merge", "value"))
_SCALAR_TAGS = frozenset({_STR, _INT, _FLOAT, _BOOL, _NULL, _TIMESTAMP, _MERGE, _VALUE})
_SCALAR_KINDS = {
    _INT: "an integer",
    _FLOAT: "a number",
    _BOOL: "a boolean",
    _NULL: "null",
    _TIMESTAMP: "a date",
}

_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_PINSET_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
_DNS_LABEL = re.compile(r"(?!-)[A-Za-z0-9_-]{1,63}(?<!-)")
_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_DURATION = re.compile(r"([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))\s*(ms|s|m)?")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0}
_INLINE = "inline"  # name of the pin-set of inline pins without a named pin-set

_CERTIFI = TrustSpec(TrustKind.CERTIFI)
_SCALARS = SafeConstructor()  # only its scalar readers are used: they hold no state

_T = TypeVar("_T")
_V = TypeVar("_V")


# --- values ------------------------------------------------------------------


@dataclass(frozen=True)
class _Effective:
    """Endpoint settings with every layer applied."""

    port: int = 443
    timeout: float = 5.0
    warn_days: int = 30
    critical_days: int = 7
    pinset_warn_days: int = 60
    trust: TrustSpec = _CERTIFI
    labels: Mapping[str, str] = field(default_factory=dict)
    all_addresses: bool = False
    client_cert: str | None = None
    client_key: str | None = None


@dataclass(frozen=True)
class _Layer:
    """Settings one mapping sets (a ``defaults`` block or an endpoint); None = not set."""

    port: int | None = None
    timeout: float | None = None
    warn_days: int | None = None
    critical_days: int | None = None
    pinset_warn_days: int | None = None
    trust: TrustSpec | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    threshold_at: tuple[Location, str] | None = None  # where critical_days/warn_days is set
    all_addresses: bool | None = None
    client_cert: str | None = None
    client_key: str | None = None

    def apply(self, base: _Effective) -> _Effective:
        return _Effective(
            port=_first(self.port, base.port),
            timeout=_first(self.timeout, base.timeout),
            warn_days=_first(self.warn_days, base.warn_days),
            critical_days=_first(self.critical_days, base.critical_days),
            pinset_warn_days=_first(self.pinset_warn_days, base.pinset_warn_days),
            trust=_first(self.trust, base.trust),
            labels={**base.labels, **self.labels},
            all_addresses=_first(self.all_addresses, base.all_addresses),
            client_cert=_first(self.client_cert, base.client_cert),
            client_key=_first(self.client_key, base.client_key),
        )


def _first(value: _T | None, default: _T) -> _T:
    return default if value is None else value


@dataclass(frozen=True)
class _Entry:
    """One key of a mapping node, after merge keys and duplicates are dealt with."""

    key: str
    key_node: Node
    value: Node


@dataclass(frozen=True)
class _Draft:
    """An endpoint as read from its file, before pin-set names are resolved."""

    location: Location
    path: str
    host: str | None  # None: missing or invalid (already reported)
    name: str | None  # explicit or default; None when it cannot be known
    name_at: tuple[Location, str]
    sni: str | None
    settings: _Effective
    pinset_ref: tuple[str, Location, str] | None  # name, where, path
    inline: tuple[Pin, ...] | None
    inline_at: Location | None
    clean: bool  # no problem found inside the endpoint


@dataclass(frozen=True)
class _FileRef:
    """A file to read: its name in messages and where its relative paths start."""

    name: str  # as the user spelled it (joined onto the including file's directory)
    directory: str  # absolute
    display_dir: str  # `directory` as the user spelled it
    chain: tuple[tuple[str, str], ...]  # (real path, name) of the including files and this one
    is_root: bool


class _Unreadable(Exception):
    """A file that cannot be read; the message says why."""


class _Position(Protocol):
    """A YAML mark (PyYAML's or libyaml's): 0-based line and column."""

    @property
    def line(self) -> int: ...
    @property
    def column(self) -> int: ...


@dataclass(frozen=True)
class _Mark:
    """A position when the parser gives none."""

    line: int
    column: int


_DOCUMENT_START = _Mark(0, 0)


class _MergeTooDeep(Exception):
    """A merge key whose sources merge, and so on, beyond MAX_MERGE_DEPTH."""


class _Refused(Exception):
    """A document refused while composing: nested too deeply, or too many nodes."""

    def __init__(self, mark: _Position, message: str) -> None:
        super().__init__(message)
        self.mark = mark
        self.message = message


class _BoundedComposer(Composer):
    """PyYAML's composer, refusing documents nested too deeply or with too many nodes.

    Composing recurses once per nesting level, and every node costs time and
    memory before the tree can be checked: both are bounded here, as the
    events arrive. (Aliases add no node here; their expansion is bounded
    afterwards by _Source.inspect.)
    """

    if TYPE_CHECKING:  # provided by the parser class it is mixed with

        def check_event(self, *choices: Any) -> bool: ...
        def peek_event(self) -> Event: ...

    def init_bounds(self) -> None:
        self.depth = 0
        self.nodes = 0

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        if self.check_event(AliasEvent):
            return super().compose_node(parent, index)
        self.nodes += 1
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                raise _Refused(self.next_mark(), f"nesting deeper than {MAX_DEPTH} levels")
            if self.nodes > MAX_NODES:
                raise _Refused(self.next_mark(), _too_many_nodes())
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1

    def next_mark(self) -> _Position:
        mark: _Position | None = self.peek_event().start_mark
        return _DOCUMENT_START if mark is None else mark


class _PyLoader(_BoundedComposer, yaml.SafeLoader):
    """Pure-Python events (PyYAML's scanner and parser)."""

    def __init__(self, stream: str) -> None:
        yaml.SafeLoader.__init__(self, stream)
        self.init_bounds()

    @staticmethod
    def char_index(text: str, position: int) -> int:
        return position  # ReaderError positions count characters here


_LOADERS: list[type[_PyLoader] | type[_CLoader]] = [_PyLoader]

if getattr(yaml, "__with_libyaml__", False):

    class _CLoader(_BoundedComposer, yaml.CSafeLoader):
        """libyaml's scanner and parser (several times faster), the same composer."""

        def __init__(self, stream: str) -> None:
            yaml.CSafeLoader.__init__(self, stream)
            Composer.__init__(self)
            self.init_bounds()

        @staticmethod
        def char_index(text: str, position: int) -> int:
            encoded = text.encode("utf-8")[:position]  # libyaml counts UTF-8 bytes
            return len(encoded.decode("utf-8", "ignore"))

    _LOADERS.insert(0, _CLoader)

_Loader = _LOADERS[0]  # the fastest available; tests run both


# --- public API --------------------------------------------------------------


def parse_duration(text: str, what: str = "duration") -> float:
    """Seconds from ``30``, ``1.5``, ``500ms``, ``5s``, ``1.5s`` or ``1m``; > 0 and finite.

    The inventory's ``timeout`` strings use the same syntax. Raises
    ConfigError naming `what` (e.g. ``--deadline``).
    """
    try:
        return _duration(text)
    except ValueError as exc:
        raise ConfigError(f"{what} {text!r}: {exc}") from None


def load_inventory(path: str | os.PathLike[str]) -> Inventory:
    """Read an inventory file and every file it includes. Raises InventoryError."""
    name = os.fspath(path)
    run = _Run()
    try:
        absolute, real = _resolve(name)
        data = _read_file(real)
    except _Unreadable as exc:
        run.add(Location(name, 1, 1), "", f"cannot read inventory: {exc}")
        raise InventoryError(run.sorted_problems()) from None
    directory = os.path.dirname(absolute)
    run.read_bytes(data, _FileRef(name, directory, os.path.dirname(name), ((real, name),), True))
    return run.finish()


def load_inventory_text(
    text: str,
    filename: str = "<string>",
    *,
    base_dir: str | os.PathLike[str] | None = None,
) -> Inventory:
    """Read an inventory from text; `filename` names it in problems.

    Includes and trust bundle paths are relative to `base_dir`, or to the
    current directory when it is None.
    """
    run = _Run()
    if base_dir is None:
        directory, display_dir = os.getcwd(), ""
    else:
        directory, display_dir = os.path.abspath(os.fspath(base_dir)), os.fspath(base_dir)
    ref = _FileRef(filename, directory, display_dir, (), True)
    if len(text.encode("utf-8", "surrogatepass")) > MAX_FILE_BYTES:
        run.files.append(filename)
        run.add(Location(filename, 1, 1), "", _too_large())
    else:
        run.read_text(text, ref)
    return run.finish()


# --- one run over all files ----------------------------------------------------


class _Run:
    """Everything read so far: files, problems, pin-sets and endpoint drafts."""

    def __init__(self) -> None:
        self.files: list[str] = []
        self.problems: list[InventoryProblem] = []
        self._problem_keys: set[tuple[Location, str]] = set()
        self.read_paths: set[str] = set()
        self.pinsets: dict[str, Pinset] = {}
        self.broken_pinsets: set[str] = set()  # declared, but not a mapping
        self.policies: dict[str, ClientPolicy] = {}  # client pin-sets (inventory_clients)
        self.drafts: list[_Draft] = []
        self.root_settings = _Effective()

    def add(self, location: Location, path: str, message: str) -> None:
        key = (location, message)  # the same node reached through aliases: once
        if key not in self._problem_keys:
            self._problem_keys.add(key)
            self.problems.append(InventoryProblem(location, path, message))

    def sorted_problems(self) -> list[InventoryProblem]:
        order = {name: i for i, name in enumerate(self.files)}

        def key(p: InventoryProblem) -> tuple[int, int, int]:
            loc = p.location
            return (order.get(loc.file, len(order)), loc.line, loc.column)

        return sorted(self.problems, key=key)

    def read_bytes(self, data: bytes, ref: _FileRef) -> None:
        """Read a file's bytes: UTF-8 (a BOM is fine), at most MAX_FILE_BYTES."""
        if len(data) > MAX_FILE_BYTES:
            self.files.append(ref.name)
            self.add(Location(ref.name, 1, 1), "", _too_large())
            return
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            self.files.append(ref.name)
            line = data.count(b"\n", 0, exc.start) + 1
            column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
            bad = data[exc.start : exc.start + 1].hex()
            self.add(Location(ref.name, line, column), "", f"not valid UTF-8 (byte 0x{bad})")
            return
        self.read_text(text, ref)

    def read_text(self, text: str, ref: _FileRef) -> None:
        self.files.append(ref.name)
        self.read_paths.update(real for real, _ in ref.chain[-1:])
        source = _Source(self, ref)
        root = source.compose(text)
        if not isinstance(root, _Failed):
            source.read_document(root)

    def finish(self) -> Inventory:
        endpoints = self._build_endpoints()
        if self.problems:
            raise InventoryError(self.sorted_problems())
        return Inventory(
            endpoints=tuple(endpoints),
            pinsets=MappingProxyType(dict(self.pinsets)),
            files=tuple(self.files),
            policies=MappingProxyType(dict(self.policies)),
        )

    def _build_endpoints(self) -> list[Endpoint]:
        endpoints: list[Endpoint] = []
        first_at: dict[str, Location] = {}
        for draft in self.drafts:
            pinset = self._effective_pinset(draft)
            if draft.name is not None:
                if draft.name in first_at:
                    where, path = draft.name_at
                    self.add(
                        where,
                        path,
                        f"duplicate endpoint name {draft.name!r} "
                        f"(first defined at {first_at[draft.name]})",
                    )
                    continue
                first_at[draft.name] = draft.location
            if draft.clean and draft.host is not None and draft.name is not None:
                endpoints.append(
                    self._with_policies(_endpoint(draft, draft.host, draft.name, pinset), draft)
                )
        return endpoints

    def _with_policies(self, endpoint: Endpoint, draft: _Draft) -> Endpoint:
        """The client pin-set the endpoint names, or with `pinset: auto` (the default
        when it names none) every client pin-set whose rules concern its name."""
        ref = draft.pinset_ref[0] if draft.pinset_ref is not None else None
        if ref is not None and ref in self.policies:
            policies: tuple[ClientPolicy, ...] = (self.policies[ref],)
        elif ref is None or ref == AUTO:
            name = endpoint.server_name
            policies = tuple(p for p in self.policies.values() if applies(p, name))
        else:
            return endpoint
        return replace(endpoint, client_policies=policies) if policies else endpoint

    def _effective_pinset(self, draft: _Draft) -> Pinset | None:
        named: Pinset | None = None
        if draft.pinset_ref is not None and (
            draft.pinset_ref[0] == AUTO or draft.pinset_ref[0] in self.policies
        ):  # client pin-sets are judged apart (clients.py); inline pins stay generic
            return (
                None
                if draft.inline is None
                else Pinset(_INLINE, draft.inline, None, draft.inline_at)
            )
        if draft.pinset_ref is not None:
            name, where, path = draft.pinset_ref
            named = self.pinsets.get(name)
            if named is None and name in self.broken_pinsets:
                return None
            if named is None:
                self.add(where, path, f"unknown pinset {name!r} ({self._pinset_hint(name)})")
                return None
        if draft.inline is None or (named is not None and not draft.inline):
            return named
        if named is None:
            return Pinset(_INLINE, draft.inline, None, draft.inline_at)
        pins = tuple(dict.fromkeys(named.pins + draft.inline))
        return Pinset(f"{named.name}+{_INLINE}", pins, named.expires, draft.inline_at)

    def _pinset_hint(self, name: str) -> str:
        if not self.pinsets:
            return "no pinsets are defined"
        close = difflib.get_close_matches(name, list(self.pinsets), n=1)
        if close:
            return f"did you mean {close[0]!r}?"
        return "defined: " + ", ".join(sorted(self.pinsets))


def _endpoint(draft: _Draft, host: str, name: str, pinset: Pinset | None) -> Endpoint:
    s = draft.settings
    return Endpoint(
        name=name,
        host=host,
        port=s.port,
        sni=draft.sni,
        pinset=pinset,
        timeout=s.timeout,
        warn_days=s.warn_days,
        critical_days=s.critical_days,
        pinset_warn_days=s.pinset_warn_days,
        trust=s.trust,
        labels=tuple(sorted(s.labels.items())),
        location=draft.location,
        all_addresses=s.all_addresses,
        client_cert=s.client_cert,
        client_key=s.client_key,
    )


class _Failed:
    """Marker: the file could not be composed (problems already reported)."""


_FAILED = _Failed()


# --- one file --------------------------------------------------------------------


class _Source:
    """Reads one file's node tree, reporting problems to the run."""

    def __init__(self, run: _Run, ref: _FileRef) -> None:
        self.run = run
        self.ref = ref
        self.name = ref.name
        self.directory = ref.directory  # absolute: relative paths are resolved here
        self.bad: set[int] = set()  # ids of nodes with a rejected tag (already reported)

    # reporting

    def at(self, node: Node) -> Location:
        return self.mark_location(node.start_mark)

    def mark_location(self, mark: _Position) -> Location:
        return Location(self.name, mark.line + 1, mark.column + 1)

    def report(self, node: Node, path: str, message: str) -> None:
        self.run.add(self.at(node), path, message)

    def wrong_type(self, node: Node, path: str, expected: str) -> None:
        if id(node) not in self.bad:
            self.report(node, path, f"expected {expected}, got {_kind(node)}")

    # composing

    def compose(self, text: str) -> Node | _Failed | None:
        try:
            loader = _Loader(text)  # may raise ReaderError, UnicodeEncodeError
            try:
                root = loader.get_single_node()
            finally:
                loader.dispose()
        except _Refused as exc:
            self.run.add(self.mark_location(exc.mark), "", exc.message)
            return _FAILED
        except ReaderError as exc:  # a character YAML does not allow
            index = _Loader.char_index(text, exc.position)
            self.run.add(_position(self.name, text, index), "", _reader_message(exc))
            return _FAILED
        except UnicodeEncodeError as exc:  # a lone surrogate, met by libyaml's UTF-8 encoding
            message = f"character #x{ord(text[exc.start]):04x} is not allowed in YAML"
            self.run.add(_position(self.name, text, exc.start), "", message)
            return _FAILED
        except MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            where = self.mark_location(mark) if mark else Location(self.name, 1, 1)
            self.run.add(where, "", _yaml_message(exc))
            return _FAILED
        except yaml.YAMLError as exc:  # pragma: no cover - every YAMLError PyYAML raises is above
            self.run.add(Location(self.name, 1, 1), "", f"invalid YAML: {exc}")
            return _FAILED
        if root is not None and not self.inspect(root):
            return _FAILED
        return root

    def inspect(self, root: Node) -> bool:
        """Check tags, recursion and expanded size before anything walks the tree.

        Sizes are memoised per node, so a billion-laughs document costs as
        many steps as it has distinct nodes. Returns False when the tree must
        not be walked (recursive, or too large once expanded).
        """
        sizes: dict[int, int] = {}
        open_nodes: set[int] = set()
        odd_tags: list[Node] = []
        stack: list[tuple[Node, bool]] = [(root, False)]
        while stack:  # depth first, without recursion
            node, finished = stack.pop()
            nid = id(node)
            if finished:
                open_nodes.discard(nid)
                sizes[nid] = 1 + sum(sizes[id(child)] for child in _child_nodes(node))
                if sizes[nid] > MAX_NODES:
                    self.report_found(root, [node], _too_many_expanded())
                    return False
            elif nid in open_nodes:
                self.report_found(root, [node], "recursive alias: this node contains itself")
                return False
            elif nid not in sizes:
                open_nodes.add(nid)
                if not _standard_tag(node):
                    odd_tags.append(node)
                stack.append((node, True))
                stack.extend((child, False) for child in _child_nodes(node))
        for node in odd_tags:
            self.bad.add(id(node))
        self.report_found(root, odd_tags, None)
        return True

    def report_found(self, root: Node, nodes: list[Node], message: str | None) -> None:
        """Report nodes found by inspect(), with the path of their first occurrence.

        `message` None: the node's tag is not supported.
        """
        if not nodes:
            return
        paths = _first_paths(root, {id(node) for node in nodes})
        for node in nodes:
            if message is None:
                tag = node.tag
                shown = "!!" + tag[len(_TAG) :] if tag.startswith(_TAG) else tag
                self.report(node, paths[id(node)], f"unsupported YAML tag {shown!r}")
            else:
                self.report(node, paths[id(node)], message)

    # generic readers: each returns None after reporting (or silently for bad tags)

    def mapping(self, node: Node, path: str) -> list[_Entry] | None:
        if isinstance(node, MappingNode) and id(node) not in self.bad:
            try:
                return self.entries(node, path, 0)
            except _MergeTooDeep:
                message = f"merge keys nested deeper than {MAX_MERGE_DEPTH} levels"
                self.report(node, path, message)
                return None
        self.wrong_type(node, path, "a mapping")
        return None

    def entries(self, node: MappingNode, path: str, depth: int) -> list[_Entry]:
        """Keys of a mapping in order; explicit keys win over merged ones (``<<``)."""
        own: dict[str, _Entry] = {}
        merged: list[_Entry] = []
        for key_node, value in node.value:
            if isinstance(key_node, ScalarNode) and key_node.tag == _MERGE:
                merged.extend(self.merge_sources(value, path, depth))
            elif not isinstance(key_node, ScalarNode) or id(key_node) in self.bad:
                self.wrong_type(key_node, path, "a string key")
            elif key_node.value in own:
                first = own[key_node.value].key_node.start_mark
                self.report(
                    key_node,
                    _join(path, key_node.value),
                    f"duplicate key {key_node.value!r} "
                    f"(first at line {first.line + 1}, column {first.column + 1})",
                )
            else:
                own[key_node.value] = _Entry(key_node.value, key_node, value)
        result = list(own.values())
        for entry in merged:
            if entry.key not in own:
                own[entry.key] = entry
                result.append(entry)
        return result

    def merge_sources(self, node: Node, path: str, depth: int) -> list[_Entry]:
        if depth >= MAX_MERGE_DEPTH:
            raise _MergeTooDeep
        sources = node.value if isinstance(node, SequenceNode) else [node]
        entries: list[_Entry] = []
        for source in sources:
            if isinstance(source, MappingNode) and id(source) not in self.bad:
                entries.extend(self.entries(source, path, depth + 1))
            else:
                self.wrong_type(source, path, "a mapping or a list of mappings to merge")
        return entries

    def fields(self, entries: list[_Entry], allowed: Sequence[str], path: str) -> dict[str, Node]:
        """The known keys' value nodes; every unknown key is reported at the key."""
        known: dict[str, Node] = {}
        for entry in entries:
            if entry.key in allowed:
                known[entry.key] = entry.value
            else:
                message = f"unknown key {entry.key!r} ({_key_hint(entry.key, allowed)})"
                self.report(entry.key_node, _join(path, entry.key), message)
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
        if isinstance(node, ScalarNode) and node.tag != _NULL and id(node) not in self.bad:
            return str(node.value)
        self.wrong_type(node, path, "a string")
        return None

    def integer(self, node: Node, path: str) -> int | None:
        """An integer scalar (booleans are not integers)."""
        if isinstance(node, ScalarNode) and node.tag == _INT and id(node) not in self.bad:
            try:
                return _SCALARS.construct_yaml_int(node)
            except Exception:  # PyYAML's reader raises ValueError, IndexError: translate here
                self.report(node, path, f"invalid integer {node.value!r}")
                return None
        self.wrong_type(node, path, "an integer")
        return None

    def float_value(self, node: ScalarNode, path: str) -> float | None:
        try:
            if node.tag == _INT:
                return float(_SCALARS.construct_yaml_int(node))
            return _SCALARS.construct_yaml_float(node)
        except Exception:  # ValueError, IndexError, OverflowError: translate here
            self.report(node, path, f"invalid number {node.value!r}")
            return None

    # the document

    def read_document(self, root: Node | None) -> None:
        is_root = self.ref.is_root
        fields: dict[str, Node] = {}
        if root is not None and not (isinstance(root, ScalarNode) and root.tag == _NULL):
            entries = self.mapping(root, "")
            if entries is None:
                return
            fields = self.fields(entries, _ROOT_KEYS, "")
        if "version" in fields:
            self.version(fields["version"])
        elif is_root:
            where = self.at(root) if root is not None else Location(self.name, 1, 1)
            self.run.add(where, "", "missing required key 'version'")
        settings = self.defaults(fields.get("defaults"), is_root)
        if "pinsets" in fields:
            self.pinsets(fields["pinsets"])
        if "endpoints" in fields:
            self.endpoints(fields["endpoints"], settings)
        if "include" in fields:
            self.includes(fields["include"])

    def version(self, node: Node) -> None:
        value = self.integer(node, "version")
        if value is not None and value != SCHEMA_VERSION:
            self.report(
                node,
                "version",
                f"unsupported version {value} (this pinaudit reads version {SCHEMA_VERSION})",
            )

    def defaults(self, node: Node | None, is_root: bool) -> _Effective:
        """The settings this file's endpoints start from: built-in < root defaults < own."""
        base = _Effective() if is_root else self.run.root_settings
        layer = _Layer()
        if node is not None:
            entries = self.mapping(node, "defaults")
            if entries is not None:
                layer = self.layer(self.fields(entries, _DEFAULT_KEYS, "defaults"), "defaults")
        settings = self.apply(layer, base)
        if is_root:
            self.run.root_settings = settings
        return settings

    def apply(self, layer: _Layer, base: _Effective) -> _Effective:
        """Apply a layer, checking critical_days <= warn_days where the layer sets one."""
        settings = layer.apply(base)
        if layer.threshold_at is not None and settings.critical_days > settings.warn_days:
            where, path = layer.threshold_at
            self.run.add(
                where,
                path,
                f"critical_days ({settings.critical_days}) must not be greater than "
                f"warn_days ({settings.warn_days})",
            )
        return settings

    # settings (defaults keys, also on endpoints)

    def layer(self, fields: Mapping[str, Node], path: str) -> _Layer:
        def read(key: str, reader: Callable[[Node, str], _V | None]) -> _V | None:
            node = fields.get(key)
            return None if node is None else reader(node, _join(path, key))

        warn_days = read("warn_days", self.days)
        critical_days = read("critical_days", self.days)
        threshold_at = None  # the thresholds' check reports at the first valid one set here
        for key, value in (("critical_days", critical_days), ("warn_days", warn_days)):
            if value is not None and threshold_at is None:
                threshold_at = (self.at(fields[key]), _join(path, key))
        return _Layer(
            port=read("port", self.port),
            timeout=read("timeout", self.timeout),
            warn_days=warn_days,
            critical_days=critical_days,
            pinset_warn_days=read("pinset_warn_days", self.days),
            trust=read("trust", self.trust),
            labels=read("labels", self.labels) or {},
            threshold_at=threshold_at,
            all_addresses=read("all_addresses", self.boolean),
            client_cert=read("client_cert", self.pem_file),
            client_key=read("client_key", self.pem_file),
        )

    def port(self, node: Node, path: str) -> int | None:
        value = self.integer(node, path)
        if value is not None and not 1 <= value <= 65535:
            self.report(node, path, f"port must be 1..65535, got {value}")
            return None
        return value

    def days(self, node: Node, path: str) -> int | None:
        value = self.integer(node, path)
        if value is not None and not 0 <= value <= MAX_DAYS:
            key = path.rsplit(".", 1)[-1]
            self.report(node, path, f"{key} must be 0..{MAX_DAYS} days, got {value}")
            return None
        return value

    def timeout(self, node: Node, path: str) -> float | None:
        """Seconds as a number, or a string: 500ms, 5s, 1.5s, 1m (see parse_duration)."""
        if not isinstance(node, ScalarNode) or node.tag not in (_INT, _FLOAT, _STR):
            self.wrong_type(node, path, "a duration (seconds, or 500ms, 5s, 1m)")
            return None
        raw = str(node.value)
        try:
            if node.tag == _STR:
                return _duration(raw)
            value = self.float_value(node, path)
            return None if value is None else _positive_seconds(value)
        except ValueError as exc:
            shown = repr(raw) if node.tag == _STR else raw
            self.report(node, path, f"invalid timeout {shown}: {exc}")
            return None

    def trust(self, node: Node, path: str) -> TrustSpec | None:
        """certifi, system, or a PEM bundle path relative to this file (it must exist)."""
        text = self.string(node, path)
        if text is None:
            return None
        if text in (TrustKind.CERTIFI.value, TrustKind.SYSTEM.value):
            return TrustSpec(TrustKind(text))
        if not text.strip():
            self.report(node, path, "trust must be certifi, system, or the path of a PEM bundle")
            return None
        resolved = os.path.normpath(os.path.join(self.directory, text))
        if not os.path.isfile(resolved):
            self.report(node, path, f"trust bundle {text!r} not found (looked for {resolved})")
            return None
        return TrustSpec(TrustKind.BUNDLE, resolved)

    def boolean(self, node: Node, path: str) -> bool | None:
        if isinstance(node, ScalarNode) and node.tag == _BOOL and id(node) not in self.bad:
            return bool(_SCALARS.construct_yaml_bool(node))
        self.wrong_type(node, path, "true or false")
        return None

    def pem_file(self, node: Node, path: str) -> str | None:
        """A PEM file path relative to this file; it must exist."""
        text = self.string(node, path)
        if text is None:
            return None
        resolved = os.path.normpath(os.path.join(self.directory, text))
        if not text.strip() or not os.path.isfile(resolved):
            self.report(node, path, f"file {text!r} not found (looked for {resolved})")
            return None
        return resolved

    def labels(self, node: Node, path: str) -> dict[str, str] | None:
        entries = self.mapping(node, path)
        if entries is None:
            return None
        labels: dict[str, str] = {}
        for entry in entries:
            where = _join(path, entry.key)
            problem = _label_name_problem(entry.key)
            if problem is not None:
                self.report(entry.key_node, where, problem)
                continue
            value = self.string(entry.value, where)
            if value is not None:
                labels[entry.key] = value
        return labels

    # pin-sets

    def pinsets(self, node: Node) -> None:
        entries = self.mapping(node, "pinsets")
        for entry in entries or ():
            path = f"pinsets.{entry.key}"
            if not _PINSET_NAME.fullmatch(entry.key) or entry.key in (_INLINE, AUTO):
                self.report(entry.key_node, path, _pinset_name_problem(entry.key))
                continue
            if is_client_pinset_node(entry.value):
                self.client_pinset(entry, path)
                continue
            pinset = self.pinset(entry, path)
            if pinset is None:
                self.run.broken_pinsets.add(entry.key)  # references to it are not reported
                continue
            first = self.run.pinsets.get(entry.key) or self.run.policies.get(entry.key)
            if first is not None:
                self.report(
                    entry.key_node,
                    path,
                    f"pinset {entry.key!r} is already defined at {first.location}",
                )
                continue
            self.run.pinsets[entry.key] = pinset

    def client_pinset(self, entry: _Entry, path: str) -> None:
        """A pin-set that follows a client's rules (`from:` a file, or `client:`)."""
        policy = read_client_pinset(self, entry, path)
        if policy is None:
            self.run.broken_pinsets.add(entry.key)
            return
        first = self.run.pinsets.get(entry.key) or self.run.policies.get(entry.key)
        if first is not None:
            where = first.location
            self.report(entry.key_node, path, f"pinset {entry.key!r} is already defined at {where}")
            return
        self.run.policies[entry.key] = policy

    def pinset(self, entry: _Entry, path: str) -> Pinset | None:
        entries = self.mapping(entry.value, path)
        if entries is None:
            return None
        fields = self.fields(entries, _PINSET_KEYS, path)
        digest = None
        if "digest" in fields:
            digest = self.digest(fields["digest"], _join(path, "digest"))
        expires = None
        if "expires" in fields:
            expires = self.date(fields["expires"], _join(path, "expires"))
        pins: tuple[Pin, ...] = ()
        if self.require(fields, "pins", entry.value, path):
            pins = self.pins(fields["pins"], _join(path, "pins"), digest) or ()
        return Pinset(entry.key, pins, expires, self.at(entry.key_node))

    def digest(self, node: Node, path: str) -> str | None:
        text = self.string(node, path)
        if text is None:
            return None
        try:
            parse_digest_name(text)
        except PinError:
            self.report(node, path, f"unsupported digest {text!r} (use SHA-256, or legacy SHA-1)")
            return None
        return text

    def date(self, node: Node, path: str) -> date | None:
        """A YAML date or a 'YYYY-MM-DD' string; a time of day is refused."""
        if not isinstance(node, ScalarNode) or node.tag not in (_TIMESTAMP, _STR):
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

    # endpoints

    def endpoints(self, node: Node, settings: _Effective) -> None:
        for index, item in enumerate(self.sequence(node, "endpoints") or ()):
            self.endpoint(item, f"endpoints[{index}]", settings)

    def endpoint(self, node: Node, path: str, base: _Effective) -> None:
        problems_before = len(self.run.problems)
        entries = self.mapping(node, path)
        if entries is None:
            return
        fields = self.fields(entries, _ENDPOINT_KEYS, path)
        host = None
        if self.require(fields, "host", node, path):
            host = self.host(fields["host"], _join(path, "host"))
        sni, sni_ok = self.sni(fields.get("sni"), _join(path, "sni"), host)
        layer = self.layer(fields, path)
        settings = self.apply(layer, base)
        pinset_ref = None
        if "pinset" in fields:
            ref = self.string(fields["pinset"], _join(path, "pinset"))
            if ref is not None:
                pinset_ref = (ref, self.at(fields["pinset"]), _join(path, "pinset"))
        inline = inline_at = None
        if "pins" in fields:
            inline = self.pins(fields["pins"], _join(path, "pins"), None)
            inline_at = self.at(fields["pins"])
        name, name_at = self.endpoint_name(fields.get("name"), path, node)
        port_ok = "port" not in fields or layer.port is not None
        if "name" not in fields and host is not None and sni_ok and port_ok:
            name = _default_name(host, settings.port, sni)
        self.run.drafts.append(
            _Draft(
                location=self.at(node),
                path=path,
                host=host,
                name=name,
                name_at=name_at,
                sni=sni,
                settings=settings,
                pinset_ref=pinset_ref,
                inline=inline,
                inline_at=inline_at,
                clean=len(self.run.problems) == problems_before,
            )
        )

    def host(self, node: Node, path: str) -> str | None:
        text = self.string(node, path)
        if text is None:
            return None
        problem = _host_problem(text, "host")
        if problem is not None:
            self.report(node, path, problem)
            return None
        return text

    def sni(self, node: Node | None, path: str, host: str | None) -> tuple[str | None, bool]:
        """(SNI, valid). Absent: the host, or None for an IP host. false/null: no SNI."""
        if node is None:
            return (None if host is None or is_ip_address(host) else host), True
        if isinstance(node, ScalarNode) and node.tag in (_BOOL, _NULL) and id(node) not in self.bad:
            if node.tag == _NULL or not _SCALARS.bool_values.get(str(node.value).lower(), True):
                return None, True
            self.report(
                node, path, f"sni must be a host name, or false for no SNI; got {node.value}"
            )
            return None, False
        text = self.string(node, path)
        if text is None:
            return None, False
        problem = _host_problem(text, "sni")
        if problem is None and is_ip_address(text):
            problem = f"sni must be a host name, not an IP address: {text!r} (no SNI: sni: false)"
        if problem is not None:
            self.report(node, path, problem)
            return None, False
        return text, True

    def endpoint_name(
        self, node: Node | None, path: str, endpoint: Node
    ) -> tuple[str | None, tuple[Location, str]]:
        if node is None:
            return None, (self.at(endpoint), path)
        where = _join(path, "name")
        text = self.string(node, where)
        if text is not None and not text.strip():
            self.report(node, where, "name must not be empty")
            text = None
        return text, (self.at(node), where)

    # includes

    def includes(self, node: Node) -> None:
        for index, item in enumerate(self.sequence(node, "include") or ()):
            path = f"include[{index}]"
            pattern = self.string(item, path)
            if pattern is None:
                continue
            matches = self.expand(item, path, pattern)
            if matches == []:
                self.report(item, path, f"include pattern {pattern!r} matches no file")
            for match in matches or ():
                self.include(item, path, match)

    def expand(self, node: Node, path: str, pattern: str) -> list[str] | None:
        """Regular files matching a glob relative to this file (``**`` recurses), sorted."""
        if not pattern.strip() or "\x00" in pattern:
            self.report(node, path, f"invalid include pattern {pattern!r}")
            return None
        try:
            found = glob.glob(pattern, root_dir=self.directory, recursive=True)
            return sorted(m for m in found if os.path.isfile(os.path.join(self.directory, m)))
        except (OSError, ValueError) as exc:
            self.report(node, path, f"cannot expand include pattern {pattern!r}: {exc}")
            return None

    def include(self, node: Node, path: str, match: str) -> None:
        absolute = os.path.normpath(os.path.join(self.directory, match))
        real = os.path.realpath(absolute)
        display = os.path.normpath(os.path.join(self.ref.display_dir, match))
        if real in (r for r, _ in self.ref.chain):
            names = [d for _, d in self.ref.chain] + [display]
            self.report(node, path, "include cycle: " + " -> ".join(names))
            return
        if real in self.run.read_paths:
            return  # included before, through another file or pattern: read once
        try:
            data = _read_file(real)
        except _Unreadable as exc:
            self.report(node, path, f"cannot read {display!r}: {exc}")
            return
        chain = (*self.ref.chain, (real, display))
        directory, display_dir = os.path.dirname(absolute), os.path.dirname(display)
        self.run.read_bytes(data, _FileRef(display, directory, display_dir, chain, False))


# --- helpers ---------------------------------------------------------------------


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _child_nodes(node: Node) -> list[Node]:
    """A collection's child nodes, keys included."""
    if isinstance(node, SequenceNode):
        return list(node.value)
    if isinstance(node, MappingNode):
        return [child for pair in node.value for child in pair]
    return []


def _children(node: Node, path: str) -> list[tuple[Node, str]]:
    """A collection's child nodes (keys too) with their paths."""
    if isinstance(node, SequenceNode):
        return [(child, f"{path}[{i}]") for i, child in enumerate(node.value)]
    children: list[tuple[Node, str]] = []
    if isinstance(node, MappingNode):
        for key, value in node.value:
            where = _join(path, key.value) if isinstance(key, ScalarNode) else path
            children += [(key, where), (value, where)]
    return children


def _first_paths(root: Node, wanted: set[int]) -> dict[int, str]:
    """Path of the first occurrence, in document order, of each wanted node."""
    paths: dict[int, str] = {}
    seen: set[int] = set()
    stack: list[tuple[Node, str]] = [(root, "")]
    while stack and len(paths) < len(wanted):
        node, path = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if id(node) in wanted:
            paths[id(node)] = path
        stack.extend(reversed(_children(node, path)))
    return paths


def _standard_tag(node: Node) -> bool:
    if isinstance(node, ScalarNode):
        return node.tag in _SCALAR_TAGS
    if isinstance(node, SequenceNode):
        return node.tag == _TAG + "seq"
    return node.tag == _TAG + "map"


def _kind(node: Node) -> str:
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    return _SCALAR_KINDS.get(node.tag, "a string")


def _key_hint(key: str, allowed: Sequence[str]) -> str:
    close = difflib.get_close_matches(key, allowed, n=1)
    if close:
        return f"did you mean {close[0]!r}?"
    return "allowed: " + ", ".join(sorted(allowed))


def _label_name_problem(name: str) -> str | None:
    if not _LABEL_NAME.fullmatch(name):
        return f"invalid label name {name!r} (must match [a-zA-Z_][a-zA-Z0-9_]*)"
    if name.startswith("__"):
        return f"label name {name!r} is reserved (names starting with __ are Prometheus' own)"
    if name in RESERVED_LABELS:
        return f"label name {name!r} clashes with a label pinaudit sets itself"
    return None


def _pinset_name_problem(name: str) -> str:
    if name == _INLINE:
        return f"pinset name {_INLINE!r} is reserved (it names an endpoint's inline pins)"
    if name == AUTO:
        return f"pinset name {AUTO!r} is reserved (pinset: auto picks client pin-sets by host)"
    return f"invalid pinset name {name!r} (must match [A-Za-z0-9_][A-Za-z0-9_.-]*)"


def is_ip_address(text: str) -> bool:
    """An IPv4 or IPv6 literal (no brackets)."""
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _host_problem(text: str, what: str) -> str | None:
    """Why `text` is not a DNS name or an IP literal, or None when it is one."""
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


def _duration(text: str) -> float:
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise ValueError("expected seconds, or a duration like 500ms, 5s, 1m")
    return _positive_seconds(float(match[1]) * _DURATION_UNITS[match[2] or "s"])


def _positive_seconds(seconds: float) -> float:
    if not math.isfinite(seconds):
        raise ValueError("must be a finite number of seconds")
    if seconds <= 0:
        raise ValueError("must be greater than 0")
    return seconds


def _default_name(host: str, port: int, sni: str | None) -> str:
    """``host:port`` (``[v6]:port``), or ``sni@host:port`` when the SNI is another name."""
    shown = f"[{host}]" if ":" in host else host
    name = f"{shown}:{port}"
    return name if sni is None or sni == host else f"{sni}@{name}"


def _resolve(name: str) -> tuple[str, str]:
    """(absolute path, real path with symlinks resolved) of a file name."""
    try:
        absolute = os.path.abspath(name)
        return absolute, os.path.realpath(absolute)
    except ValueError as exc:  # an embedded NUL
        raise _Unreadable(str(exc)) from None


def _read_file(path: str) -> bytes:
    """A regular file's bytes, at most one more than the size limit."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):  # before open(): a FIFO would block
            raise _Unreadable("not a regular file")
        with open(path, "rb") as handle:
            return handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise _Unreadable(exc.strerror or str(exc)) from None
    except ValueError as exc:  # an embedded NUL in the path
        raise _Unreadable(str(exc)) from None


def _position(name: str, text: str, index: int) -> Location:
    line = text.count("\n", 0, index) + 1
    return Location(name, line, index - (text.rfind("\n", 0, index) + 1) + 1)


def _reader_message(exc: ReaderError) -> str:
    if isinstance(exc.character, int):
        return f"character #x{exc.character:04x} is not allowed in YAML"
    return f"invalid YAML: {exc.reason}"  # pragma: no cover - text is decoded before


def _yaml_message(exc: MarkedYAMLError) -> str:
    parts = [part for part in (exc.context, exc.problem) if part]
    return "invalid YAML: " + ", ".join(parts)


def _too_large() -> str:
    return f"file too large: more than {MAX_FILE_BYTES} bytes"


def _too_many_nodes() -> str:
    return f"document too large: more than {MAX_NODES} nodes"


def _too_many_expanded() -> str:
    return f"alias expansion limit exceeded: more than {MAX_NODES} nodes once aliases are expanded"
