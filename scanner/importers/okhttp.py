"""OkHttp ``CertificatePinner`` pins (pinning-semantics §1), from Kotlin/Java
source or from a plain ``pattern: pins`` list.

Source files are read, not run (``scanner.importers._code``): the ``add``
calls of a ``CertificatePinner.Builder`` — chained, on a variable holding
one, inside ``.apply { }`` / ``with(…) { }`` / ``.also { }`` blocks, in
``for``/``forEach`` loops over same-file lists — with their arguments
evaluated: literals, Kotlin templates, ``+``, same-file constants and local
aliases, lists spread into the vararg. Comments are skipped.

Three outcomes, never a silent drop:

* what ``CertificatePinner.Builder.add`` would throw on (a bad pattern, a pin
  without ``sha256/``/``sha1/``, undecodable base64) is a fatal problem: the
  client cannot be built (CONFIG_ERROR);
* what it accepts but can never match (a digest of the wrong length) is kept
  as a dead pin, with a note;
* what pinaudit cannot evaluate (``BuildConfig``, remote config, another
  file, a loop over something computed) is ``unresolved``: "pins computed at
  run time: not imported", with its file:line — an importer limit, never a
  CONFIG_ERROR. So is every ``sha256/`` literal of the file that no
  evaluated ``add`` call used.

A Kotlin/Java file without ``CertificatePinner`` is not an OkHttp
configuration: ClientConfigError (exit 2).

What the builder accepts and the messages it throws depend on the OkHttp
major version (``scanner.hostnames``): pass ``version`` when it is known.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from scanner.hostnames import PatternError, parse_okhttp_pattern
from scanner.importers._code import (
    KOTLIN,
    Bool,
    Dct,
    Lst,
    Num,
    Source,
    Str,
    Unknown,
    Value,
    flatten,
    language_of,
)
from scanner.importers._common import (
    Collector,
    canonical_base64,
    decode_text,
    lines_of,
    not_the_kind,
    stem_name,
)
from scanner.model import (
    DEFAULT_OKHTTP_VERSION,
    Client,
    ClientPolicy,
    ConfigProblem,
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
    value: str | None  # None: not evaluated (computed at run time)
    text: str  # as written
    location: Location
    why: str = ""  # why it could not be evaluated
    srcs: frozenset[int] = field(default=frozenset(), compare=False)


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

    def __init__(self, source: str, version: int | None = None) -> None:
        self.out = Collector(source)
        self.rules: list[PolicyRule] = []
        self.version = version
        self.major = version or DEFAULT_OKHTTP_VERSION
        self.accounted: set[int] = set()  # literals imported or reported as the client's
        self.pending: dict[int, str] = {}  # literals of calls whose pattern is unknown

    def add(self, pattern: _Arg, pins: list[_Arg]) -> None:
        if pattern.value is None:
            count = len(pins)
            self.out.not_imported(
                pattern.location,
                f"the host pattern `{pattern.text}` of this add() call: {pattern.why}; "
                f"its {count} pin{'s' if count != 1 else ''} "
                f"{'are' if count != 1 else 'is'} not imported",
            )
            line = pattern.location.line
            for arg in pins:
                for src in arg.srcs:
                    self.pending.setdefault(
                        src, f"its add() call (line {line}) has a host pattern computed at run time"
                    )
            return
        self.accounted |= pattern.srcs
        try:
            host, mode = parse_okhttp_pattern(pattern.value, self.major)
        except PatternError as exc:
            self.out.problem(pattern.location, str(exc))
            for arg in pins:
                self.accounted |= arg.srcs
            return
        good: dict[Pin, None] = {}
        dead: list[str] = []
        written: list[str] = []
        for arg in pins:
            if arg.value is None:
                self.out.not_imported(
                    arg.location, f"the pin `{arg.text}` for {pattern.value}: {arg.why}"
                )
                continue
            self.accounted |= arg.srcs
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
                if dead_pin not in dead:
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
        elif all(arg.value is None for arg in pins):
            return  # every pin is computed at run time: no rule rather than an empty one
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
            problems=_unique(self.out.problems),
            notes=_unique(self.out.notes),
            unresolved=_unique(self.out.unresolved),
            source=source,
            location=Location(source, 1, 1),
        )


def _unique(found: list[ConfigProblem]) -> tuple[ConfigProblem, ...]:
    return tuple(dict.fromkeys(found))


# --- Kotlin / Java source -------------------------------------------------------

_PIN_TEXT = re.compile(r"sha(?:256|1)/")
MAX_CALLS = 5000  # add() calls evaluated per file: a bound on CPU, far above any real app
_MAX_BINDINGS = 256
# blocks that change the implicit receiver (`this`): their `add` is not the builder's
_RECEIVER_BLOCKS = {"apply", "run", "buildList", "buildSet", "buildMap", "buildString"}


class _Calls:
    """Where CertificatePinner.Builder.add is called, and the loops around each call."""

    def __init__(self, src: Source) -> None:
        self.src = src
        self.found: set[int] = set()  # index of each call's "("
        self.vars: set[str] = set()
        self.open_of = {close: open_ for open_, close in src.close_of.items()}
        self.starts: dict[int, list[str]] = {}
        for name, starts in src.decls.items():
            for start in starts:
                self.starts.setdefault(start, []).append(name)

    def collect(self) -> list[int]:
        s = self.src
        for i, t in enumerate(s.toks):
            if t.kind != "ident" or t.text != "CertificatePinner":
                continue
            if not (s.is_op(i + 1, ".") and s.is_ident(i + 2, "Builder")):
                continue
            if s.is_op(i + 3, "("):
                start = i - 2 if s.is_op(i - 1, ".") and s.is_ident(i - 2) else i
                start = start - 1 if s.is_ident(start - 1, "new") else start
                last = self.chain(s.close(i + 3) + 1)
                if last != "build":
                    self.vars.update(self.starts.get(start, ()))
                    self.with_block(start, s.close(i + 3))
            elif s.is_ident(i + 3):  # Java: CertificatePinner.Builder name
                self.vars.add(s.toks[i + 3].text)
            prev = s.back(i)
            if s.is_op(prev, ":") and s.is_ident(
                prev - 1
            ):  # Kotlin: name: CertificatePinner.Builder
                self.vars.add(s.toks[prev - 1].text)
        for i, t in enumerate(s.toks):
            if t.kind == "ident" and t.text in self.vars and not s.is_op(s.back(i), ".", "?."):
                self.chain(i + 1)
                self.with_block(i, i)
        for i, t in enumerate(s.toks):
            if (
                t.kind == "ident"
                and t.text == "add"
                and s.is_op(i - 1, ".", "?.")
                and s.is_op(i + 1, "(")
                and i + 1 not in self.found
                and self.pin_shaped(i + 1)
            ):
                self.found.add(i + 1)
        return sorted(self.found)

    def chain(self, i: int) -> str:
        """Follow ``.add(…)``, ``.apply { }``, ``.also { }`` … after a builder; the
        name of the call the chain stops at."""
        s = self.src
        while True:
            j = s.skip_nl(i)
            if not (s.is_op(j, ".", "?.") and s.is_ident(j + 1)):
                return ""
            name, k = s.toks[j + 1].text, j + 2
            if name == "add" and s.is_op(k, "("):
                self.found.add(k)
                i = s.close(k) + 1
            elif name in ("apply", "run") and s.is_op(k, "{"):
                self.implicit(k)
                i = s.close(k) + 1
            elif name in ("also", "let") and s.is_op(k, "{"):
                self.param_block(k)
                i = s.close(k) + 1
            else:
                return name

    def with_block(self, start: int, end: int) -> None:
        """``with(<builder>) { add(…) }``."""
        s = self.src
        if s.is_op(start - 1, "(") and s.is_ident(start - 2, "with"):
            close = s.close(start - 1)
            if close == end + 1 and s.is_op(close + 1, "{"):
                self.implicit(close + 1)

    def implicit(self, open_i: int) -> None:
        s = self.src
        end = s.close(open_i)
        k = open_i + 1
        while k < end:
            t = s.toks[k]
            if t.kind == "op" and t.text == "{" and self.changes_receiver(k):
                k = s.close(k) + 1
                continue
            if t.kind == "ident" and t.text == "add" and s.is_op(k + 1, "("):
                prev = s.back(k)
                if not s.is_op(prev, ".", "?.") or s.is_ident(prev - 1, "this"):
                    self.found.add(k + 1)
            k += 1

    def changes_receiver(self, open_i: int) -> bool:
        s = self.src
        prev = s.back(open_i)
        if s.is_ident(prev) and s.toks[prev].text in _RECEIVER_BLOCKS:
            return True
        if s.is_op(prev, ")") and prev in self.open_of:
            return s.is_ident(s.back(self.open_of[prev]), "with")
        return False

    def param_block(self, open_i: int) -> None:
        s = self.src
        param = self.block_params(open_i)[0] or ["it"]
        for k in range(open_i + 1, s.close(open_i)):
            if (
                s.is_ident(k, *param)
                and s.is_op(k + 1, ".", "?.")
                and s.is_ident(k + 2, "add")
                and s.is_op(k + 3, "(")
            ):
                self.found.add(k + 3)

    def block_params(self, open_i: int) -> tuple[list[str], bool]:
        """The lambda's parameter names, and whether they are destructured."""
        s = self.src
        k = s.skip_nl(open_i + 1)
        if s.is_ident(k):
            j = k + 1
            if s.is_op(j, ":"):
                while j < len(s.toks) and not s.is_op(j, "->") and s.toks[j].kind != "nl":
                    j += 1
            if s.is_op(j, "->"):
                return [s.toks[k].text], False
        if s.is_op(k, "(") and s.is_op(s.close(k) + 1, "->"):
            names = [s.toks[j].text for j in range(k + 1, s.close(k)) if s.is_ident(j)]
            return names, True
        return [], False

    def pin_shaped(self, open_i: int) -> bool:
        s = self.src
        for a, b in s.split(open_i, s.close(open_i))[1:]:
            for value in flatten([s.evaluate(a, b)]):
                if isinstance(value, Str) and re.match(r"[A-Za-z0-9-]+/", value.text):
                    return True
        return False

    # the loops around a call

    def bindings(self, open_i: int) -> list[dict[str, Value]]:
        s = self.src
        loops: list[list[dict[str, Value]]] = []  # per loop: the names bound per iteration
        block = s.parent[open_i] if open_i < len(s.parent) else -1
        while block >= 0:
            if s.toks[block].text == "{":
                loops += self.loop_of_block(block)
            block = s.parent[block]
        loops += self.single_statement_loop(open_i)
        envs: list[dict[str, Value]] = [{}]
        for loop in reversed(loops):
            iterations = loop
            if len(envs) * max(1, len(loop)) > _MAX_BINDINGS:
                iterations = [
                    {
                        name: Unknown(name, "too many loop iterations to follow", value.where)
                        for name, value in loop[0].items()
                    }
                ]
            envs = [{**env, **bound} for env in envs for bound in iterations] or envs
        return envs

    def loop_of_block(self, open_i: int) -> list[list[dict[str, Value]]]:
        s = self.src
        prev = s.back(open_i)
        if s.is_ident(prev, "forEach", "onEach") and s.is_op(prev - 1, ".", "?."):
            start = self.expr_start(prev - 2)
            names, destructured = self.block_params(open_i)
            over = s.evaluate_slice(start, prev - 1)
            return [self.iterate(names or ["it"], destructured, over, start, prev - 1)]
        if s.is_op(prev, ")") and prev in self.open_of:
            return self.for_header(self.open_of[prev], prev)
        return []

    def single_statement_loop(self, open_i: int) -> list[list[dict[str, Value]]]:
        s = self.src
        add = open_i - 1
        for receiver in (add, add - 2):
            if receiver != add and not (s.is_op(add - 1, ".") and s.is_ident(receiver)):
                continue
            prev = s.back(receiver)
            if s.is_op(prev, ")") and prev in self.open_of:
                return self.for_header(self.open_of[prev], prev)
        return []

    def for_header(self, open_i: int, close_i: int) -> list[list[dict[str, Value]]]:
        s = self.src
        if not s.is_ident(s.back(open_i), "for"):
            return []
        a = s.skip_nl(open_i + 1)
        for k in range(a, close_i):
            if s.is_ident(k, "in") or s.is_op(k, ":"):
                if s.is_op(a, "("):  # for ((host, pin) in …)
                    names = [s.toks[j].text for j in range(a, k) if s.is_ident(j)]
                    destructured = True
                else:
                    names, destructured = [s.toks[s.back(k)].text], False
                over = s.evaluate(k + 1, close_i)
                return [self.iterate(names, destructured, over, k + 1, close_i)]
        return []

    def iterate(
        self, names: list[str], destructured: bool, over: Value, a: int, b: int
    ) -> list[dict[str, Value]]:
        shown = self.src.snippet(a, b)
        if isinstance(over, Lst) and not destructured:
            return [{names[0]: item} for item in over.items]
        why = over.reason if isinstance(over, Unknown) else "not a list"
        return [
            {
                name: Unknown(name, f"comes from a loop over `{shown}` ({why})", over.where)
                for name in names
            }
        ]

    def expr_start(self, j: int) -> int:
        """The first token of the receiver expression that ends at `j`."""
        s = self.src
        k = j
        while k >= 0:
            if s.is_op(k, ")", "]") and k in self.open_of:
                k = self.open_of[k]
                if s.is_ident(k - 1):
                    k -= 1
            elif not (s.tok(k) is not None and s.toks[k].kind in ("ident", "str", "num")):
                return k + 1
            if s.is_op(k - 1, ".", "?.", "::"):
                k -= 2
                continue
            return k
        return 0


def _arg(src: Source, value: Value, a: int, b: int) -> _Arg:
    where = src.loc(src.skip_nl(a))
    text = src.snippet(src.skip_nl(a), b)
    if isinstance(value, Str):
        return _Arg(value.text, text, value.where, srcs=value.srcs)
    if isinstance(value, Unknown):
        why = value.reason
        if value.where.line != where.line:
            why += f" (line {value.where.line})"
        return _Arg(None, text, where, why, value.srcs)
    kind = {Bool: "a boolean", Num: "a number", Dct: "a map", Lst: "a list"}[type(value)]
    return _Arg(None, text, where, f"{kind}, not a string", value.srcs)


def parse_okhttp_source(
    data: bytes, source: str, *, name: str | None = None, version: int | None = None
) -> ClientPolicy:
    """``CertificatePinner.Builder().add(...)`` calls of a Kotlin or Java file."""
    src = Source(data, source, language_of(source) or KOTLIN)
    if not any(t.kind == "ident" and t.text == "CertificatePinner" for t in src.toks):
        count = sum(1 for _, literal in src.string_literals() if _PIN_TEXT.search(literal))
        hint = (
            f" ({count} sha256/ string{'s' if count != 1 else ''} here: name the file "
            "that calls CertificatePinner.Builder().add())"
            if count
            else ""
        )
        raise not_the_kind(
            Location(source, 1, 1),
            f"not an OkHttp pinning source: no CertificatePinner in this file{hint}",
        )
    entries = _Entries(source, version)
    calls = _Calls(src)
    found = calls.collect()
    if len(found) > MAX_CALLS:
        entries.out.not_imported(
            src.loc(found[MAX_CALLS]),
            f"more than {MAX_CALLS} add() calls: this one and the {len(found) - MAX_CALLS - 1} "
            "after it are not evaluated",
        )
        found = found[:MAX_CALLS]
    for open_i in found:
        ranges = src.split(open_i, src.close(open_i))
        ranges = [(_named(src, a), b) for a, b in ranges]
        per_pattern: dict[tuple[str | None, str], tuple[_Arg, list[_Arg]]] = {}
        for env in calls.bindings(open_i):
            args: list[_Arg] = []
            for n, (a, b) in enumerate(ranges):
                value = src.evaluate(a, b, env)
                values = [value] if n == 0 else list(flatten([value]))
                args += [_arg(src, v, a, b) for v in values]
            if not args:
                continue
            pattern = args[0]
            key = (pattern.value, pattern.text if pattern.value is None else "")
            group = per_pattern.setdefault(key, (pattern, []))
            group[1].extend(a for a in args[1:] if a not in group[1])
        for pattern, pins in per_pattern.values():
            entries.add(pattern, pins)
    if not calls.found:
        entries.out.note(
            Location(source, 1, 1),
            "no CertificatePinner.Builder().add() call in this file: nothing is pinned here",
        )
    _report_unused_literals(src, entries)
    return entries.policy(name or stem_name(source), source)


def _named(src: Source, a: int) -> int:
    """Skip a Kotlin named argument's ``name =``."""
    a = src.skip_nl(a)
    return a + 2 if src.is_ident(a) and src.is_op(a + 1, "=") else a


def _report_unused_literals(src: Source, entries: _Entries) -> None:
    """Every sha256/ (sha1/) literal that no evaluated add() call accounted for."""
    lines = entries.out.reported_lines()
    for tok, literal in src.string_literals():
        if not _PIN_TEXT.search(literal) or tok.start in entries.accounted:
            continue
        where = src.at(tok.start)
        if where.line in lines:
            continue
        why = entries.pending.get(
            tok.start,
            "not passed to CertificatePinner.Builder.add() in a way pinaudit can follow",
        )
        shown = tok.text if len(tok.text) <= 60 else tok.text[:57] + "..."
        entries.out.not_imported(where, f"{shown}: {why}")
        lines.add(where.line)


# --- plain list -------------------------------------------------------------------

_LIST_LINE = re.compile(r"^(\S+?):(?:\s+(.*))?$")


def parse_okhttp_list(
    data: bytes, source: str, *, name: str | None = None, version: int | None = None
) -> ClientPolicy:
    """``pattern: pin, pin`` lines (``#`` comments); indented lines or ``- pin``
    lines add pins to the pattern above."""
    _check_list_shape(data, source)
    text = decode_text(data, source)
    entries = _Entries(source, version)
    current: tuple[_Arg, list[_Arg]] | None = None
    patterns = 0
    for number, raw in enumerate(lines_of(text), start=1):
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
        patterns += 1
        pattern = _Arg(match[1], match[1], Location(source, number, 1))
        pins: list[_Arg] = []
        if match[2]:
            pins = _list_pins(match[2], source, number, raw.find(match[2]) + 1)
        current = (pattern, pins)
    if current is not None:
        entries.add(*current)
    if not patterns:
        raise not_the_kind(
            Location(source, 1, 1),
            "not an OkHttp pin list: no `pattern: pin, ...` line (Kotlin and Java sources "
            f"must end in {', '.join(SOURCE_SUFFIXES)})",
        )
    return entries.policy(name or stem_name(source), source)


_OTHER_KINDS = {
    ".xml": "an XML file",
    ".plist": "a property list",
    ".json": "a JSON file",
    ".swift": "Swift source",
    ".m": "Objective-C source",
    ".mm": "Objective-C source",
    ".h": "a C header",
    ".pins": "a Chromium .pins file",
}


def _check_list_shape(data: bytes, source: str) -> None:
    """A file of another kind is an input error, not an empty pin list."""
    lower = source.lower()
    for suffix, what in _OTHER_KINDS.items():
        if lower.endswith(suffix):
            raise not_the_kind(
                Location(source, 1, 1),
                f"not an OkHttp configuration: {what} (the okhttp kind reads Kotlin/Java "
                "CertificatePinner calls or a `pattern: pins` list)",
            )
    first = data.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    if data.startswith(b"bplist") or first in (b"<", b"{", b"["):
        raise not_the_kind(
            Location(source, 1, 1),
            "not an OkHttp pin list: it looks like XML, JSON or a property list",
        )


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
