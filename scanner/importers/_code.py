"""Kotlin, Java, Swift and Objective-C source, read (never run) far enough to
evaluate what pin configurations are written with: string literals and their
templates (``"sha256/$KEY"``, ``"sha256/${KEY}"``, Swift ``"\\(KEY)"``), ``+``
and adjacent-literal concatenation, same-file constants and local aliases
(``val h = HOST``, ``static final String``, ``let``, ``NSString *const``,
``#define``), lists (``arrayOf``/``listOf``…, Java array initialisers,
``@[…]``, ``[…]``) and dictionary literals (``@{…}``, ``[k: v]``).

Anything else — ``BuildConfig.X``, a call, a name from another file, a name
assigned more than once or changed at run time — evaluates to
:class:`Unknown`, which says why and where: the importers report it, they
never guess. Every value remembers which string literals it was made of, so
that an importer can tell which pin literals of the file it accounted for.

Bounded: the file size is capped by the caller, template and expression
nesting by :data:`MAX_DEPTH`, loop expansion by the importer.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

from scanner.errors import ClientConfigError
from scanner.importers._common import decode_text
from scanner.model import Location

__all__ = [
    "JAVA",
    "KOTLIN",
    "MAX_DEPTH",
    "MAX_TOKENS",
    "OBJC",
    "SWIFT",
    "TRUSTKIT_CONSTANTS",
    "Bool",
    "Dct",
    "Lst",
    "Num",
    "Source",
    "Str",
    "Tok",
    "TooLarge",
    "Unknown",
    "Value",
    "flatten",
    "key_of",
    "language_of",
    "tokenize",
]

MAX_DEPTH = 48
MAX_TOKENS = 500_000  # a pin configuration is a few hundred; more is refused, not read slowly
KOTLIN, JAVA, SWIFT, OBJC = "kotlin", "java", "swift", "objc"
_SUFFIXES = {
    ".kt": KOTLIN,
    ".kts": KOTLIN,
    ".java": JAVA,
    ".swift": SWIFT,
    ".m": OBJC,
    ".mm": OBJC,
    ".h": OBJC,
}

# TrustKit's key constants and the strings they stand for (TSKTrustKitConfig.m, 3.0.0);
# note the literal of kTSKExcludeSubdomainFromParentPolicy.
TRUSTKIT_CONSTANTS = {
    "kTSKSwizzleNetworkDelegates": "TSKSwizzleNetworkDelegates",
    "kTSKPinnedDomains": "TSKPinnedDomains",
    "kTSKIgnorePinningForUserDefinedTrustAnchors": "TSKIgnorePinningForUserDefinedTrustAnchors",
    "kTSKPublicKeyHashes": "TSKPublicKeyHashes",
    "kTSKEnforcePinning": "TSKEnforcePinning",
    "kTSKExcludeSubdomainFromParentPolicy": "kSKExcludeSubdomainFromParentPolicy",
    "kTSKIncludeSubdomains": "TSKIncludeSubdomains",
    "kTSKPublicKeyAlgorithms": "TSKPublicKeyAlgorithms",
    "kTSKReportUris": "TSKReportUris",
    "kTSKDisableDefaultReportUri": "TSKDisableDefaultReportUri",
    "kTSKExpirationDate": "TSKExpirationDate",
    "kTSKAlgorithmRsa2048": "TSKAlgorithmRsa2048",
    "kTSKAlgorithmRsa4096": "TSKAlgorithmRsa4096",
    "kTSKAlgorithmEcDsaSecp256r1": "TSKAlgorithmEcDsaSecp256r1",
    "kTSKAlgorithmEcDsaSecp384r1": "TSKAlgorithmEcDsaSecp384r1",
}
_LIST_CALLS = {
    "arrayOf",
    "listOf",
    "setOf",
    "mutableListOf",
    "arrayListOf",
    "mutableSetOf",
    "hashSetOf",
    "linkedSetOf",
    "listOfNotNull",
    "asList",  # Arrays.asList
    "of",  # List.of, Set.of
}
_IDENTITY_CALLS = {
    "toTypedArray",
    "toList",
    "toSet",
    "toMutableList",
    "toMutableSet",
    "distinct",
}
_TRUE = {"true", "YES", "kCFBooleanTrue"}
_FALSE = {"false", "NO", "kCFBooleanFalse"}
_TYPE_KEYWORDS = {"object", "class", "interface", "struct", "enum", "extension", "implementation"}
_MUTATORS = {"add", "addAll", "remove", "removeAll", "clear", "put", "putAll", "set", "append"}


def language_of(source: str) -> str | None:
    """The language of a source file by its suffix; None for anything else."""
    lower = source.lower()
    for suffix, lang in _SUFFIXES.items():
        if lower.endswith(suffix):
            return lang
    return None


# --- tokens ---------------------------------------------------------------------


class Tok(NamedTuple):
    """One token. A string keeps its pieces: literal text and template expressions."""

    kind: str  # "str", "ident", "num", "op", "nl", "chr"
    text: str
    start: int
    end: int
    parts: tuple[str | tuple[Tok, ...], ...] = ()
    ok: bool = True  # a string literal that could be read (escapes, nesting, closed)


_MASTER = re.compile(
    r"(?P<nl>\n)|(?P<ws>[ \t\r\f\v]+)|(?P<lc>//[^\n]*)|(?P<bc>/\*)|(?P<str>@?\")|(?P<chr>')"
    r"|(?P<id>[A-Za-z_$][A-Za-z0-9_$]*)|(?P<num>[0-9](?:[A-Za-z0-9_]|\.(?=[0-9]))*)"
    r"|(?P<op>\?\.|->|::|==|!=|\+=|\?:|&&|\|\||!!|\.\.\.|\.\.|@[{\[(]|.)",
    re.DOTALL,
)
_PLAIN = {  # runs of string characters that need no attention, per language
    "kotlin": re.compile(r'[^"\\$\n]+'),
    "raw": re.compile(r'[^"$\n]+'),
}
_PLAIN_C = re.compile(r'[^"\\\n]+')
_IDENT = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")
_OPEN = {"(": ")", "[": "]", "{": "}", "@{": "}", "@[": "]", "@(": ")"}
_CLOSE = {")", "]", "}"}
_KOTLIN_ESC = {"t": "\t", "b": "\b", "n": "\n", "r": "\r", "'": "'", '"': '"', "\\": "\\", "$": "$"}
_C_ESC = {
    "t": "\t",
    "b": "\b",
    "n": "\n",
    "r": "\r",
    "f": "\f",
    "v": "\v",
    "a": "\a",
    "'": "'",
    '"': '"',
    "\\": "\\",
    "?": "?",
    "0": "\0",
    "s": " ",
}


class TooLarge(Exception):
    """More tokens than :data:`MAX_TOKENS`."""

    def __init__(self, offset: int) -> None:
        super().__init__(offset)
        self.offset = offset


class _Lexer:
    def __init__(self, text: str, lang: str) -> None:
        self.text = text
        self.lang = lang

    def lex(self, pos: int, stop: str | None, depth: int) -> tuple[list[Tok], int]:
        """Tokens from `pos` up to the `stop` bracket that closes a template (or the end)."""
        text, lang = self.text, self.lang
        out: list[Tok] = []
        append = out.append
        nesting = 0
        match = _MASTER.match
        size = len(text)
        while pos < size:
            if len(out) > MAX_TOKENS:
                raise TooLarge(pos)
            m = match(text, pos)
            assert m is not None  # the last alternative matches any character
            kind = m.lastgroup
            if kind in {"ws", "lc"}:
                pos = m.end()
                continue
            if kind == "nl":
                if not out or out[-1].kind != "nl":
                    append(Tok("nl", "\n", pos, pos + 1))
                pos += 1
                continue
            if kind == "bc":
                pos = self._block_comment(pos)
                continue
            if kind == "str" and (text[pos] == '"' or lang == OBJC):
                tok = self._string(pos, depth)
                append(tok)
                pos = tok.end
                continue
            if kind == "chr" and lang in (KOTLIN, JAVA):
                end = self._char(pos)
                append(Tok("chr", text[pos:end], pos, end))
                pos = end
                continue
            if kind in {"id", "num"}:
                append(Tok("ident" if kind == "id" else "num", m.group(), pos, m.end()))
                pos = m.end()
                continue
            op = m.group() if kind == "op" else text[pos]
            if op[0] == "@" and len(op) == 2 and lang != OBJC:
                op = "@"
            if stop is not None and len(op) == 1:
                if op in "({[":
                    nesting += 1
                elif op in ")}]":
                    if nesting == 0 and op == stop:
                        return out, pos + 1
                    nesting = max(0, nesting - 1)
            append(Tok("op", op, pos, pos + len(op)))
            pos += len(op)
        return out, pos

    def _block_comment(self, pos: int) -> int:
        text = self.text
        nests = self.lang in (KOTLIN, SWIFT)
        depth = 0
        i = pos
        while i < len(text):
            if text.startswith("/*", i):
                depth += 1
                i += 2
                if not nests and depth > 1:
                    depth = 1
                continue
            if text.startswith("*/", i):
                depth -= 1
                i += 2
                if depth == 0:
                    return i
                continue
            i += 1
        return len(text)

    def _char(self, pos: int) -> int:
        text = self.text
        i = pos + 1
        while i < len(text) and text[i] not in "'\n":
            i += 2 if text[i] == "\\" else 1
        return min(i + 1, len(text))

    def _string(self, pos: int, depth: int) -> Tok:
        text, lang = self.text, self.lang
        start = pos
        if text[pos] == "@":
            pos += 1
        triple = text.startswith('"""', pos) and lang in (KOTLIN, JAVA, SWIFT)
        i = pos + (3 if triple else 1)
        raw = lang == KOTLIN and triple
        parts: list[str | tuple[Tok, ...]] = []
        buf: list[str] = []
        ok = True
        plain = _PLAIN["raw"] if raw else _PLAIN["kotlin"] if lang == KOTLIN else _PLAIN_C
        while True:
            run = plain.match(text, i)
            if run is not None:
                buf.append(run.group())
                i = run.end()
            if i >= len(text) or (text[i] == "\n" and not triple):
                ok = False  # unterminated
                break
            c = text[i]
            if triple and text.startswith('"""', i):
                # Kotlin: the closing quotes are the last three of a run
                while lang == KOTLIN and text.startswith('""""', i):
                    buf.append('"')
                    i += 1
                i += 3
                break
            if c == '"' and not triple:
                i += 1
                break
            if c == "\\" and not raw:
                if lang == SWIFT and text.startswith("\\(", i):
                    i = self._template(i + 2, ")", depth, parts, buf)
                    if i < 0:
                        return self._broken(start, triple)
                    continue
                value, i, good = self._escape(i)
                ok = ok and good
                buf.append(value)
                continue
            if c == "$" and lang == KOTLIN:
                if text.startswith("${", i):
                    i = self._template(i + 2, "}", depth, parts, buf)
                    if i < 0:
                        return self._broken(start, triple)
                    continue
                m = _IDENT.match(text, i + 1)
                if m and not m.group().startswith("$"):
                    name = m.group().split("$", 1)[0]
                    parts.append("".join(buf))
                    buf.clear()
                    parts.append((Tok("ident", name, i + 1, i + 1 + len(name)),))
                    i = i + 1 + len(name)
                    continue
            buf.append(c)
            i += 1
        parts.append("".join(buf))
        end = min(i, len(text))
        return Tok("str", text[start:end], start, end, tuple(p for p in parts if p != ""), ok)

    def _broken(self, start: int, triple: bool) -> Tok:
        """A string whose templates nest too deep: skip to the end of its line."""
        end = self.text.find("\n", start)
        end = len(self.text) if end < 0 else end
        return Tok("str", self.text[start:end], start, end, (), False)

    def _template(
        self,
        pos: int,
        stop: str,
        depth: int,
        parts: list[str | tuple[Tok, ...]],
        buf: list[str],
    ) -> int:
        if depth >= MAX_DEPTH // 4:
            return -1
        inner, end = self.lex(pos, stop, depth + 1)
        parts.append("".join(buf))
        buf.clear()
        parts.append(tuple(t for t in inner if t.kind != "nl"))
        return end

    def _escape(self, i: int) -> tuple[str, int, bool]:
        text, lang = self.text, self.lang
        nxt = text[i + 1 : i + 2]
        if nxt == "u":
            if lang == SWIFT and text.startswith("{", i + 2):
                close = text.find("}", i + 3)
                digits = text[i + 3 : close] if close > 0 else ""
                end = close + 1
            else:
                j = i + 2
                while lang == JAVA and text.startswith("u", j):
                    j += 1  # Java allows \uuuu0041
                digits, end = text[j : j + 4], j + 4
            if re.fullmatch(r"[0-9A-Fa-f]{1,8}", digits) and int(digits, 16) <= 0x10FFFF:
                return chr(int(digits, 16)), end, True
            return "", i + 2, False
        if lang in (JAVA, OBJC, SWIFT) and nxt and nxt in "01234567" and lang != SWIFT:
            m = re.match(r"[0-7]{1,3}", text[i + 1 : i + 4])
            assert m is not None
            return chr(int(m.group(), 8)), i + 1 + len(m.group()), True
        table = _KOTLIN_ESC if lang == KOTLIN else _C_ESC
        if nxt in table:
            return table[nxt], i + 2, True
        if nxt == "\n" and lang != KOTLIN:  # a line continuation
            return "", i + 2, True
        return nxt, i + 2, False


def tokenize(text: str, lang: str) -> list[Tok]:
    return _Lexer(text, lang).lex(0, None, 0)[0]


# --- values -----------------------------------------------------------------------


@dataclass(frozen=True)
class Str:
    text: str
    where: Location
    srcs: frozenset[int] = frozenset()  # start offsets of the literals it is made of


@dataclass(frozen=True)
class Lst:
    items: tuple[Value, ...]
    where: Location
    srcs: frozenset[int] = frozenset()


@dataclass(frozen=True)
class Dct:
    entries: tuple[tuple[Value, Value], ...]
    where: Location
    srcs: frozenset[int] = frozenset()


@dataclass(frozen=True)
class Bool:
    value: bool
    where: Location
    srcs: frozenset[int] = frozenset()


@dataclass(frozen=True)
class Num:
    value: int
    where: Location
    srcs: frozenset[int] = frozenset()


@dataclass(frozen=True)
class Unknown:
    """What cannot be evaluated: the expression as written and why."""

    text: str
    reason: str
    where: Location
    srcs: frozenset[int] = frozenset()

    def describe(self) -> str:
        return f"`{self.text}`: {self.reason}"


Value = Str | Lst | Dct | Bool | Num | Unknown


def key_of(value: Value) -> object:
    """What two values compare on (the same constant written twice is one value)."""
    if isinstance(value, Str):
        return ("s", value.text)
    if isinstance(value, Lst):
        return ("l", tuple(key_of(v) for v in value.items))
    if isinstance(value, Dct):
        return ("d", tuple((key_of(k), key_of(v)) for k, v in value.entries))
    if isinstance(value, (Bool, Num)):
        return (type(value).__name__, value.value)
    return ("u", value.text, value.reason)


def flatten(values: list[Value]) -> Iterator[Value]:
    """Lists expanded (vararg/spread), everything else as is."""
    for value in values:
        if isinstance(value, Lst):
            yield from flatten(list(value.items))
        else:
            yield value


# --- the source -------------------------------------------------------------------


@dataclass
class Source:
    """One source file: its tokens, brackets, declared names and their values."""

    data: bytes
    name: str
    lang: str
    text: str = ""
    toks: list[Tok] = field(default_factory=list)
    close_of: dict[int, int] = field(default_factory=dict)
    parent: list[int] = field(default_factory=list)
    decls: dict[str, list[int]] = field(default_factory=dict)
    types: set[str] = field(default_factory=set)
    mutated: set[str] = field(default_factory=set)
    _lines: list[int] = field(default_factory=list)
    _memo: dict[int, Value] = field(default_factory=dict)
    _busy: set[int] = field(default_factory=set)
    outer: Source | None = None  # a template's expression: names are the file's
    _depth: int = 0  # expressions being evaluated, nested

    def __post_init__(self) -> None:
        if self.outer is not None:
            return
        self.text = decode_text(self.data, self.name)
        self._lines = [0] + [m.end() for m in re.finditer("\n", self.text)]
        try:
            self.toks = tokenize(self.text, self.lang)
        except TooLarge as exc:
            raise ClientConfigError(
                self.at(exc.offset),
                f"refused: more than {MAX_TOKENS} tokens: too large to read as a pin configuration",
            ) from None
        self._brackets()
        self._declarations()

    # positions

    def at(self, offset: int) -> Location:
        line = bisect.bisect_right(self._lines, offset)
        return Location(self.name, line, offset - self._lines[line - 1] + 1)

    def loc(self, i: int) -> Location:
        return self.at(self.toks[i].start if i < len(self.toks) else len(self.text))

    def tok(self, i: int) -> Tok | None:
        return self.toks[i] if 0 <= i < len(self.toks) else None

    def is_op(self, i: int, *ops: str) -> bool:
        t = self.tok(i)
        return t is not None and t.kind == "op" and t.text in ops

    def is_ident(self, i: int, *names: str) -> bool:
        t = self.tok(i)
        return t is not None and t.kind == "ident" and (not names or t.text in names)

    def skip_nl(self, i: int) -> int:
        while i < len(self.toks) and self.toks[i].kind == "nl":
            i += 1
        return i

    def back(self, i: int) -> int:
        """The index of the previous token that is not a newline (-1: none)."""
        i -= 1
        while i >= 0 and self.toks[i].kind == "nl":
            i -= 1
        return i

    def snippet(self, a: int, b: int) -> str:
        """The source text of tokens a..b-1, on one line, shortened."""
        if a >= b or a >= len(self.toks):
            return ""
        text = self.text[self.toks[a].start : self.toks[min(b, len(self.toks)) - 1].end]
        text = " ".join(text.split())
        return text if len(text) <= 80 else text[:77] + "..."

    # structure

    def _brackets(self) -> None:
        stack: list[int] = []
        parent = [-1] * len(self.toks)
        for i, t in enumerate(self.toks):
            parent[i] = stack[-1] if stack else -1
            if t.kind != "op":
                continue
            if t.text in _OPEN:
                stack.append(i)
            elif t.text in _CLOSE:
                for depth in range(len(stack) - 1, -1, -1):
                    if _OPEN[self.toks[stack[depth]].text] == t.text:
                        self.close_of[stack[depth]] = i
                        del stack[depth:]
                        break
        self.parent = parent

    def close(self, i: int) -> int:
        """The index of the bracket closing the one at `i` (the end when unclosed)."""
        return self.close_of.get(i, len(self.toks))

    def _declarations(self) -> None:
        toks = self.toks
        for i, t in enumerate(toks):
            if t.kind != "ident":
                continue
            prev = self.back(i)
            prev_tok = self.tok(prev)
            if prev_tok is not None and prev_tok.text in _TYPE_KEYWORDS:
                self.types.add(t.text)
            if prev_tok is not None and prev_tok.text == "define" and self.is_op(prev - 1, "#"):
                self.decls.setdefault(t.text, []).append(i + 1)
                continue
            nxt = i + 1
            if (
                prev_tok is not None
                and prev_tok.text in ("val", "var", "let")
                and self.is_op(nxt, ":")
            ):
                nxt = self._skip_type(nxt + 1)
            if not self.is_op(nxt, "=", "+="):
                if self.is_op(nxt, ".", "?.") and self.is_ident(nxt + 1, *_MUTATORS):
                    if self.is_op(nxt + 2, "("):
                        self.mutated.add(t.text)
                elif self.is_op(nxt, "[") and self.is_op(self.close(nxt) + 1, "="):
                    self.mutated.add(t.text)
                continue
            if self.is_op(nxt, "+="):
                self.mutated.add(t.text)
                continue
            if self.parent[i] >= 0 and self.toks[self.parent[i]].text in ("(", "@("):
                continue  # a named argument, a default parameter value, a for (...) header
            if (
                prev_tok is not None
                and prev_tok.text in (".", "?.")
                and not self.is_ident(prev - 1, "this", "self")
            ):
                continue  # a field of something else
            self.decls.setdefault(t.text, []).append(self.skip_nl(nxt + 1))

    def _skip_type(self, i: int) -> int:
        """After ``name:``, the index of ``=`` (or of what ends the declaration)."""
        angle = 0
        while i < len(self.toks):
            t = self.toks[i]
            if t.kind == "op" and t.text in ("(", "[", "@[", "@{", "@("):
                i = self.close(i) + 1
                continue
            if t.kind == "op" and t.text == "<":
                angle += 1
            elif t.kind == "op" and t.text == ">":
                angle -= 1
            elif angle <= 0 and (
                (t.kind == "op" and t.text in ("=", ";", "{", "}", ")"))
                or t.kind == "nl"
                or (t.kind == "ident" and t.text in ("by", "get"))
            ):
                return i
            i += 1
        return i

    # evaluation

    def value_of(self, name: str, use: int, env: dict[str, Value] | None = None) -> Value:
        """The value a name stands for at token `use`."""
        return (self.outer or self).lookup(name, self.loc(use), env)

    def lookup(self, name: str, where: Location, env: dict[str, Value] | None = None) -> Value:
        if env and name in env:
            return env[name]
        if name in TRUSTKIT_CONSTANTS and name not in self.decls:
            return Str(TRUSTKIT_CONSTANTS[name], where)
        starts = self.decls.get(name)
        if not starts:
            return Unknown(name, f"`{name}` is not defined in this file", where)
        if name in self.mutated:
            return Unknown(name, f"`{name}` is changed at run time", where)
        values = [self._value_at(s) for s in starts]
        distinct = {key_of(v): v for v in values}
        if len(distinct) > 1:
            lines = sorted({self.loc(s).line for s in starts})
            shown = ", ".join(str(n) for n in lines)
            return Unknown(name, f"`{name}` is assigned more than once (lines {shown})", where)
        return values[0]

    def _value_at(self, start: int) -> Value:
        found = self._memo.get(start)
        if found is not None:
            return found
        if start in self._busy:
            return Unknown(
                self.snippet(start, start + 1), "defined in terms of itself", self.loc(start)
            )
        self._busy.add(start)
        try:
            value, end = self.expr(start, {}, 0, nested=False)
            if not self._ends_declaration(end):
                stop = self._statement_end(start)
                value = Unknown(
                    self.snippet(start, stop),
                    "an expression pinaudit does not evaluate",
                    self.loc(start),
                    _srcs(value),
                )
        finally:
            self._busy.discard(start)
        self._memo[start] = value
        return value

    def _ends_declaration(self, i: int) -> bool:
        t = self.tok(i)
        return t is None or t.kind == "nl" or (t.kind == "op" and t.text in (";", "}", ")", ","))

    def _statement_end(self, i: int) -> int:
        while i < len(self.toks):
            t = self.toks[i]
            if t.kind == "op" and t.text in _OPEN:
                i = self.close(i) + 1
                continue
            if t.kind == "nl" or (t.kind == "op" and t.text in (";", "}", ")")):
                return i
            i += 1
        return i

    def evaluate(self, a: int, b: int, env: dict[str, Value] | None = None) -> Value:
        """The value of tokens a..b-1, which must form one expression."""
        a = self.skip_nl(a)
        if a >= b:
            return Unknown("", "nothing written", self.loc(a))
        value, end = self.expr(a, env or {}, 0, nested=True)
        if self.skip_nl(end) < b:
            return Unknown(
                self.snippet(a, b),
                "an expression pinaudit does not evaluate",
                self.loc(a),
                _srcs(value),
            )
        return value

    def evaluate_slice(self, a: int, b: int, env: dict[str, Value] | None = None) -> Value:
        """Like :meth:`evaluate`, for tokens that a longer expression continues past."""
        part = tuple(t for t in self.toks[a:b] if t.kind != "nl")
        if not part:
            return Unknown("", "nothing written", self.loc(a))
        return self.template(part).evaluate(0, len(part), env)

    def _next(self, i: int, nested: bool) -> int:
        return self.skip_nl(i) if nested or self.lang in (JAVA, OBJC) else i

    def expr(self, i: int, env: dict[str, Value], depth: int, *, nested: bool) -> tuple[Value, int]:
        root = self.outer or self
        if depth > MAX_DEPTH or root._depth > MAX_DEPTH:
            end = self._statement_end(i) if not nested else i + 1
            return Unknown(self.snippet(i, i + 1), "nested too deeply", self.loc(i)), end
        root._depth += 1
        try:
            return self._expr(i, env, depth, nested)
        finally:
            root._depth -= 1

    def _expr(self, i: int, env: dict[str, Value], depth: int, nested: bool) -> tuple[Value, int]:
        value, i = self.term(i, env, depth + 1, nested)
        while True:
            j = self._next(i, nested)
            t = self.tok(j)
            if t is not None and t.kind == "op" and t.text == "+":
                other, i = self.term(self.skip_nl(j + 1), env, depth + 1, nested)
                value = _concat(value, other)
                continue
            if self.lang == OBJC and t is not None and t.kind == "str" and isinstance(value, Str):
                other, i = self.term(j, env, depth + 1, nested)  # "a" @"b": one literal
                value = _concat(value, other)
                continue
            return value, i

    def term(self, i: int, env: dict[str, Value], depth: int, nested: bool) -> tuple[Value, int]:
        i = self.skip_nl(i) if nested else i
        t = self.tok(i)
        where = self.loc(i)
        if t is None:
            return Unknown("", "nothing written", where), i
        value: Value
        first = i
        if t.kind == "op" and t.text in ("*", "+") and self.lang == KOTLIN:
            return self.term(i + 1, env, depth + 1, nested)  # spread / unary plus
        if t.kind == "str":
            value, i = self._string(t, env, depth), i + 1
        elif t.kind == "num":
            number = re.match(r"[0-9]+", t.text)
            value = Num(int(number.group()) if number else 0, where)
            i += 1
        elif t.kind == "op" and t.text in ("(", "@("):
            end = self.close(i)
            value, i = self.evaluate(i + 1, end, env), end + 1
        elif (t.kind == "op" and t.text in ("@[", "@{")) or (
            t.kind == "op" and t.text == "[" and self.lang == SWIFT
        ):
            value, i = self._collection(i, env), self.close(i) + 1
        elif t.kind == "op" and t.text == "{" and self.lang == JAVA:
            value, i = self._collection(i, env), self.close(i) + 1  # String[] X = {...}
        elif t.kind == "op" and t.text == "@" and self.is_ident(i + 1):
            word = self.toks[i + 1].text
            value = _boolean(word, where) or Unknown("@" + word, "not a literal", where)
            i += 2
        elif t.kind == "op" and t.text == "@" and self.tok(i + 1) is not None:
            value, i = self.term(i + 1, env, depth + 1, nested)  # @1, @"x"
        elif t.kind == "ident":
            value, i = self._name(i, env, depth, nested)
        elif t.kind == "op" and t.text == "[":
            end = self.close(i)
            value = Unknown(self.snippet(i, end + 1), "an Objective-C message", where)
            i = end + 1
        else:
            return Unknown(t.text, "not a value", where), i + 1
        return self._postfix(value, first, i, nested)

    def _postfix(self, value: Value, first: int, i: int, nested: bool) -> tuple[Value, int]:
        while True:
            j = self.skip_nl(i)
            t = self.tok(j)
            if t is None:
                return value, i
            if t.kind == "op" and t.text == "!!":
                i = j + 1
                continue
            if t.kind == "ident" and t.text == "as" and self.lang in (SWIFT, KOTLIN):
                k = j + 1
                if self.is_op(k, "!", "?"):
                    k += 1
                i = self._skip_cast(k)
                continue
            # a chained call on the next line continues the expression (Kotlin, Swift)
            chained = t.kind == "op" and t.text in (".", "?.")
            if j != i and not nested and self.lang in (KOTLIN, SWIFT) and not chained:
                return value, i
            if t.kind == "op" and t.text in (".", "?.") and self.is_ident(j + 1):
                name = self.toks[j + 1].text
                k = j + 2
                args_end = k
                if self.is_op(k, "("):
                    args_end = self.close(k) + 1
                    if name in _IDENTITY_CALLS and args_end == k + 2:
                        i = args_end
                        continue
                    if name == "trim" and args_end == k + 2 and isinstance(value, Str):
                        value = Str(value.text.strip(), value.where, value.srcs)
                        i = args_end
                        continue
                if self.is_op(args_end, "{"):
                    args_end = self.close(args_end) + 1
                shown = self.snippet(first, args_end)
                why = f"computed by `{shown}`" if args_end > k else f"computed by `.{name}`"
                if isinstance(value, Unknown) and (
                    args_end == k or "BuildConfig" in value.reason or "loop" in value.reason
                ):
                    why = value.reason
                value = Unknown(shown, why, value.where, value.srcs)
                i = args_end
                continue
            if j != i:
                return value, i
            if t.kind == "op" and t.text in ("[", "("):
                end = self.close(j)
                why = value.reason if isinstance(value, Unknown) else "computed at run time"
                shown = self.snippet(first, end + 1)
                return Unknown(shown, why, value.where, value.srcs), end + 1
            return value, i

    def _skip_cast(self, i: int) -> int:
        if self.is_op(i, "[", "("):
            return self.close(i) + 1
        while self.is_ident(i):
            i += 1
            if self.is_op(i, "<"):
                depth = 0
                while i < len(self.toks):
                    if self.is_op(i, "<"):
                        depth += 1
                    elif self.is_op(i, ">"):
                        depth -= 1
                        if depth == 0:
                            i += 1
                            break
                    i += 1
            if self.is_op(i, "?", "!"):
                i += 1
            if self.is_op(i, ".") and self.is_ident(i + 1):
                i += 1
                continue
            break
        return i

    def _string(self, t: Tok, env: dict[str, Value], depth: int) -> Value:
        where = self.at(t.start)
        srcs = frozenset({t.start})
        if not t.ok:
            return Unknown(t.text, "a string literal pinaudit cannot read", where, srcs)
        pieces: list[str] = []
        for part in t.parts:
            if isinstance(part, str):
                pieces.append(part)
                continue
            if not part:
                return Unknown(t.text, "an empty template", where, srcs)
            inner = self.template(part)
            value, end = inner.expr(0, env, depth + 1, nested=True)
            if end < len(part) or not isinstance(value, Str):
                reason = value.reason if isinstance(value, Unknown) else "not a string"
                shown = self.text[part[0].start : part[-1].end]
                return Unknown(t.text, f"its template `{shown}`: {reason}", where, srcs)
            pieces.append(value.text)
            srcs |= value.srcs
        return Str("".join(pieces), where, srcs)

    def template(self, part: tuple[Tok, ...]) -> Source:
        """A template expression's tokens, evaluated with the file's names."""
        outer = self.outer or self
        inner = Source(b"", self.name, self.lang, outer=outer)
        inner.text, inner._lines, inner.toks = outer.text, outer._lines, list(part)
        inner.types = outer.types
        inner._brackets()
        return inner

    def _name(self, i: int, env: dict[str, Value], depth: int, nested: bool) -> tuple[Value, int]:
        where = self.loc(i)
        word = self.toks[i].text
        boolean = _boolean(word, where)
        if boolean is not None:
            return boolean, i + 1
        if word == "new" and self.lang == JAVA:
            k = i + 1
            while k < len(self.toks) and not self.is_op(k, "{", "(", ";"):
                k += 1
            if self.is_op(k, "{"):
                return self._collection(k, env), self.close(k) + 1
            end = self.close(k) + 1 if self.is_op(k, "(") else k
            return Unknown(self.snippet(i, end), "an object created at run time", where), end
        names = [word]
        k = i + 1
        while self.is_op(k, ".", "?.", "::") and self.is_ident(k + 1):
            calls = self.is_op(k + 2, "(", "{")
            if calls and (self.toks[k + 1].text not in _LIST_CALLS or len(names) > 1):
                break
            names.append(self.toks[k + 1].text)
            k += 2
        qualified = ".".join(names)
        if self.is_op(k, "<") and names[-1] in _LIST_CALLS:
            k = self._skip_generics(k)
        if self.is_op(k, "("):
            end = self.close(k)
            callee = names[-1]
            if callee in _LIST_CALLS and (len(names) == 1 or names[0] in ("Arrays", "List", "Set")):
                items = self._items(k, end, env)
                return Lst(tuple(items), where, _srcs_all(items)), end + 1
            if callee == "NSNumber" and self.lang == SWIFT:
                inner = self.evaluate(self._after_label(k + 1, end), end, env)
                if isinstance(inner, (Bool, Num)):
                    return inner, end + 1
            return (
                Unknown(self.snippet(i, end + 1), f"computed by `{qualified}(…)`", where),
                end + 1,
            )
        if len(names) == 1:
            return self.value_of(word, i, env), k
        head, last = names[0], names[-1]
        if "BuildConfig" in names[:-1]:
            return Unknown(qualified, "generated by the build (BuildConfig)", where), k
        known = head in ("this", "self", "Self") or head in self.types
        if known and (len(names) == 2 or all(n in self.types for n in names[:-1])):
            return self.value_of(last, i, env), k
        return Unknown(qualified, f"`{qualified}` is not defined in this file", where), k

    def _skip_generics(self, i: int) -> int:
        depth = 0
        while i < len(self.toks):
            if self.is_op(i, "<"):
                depth += 1
            elif self.is_op(i, ">"):
                depth -= 1
                if depth == 0:
                    return i + 1
            elif self.tok(i) is not None and self.toks[i].kind == "nl":
                return i
            i += 1
        return i

    def _after_label(self, i: int, end: int) -> int:
        i = self.skip_nl(i)
        if self.is_ident(i) and self.is_op(i + 1, ":") and i + 1 < end:
            return i + 2
        return i

    def _items(self, open_i: int, close_i: int, env: dict[str, Value]) -> list[Value]:
        return [self.evaluate(a, b, env) for a, b in self.split(open_i, close_i)]

    def split(self, open_i: int, close_i: int, sep: str = ",") -> list[tuple[int, int]]:
        """Top-level ranges between separators inside brackets (empty ones dropped)."""
        ranges: list[tuple[int, int]] = []
        start = open_i + 1
        i = start
        while i < close_i:
            t = self.toks[i]
            if t.kind == "op" and t.text in _OPEN:
                i = self.close(i) + 1
                continue
            if t.kind == "op" and t.text == sep:
                ranges.append((start, i))
                start = i + 1
            i += 1
        ranges.append((start, close_i))
        return [(a, b) for a, b in ranges if self.skip_nl(a) < b]

    def _collection(self, open_i: int, env: dict[str, Value]) -> Value:
        where = self.loc(open_i)
        close_i = self.close(open_i)
        opener = self.toks[open_i].text
        ranges = self.split(open_i, close_i)
        is_dict = opener == "@{" or (
            opener == "[" and any(self._colon(a, b) is not None for a, b in ranges)
        )
        if opener == "[" and self.is_op(self.skip_nl(open_i + 1), ":"):
            return Dct((), where)  # [:]
        if not is_dict:
            items = [self.evaluate(a, b, env) for a, b in ranges]
            return Lst(tuple(items), where, _srcs_all(items))
        entries: list[tuple[Value, Value]] = []
        for a, b in ranges:
            colon = self._colon(a, b)
            if colon is None:
                bad = Unknown(self.snippet(a, b), "not a key: value entry", self.loc(a))
                entries.append((bad, bad))
                continue
            entries.append((self.evaluate(a, colon, env), self.evaluate(colon + 1, b, env)))
        srcs: frozenset[int] = frozenset()
        for k, v in entries:
            srcs |= _srcs(k) | _srcs(v)
        return Dct(tuple(entries), where, srcs)

    def _colon(self, a: int, b: int) -> int | None:
        i = a
        while i < b:
            t = self.toks[i]
            if t.kind == "op" and t.text in _OPEN:
                i = self.close(i) + 1
                continue
            if t.kind == "op" and t.text == ":":
                return i
            i += 1
        return None

    def string_literals(self) -> Iterator[tuple[Tok, str]]:
        """Every string literal of the file (outside comments) with its literal text."""
        for t in self.toks:
            if t.kind == "str":
                yield t, "".join(p for p in t.parts if isinstance(p, str))


def _boolean(word: str, where: Location) -> Bool | None:
    if word in _TRUE:
        return Bool(True, where)
    if word in _FALSE:
        return Bool(False, where)
    return None


def _srcs(value: Value) -> frozenset[int]:
    return value.srcs


def _srcs_all(values: list[Value]) -> frozenset[int]:
    out: frozenset[int] = frozenset()
    for v in values:
        out |= v.srcs
    return out


def _concat(a: Value, b: Value) -> Value:
    srcs = a.srcs | b.srcs
    if isinstance(a, Str) and isinstance(b, Str):
        return Str(a.text + b.text, a.where, srcs)
    if isinstance(a, Lst) and isinstance(b, Lst):
        return Lst(a.items + b.items, a.where, srcs)
    if isinstance(a, Lst) and isinstance(b, Str):
        return Lst((*a.items, b), a.where, srcs)
    unknown = a if isinstance(a, Unknown) else b if isinstance(b, Unknown) else None
    if unknown is not None:
        return Unknown(unknown.text, unknown.reason, unknown.where, srcs)
    return Unknown("+", "adds values that are not strings", a.where, srcs)
