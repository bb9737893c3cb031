"""Schema version 1: YAML files → an :class:`Inventory`. Pure apart from
reading the inventory's own files (``scanner.inventory.files``).

Every problem in every file is collected and raised at once as one
:class:`InventoryError`, each with file, 1-based line and column, and a path
such as ``endpoints[3].pins[0]``. Nothing but InventoryError ever escapes,
whatever the input.

How a run goes: the root file is composed into nodes
(``scanner.inventory.yamlnodes``, bounded against hostile documents), read
by a `_Source` (typed readers from ``scanner.inventory.reader``) into
pin-sets, client pin-sets (``scanner.inventory.client_pinsets``) and endpoint
drafts; includes are read the same way, each file once; at the end pin-set
names are resolved and the endpoints built with every default applied.
Decisions the design leaves open are written down at the constant or
function they concern; the user-facing ones are also in
``inventories/example.yaml``.
"""

from __future__ import annotations

import difflib
import gc
import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

from yaml.nodes import MappingNode, Node, ScalarNode

from scanner.clients.selection import applies
from scanner.ct import CtPolicy
from scanner.errors import InventoryError, InventoryProblem, PinError
from scanner.inventory.client_pinsets import is_client_pinset_node, read_client_pinset
from scanner.inventory.files import (
    MAX_FILE_BYTES,
    MAX_INCLUDED_FILES,
    PSEUDO_FILESYSTEMS,
    FileRef,
    Unreadable,
    client_pair_problem,
    decode,
    expand_include,
    locate,
    oversized,
    read_file,
    resolve,
    too_large,
)
from scanner.inventory.names import (
    AUTO,
    INLINE,
    PINSET_NAME,
    default_name,
    host_problem,
    ip_literal,
    label_name_problem,
    pinset_name_problem,
)
from scanner.inventory.reader import Entry, NodeReader
from scanner.inventory.yamlnodes import (
    BOOL,
    FLOAT,
    INT,
    NULL,
    SCALARS,
    STR,
    compose,
    compose_streaming,
    join,
)
from scanner.model import (
    ClientPolicy,
    Endpoint,
    Inventory,
    Location,
    Pin,
    Pinset,
    Severity,
    TrustKind,
    TrustSpec,
)
from scanner.pins import KeyMaterial, key_material, parse_digest_name, parse_pin, pins_of_spki
from scanner.proxy import parse_proxy
from scanner.starttls import Starttls
from scanner.tlsversion import DEFAULT_MINIMUM
from scanner.tlsversion import VERSIONS as TLS_VERSIONS
from scanner.units import parse_duration, positive_seconds

__all__ = ["MAX_DAYS", "SCHEMA_VERSION", "load_inventory", "load_inventory_text"]

SCHEMA_VERSION = 1
MAX_DAYS = 36_500  # day thresholds: 100 years keeps date arithmetic in range

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
    "starttls",
    "proxy",
    "ocsp",
    "ct",
    "caa",
    "caa_identifiers",
    "tls_min_version",
    "tls_version_severity",
)
_ROOT_KEYS = ("version", "defaults", "include", "pinsets", "endpoints")
# Read before the endpoints: when written after them, the file is composed whole.
_READ_FIRST = frozenset({"defaults"})
# Distinct (base, layer) settings shared between endpoints (beyond, each endpoint
# holds its own: the sharing saves memory, it never changes a value).
_MAX_SHARED_SETTINGS = 4096
# Endpoints are read one by one as they are composed, when the file allows it
# (False only in tests, to compare with reading whole documents).
STREAMING = True
_PINSET_KEYS = ("pins", "expires", "digest")
# A pin written as a mapping: `{pin: …, offline: true, key: next.csr}`.
_PIN_KEYS = ("pin", "offline", "key")
MAX_KEY_FILES = 1000  # distinct `key:` files one inventory may name (each read once)
_ENDPOINT_KEYS = ("host", "name", "port", "sni", "pinset", "pins", *_DEFAULT_KEYS[1:])

_CERTIFI = TrustSpec(TrustKind.CERTIFI)


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
    port_set: bool = False  # a layer wrote `port`: the STARTTLS protocol's default is not used
    starttls: Starttls | None = None
    proxy: str | None = None  # "" = `proxy: false` (direct, even with --proxy-from-env)
    ocsp: bool = False
    ct: tuple[str, ...] = ()
    caa: bool = False
    caa_identifiers: tuple[tuple[str, tuple[str, ...]], ...] = ()
    tls_min_version: str = DEFAULT_MINIMUM
    tls_version_severity: Severity = Severity.WARNING

    @property
    def effective_port(self) -> int:
        """The port written, else the STARTTLS protocol's (smtp: 25 ...), else 443."""
        if self.port_set or self.starttls is None:
            return self.port
        return self.starttls.default_port


@dataclass(frozen=True)
class _Layer:
    """What one mapping (a ``defaults`` block or an endpoint) sets: the settings
    written there and read without a problem, by their _Effective name (labels
    are added to the base's labels, the others replace the base's value)."""

    values: Mapping[str, Any] = field(default_factory=dict)
    threshold_at: tuple[Location, str] | None = None  # where critical_days/warn_days is set

    def apply(self, base: _Effective) -> _Effective:
        """`base` with what this layer sets."""
        if not self.values:
            return base
        changes = dict(self.values)
        if "labels" in changes:
            changes["labels"] = {**base.labels, **changes["labels"]}
        if "port" in changes:
            changes["port_set"] = True
        # `replace(base, **changes)`, without its cost (it runs __init__ with
        # every field, once per endpoint): _Effective has no __post_init__.
        settings = object.__new__(_Effective)
        settings.__dict__.update(base.__dict__)
        settings.__dict__.update(changes)
        return settings


# Each setting's reader (a method of _Source), in the order they are read.
_READERS = (
    ("warn_days", "days"),
    ("critical_days", "days"),
    ("port", "port"),
    ("timeout", "timeout"),
    ("pinset_warn_days", "days"),
    ("trust", "trust"),
    ("labels", "labels"),
    ("all_addresses", "boolean"),
    ("client_cert", "pem_file"),
    ("client_key", "pem_file"),
    ("starttls", "starttls"),
    ("proxy", "proxy"),
    ("ocsp", "boolean"),
    ("ct", "ct_policies"),
    ("caa", "boolean"),
    ("caa_identifiers", "caa_identifiers"),
    ("tls_min_version", "tls_version"),
    ("tls_version_severity", "severity"),
)
_READER_OF = dict(_READERS)
_READ_ORDER = {key: index for index, (key, _) in enumerate(_READERS)}


@dataclass(frozen=True, slots=True)
class _Draft:
    """An endpoint as read from its file, before pin-set names are resolved."""

    location: Location
    path: str
    host: str | None  # None: missing or invalid (already reported)
    name: str | None  # explicit or default; None when it cannot be known
    name_at: Location | None  # where `name:` is written; None: not written (the endpoint's)
    sni: str | None
    settings: _Effective
    pinset_ref: tuple[str, Location] | None  # the name and where (at path.pinset)
    inline: tuple[Pin, ...] | None
    inline_at: Location | None
    clean: bool  # no problem found inside the endpoint
    inline_offline: frozenset[Pin] = frozenset()  # inline pins declared offline backup keys


# --- public API --------------------------------------------------------------


@contextmanager
def _collector_paused() -> Iterator[None]:
    """No cyclic garbage collection while an inventory is read.

    Loading allocates one long-lived object after another (nodes, positions,
    drafts, endpoints) and frees almost nothing, which is what makes the
    collector run again and again over everything allocated so far: it took
    half of the loading time. Loading makes no reference cycles worth
    collecting (a recursive alias is refused, and collected afterwards), and
    how much it allocates is bounded by the file size and node limits. The
    collector is left as it was found."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def load_inventory(path: str | os.PathLike[str]) -> Inventory:
    """Read an inventory file and every file it includes. Raises InventoryError."""
    with _collector_paused():
        return _load_inventory(os.fspath(path))


def _load_inventory(name: str) -> Inventory:
    run = _Run()
    try:
        absolute, real = resolve(name)
        data = read_file(real)
    except Unreadable as exc:
        run.add(Location(name, 0, 0), "", f"cannot read inventory: {exc}")
        raise InventoryError(run.sorted_problems()) from None
    directory = os.path.dirname(absolute)
    run.read_bytes(data, FileRef(name, directory, os.path.dirname(name), ((real, name),), True))
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
    with _collector_paused():
        return _load_inventory_text(text, filename, base_dir)


def _load_inventory_text(
    text: str, filename: str, base_dir: str | os.PathLike[str] | None
) -> Inventory:
    run = _Run()
    if base_dir is None:
        directory, display_dir = os.getcwd(), ""
    else:
        directory, display_dir = os.path.abspath(os.fspath(base_dir)), os.fspath(base_dir)
    ref = FileRef(filename, directory, display_dir, (), True)
    if oversized(text):
        run.files.append(filename)
        run.add(Location(filename, 1, 1), "", too_large())
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
        self.policies: dict[str, ClientPolicy] = {}  # client pin-sets (client_pinsets)
        self.drafts: list[_Draft] = []
        # client certificate and key pairs checked so far: (cert, key) → problem
        self.client_pairs: dict[tuple[str, str | None], str | None] = {}
        self.root_settings = _Effective()
        # key files named by pins (`key:`), read once each: real path → key or why not
        self.key_files: dict[str, KeyMaterial | str] = {}
        self.label_sets: dict[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]] = {}
        # settings made by applying a layer to a base: (id(base), layer) → (base, settings)
        self.settings_made: dict[tuple[int, tuple[Any, ...]], tuple[_Effective, _Effective]] = {}

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

    def read_bytes(self, data: bytes, ref: FileRef) -> None:
        """Read a file's bytes: UTF-8 (a BOM is fine), at most MAX_FILE_BYTES."""
        text = decode(data, ref.name)
        if isinstance(text, tuple):
            self.files.append(ref.name)
            self.add(text[0], "", text[1])
            return
        if not STREAMING:
            self.read_text(text, ref)
            return
        # Valid UTF-8: libyaml reads the bytes themselves, without the text and
        # the UTF-8 copy it makes of a str (two copies of the file less while
        # composing); the text is decoded again only if it must be read whole.
        del text
        self._begin(ref)
        if not self._read_streaming(data, ref):
            self._read_whole(data.decode("utf-8"), ref)

    def read_text(self, text: str, ref: FileRef) -> None:
        self._begin(ref)
        if not (STREAMING and self._read_streaming(text, ref)):
            self._read_whole(text, ref)

    def _begin(self, ref: FileRef) -> None:
        """A file is being read: it is named in problems' order, and read once."""
        self.files.append(ref.name)
        self.read_paths.update(real for real, _ in ref.chain[-1:])

    def _read_whole(self, text: str, ref: FileRef) -> None:
        composed = compose(text, ref.name)
        for where, path, message in composed.problems:
            self.add(where, path, message)
        if composed.usable:
            _Source(self, ref, composed.bad).read_document(composed.root)

    def _read_streaming(self, text: str | bytes, ref: FileRef) -> bool:
        """Read a file whose endpoints are read one by one as they are composed
        (``compose_streaming``); False, with nothing of it kept, when the file
        must be composed whole. The same drafts and problems either way
        (``tests/test_inventory_speed.py``)."""
        source = _Source(self, ref, set())
        drafts, problems, root_settings = len(self.drafts), len(self.problems), self.root_settings
        composed = compose_streaming(text, "endpoints", _READ_FIRST, source.stream_endpoint)
        if composed is None:  # forget what was read of it
            del self.drafts[drafts:], self.problems[problems:]
            self._problem_keys = {(p.location, p.message) for p in self.problems}
            self.root_settings = root_settings
            return False
        source.read_document(composed.root, composed.streamed)
        return True

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
        drafts, self.drafts = self.drafts, []
        drafts.reverse()
        while drafts:  # in order, each draft dropped as its endpoint is built
            draft = drafts.pop()
            pinset = self._effective_pinset(draft)
            if draft.name is not None:
                if draft.name in first_at:
                    where, path = (
                        (draft.name_at, join(draft.path, "name"))
                        if draft.name_at is not None
                        else (draft.location, draft.path)
                    )
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
                    self._with_policies(
                        _endpoint(draft, draft.host, draft.name, pinset, self._labels(draft)),
                        draft,
                    )
                )
        return endpoints

    def _labels(self, draft: _Draft) -> tuple[tuple[str, str], ...]:
        """The endpoint's labels, sorted; one tuple for every endpoint with the
        same ones (a fleet has a few label sets over thousands of endpoints)."""
        labels = tuple(sorted(draft.settings.labels.items()))
        return self.label_sets.setdefault(labels, labels)

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
        ):  # client pin-sets are judged apart (scanner.clients); inline pins stay generic
            return (
                None
                if draft.inline is None
                else Pinset(INLINE, draft.inline, None, draft.inline_at, draft.inline_offline)
            )
        if draft.pinset_ref is not None:
            name, where = draft.pinset_ref
            path = join(draft.path, "pinset")
            named = self.pinsets.get(name)
            if named is None and name in self.broken_pinsets:
                return None
            if named is None:
                self.add(where, path, f"unknown pinset {name!r} ({self._pinset_hint(name)})")
                return None
        if draft.inline is None or (named is not None and not draft.inline):
            return named
        if named is None:
            return Pinset(INLINE, draft.inline, None, draft.inline_at, draft.inline_offline)
        pins = tuple(dict.fromkeys(named.pins + draft.inline))
        offline = named.offline | draft.inline_offline
        return Pinset(f"{named.name}+{INLINE}", pins, named.expires, draft.inline_at, offline)

    def _pinset_hint(self, name: str) -> str:
        if not self.pinsets:
            return "no pinsets are defined"
        close = difflib.get_close_matches(name, list(self.pinsets), n=1)
        if close:
            return f"did you mean {close[0]!r}?"
        return "defined: " + ", ".join(sorted(self.pinsets))


def _layer_key(layer: _Layer, base: _Effective) -> tuple[int, tuple[Any, ...]] | None:
    """What identifies `layer` applied to `base`, or None when a value cannot say."""
    items = []
    for name, value in sorted(layer.values.items()):
        items.append((name, tuple(sorted(value.items())) if isinstance(value, dict) else value))
    key = (id(base), tuple(items))
    try:
        hash(key)
    except TypeError:  # pragma: no cover - every setting's value is hashable but labels
        return None
    return key


def _endpoint(
    draft: _Draft,
    host: str,
    name: str,
    pinset: Pinset | None,
    labels: tuple[tuple[str, str], ...],
) -> Endpoint:
    s = draft.settings
    return Endpoint(
        name=name,
        host=host,
        port=s.effective_port,
        sni=draft.sni,
        pinset=pinset,
        timeout=s.timeout,
        warn_days=s.warn_days,
        critical_days=s.critical_days,
        pinset_warn_days=s.pinset_warn_days,
        trust=s.trust,
        labels=labels,
        location=draft.location,
        all_addresses=s.all_addresses,
        client_cert=s.client_cert,
        client_key=s.client_key,
        starttls=s.starttls.value if s.starttls is not None else None,
        proxy=s.proxy or None,
        direct=s.proxy == "",
        ocsp=s.ocsp,
        ct=s.ct,
        caa=s.caa,
        caa_identifiers=s.caa_identifiers,
        tls_min_version=s.tls_min_version,
        tls_version_severity=s.tls_version_severity,
    )


# --- one file --------------------------------------------------------------------


class _Source(NodeReader):
    """Reads one file's document into the run: pin-sets, endpoints, includes."""

    def __init__(self, run: _Run, ref: FileRef, bad: set[int]) -> None:
        super().__init__(ref, run.add, bad)
        self.run = run
        self.stream_settings: _Effective | None = None  # of the endpoints read as composed

    # the document

    def stream_endpoint(self, node: Node, index: int, before: list[tuple[Node, Node]]) -> None:
        """One endpoint, read as soon as it is composed; `before` holds the root's
        pairs composed before ``endpoints`` (``defaults`` among them, if any:
        compose_streaming restarts when it comes only after)."""
        if self.stream_settings is None:
            defaults = next((v for k, v in before if k.value == "defaults"), None)
            self.stream_settings = self.defaults(defaults, self.ref.is_root)
        self.endpoint(node, f"endpoints[{index}]", self.stream_settings)

    def read_document(self, root: Node | None, streamed: Node | None = None) -> None:
        is_root = self.ref.is_root
        fields: dict[str, Node] = {}
        if root is not None and not (isinstance(root, ScalarNode) and root.tag == NULL):
            entries = self.mapping(root, "")
            if entries is None:
                return
            fields = self.fields(entries, _ROOT_KEYS, "")
        if "version" in fields:
            self.version(fields["version"])
        elif is_root:
            where = self.at(root) if root is not None else Location(self.name, 1, 1)
            self.run.add(where, "", "missing required key 'version'")
        settings = self.stream_settings
        if settings is None:
            settings = self.defaults(fields.get("defaults"), is_root)
        if "pinsets" in fields:
            self.pinsets(fields["pinsets"])
        if "endpoints" in fields and fields["endpoints"] is not streamed:
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
        """Apply a layer, checking critical_days <= warn_days where the layer sets one.

        Equal layers over the same base give one shared result: thousands of
        endpoints set the same few labels (or ports), and each held its own
        settings and labels until the inventory was built."""
        key = _layer_key(layer, base) if layer.values else None  # nothing set: `base` itself
        cached = self.run.settings_made.get(key) if key is not None else None
        if cached is not None:
            settings = cached[1]
        else:
            settings = layer.apply(base)
            if key is not None and len(self.run.settings_made) < _MAX_SHARED_SETTINGS:
                self.run.settings_made[key] = (base, settings)  # base kept: its id stays its own
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
        values: dict[str, Any] = {}
        written = [key for key in fields if key in _READER_OF]  # most layers set a few
        if len(written) > 1:
            written.sort(key=_READ_ORDER.__getitem__)
        for key in written:
            value = getattr(self, _READER_OF[key])(fields[key], join(path, key))
            if value is not None:
                values[key] = value
        threshold_at = None  # the thresholds' check reports at the first valid one set here
        for key in ("critical_days", "warn_days"):
            if key in values:
                threshold_at = (self.at(fields[key]), join(path, key))
                break
        return _Layer(values, threshold_at)

    def starttls(self, node: Node, path: str) -> Starttls | None:
        text = self.string(node, path)
        if text is None:
            return None
        try:
            return Starttls(text.lower())
        except ValueError:
            allowed = ", ".join(p.value for p in Starttls)
            self.report(node, path, f"unknown STARTTLS protocol {text!r} (one of {allowed})")
            return None

    def proxy(self, node: Node, path: str) -> str | None:
        """A proxy URL, or false for none (not even --proxy-from-env's): ""."""
        if isinstance(node, ScalarNode) and node.tag == BOOL and id(node) not in self.bad:
            if not SCALARS.construct_yaml_bool(node):
                return ""
            self.report(node, path, "proxy must be a URL (http://, socks5://, socks5h://) or false")
            return None
        text = self.string(node, path)
        if text is None:
            return None
        try:
            parse_proxy(text)  # kept as written: it may carry credentials
        except ValueError as exc:
            self.report(node, path, f"proxy: {exc}")
            return None
        return text

    def ct_policies(self, node: Node, path: str) -> tuple[str, ...] | None:
        """false, a policy name, or a list of them (chrome, apple)."""
        if isinstance(node, ScalarNode) and node.tag == BOOL and id(node) not in self.bad:
            if not SCALARS.construct_yaml_bool(node):
                return ()
            return tuple(p.value for p in CtPolicy)  # true: every policy
        items = [node] if isinstance(node, ScalarNode) else self.sequence(node, path)
        if items is None:
            return None
        policies: list[str] = []
        for index, item in enumerate(items):
            where = path if item is node else f"{path}[{index}]"
            text = self.string(item, where)
            if text is None:
                return None
            if text.lower() not in {p.value for p in CtPolicy}:
                allowed = ", ".join(p.value for p in CtPolicy)
                self.report(item, where, f"unknown CT policy {text!r} (one of {allowed}, or false)")
                return None
            if text.lower() not in policies:
                policies.append(text.lower())
        return tuple(policies)

    def tls_version(self, node: Node, path: str) -> str | None:
        text = self.string(node, path)
        if text is None:
            return None
        if text not in TLS_VERSIONS:
            self.report(
                node, path, f"unknown TLS version {text!r} (one of {', '.join(TLS_VERSIONS)})"
            )
            return None
        return text

    def severity(self, node: Node, path: str) -> Severity | None:
        text = self.string(node, path)
        if text is None:
            return None
        try:
            return Severity(text.lower())
        except ValueError:
            self.report(node, path, f"severity must be info, warning or critical, got {text!r}")
            return None

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
        if not isinstance(node, ScalarNode) or node.tag not in (INT, FLOAT, STR):
            self.wrong_type(node, path, "a duration (seconds, or 500ms, 5s, 1m)")
            return None
        raw = str(node.value)
        try:
            if node.tag == STR:
                return parse_duration(raw)
            value = self.float_value(node, path)
            return None if value is None else positive_seconds(value)
        except ValueError as exc:
            shown = repr(raw) if node.tag == STR else raw
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
        resolved, exists = locate(self.directory, text)
        if not exists:
            self.report(node, path, f"trust bundle {text!r} not found (looked for {resolved})")
            return None
        return TrustSpec(TrustKind.BUNDLE, resolved)

    def pem_file(self, node: Node, path: str) -> str | None:
        """A PEM file path relative to this file; it must exist."""
        found = self.file(node, path)
        return None if found is None else found[0]

    def caa_identifiers(
        self, node: Node, path: str
    ) -> tuple[tuple[str, tuple[str, ...]], ...] | None:
        """Issuer organisation → the domains its CAA records name (issuer-domain
        of RFC 8659 §4.2), e.g. ``{"Example Corp Private CA": [ca.example.net]}``."""
        entries = self.mapping(node, path)
        if entries is None:
            return None
        declared: list[tuple[str, tuple[str, ...]]] = []
        for entry in entries:
            where = join(path, entry.key)
            if not entry.key.strip():
                self.report(entry.key_node, where, "the issuer organisation must not be empty")
                continue
            items = self.sequence(entry.value, where)
            if items is None:
                continue
            if not items:
                self.report(entry.value, where, "name at least one CAA issuer domain")
                continue
            names: list[str] = []
            for index, item in enumerate(items):
                text = self.string(item, f"{where}[{index}]")
                if text is None:
                    continue
                problem = host_problem(text, "a CAA issuer domain")
                if problem is not None or ip_literal(text):
                    message = problem or f"a CAA issuer domain is a domain name, not {text!r}"
                    self.report(item, f"{where}[{index}]", message)
                    continue
                names.append(text.lower().rstrip("."))
            if names:
                declared.append((entry.key, tuple(names)))
        return tuple(declared)

    def labels(self, node: Node, path: str) -> dict[str, str] | None:
        entries = self.mapping(node, path)
        if entries is None:
            return None
        labels: dict[str, str] = {}
        for entry in entries:
            where = join(path, entry.key)
            problem = label_name_problem(entry.key)
            if problem is not None:
                self.report(entry.key_node, where, problem)
                continue
            value = self.string(entry.value, where)
            if value is not None:  # interned: the same few names and values on every endpoint
                labels[sys.intern(entry.key)] = sys.intern(value)
        return labels

    # pin-sets

    def pinsets(self, node: Node) -> None:
        entries = self.mapping(node, "pinsets")
        for entry in entries or ():
            path = f"pinsets.{entry.key}"
            if not PINSET_NAME.fullmatch(entry.key) or entry.key in (INLINE, AUTO):
                self.report(entry.key_node, path, pinset_name_problem(entry.key))
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

    def client_pinset(self, entry: Entry, path: str) -> None:
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

    def pinset(self, entry: Entry, path: str) -> Pinset | None:
        entries = self.mapping(entry.value, path)
        if entries is None:
            return None
        fields = self.fields(entries, _PINSET_KEYS, path)
        digest = None
        if "digest" in fields:
            digest = self.digest(fields["digest"], join(path, "digest"))
        expires = None
        if "expires" in fields:
            expires = self.date(fields["expires"], join(path, "expires"))
        pins: tuple[Pin, ...] = ()
        offline: frozenset[Pin] = frozenset()
        if self.require(fields, "pins", entry.value, path):
            pins, offline = self.pin_list(fields["pins"], join(path, "pins"), digest) or (
                (),
                offline,
            )
        return Pinset(entry.key, pins, expires, self.at(entry.key_node), offline)

    def pin_list(
        self, node: Node, path: str, digest: str | None
    ) -> tuple[tuple[Pin, ...], frozenset[Pin]] | None:
        """A list of pins, each a string or a mapping (``pin_entry``): the pins
        (duplicates collapse, the first spelling's position kept) and those
        declared offline backup keys."""
        items = self.sequence(node, path)
        if items is None:
            return None
        pins: dict[Pin, None] = {}
        offline: set[Pin] = set()
        for index, item in enumerate(items):
            where = f"{path}[{index}]"
            if isinstance(item, MappingNode) and id(item) not in self.bad:
                read = self.pin_entry(item, where, digest)
                if read is None:
                    continue
                pin, is_offline = read
            else:
                text = self.string(item, where)
                if text is None:
                    continue
                try:
                    pin = parse_pin(text, digest=digest, where=where)
                except PinError as exc:
                    self.report(item, where, str(PinError(exc.pin, exc.reason)))
                    continue
                is_offline = False
            pins.setdefault(pin)
            if is_offline:
                offline.add(pin)
        return tuple(pins), frozenset(offline)

    def pin_entry(self, node: Node, path: str, digest: str | None) -> tuple[Pin, bool] | None:
        """``{pin: …, offline: true, key: FILE}``: a pin, whether it is an
        offline backup key, and the file of that key (a public key, a CSR or a
        certificate) to compute the pin from or to check it against."""
        entries = self.mapping(node, path)
        if entries is None:
            return None
        before = len(self.run.problems)
        fields = self.fields(entries, _PIN_KEYS, path)
        pin = None
        if "pin" in fields:
            where = join(path, "pin")
            text = self.string(fields["pin"], where)
            if text is not None:
                try:
                    pin = parse_pin(text, digest=digest, where=where)
                except PinError as exc:
                    self.report(fields["pin"], where, str(PinError(exc.pin, exc.reason)))
        offline = False
        if "offline" in fields:
            offline = bool(self.boolean(fields["offline"], join(path, "offline")))
        key = None
        if "key" in fields:
            key = self.key_file(fields["key"], join(path, "key"))
        if "pin" not in fields and "key" not in fields:
            self.report(node, path, "a pin mapping needs pin:, key: or both")
        if len(self.run.problems) != before:
            return None
        if key is not None:
            name, material = key
            sha256, sha1 = pins_of_spki(material.spki)
            own = sha1 if pin is not None and pin.alg is sha1.alg else sha256
            if pin is not None and pin != own:
                self.report(
                    fields["pin"],
                    join(path, "pin"),
                    f"{pin} is not the key in {name} (a {material.kind} whose key's pin is {own})",
                )
                return None
            pin = own
        return (pin, offline) if pin is not None else None

    def key_file(self, node: Node, path: str) -> tuple[str, KeyMaterial] | None:
        """(the name as written, its key) of a public key, CSR or certificate file
        named relative to this file. Each file is read once per run; a private
        key is refused (the private half of an offline backup belongs offline)."""
        found = self.file(node, path)
        if found is None:
            return None
        name = str(node.value)
        real = os.path.realpath(found[0])
        material = self.run.key_files.get(real)
        if material is None and any(
            real == top or real.startswith(top + "/") for top in PSEUDO_FILESYSTEMS
        ):
            material = f"refused: {name!r} is on a pseudo filesystem ({real})"
        elif material is None and len(self.run.key_files) >= MAX_KEY_FILES:
            material = f"refused: more than {MAX_KEY_FILES} key files named"
        if material is None:
            try:
                data = read_file(real)
            except Unreadable as exc:
                material = f"cannot read {name!r}: {exc}"
            else:
                try:
                    material = too_large() if len(data) > MAX_FILE_BYTES else key_material(data)
                except ValueError as exc:
                    material = f"{name}: {exc}"
            self.run.key_files[real] = material
        if isinstance(material, str):
            self.report(node, path, material)
            return None
        if material.kind == "private key":
            self.report(
                node,
                path,
                f"{name} is a private key: name its public key or a certificate request "
                "instead (the private key of an offline backup belongs offline; openssl pkey "
                f"-in {name} -pubout prints the public key)",
            )
            return None
        return name, material

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
            host = self.host(fields["host"], join(path, "host"))
        sni, sni_ok = self.sni(fields.get("sni"), join(path, "sni"), host)
        layer = self.layer(fields, path)
        settings = self.apply(layer, base)
        if settings.client_key is not None and settings.client_cert is None:
            self.report(node, path, "client_key needs client_cert (set here or in defaults)")
        elif settings.client_cert is not None:
            pair = (settings.client_cert, settings.client_key)
            if pair not in self.run.client_pairs:
                self.run.client_pairs[pair] = client_pair_problem(*pair)
            problem = self.run.client_pairs[pair]
            if problem is not None:
                self.report(node, join(path, "client_cert"), problem)
        pinset_ref = None
        if "pinset" in fields:
            ref = self.string(fields["pinset"], join(path, "pinset"))
            if ref is not None:
                # interned: a few pin-set names over thousands of endpoints
                pinset_ref = (sys.intern(ref), self.at(fields["pinset"]))
        inline = inline_at = None
        inline_offline: frozenset[Pin] = frozenset()
        if "pins" in fields:
            read = self.pin_list(fields["pins"], join(path, "pins"), None)
            if read is not None:
                inline, inline_offline = read
            inline_at = self.at(fields["pins"])
        name, name_at = self.endpoint_name(fields.get("name"), path)
        port_ok = "port" not in fields or "port" in layer.values
        if "name" not in fields and host is not None and sni_ok and port_ok:
            name = default_name(host, settings.effective_port, sni)
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
                inline_offline=inline_offline,
            )
        )

    def host(self, node: Node, path: str) -> str | None:
        text = self.string(node, path)
        if text is None:
            return None
        problem = host_problem(text, "host")
        if problem is not None:
            self.report(node, path, problem)
            return None
        return text

    def sni(self, node: Node | None, path: str, host: str | None) -> tuple[str | None, bool]:
        """(SNI, valid). Absent: the host, or None for an IP host. false/null: no SNI."""
        if node is None:
            return (None if host is None or ip_literal(host) else host), True
        if isinstance(node, ScalarNode) and node.tag in (BOOL, NULL) and id(node) not in self.bad:
            if node.tag == NULL or not SCALARS.bool_values.get(str(node.value).lower(), True):
                return None, True
            self.report(
                node, path, f"sni must be a host name, or false for no SNI; got {node.value}"
            )
            return None, False
        text = self.string(node, path)
        if text is None:
            return None, False
        problem = host_problem(text, "sni")
        if problem is None and ip_literal(text):
            problem = f"sni must be a host name, not an IP address: {text!r} (no SNI: sni: false)"
        if problem is not None:
            self.report(node, path, problem)
            return None, False
        return text, True

    def endpoint_name(self, node: Node | None, path: str) -> tuple[str | None, Location | None]:
        """The name written and where (None, None: no `name:`)."""
        if node is None:
            return None, None
        where = join(path, "name")
        text = self.string(node, where)
        if text is not None and not text.strip():
            self.report(node, where, "name must not be empty")
            text = None
        return text, self.at(node)

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
        fixed = []  # the pattern's leading directories, before its first wildcard
        for part in pattern.split("/")[:-1]:
            if "*" in part or "?" in part or "[" in part:
                break
            fixed.append(part)
        start = os.path.realpath(os.path.join(self.directory, "/".join(fixed) or "."))
        pseudo = next(
            (p for p in PSEUDO_FILESYSTEMS if start == p or start.startswith(p + "/")), None
        )
        if pseudo is not None:
            self.report(node, path, f"refused: include pattern {pattern!r} reaches into {pseudo}")
            return None
        try:
            return expand_include(pattern, self.directory)
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
        if any(real == top or real.startswith(top + "/") for top in PSEUDO_FILESYSTEMS):
            self.report(node, path, f"refused: {display!r} is on a pseudo filesystem ({real})")
            return
        if len(self.run.read_paths) >= MAX_INCLUDED_FILES:
            self.report(node, path, f"refused: more than {MAX_INCLUDED_FILES} files included")
            return
        try:
            data = read_file(real)
        except Unreadable as exc:
            self.report(node, path, f"cannot read {display!r}: {exc}")
            return
        chain = (*self.ref.chain, (real, display))
        directory, display_dir = os.path.dirname(absolute), os.path.dirname(display)
        self.run.read_bytes(data, FileRef(display, directory, display_dir, chain, False))
