"""Position-keeping YAML nodes for hostile files. Pure.

The inventory is read as YAML *nodes*, never as constructed Python objects,
so that every value keeps its file, line and column. Composing a document is
bounded as the events arrive (nesting depth, number of nodes), and once
composed, before anything walks it, the tree is inspected: only the standard
YAML tags, no recursive alias, and a bounded size with every alias expanded
("billion laughs"), computed with memoisation so that the check itself costs
one step per distinct node. Events come from libyaml when PyYAML has it
(several times faster), else from PyYAML's own parser; the composer on top is
the same.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.error import MarkedYAMLError
from yaml.events import AliasEvent, Event
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.reader import ReaderError
from yaml.resolver import Resolver

from scanner.model import Location

__all__ = [
    "BOOL",
    "FLOAT",
    "INT",
    "MAX_DEPTH",
    "MAX_NODES",
    "MERGE",
    "NULL",
    "SCALARS",
    "STR",
    "TAG",
    "TIMESTAMP",
    "Composed",
    "Position",
    "Take",
    "compose",
    "compose_streaming",
    "kind_of",
    "position_of",
]

MAX_NODES = 1_000_000  # per file, counted with every alias expanded
MAX_DEPTH = 64  # nesting of YAML collections

TAG = "tag:yaml.org,2002:"
STR, INT, FLOAT, BOOL, NULL = (TAG + t for t in ("str", "int", "float", "bool", "null"))
TIMESTAMP, MERGE, VALUE = (TAG + t for t in ("timestamp", "merge", "value"))
SEQ, MAP = TAG + "seq", TAG + "map"
_SCALAR_TAGS = frozenset({STR, INT, FLOAT, BOOL, NULL, TIMESTAMP, MERGE, VALUE})
_SCALAR_KINDS = {
    INT: "an integer",
    FLOAT: "a number",
    BOOL: "a boolean",
    NULL: "null",
    TIMESTAMP: "a date",
}
SCALARS = SafeConstructor()  # only its scalar readers are used: they hold no state
# The safe loaders' tag resolution (stateless for scalars: no path resolvers).
_resolve: Callable[[type[Node], str, tuple[bool, bool]], str] = Resolver().resolve

# (where, path such as "endpoints[3].pins", message)
Problem = tuple[Location, str, str]
Sink = Callable[[Location, str, str], None]
# (item, index, the root's pairs before the list): see compose_streaming
Take = Callable[[Node, int, list[tuple[Node, Node]]], None]


class Position(Protocol):
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


class _Bound(Exception):
    """The compiled composer met a bound (nesting or nodes): compose again to say where."""


class _Restart(Exception):
    """A document that cannot be composed a list item at a time: compose it whole."""


class _Refused(Exception):
    """A document refused while composing: nested too deeply, or too many nodes."""

    def __init__(self, mark: Position, message: str) -> None:
        super().__init__(message)
        self.mark = mark
        self.message = message


class _BoundedComposer(Composer):
    """PyYAML's composer, refusing documents nested too deeply or with too many nodes.

    Composing recurses once per nesting level, and every node costs time and
    memory before the tree can be checked: both are bounded here, as the
    events arrive. (Aliases add no node here; their expansion is bounded
    afterwards by _inspect.)
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

    def next_mark(self) -> Position:
        mark: Position | None = self.peek_event().start_mark
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

    class _CComposer(yaml.CSafeLoader):
        """libyaml's parser *and* composer (PyYAML's compiled one), bounded
        through the hooks it calls in Python for every node it composes.

        ``descend_resolver``/``ascend_resolver`` bracket every node that is not
        an alias (they count nodes and nesting, and stop the composer at a
        bound: it recurses once per level, so it never goes deeper than
        MAX_DEPTH + 1), and ``resolve`` is called for every node without an
        explicit tag. It keeps no position of its own: every problem, a bound
        included, is reported by composing again with _CLoader (see
        _compose_fast)."""

        def __init__(self, stream: str | bytes) -> None:
            yaml.CSafeLoader.__init__(self, stream)
            self.nodes = 0  # composed, aliases not counted
            self.depth = 0
            self.resolved = 0  # nodes whose tag was resolved (no explicit tag)
            self.tags: dict[str, str] = {}  # plain scalar -> its resolved tag

        def descend_resolver(self, current_node: Any, current_index: Any) -> None:
            self.nodes += 1
            self.depth += 1
            if self.depth > MAX_DEPTH or self.nodes > MAX_NODES:
                raise _Bound

        def ascend_resolver(self) -> None:
            self.depth -= 1

        def resolve(self, kind: type[Node], value: Any, implicit: Any) -> str:
            self.resolved += 1
            if kind is ScalarNode:
                if not implicit[0]:  # quoted, or with the "!" tag
                    return STR
                tag = self.tags.get(value)
                if tag is None:
                    tag = self.tags[value] = _resolve(kind, value, implicit)
                return tag
            return SEQ if kind is SequenceNode else MAP

    class _CStreamer(_CComposer):
        """libyaml's composer handing out the items of one long list of the
        root mapping (``endpoints``) as they are composed, so that the
        document is never whole in memory (see compose_streaming).

        It sees the tree through the same hooks: ``descend_resolver`` is
        called before each node is composed, with the node that will hold
        it and where (a sequence index, or for a mapping value its key node,
        None for a key). When item i of the list begins, items 0..i-1 are
        complete; the last one is complete when the next key of the root
        begins, or when the document ends."""

        def __init__(
            self, stream: str | bytes, key: str, first: frozenset[str], take: Take
        ) -> None:
            super().__init__(stream)
            self.key = key
            self.first = first
            self.take = take
            self.state = 0  # 0: before the list's key, 1: its value, 2: after it
            self.list: SequenceNode | None = None
            self.handed = 0  # items handed out so far
            self.before: list[tuple[Node, Node]] = []  # the root's pairs before the key

        def descend_resolver(self, current_node: Any, current_index: Any) -> None:
            if self.resolved != self.nodes:  # a node with an explicit tag
                raise _Restart
            self.nodes += 1
            self.depth += 1
            depth = self.depth
            if depth > MAX_DEPTH or self.nodes > MAX_NODES:
                raise _Bound
            if depth == 3 and self.state == 1:
                if self.list is None and isinstance(current_node, SequenceNode):
                    self.list = current_node
                if current_node is self.list and current_index > 0:
                    self.hand(current_index - 1)
            elif depth == 2 and isinstance(current_node, MappingNode):
                self.root_key(current_node, current_index)

        def root_key(self, root: MappingNode, key: Node | None) -> None:
            if self.state == 1:  # the list's value is complete
                self.finish_list()
            if not isinstance(key, ScalarNode):  # None: a key is about to be composed
                return
            if key.tag == MERGE:  # merged keys: only the whole document says which win
                raise _Restart
            value = key.value
            if self.state == 0 and value == self.key:
                self.state = 1
                self.before = list(root.value)
            elif (
                self.state == 2
                and value in self.first
                and not any(k.value == value for k, _ in self.before)
            ):
                raise _Restart  # read before the list, but written after it

        def hand(self, index: int) -> None:
            assert self.list is not None
            items = self.list.value
            item, items[index] = items[index], None
            self.handed = index + 1
            self.take(item, index, self.before)

        def finish_list(self) -> None:
            if self.state == 1 and self.list is not None:
                for index in range(self.handed, len(self.list.value)):
                    self.hand(index)
            self.state = 2

        def finish(self) -> None:
            """The document is composed: the last items, and the last tags checked."""
            if self.resolved != self.nodes:
                raise _Restart
            self.finish_list()

    _FAST: type[_CComposer] | None = _CComposer
    _STREAMER: type[_CStreamer] | None = _CStreamer
else:  # pragma: no cover - PyYAML without libyaml
    _FAST = None
    _STREAMER = None

_Loader = _LOADERS[0]  # the fastest available; tests run both


@dataclass
class Composed:
    """One document's node tree, and what was wrong with it.

    ``root`` is None for an empty document. ``usable`` is False when the tree
    must not be walked (it did not compose, is recursive, or is too large once
    expanded). ``bad`` holds the ids of nodes with an unsupported tag: they are
    reported already, and readers skip them silently."""

    root: Node | None
    usable: bool
    problems: list[Problem] = field(default_factory=list)
    bad: set[int] = field(default_factory=set)
    streamed: Node | None = None  # the list whose items were handed out (now None)


def compose(text: str, name: str) -> Composed:
    """Compose and inspect one YAML document; `name` is the file name in problems."""
    if _FAST is not None and _Loader is _CLoader:
        fast = _compose_fast(text, name)
        if fast is not None:
            return fast
    try:
        loader = _Loader(text)  # may raise ReaderError, UnicodeEncodeError
        try:
            root = loader.get_single_node()
        finally:
            loader.dispose()
    except _Refused as exc:
        return Composed(None, False, [(_location(name, exc.mark), "", exc.message)])
    except ReaderError as exc:  # a character YAML does not allow
        index = _Loader.char_index(text, exc.position)
        return Composed(None, False, [(position_of(name, text, index), "", _reader_message(exc))])
    except UnicodeEncodeError as exc:  # a lone surrogate, met by libyaml's UTF-8 encoding
        message = f"character #x{ord(text[exc.start]):04x} is not allowed in YAML"
        return Composed(None, False, [(position_of(name, text, exc.start), "", message)])
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = _location(name, mark) if mark else Location(name, 1, 1)
        return Composed(None, False, [(where, "", _yaml_message(exc))])
    except yaml.YAMLError as exc:  # pragma: no cover - every YAMLError PyYAML raises is above
        return Composed(None, False, [(Location(name, 1, 1), "", f"invalid YAML: {exc}")])
    composed = Composed(root, True)
    if root is not None:
        _inspect(root, name, composed)
    return composed


def compose_streaming(
    text: str | bytes, key: str, first: frozenset[str], take: Take
) -> Composed | None:
    """Compose a document whose root mapping holds one long list under `key`,
    handing each item of that list to ``take(item, index, before)`` as soon
    as it is composed and dropping it from the tree; `before` holds the root's
    (key, value) pairs composed before `key`. The whole document is never in
    memory at once: for an inventory, its endpoints' nodes were most of the
    peak memory of a scan (docs/performance.md).

    None when the document cannot be read this way, after any number of
    items were handed out (the caller forgets them and calls compose()):
    without libyaml; with an anchor (an alias could reach an item already
    dropped, and expanded sizes need the whole tree); with an explicit tag
    or a merge key at the root; with a root key named in `first` written only
    after the list (the caller reads those before the items); with any
    problem or bound, which compose() then reports.

    What is returned is what compose() would give for such a document, but
    for the list's items (None): no tag to refuse, nothing to inspect.
    `text` may be the file's bytes, valid UTF-8 (libyaml then makes no copy).
    """
    if _STREAMER is None or _Loader is not _CLoader:
        return None
    if ("&" in text) if isinstance(text, str) else (b"&" in text):
        return None
    try:
        loader = _STREAMER(text, key, first, take)
        try:
            root = loader.get_single_node()
            loader.finish()
        finally:
            loader.dispose()
    except Exception:  # every problem is reported by compose(), a restart read whole
        return None
    return Composed(root, True, streamed=loader.list)


def _compose_fast(text: str, name: str) -> Composed | None:
    """The document composed by libyaml's compiled composer, or None when it
    is refused or has a problem: compose() then composes it again, with the
    events in Python, to say exactly where and why (so both ways give the
    same nodes, positions and problems, and the common case pays for none of
    the bookkeeping).

    The tree is inspected (_inspect) only when it may hold what inspecting
    finds: an explicit tag (a node whose tag was not resolved) or an alias
    (an anchor needs a ``&``; with one, the tree is walked once, stopping as
    soon as a node is reached twice)."""
    assert _FAST is not None
    try:
        loader = _FAST(text)
        try:
            root = loader.get_single_node()
        finally:
            loader.dispose()
    except Exception:  # every problem, and the bounds, are reported by the slow way
        return None
    composed = Composed(root, True)
    explicit_tags = loader.resolved != loader.nodes
    if root is not None and (explicit_tags or ("&" in text and _shared(root, loader.nodes))):
        _inspect(root, name, composed)
    return composed


def _shared(root: Node, nodes: int) -> bool:
    """Whether a tree of `nodes` distinct nodes reaches a node more than once
    (an alias): its walk, with every alias followed, then takes more steps."""
    steps = 0
    stack: list[Node] = [root]
    pop, push, extend = stack.pop, stack.append, stack.extend
    while stack:
        node = pop()
        steps += 1
        if steps > nodes:
            return True
        value = node.value
        if isinstance(node, SequenceNode):
            extend(value)
        elif isinstance(node, MappingNode):
            for key, item in value:
                push(key)
                push(item)
    return False


def _inspect(root: Node, name: str, composed: Composed) -> None:
    """Check tags, recursion and expanded size before anything walks the tree.

    Sizes are memoised per node, so a billion-laughs document costs as many
    steps as it has distinct nodes."""
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
                _report_found(root, name, [node], _too_many_expanded(), composed)
                composed.usable = False
                return
        elif nid in open_nodes:
            message = "recursive alias: this node contains itself"
            _report_found(root, name, [node], message, composed)
            composed.usable = False
            return
        elif nid not in sizes:
            open_nodes.add(nid)
            if not _standard_tag(node):
                odd_tags.append(node)
            stack.append((node, True))
            stack.extend((child, False) for child in _child_nodes(node))
    composed.bad.update(id(node) for node in odd_tags)
    _report_found(root, name, odd_tags, None, composed)


def _report_found(
    root: Node, name: str, nodes: list[Node], message: str | None, composed: Composed
) -> None:
    """Report nodes found by _inspect(), with the path of their first occurrence.

    `message` None: the node's tag is not supported."""
    if not nodes:
        return
    paths = _first_paths(root, {id(node) for node in nodes})
    for node in nodes:
        text = message
        if text is None:
            tag = node.tag
            shown = "!!" + tag[len(TAG) :] if tag.startswith(TAG) else tag
            text = f"unsupported YAML tag {shown!r}"
        composed.problems.append((_location(name, node.start_mark), paths[id(node)], text))


def _location(name: str, mark: Position) -> Location:
    return Location(name, mark.line + 1, mark.column + 1)


def join(path: str, key: str) -> str:
    """``endpoints[3]`` + ``pins`` = ``endpoints[3].pins``."""
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
            where = join(path, key.value) if isinstance(key, ScalarNode) else path
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
        return node.tag == TAG + "seq"
    return node.tag == TAG + "map"


def kind_of(node: Node) -> str:
    """What a node is, in words: "a mapping", "a list", "an integer", ..."""
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    return _SCALAR_KINDS.get(node.tag, "a string")


def position_of(name: str, text: str, index: int) -> Location:
    """The line and column of character `index` of `text`."""
    line = text.count("\n", 0, index) + 1
    return Location(name, line, index - (text.rfind("\n", 0, index) + 1) + 1)


def _reader_message(exc: ReaderError) -> str:
    if isinstance(exc.character, int):
        return f"character #x{exc.character:04x} is not allowed in YAML"
    return f"invalid YAML: {exc.reason}"  # pragma: no cover - text is decoded before


def _yaml_message(exc: MarkedYAMLError) -> str:
    parts = [part for part in (exc.context, exc.problem) if part]
    return "invalid YAML: " + ", ".join(parts)


def _too_many_nodes() -> str:
    return f"document too large: more than {MAX_NODES} nodes"


def _too_many_expanded() -> str:
    return f"alias expansion limit exceeded: more than {MAX_NODES} nodes once aliases are expanded"
