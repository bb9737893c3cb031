"""OkHttp ``CertificatePinner`` pins (pinning-semantics §1), from Kotlin/Java
source or from a plain ``pattern: pins`` list.

Source files are read, not run: every ``.add(pattern, pin, ...)`` call whose
arguments are string literals (or constants of the same file assigned a plain
string literal) is one entry, also when split over lines; comments are
skipped. An argument that cannot be evaluated is reported, never guessed.
What ``CertificatePinner.Builder.add`` would throw on (a bad pattern, a pin
without ``sha256/``/``sha1/``, undecodable base64) is a fatal problem: the
client cannot be built. What it accepts but can never match (a digest of the
wrong length) is kept as a dead pin.

What the builder accepts and the messages it throws depend on the OkHttp
major version (``scanner.hostnames``): pass ``version`` when it is known.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from scanner.hostnames import PatternError, parse_okhttp_pattern
from scanner.importers._common import (
    Collector,
    canonical_base64,
    decode_text,
    line_column,
    stem_name,
)
from scanner.model import (
    DEFAULT_OKHTTP_VERSION,
    Client,
    ClientPolicy,
    HashAlg,
    Location,
    Pin,
    PolicyRule,
)
from scanner.pins import okio_base64

__all__ = [
    "SOURCE_SUFFIXES",
    "parse_okhttp",
    "parse_okhttp_list",
    "parse_okhttp_pin",
    "parse_okhttp_source",
]

SOURCE_SUFFIXES = (".kt", ".kts", ".java")


@dataclass(frozen=True)
class _Arg:
    value: str | None  # None: not a string literal or known constant
    text: str  # as written
    location: Location


def parse_okhttp_pin(
    text: str, version: int = DEFAULT_OKHTTP_VERSION
) -> tuple[Pin | None, str | None, str | None]:
    """(pin, dead-pin spelling, error) for one pin string as OkHttp `version` reads
    it (an undecodable one: ``pins must be base64:`` before 4.6, ``Invalid pin
    hash:`` since)."""
    if text.startswith("sha256/"):
        alg, body = HashAlg.SHA256, text[7:]
    elif text.startswith("sha1/"):
        alg, body = HashAlg.SHA1, text[5:]
    else:
        return None, None, f"pins must start with 'sha256/' or 'sha1/': {text}"
    digest = okio_base64(body)
    if digest is None:
        if version < 4:
            return None, None, f"pins must be base64: {text}"
        return None, None, f"Invalid pin hash: {text}"
    if len(digest) != alg.digest_size:
        return None, text, None
    return Pin(alg, digest), None, None


def _order(written: list[str], good: tuple[Pin, ...], dead: tuple[str, ...]) -> tuple[str, ...]:
    """The pins as written when their order is not "live pins, then dead ones"
    (the order OkHttp's failure message lists them in); () otherwise."""
    keys: dict[tuple[str, bytes], None] = {}
    for text in written:
        alg, _, body = text.partition("/")
        keys.setdefault((alg, okio_base64(body) or b""))
    default = [(p.alg.value, p.digest) for p in good]
    for text in dead:
        alg, _, body = text.partition("/")
        default.append((alg, okio_base64(body) or b""))
    return () if list(keys) == default else tuple(written)


class _Entries:
    """Pins per pattern, in the order OkHttp's builder would get them."""

    def __init__(self, source: str, version: int | None) -> None:
        self.out = Collector(source)
        self.rules: list[PolicyRule] = []
        self.version = version
        self.major = version or DEFAULT_OKHTTP_VERSION

    def add(self, pattern: _Arg, pins: list[_Arg]) -> None:
        if pattern.value is None:
            self.out.problem(
                pattern.location, f"cannot evaluate the pattern {pattern.text!r}: skipped"
            )
            return
        try:
            host, mode = parse_okhttp_pattern(pattern.value, self.major)
        except PatternError as exc:
            self.out.problem(pattern.location, str(exc))
            return
        good: dict[Pin, None] = {}
        dead: list[str] = []
        written: list[str] = []
        for arg in pins:
            if arg.value is None:
                self.out.problem(arg.location, f"cannot evaluate the pin {arg.text!r}: skipped")
                continue
            pin, dead_pin, error = parse_okhttp_pin(arg.value, self.major)
            if error is not None:
                self.out.problem(arg.location, error)
                continue
            written.append(arg.value)
            if dead_pin is not None:
                body = dead_pin.split("/", 1)[1]
                self.out.note(
                    arg.location,
                    f"dead pin {dead_pin}: OkHttp accepts it but it can never match "
                    f"(decodes to {len(okio_base64(body) or b'')} bytes)",
                )
                dead.append(dead_pin)
            elif pin is not None:
                body = arg.value.split("/", 1)[1]
                if not canonical_base64(body):
                    self.out.note(
                        arg.location,
                        f"non-canonical base64 in {arg.value}: OkHttp matches it, "
                        "Android and iOS would not read it",
                    )
                good.setdefault(pin)
        if not pins:
            self.out.note(pattern.location, f"{pattern.value}: no pins given")
        self.rules.append(
            PolicyRule(
                host=host,
                mode=mode,
                pins=tuple(good),
                dead_pins=tuple(dead),
                label=pattern.value,
                written_pins=_order(written, tuple(good), tuple(dead)),
                location=pattern.location,
            )
        )

    def policy(self, name: str, source: str) -> ClientPolicy:
        return ClientPolicy(
            name=name,
            client=Client.OKHTTP,
            rules=tuple(self.rules),
            okhttp_version=self.version,
            problems=tuple(self.out.problems),
            notes=tuple(self.out.notes),
            source=source,
            location=Location(source, 1, 1),
        )


# --- Kotlin / Java source -------------------------------------------------------

_TOKEN = re.compile(
    r'(?P<raw>"""(?:.|\n)*?""")'
    r'|(?P<str>"(?:[^"\\\n]|\\.)*")'
    r"|(?P<char>'(?:[^'\\\n]|\\.)*')"
    r"|(?P<line>//[^\n]*)"
    r"|(?P<block>/\*(?:.|\n)*?\*/)"
    r"|(?P<ident>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<ws>\s+)"
    r"|(?P<op>.)",
)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", '"': '"', "'": "'", "\\": "\\", "$": "$"}


@dataclass(frozen=True)
class _Tok:
    kind: str  # "str", "ident", "op"
    value: str
    text: str
    index: int


def _unescape(body: str) -> str | None:
    """A Kotlin/Java string literal's value; None when it has a template (``$x``)."""
    out: list[str] = []
    i = 0
    while i < len(body):
        c = body[i]
        if c == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            if nxt == "u" and i + 6 <= len(body):
                out.append(chr(int(body[i + 2 : i + 6], 16)))
                i += 6
                continue
            out.append(_ESCAPES.get(nxt, nxt))
            i += 2
            continue
        if c == "$" and i + 1 < len(body) and (body[i + 1] == "{" or body[i + 1].isalpha()):
            return None
        out.append(c)
        i += 1
    return "".join(out)


def _tokens(text: str) -> Iterator[_Tok]:
    for match in _TOKEN.finditer(text):
        kind = match.lastgroup or "op"
        raw = match.group()
        if kind in ("ws", "line", "block", "char"):
            continue
        if kind == "raw":
            yield _Tok("str", raw[3:-3], raw, match.start())
        elif kind == "str":
            value = _unescape(raw[1:-1])
            yield _Tok("str" if value is not None else "template", value or "", raw, match.start())
        else:
            yield _Tok(kind, raw, raw, match.start())


def _constants(tokens: list[_Tok]) -> dict[str, str]:
    """NAME = "literal" (Kotlin val/const val, Java static final String)."""
    found: dict[str, str] = {}
    for i in range(len(tokens) - 2):
        name, eq, value = tokens[i], tokens[i + 1], tokens[i + 2]
        if name.kind == "ident" and eq.text == "=" and value.kind == "str":
            after = tokens[i + 3] if i + 3 < len(tokens) else None
            if after is None or after.text in (";", ")", "}") or after.kind == "ident":
                found.setdefault(name.value, value.value)
    return found


def _split_args(tokens: list[_Tok], start: int) -> tuple[list[list[_Tok]], int]:
    """Arguments of the call whose "(" is at `start`; returns (args, index after ")")."""
    args: list[list[_Tok]] = [[]]
    depth = 0
    i = start + 1
    while i < len(tokens):
        tok = tokens[i]
        if tok.text in "([{" and tok.kind == "op":
            depth += 1
        elif tok.text in ")]}" and tok.kind == "op":
            if depth == 0:
                return ([] if args == [[]] else args), i + 1
            depth -= 1
        elif tok.text == "," and tok.kind == "op" and depth == 0:
            args.append([])
            i += 1
            continue
        args[-1].append(tok)
        i += 1
    return args, i


def _evaluate(arg: list[_Tok], constants: dict[str, str]) -> str | None:
    """A string literal, a constant, or a concatenation of them with +."""
    parts: list[str] = []
    expect_value = True
    for tok in arg:
        if expect_value:
            if tok.kind == "str":
                parts.append(tok.value)
            elif tok.kind == "ident" and tok.value in constants:
                parts.append(constants[tok.value])
            else:
                return None
        elif tok.text != "+":
            return None
        expect_value = not expect_value
    return "".join(parts) if parts and not expect_value else None


def _looks_like_pin(arg: list[_Tok], constants: dict[str, str]) -> bool:
    value = _evaluate(arg, constants)
    return value is not None and re.match(r"[A-Za-z0-9-]+/", value) is not None


def parse_okhttp_source(
    data: bytes, source: str, *, name: str | None = None, version: int | None = None
) -> ClientPolicy:
    """``CertificatePinner.Builder().add(...)`` calls of a Kotlin or Java file."""
    text = decode_text(data, source)
    entries = _Entries(source, version)
    tokens = list(_tokens(text))
    constants = _constants(tokens)

    def where(tok: _Tok) -> Location:
        line, column = line_column(text, tok.index)
        return Location(source, line, column)

    if not any(t.kind == "ident" and t.value == "CertificatePinner" for t in tokens):
        entries.out.note(Location(source, 1, 1), "no CertificatePinner in this file")
    i = 0
    while i < len(tokens) - 2:
        dot, ident, paren = tokens[i], tokens[i + 1], tokens[i + 2]
        if not (dot.text == "." and ident.kind == "ident" and ident.value == "add"):
            i += 1
            continue
        if paren.text != "(":
            i += 1
            continue
        args, after = _split_args(tokens, i + 2)
        # an entry: a pattern, then pins (strings shaped "alg/..."): other .add() calls are not
        if len(args) >= 2 and all(_looks_like_pin(a, constants) for a in args[1:] if a):
            converted = [
                _Arg(_evaluate(a, constants), " ".join(t.text for t in a), where(a[0]))
                for a in args
                if a
            ]
            entries.add(converted[0], converted[1:])
            i = after
            continue
        if len(args) >= 2 and any(_looks_like_pin(a, constants) for a in args[1:] if a):
            for arg in args[1:]:
                if arg and not _looks_like_pin(arg, constants):
                    shown = " ".join(t.text for t in arg)
                    entries.out.problem(where(arg[0]), f"cannot evaluate the pin {shown!r}")
        i += 1
    return entries.policy(name or stem_name(source), source)


# --- plain list -------------------------------------------------------------------

_LIST_LINE = re.compile(r"^(\S+?):(?:\s+(.*))?$")


def parse_okhttp_list(
    data: bytes, source: str, *, name: str | None = None, version: int | None = None
) -> ClientPolicy:
    """``pattern: pin, pin`` lines (``#`` comments); indented lines or ``- pin``
    lines add pins to the pattern above."""
    text = decode_text(data, source)
    entries = _Entries(source, version)
    current: tuple[_Arg, list[_Arg]] | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split(" #", 1)[0].rstrip() if not raw.lstrip().startswith("#") else ""
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        body = line.strip()
        if indent or body.startswith("- "):
            if current is None:
                entries.out.problem(Location(source, number, indent + 1), "pin before any pattern")
                continue
            item = body[2:].strip() if body.startswith("- ") else body
            column = raw.find(item) + 1
            current[1].extend(_list_pins(item, source, number, column))
            continue
        match = _LIST_LINE.match(body)
        if current is not None:
            entries.add(*current)
            current = None
        if match is None:
            entries.out.problem(
                Location(source, number, 1), f"expected 'pattern: pins', got {body!r}"
            )
            continue
        pattern = _Arg(match[1], match[1], Location(source, number, 1))
        pins: list[_Arg] = []
        if match[2]:
            pins = _list_pins(match[2], source, number, raw.find(match[2]) + 1)
        current = (pattern, pins)
    if current is not None:
        entries.add(*current)
    return entries.policy(name or stem_name(source), source)


def _list_pins(text: str, source: str, line: int, column: int) -> list[_Arg]:
    found: list[_Arg] = []
    offset = 0
    for part in text.split(","):
        value = part.strip().strip('"').strip("'")
        if value:
            found.append(_Arg(value, value, Location(source, line, column + offset)))
        offset += len(part) + 1
    return found


def parse_okhttp(
    data: bytes, source: str, *, name: str | None = None, version: int | None = None
) -> ClientPolicy:
    """Source (by the file's suffix) or a plain list, as OkHttp `version` reads it
    (None: the default version, not recorded in the policy)."""
    if source.lower().endswith(SOURCE_SUFFIXES):
        return parse_okhttp_source(data, source, name=name, version=version)
    return parse_okhttp_list(data, source, name=name, version=version)
