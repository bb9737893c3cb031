"""TrustKit (iOS/macOS) configured in code: the Swift or Objective-C dictionary
literal passed to ``TrustKit.initSharedInstance(withConfiguration:)`` /
``+initSharedInstanceWithConfiguration:`` (pinning-semantics §3.1).

The dictionary is read the way the OkHttp importer reads Kotlin
(``scanner.importers._code``): ``kTSK…`` constants stand for their key
strings (``kTSKExcludeSubdomainFromParentPolicy`` for the literal
``kSKExcludeSubdomainFromParentPolicy``), same-file constants (``let``,
``static let``, ``NSString *const``, ``#define``) and Swift interpolation are
evaluated, ``@YES``/``@(NO)``/``NSNumber(value: true)`` are booleans. Then the
same rules as an Info.plist apply (:mod:`scanner.importers.apple`): what
TrustKit raises on is a fatal problem; what pinaudit cannot evaluate (a
domain or pins from another file, a method parameter, a remote value) is
``unresolved`` — "pins computed at run time: not imported" — and so is every
base64 SHA-256 literal of the file that no configuration used.
"""

from __future__ import annotations

from scanner.importers._code import (
    OBJC,
    SWIFT,
    Bool,
    Dct,
    Lst,
    Num,
    Source,
    Str,
    Unknown,
    Value,
    language_of,
)
from scanner.importers._common import Collector, not_the_kind
from scanner.importers.apple import _PIN_SHAPED, Computed, _TrustKit, trustkit_policy
from scanner.importers.plist import PathKey, Plist
from scanner.model import ClientPolicy, Location, PolicyRule

__all__ = ["CODE_SUFFIXES", "looks_like_code", "parse_trustkit_code"]

CODE_SUFFIXES = (".swift", ".m", ".mm", ".h")


def looks_like_code(data: bytes) -> bool:
    """Not a plist or XML, and it names TrustKit's pinned-domains key."""
    head = data.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    return head not in (b"<", b"b") and b"TSKPinnedDomains" in data


def _language(data: bytes, source: str) -> str:
    lang = language_of(source)
    if lang in (SWIFT, OBJC):
        return lang
    return OBJC if b'@"' in data or b"@{" in data else SWIFT


def parse_trustkit_code(data: bytes, source: str, *, name: str | None = None) -> ClientPolicy:
    """The TrustKit dictionary literal(s) of a Swift or Objective-C file."""
    src = Source(data, source, _language(data, source))
    mentions = [
        i
        for i, t in enumerate(src.toks)
        if (t.kind == "ident" and t.text == "kTSKPinnedDomains")
        or (
            t.kind == "str"
            and "".join(p for p in t.parts if isinstance(p, str)) == "TSKPinnedDomains"
        )
    ]
    if not mentions:
        raise not_the_kind(
            Location(source, 1, 1),
            'not a TrustKit configuration: no kTSKPinnedDomains (or "TSKPinnedDomains") '
            "outside comments in this file",
        )
    configs: dict[int, None] = {}
    for i in mentions:
        parent = src.parent[i]
        keyed = src.is_op(src.skip_nl(i + 1), ":")
        if keyed and parent >= 0 and src.toks[parent].text in ("[", "@{"):
            configs.setdefault(parent)
    out = Collector(source)
    rules: list[PolicyRule] = []
    ignore = True
    visited: set[Location] = set()
    if not configs:
        out.not_imported(
            src.loc(mentions[0]),
            "the TrustKit configuration is assembled at run time (kTSKPinnedDomains is not "
            "the key of a dictionary literal here)",
        )
    for open_i in configs:
        value = src.evaluate(open_i, src.close(open_i) + 1)
        if not isinstance(value, Dct):
            shown = value.describe() if isinstance(value, Unknown) else "not a dictionary"
            out.not_imported(src.loc(open_i), f"the TrustKit configuration: {shown}")
            continue
        plist = _to_plist(value, source, out, strict_keys=src.lang == SWIFT)
        reader = _TrustKit(plist, out)
        reader.read()
        rules += reader.rules
        ignore = ignore and reader.ignore_user_anchors
        visited |= reader.visited
    if len(configs) > 1:
        lines = ", ".join(str(src.loc(i).line) for i in configs)
        out.note(
            src.loc(next(iter(configs))),
            f"{len(configs)} TrustKit configurations in this file (lines {lines}): their rules "
            "are imported together, but TrustKit is initialised with one of them",
        )
    _report_unused(src, visited, out)
    return trustkit_policy(out, tuple(rules), ignore, source, name=name)


def _to_plist(value: Dct, source: str, out: Collector, *, strict_keys: bool) -> Plist:
    values: dict[PathKey, Location] = {}
    keys: dict[PathKey, Location] = {}

    def convert(v: Value, path: PathKey) -> object:
        values[path] = v.where
        if isinstance(v, Dct):
            result: dict[object, object] = {}
            for k, item in v.entries:
                key: object
                if isinstance(k, Str):
                    key = k.text
                elif isinstance(k, Unknown):
                    key = Computed(k.text, k.reason, k.where)
                else:
                    key = Computed(str(getattr(k, "value", "")), "not a string key", k.where)
                if key in result:
                    _duplicate(out, key, k.where, strict_keys)
                child = (*path, key)
                keys[child] = k.where
                result[key] = convert(item, child)
            return result
        if isinstance(v, Lst):
            return [convert(item, (*path, n)) for n, item in enumerate(v.items)]
        if isinstance(v, Str):
            return v.text
        if isinstance(v, (Bool, Num)):
            return v.value
        return Computed(v.text, v.reason, v.where)

    return Plist(source, convert(value, ()), values, keys)


def _duplicate(out: Collector, key: object, where: Location, strict: bool) -> None:
    if strict:
        out.problem(
            where,
            f"duplicate key {key!s} in a dictionary literal: Swift stops the app "
            '("Dictionary literal contains duplicate keys")',
        )
    else:
        out.note(where, f"duplicate key {key!s} in a dictionary literal: one value is lost")


def _report_unused(src: Source, visited: set[Location], out: Collector) -> None:
    lines = out.reported_lines()
    for tok, literal in src.string_literals():
        if not _PIN_SHAPED.fullmatch(literal):
            continue
        where = src.at(tok.start)
        if where in visited or where.line in lines:
            continue
        out.not_imported(
            where,
            f"{tok.text}: a base64 SHA-256 pin written here is not part of a TrustKit "
            "configuration pinaudit can follow",
        )
        lines.add(where.line)
