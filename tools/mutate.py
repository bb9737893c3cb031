"""Mutation testing of pinaudit's pure core: do the tests catch what they promise?

Usage (from the repository root, with the project's virtualenv)::

    .venv/bin/python tools/mutate.py scanner/shard.py          # 40 sampled mutants
    .venv/bin/python tools/mutate.py scanner/clients/judge.py --jobs 2
    .venv/bin/python tools/mutate.py --list scanner/pins.py    # mutants, nothing run
    .venv/bin/python tools/mutate.py --modules                 # the module -> tests map
    .venv/bin/python tools/mutate.py --recheck out/mutation/shard.json

How it works:

1. The module is parsed with ``ast``; every place one small change can be
   made is a mutant: a comparison flipped (``<``/``<=``, ``>``/``>=``,
   ``==``/``!=``, ``in``/``not in``, ``is``/``is not``), ``and``/``or``
   swapped, an integer constant +1/-1, ``True``/``False`` swapped, a
   ``continue``/``break``/``return`` removed (replaced by ``pass``), a
   condition dropped (an ``if``/``while``/conditional-expression/
   comprehension test made ``True``, or one operand of an ``and``/``or``
   left out), a condition negated (``x`` -> ``not x``, ``not x`` -> ``x``).
   Never touched: strings (messages, docstrings), f-strings, type
   annotations, ``raise`` statements' arguments, ``assert``, keyword
   arguments that carry text (``message=``, ``detail=`` ...), ``__all__``,
   ``if TYPE_CHECKING`` blocks, and functions a module's entry excludes
   (the I/O of ``state.py``).
2. A fixed-seed sample (40 by default; all of them for a small module) is
   taken. Each mutant is written into a *temporary copy* of the project
   (``scanner/``, ``tests/``, ``docs/`` ... copied once per worker); the
   working tree is never written to, so neither a failure nor a killed tool
   can leave it mutated. Bytecode caches are off (``PYTHONDONTWRITEBYTECODE``)
   so a mutant of the same size and second never runs stale code.
3. A first run of the module's own test files (``MODULES`` below) records
   which test runs which line (``tools/_mutate_trace.py``). Each mutant then
   runs against the own tests that run its lines (all of them for a line run
   at import), ``pytest -x``, in its own process group with a timeout of
   3 x the baseline + 20 s; a mutant still alive then runs against the wider
   set (``WIDE``). Killed = some test failed; timeout = it ran past the limit
   (counted as detected); survived = every test passed.
4. Mutants listed in ``EQUIVALENT`` (the same behaviour whatever the input,
   each with its reason) are reported, not run, and left out of the score.
5. The report: ``out/mutation/<module>.md`` (each survivor with file:line and
   the diff) and ``.json`` (for ``--recheck``, which reruns only the
   survivors of a previous report, e.g. after adding tests).

The score is killed / (sampled - equivalent), timeouts counted as killed.
Not part of the default test run: it takes minutes per module.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import copy
import dataclasses
import difflib
import functools
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SAMPLE = 40
DEFAULT_SEED = "pinaudit-mutation-1"

# module -> its own test files (run first, -x). Every pure-core module the
# acceptance of issue 19 names is here; a module missing from the map cannot
# be mutated (say which tests judge it first).
_CLIENT_TESTS = (
    "tests/test_clients.py",
    "tests/test_client_configs.py",
    "tests/test_okhttp_platforms.py",
)
_INVENTORY_TESTS = ("tests/test_inventory.py", "tests/test_client_configs.py")


@dataclass(frozen=True)
class ModuleEntry:
    tests: tuple[str, ...]
    # functions (qualified names, e.g. "load_state") whose body is not mutated:
    # the thin shell inside a module that is otherwise pure
    exclude: tuple[str, ...] = ()


MODULES: dict[str, ModuleEntry] = {
    "scanner/pins.py": ModuleEntry(("tests/test_pins.py", "tests/test_pins_props.py")),
    "scanner/chain.py": ModuleEntry(("tests/test_chain.py", "tests/test_chain_honest.py")),
    "scanner/paths.py": ModuleEntry(
        (
            "tests/test_paths.py",
            "tests/test_chain_honest.py",
            "tests/test_clients.py",
            "tests/test_verdicts_paths.py",
        )
    ),
    # path-dependent verdicts and offline backup pins are judged in audit.py
    "scanner/audit.py": ModuleEntry(
        (
            "tests/test_audit.py",
            "tests/test_chain_honest.py",
            "tests/test_verdicts_paths.py",
            "tests/test_offline_pins.py",
        )
    ),
    "scanner/rotation.py": ModuleEntry(
        ("tests/test_rotation.py", "tests/test_verdicts_paths.py", "tests/test_audit.py")
    ),
    "scanner/preflight.py": ModuleEntry(
        (
            "tests/test_preflight.py",
            "tests/test_preflight_paths.py",
            "tests/test_rotation.py",
            "tests/test_chain_honest.py",
        )
    ),
    "scanner/shard.py": ModuleEntry(("tests/test_shard.py",)),
    "scanner/clients/selection.py": ModuleEntry(_CLIENT_TESTS),
    "scanner/clients/judge.py": ModuleEntry(_CLIENT_TESTS),
    # the real OkHttp and JDK (java from .ci/install-peers) judge the JVM cleaner
    "scanner/clients/okhttp_jvm.py": ModuleEntry(
        ("tests/test_okhttp_platforms.py", "tests/test_okhttp_oracle.py", "tests/test_clients.py")
    ),
    "scanner/clients/failures.py": ModuleEntry(
        (
            "tests/test_client_failures.py",
            "tests/test_clients.py",
            "tests/test_okhttp_platforms.py",
            "tests/test_chain.py",
        )
    ),
    "scanner/clients/findings.py": ModuleEntry(
        ("tests/test_client_findings.py", "tests/test_client_failures.py", *_CLIENT_TESTS)
    ),
    "scanner/inventory/schema.py": ModuleEntry(_INVENTORY_TESTS),
    "scanner/inventory/reader.py": ModuleEntry(_INVENTORY_TESTS),
    "scanner/inventory/names.py": ModuleEntry(_INVENTORY_TESTS),
    "scanner/inventory/client_pinsets.py": ModuleEntry(
        (*_INVENTORY_TESTS, "tests/test_okhttp_platforms.py")
    ),
    "scanner/units.py": ModuleEntry(("tests/test_units.py", "tests/test_inventory.py")),
    "scanner/hostnames.py": ModuleEntry(
        ("tests/test_hostnames.py", "tests/test_okhttp_platforms.py", "tests/test_importers.py")
    ),
    "scanner/safetext.py": ModuleEntry(("tests/test_safetext.py", "tests/test_cli_edges.py")),
    "scanner/state.py": ModuleEntry(
        ("tests/test_state_file.py",), exclude=("load_state", "save_state")
    ),
    "scanner/exporters/metrics.py": ModuleEntry(("tests/test_prometheus_metrics.py",)),
}

# Survivors of their own tests run again against these: the fast tests that
# judge the core end to end (no child-process fleets, no external programs).
WIDE: tuple[str, ...] = (
    "tests/test_pins.py",
    "tests/test_chain.py",
    "tests/test_chain_honest.py",
    "tests/test_paths.py",
    "tests/test_audit.py",
    "tests/test_verdicts_paths.py",
    "tests/test_offline_pins.py",
    "tests/test_rotation.py",
    "tests/test_clients.py",
    "tests/test_client_failures.py",
    "tests/test_client_findings.py",
    "tests/test_client_configs.py",
    "tests/test_okhttp_platforms.py",
    "tests/test_inventory.py",
    "tests/test_importers.py",
    "tests/test_trust.py",
    "tests/test_prometheus_metrics.py",
    "tests/test_engine.py",
    "tests/test_cli.py",
    "tests/test_state_file.py",
    "tests/test_shard.py",
    "tests/test_preflight.py",
    "tests/test_preflight_paths.py",
    "tests/test_units.py",
    "tests/test_hostnames.py",
    "tests/test_safetext.py",
    "tests/test_cli_edges.py",
    "tests/test_fuzz_regressions.py",
)

# Mutants that cannot change behaviour, by module and mutant id, each with
# the reason. They are reported and left out of the score (docs/mutation.md
# lists them too).
EQUIVALENT: dict[str, dict[str, str]] = {
    "scanner/chain.py": {
        "127a77ac": "verifier_subject's last `return None` removed: the function ends there "
        "and returns None all the same",
        "723d39b6": "_candidate_times trying the middle of an empty window too: some "
        "certificate is invalid then, so the verifier fails there and the next time is tried",
        "56fd4cf8": "_untrusted_reason without the readable-subject filter: store_from_pem "
        "already skips every anchor whose name cannot be read",
    },
    "scanner/clients/okhttp_jvm.py": {
        "ab3830de": "_NO_LIMIT 2**31 for 2**31 - 1: a CA without pathLen against a count "
        "of at most nine signers, either way no limit",
    },
    "scanner/clients/findings.py": {
        "8448ece9": "`known_keys or {}` -> `known_keys`: audit() takes None for no known keys",
        "f86bbfe1": "_anchor_ders going on when the anchor was served: the store holds the "
        "same certificate, so it returns the DER that was served",
        "b3654cb4": "JVM chains built for every policy of a valid chain, or for JVM policies "
        "of an invalid one: judge and failure_formats use one only for OkHttp on a JVM with "
        "a valid chain",
        "96454ba0": "every verdict's policy is one of the endpoint's policies (judge_endpoint "
        "judges exactly those)",
        "d6b71c06": "failure_formats asked for any TrustKit verdict or any invalid chain: it "
        "returns {} itself for all but failures and TrustKit's blocked chain (-> None)",
        "562ecf9b": "JVM chains built for every policy whatever the chain: judge reads one "
        "only for OkHttp on a JVM with a valid chain, failure_formats only for that policy's "
        "failing verdict (as b3654cb4)",
        "3d6f8f58": "anchors_der computed when nothing is blocked: only failure_formats reads "
        "it, called only for a failing verdict or TrustKit's CHAIN_INVALID, either of which "
        "makes `blocked` true",
        "46c83652": "failure_formats asked for every verdict: it returns {} for all but "
        "failures and TrustKit's blocked chain, and `{} or None` is the None the verdict "
        "carries from judge (as d6b71c06)",
        "14b05f54": "failure_formats asked for any TrustKit verdict: it returns {} for a "
        "TrustKit verdict that neither fails nor is CHAIN_INVALID, -> None as before",
    },
    "scanner/clients/judge.py": {
        "4c1ff70b": "_shift with `delta <= 0`: adding a zero delta never overflows, so the "
        "OverflowError branch only ever sees a non-zero delta",
        "65e1fa73": "_window testing only `last`: enforcement_window returns both ends "
        "None or both set, never one of them",
        "ab99dc6b": "_window testing only `first`: the same (both ends None or both set)",
        "bd36daff": "static() ending without `return None` returns None all the same",
        "11665106": "_path_choice testing only `platform is ANDROID`: only OkHttp and "
        "TrustKit pin-sets carry a platform, and OkHttp has returned above",
        "51df178c": "_chain_text without `or '-'`: the validated path is empty only for an "
        "invalid chain, and _on_jvm returns before it for those",
    },
    "scanner/hostnames.py": {
        "6db43ad4": "java_idn_host testing an ASCII label for code points unassigned in "
        "Unicode 3.2 too: nameprep maps ASCII to ASCII and table A.1 holds no ASCII, so "
        "the test is False for every ASCII label",
        "f149db39": "okhttp_canonical_host (5) going on with an empty name: the label-length "
        "check refuses it (a body of length 0), None all the same",
        "83ce728e": "httpurl_host's `close <= 0` for `close < 0`: close is a find from past "
        "'http://' (index 8 or more) or -1, never 0",
    },
    "scanner/clients/selection.py": {
        "eba0b588": "_select_ats without `parent is not None`: a rule's host is a string, "
        "never equal to None, so the dropped test changes nothing",
    },
    "scanner/exporters/metrics.py": {
        "85e43fcc": "_usable without `report is not None`: results.evaluate gives every "
        "address with an observation its chain report",
    },
    "scanner/inventory/client_pinsets.py": {
        "9a408d55": "_from_file's kinds[-1] for kinds[0]: exactly one kind got this far",
        "e639d8d9": "is_client_pinset_node true for a node that is no mapping: the client "
        "pin-set reader reports the same 'expected a mapping' at the same place as the "
        "plain one, and the pin-set is broken either way",
        "51be42df": "a rule that did not read appended as None: _rule returns None only "
        "after reporting a problem, so the inventory is refused and the policy never used",
    },
    "scanner/inventory/schema.py": {
        # The loader is all or nothing: once a problem is reported, load_inventory
        # raises with every problem and nothing built is used. These mutants only
        # change what is built after a reported problem, and report nothing more
        # (tests/test_inventory.py::test_each_mistake_is_reported_once_... checks).
        "2b088095": "a draft is clean only with a host: building it without the test is the same",
        "0be6c43d": "a missing trust bundle, reported, then its TrustSpec built anyway",
        "7eb9e1de": "a broken pin-set, reported, then stored as None: the inventory is refused",
        "a331716f": "a duplicate pin-set, reported, then stored over the first: refused",
        "60d0c812": "a bad sni, reported, then read as the string 'true' (a valid name): "
        "refused, and nothing more reported",
    },
    "scanner/inventory/names.py": {
        "8b8d0b9d": "label_name_problem's last `return None` removed: it ends there and "
        "returns None all the same",
    },
    "scanner/inventory/reader.py": {
        "f1d19934": "mapping()'s last `return None` removed: it ends there and returns None "
        "all the same",
        "d80951b3": "integer() without the bad-tag test: a node with an unsupported tag "
        "never carries the int tag, which is tested first",
    },
    "scanner/paths.py": {
        "b822d9e1": "_anchors without its cache hit: the index is built again, the same",
        "0203f3f4": "_anchors indexing an anchor that does not parse or whose subject cannot "
        "be read: store_from_pem keeps neither",
        "9da8e61d": "the same, with the test dropped altogether",
    },
    "scanner/audit.py": {
        "a1285003": "the INCOMPLETE message without its 'an intermediate' fallback: chain.py "
        "reports INCOMPLETE only for a path that needs an intermediate from the pool, which "
        "was not served, so the list of missing certificates is never empty",
        "fac1fef3": "an EC key weak below 255 bits instead of 256: no named curve has a "
        "255-bit key (P-256 and secp256k1 are 256, the next below is 239 or 233)",
        "c29bd381": "every certificate of a non-empty path treated as the anchor for the "
        "SHA-1/MD5 check: the verifier never builds a path through a certificate signed with "
        "SHA-1 or MD5, so the only one that can carry such a signature is the anchor",
        "2c856dc6": "a served non-CA certificate counted as a later leaf even when on the "
        "path: every certificate above a path's leaf is a CA (the verifier checks the "
        "issuer's basicConstraints), and the leaf itself is the first one served",
    },
    "scanner/preflight.py": {
        "922ec6d5": "ca_lineage without the subject test: verify_directly_issued_by itself "
        "refuses an issuer whose subject is not the certificate's issuer name",
        "4810cdd9": "ca_lineage going on through an issuer it has already: a loop of "
        "cross-signs repeats certificates until the bound of 10, and preflight_ca, its only "
        "user, reads the lineage as a set of keys (a repeated one adds nothing)",
    },
    "scanner/units.py": {
        "4f40a0e3": "format_duration's `seconds <= 1` for `< 1`: exactly 1 is spelled 1s "
        "by the loop above and never gets there",
    },
    "scanner/pins.py": {
        "ce1ee00d": "okio_base64's early None: text outside the alphabet fails "
        "unpadded_base64's validating decode too, so it only saves work",
        "a1a249a4": "key_material's `continue` -> `pass`: it is the last statement of the "
        "loop body, so the loop goes on to the next loader either way",
    },
}

# Keyword arguments whose value is text for a person, never logic.
_TEXT_KEYWORDS = frozenset({"message", "msg", "detail", "hint", "text", "help", "reason_text"})
# Copied into each worker's temporary tree.
_COPY = ("scanner", "tests", "tools", "docs", "inventories", "deploy", "fuzz", "benchmarks")
_COPY_FILES = ("pyproject.toml", "README.md")


@dataclass
class Mutant:
    id: str
    module: str
    line: int
    function: str
    operator: str
    before: str
    after: str
    # where to splice: 1-based line, 0-based column (utf-8 bytes, as ast gives)
    start: tuple[int, int] = (0, 0)
    end: tuple[int, int] = (0, 0)
    outcome: str = ""  # killed | survived | timeout | equivalent | error
    stage: str = ""  # own | wide
    killed_by: str = ""
    seconds: float = 0.0
    reason: str = ""
    diff: str = ""


@dataclass
class Site:
    node: ast.AST
    operator: str
    replacement: ast.AST  # the node that takes the place of `node`
    function: str


# ----------------------------------------------------------------------------- finding sites


class _Finder(ast.NodeVisitor):
    """Collects every mutation site, skipping what must never be mutated."""

    def __init__(self, exclude: tuple[str, ...]) -> None:
        self.sites: list[Site] = []
        self.exclude = exclude
        self.scope: list[str] = []

    # -- scopes, and subtrees that are never mutated
    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.scope.append(node.name)
        qual = ".".join(self.scope)
        if qual not in self.exclude and node.name not in self.exclude:
            for decorator in node.decorator_list:
                self.visit(decorator)
            for default in [*node.args.defaults, *node.args.kw_defaults]:
                if default is not None:
                    self.visit(default)
            self._body(node.body)
        self.scope.pop()

    visit_FunctionDef = _function
    visit_AsyncFunctionDef = _function

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self.scope.append(node.name)
        for decorator in node.decorator_list:
            self.visit(decorator)
        self._body(node.body)
        self.scope.pop()

    def visit_Module(self, node: ast.Module) -> None:
        self._body(node.body)

    def _body(self, body: list[ast.stmt]) -> None:
        for index, stmt in enumerate(body):
            if index == 0 and _is_docstring(stmt):
                continue
            self.visit(stmt)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if node.value is not None:
            self.visit(node.value)

    def visit_Assign(self, node: ast.Assign) -> None:
        if any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            return
        self.generic_visit(node)

    def visit_Raise(self, node: ast.Raise) -> None:
        return  # the exception and its message

    def visit_Assert(self, node: ast.Assert) -> None:
        return  # type narrowing for mypy; gone under -O

    def visit_JoinedStr(self, node: ast.JoinedStr) -> None:
        return  # messages

    def visit_Import(self, node: ast.Import) -> None:
        return

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        return

    def visit_keyword(self, node: ast.keyword) -> None:
        if node.arg in _TEXT_KEYWORDS:
            return
        self.visit(node.value)

    def visit_Call(self, node: ast.Call) -> None:
        if _is_typing_call(node):
            return
        self.generic_visit(node)

    # -- the mutation operators
    @property
    def function(self) -> str:
        return ".".join(self.scope) or "<module>"

    def _add(self, node: ast.AST, operator: str, replacement: ast.AST) -> None:
        self.sites.append(Site(node, operator, replacement, self.function))

    def visit_Compare(self, node: ast.Compare) -> None:
        for index, op in enumerate(node.ops):
            flipped = _FLIP.get(type(op))
            if flipped is None:
                continue
            new = copy.deepcopy(node)
            new.ops[index] = flipped()
            self._add(node, "comparison", new)
        self.generic_visit(node)

    def visit_BoolOp(self, node: ast.BoolOp) -> None:
        swapped = copy.deepcopy(node)
        swapped.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
        self._add(node, "and/or", swapped)
        for index in range(len(node.values)):
            rest = [copy.deepcopy(v) for i, v in enumerate(node.values) if i != index]
            dropped: ast.AST = rest[0] if len(rest) == 1 else ast.BoolOp(op=node.op, values=rest)
            self._add(node, "operand dropped", dropped)
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        value = node.value
        if isinstance(value, bool):
            self._add(node, "boolean", ast.Constant(value=not value))
        elif isinstance(value, int):
            self._add(node, "constant", _int(value + 1))
            self._add(node, "constant", _int(value - 1))

    def visit_UnaryOp(self, node: ast.UnaryOp) -> None:
        if isinstance(node.op, ast.Not):
            self._add(node, "negation", copy.deepcopy(node.operand))
        elif isinstance(node.op, ast.USub) and isinstance(node.operand, ast.Constant):
            value = node.operand.value
            if isinstance(value, int) and not isinstance(value, bool):
                for changed in (-value + 1, -value - 1):
                    self._add(node, "constant", _int(changed))
            return
        self.generic_visit(node)

    def _condition(self, test: ast.expr) -> None:
        self._add(test, "condition dropped", ast.Constant(value=True))
        if not isinstance(test, ast.UnaryOp) or not isinstance(test.op, ast.Not):
            self._add(test, "negation", ast.UnaryOp(op=ast.Not(), operand=copy.deepcopy(test)))

    def visit_If(self, node: ast.If) -> None:
        if _is_type_checking(node.test):
            return
        self._condition(node.test)
        self.generic_visit(node)

    def visit_While(self, node: ast.While) -> None:
        if not (isinstance(node.test, ast.Constant) and node.test.value is True):
            self._condition(node.test)
        self.generic_visit(node)

    def visit_IfExp(self, node: ast.IfExp) -> None:
        self._condition(node.test)
        self.generic_visit(node)

    def visit_comprehension(self, node: ast.comprehension) -> None:
        for test in node.ifs:
            self._condition(test)
        self.generic_visit(node)

    def _removed(self, node: ast.stmt) -> None:
        self._add(node, f"{type(node).__name__.lower()} removed", ast.Pass())

    def visit_Continue(self, node: ast.Continue) -> None:
        self._removed(node)

    def visit_Break(self, node: ast.Break) -> None:
        self._removed(node)

    def visit_Return(self, node: ast.Return) -> None:
        self._removed(node)
        self.generic_visit(node)


_FLIP: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
}


def _int(value: int) -> ast.expr:
    """An int constant as the parser reads it back: -1 is -(1)."""
    if value < 0:
        return ast.UnaryOp(op=ast.USub(), operand=ast.Constant(value=-value))
    return ast.Constant(value=value)


def _is_docstring(stmt: ast.stmt) -> bool:
    return (
        isinstance(stmt, ast.Expr)
        and isinstance(stmt.value, ast.Constant)
        and isinstance(stmt.value.value, str)
    )


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _is_typing_call(node: ast.Call) -> bool:
    func = node.func
    name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
    return name in {"cast", "TypeVar", "NewType", "overload"}


# ----------------------------------------------------------------------------- building mutants


def _offset(lines: list[str], line: int, col: int) -> int:
    """Character offset of (1-based line, utf-8 byte column) in the source."""
    before = sum(len(text) for text in lines[: line - 1])
    text = lines[line - 1]
    return before + len(text.encode("utf-8")[:col].decode("utf-8", errors="ignore"))


def _parents(tree: ast.AST) -> dict[int, tuple[ast.AST, str, int | None]]:
    """id(node) -> (parent, field, index in the field's list or None)."""
    found: dict[int, tuple[ast.AST, str, int | None]] = {}
    for parent in ast.walk(tree):
        for name, value in ast.iter_fields(parent):
            if isinstance(value, list):
                for index, item in enumerate(value):
                    if isinstance(item, ast.AST):
                        found[id(item)] = (parent, name, index)
            elif isinstance(value, ast.AST):
                found[id(value)] = (parent, name, None)
    return found


def _dump_replaced(
    tree: ast.AST, parents: dict[int, tuple[ast.AST, str, int | None]], site: Site
) -> str:
    """The dump of `tree` with the site's node replaced (swapped in, then back)."""
    parent, name, index = parents[id(site.node)]

    def put(node: ast.AST) -> None:
        if index is None:
            setattr(parent, name, node)
        else:
            getattr(parent, name)[index] = node

    put(site.replacement)
    try:
        return _dump(tree)
    finally:
        put(site.node)


def _dump(tree: ast.AST) -> str:
    return ast.dump(tree, annotate_fields=False, include_attributes=False)


def _mutated_source(source: str, site: Site) -> tuple[str, str, str] | None:
    """(mutated source, original text, replacement text) or None if unsafe."""
    node = site.node
    lines = source.splitlines(keepends=True)
    start = _offset(lines, node.lineno, node.col_offset)  # type: ignore[attr-defined]
    end = _offset(lines, node.end_lineno, node.end_col_offset)  # type: ignore[attr-defined]
    before = source[start:end]
    after = ast.unparse(site.replacement)
    if _needs_parens(site.replacement):
        after = f"({after})"
    mutated = source[:start] + after + source[end:]
    return mutated, before, after


def _needs_parens(node: ast.AST) -> bool:
    return not isinstance(node, ast.stmt | ast.Name | ast.Constant)


@functools.cache
def _all_mutants(module: str) -> tuple[Mutant, ...]:
    return tuple(_find_mutants(module))


def mutants_of(module: str) -> list[Mutant]:
    """Every mutant of `module` (fresh copies: runs write their outcome into them)."""
    return [dataclasses.replace(m) for m in _all_mutants(module)]


def _find_mutants(module: str) -> list[Mutant]:
    """Every mutant of `module` (a path relative to the repository root)."""
    entry = MODULES[module]
    source = (ROOT / module).read_text(encoding="utf-8")
    tree = ast.parse(source)
    finder = _Finder(entry.exclude)
    finder.visit(tree)
    parents = _parents(tree)
    found: list[Mutant] = []
    seen: dict[str, int] = {}
    for site in finder.sites:
        built = _mutated_source(source, site)
        if built is None:
            continue
        mutated, before, after = built
        # the text splice must be exactly the AST change intended, nothing else
        try:
            if _dump(ast.parse(mutated)) != _dump_replaced(tree, parents, site):
                continue
        except SyntaxError:
            continue
        key = f"{module}|{site.function}|{site.operator}|{' '.join(before.split())}|{after}"
        occurrence = seen.get(key, 0)
        seen[key] = occurrence + 1
        digest = hashlib.sha256(f"{key}|{occurrence}".encode()).hexdigest()[:8]
        found.append(
            Mutant(
                id=digest,
                module=module,
                line=site.node.lineno,  # type: ignore[attr-defined]
                function=site.function,
                operator=site.operator,
                before=before,
                after=after,
                start=(site.node.lineno, site.node.col_offset),  # type: ignore[attr-defined]
                end=(site.node.end_lineno, site.node.end_col_offset),  # type: ignore[attr-defined]
                diff=_diff(module, source, mutated),
            )
        )
    return found


def _diff(module: str, source: str, mutated: str) -> str:
    return "".join(
        difflib.unified_diff(
            source.splitlines(keepends=True),
            mutated.splitlines(keepends=True),
            fromfile=f"a/{module}",
            tofile=f"b/{module}",
            n=1,
        )
    )


def _apply(module: str, mutant: Mutant) -> str:
    source = (ROOT / module).read_text(encoding="utf-8")
    lines = source.splitlines(keepends=True)
    start = _offset(lines, *mutant.start)
    end = _offset(lines, *mutant.end)
    text = source[:start] + mutant.after + source[end:]
    ast.parse(text)
    return text


def sample(mutants: list[Mutant], size: int, seed: str) -> list[Mutant]:
    if size <= 0 or len(mutants) <= size:
        return list(mutants)
    chosen = random.Random(f"{seed}|{mutants[0].module}").sample(mutants, size)
    return sorted(chosen, key=lambda m: (m.line, m.id))


# ----------------------------------------------------------------------------- running


@dataclass
class Workspace:
    """A temporary copy of the project a worker mutates; the real tree is never written."""

    path: Path
    env: dict[str, str] = field(default_factory=dict)

    @classmethod
    def create(cls, parent: Path, index: int) -> Workspace:
        path = parent / f"w{index}"
        path.mkdir()
        ignore = shutil.ignore_patterns("__pycache__", ".hypothesis", "*.pyc")
        for name in _COPY:
            if (ROOT / name).exists():
                shutil.copytree(ROOT / name, path / name, ignore=ignore, symlinks=True)
        for name in _COPY_FILES:
            if (ROOT / name).exists():
                shutil.copy2(ROOT / name, path / name)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(str(p) for p in (path, path / "tests", path / "tools"))
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        env["PYTHONHASHSEED"] = "0"
        return cls(path, env)

    def check_imports_copy(self) -> None:
        probe = subprocess.run(
            [sys.executable, "-c", "import scanner; print(scanner.__file__)"],
            cwd=self.path,
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
        )
        where = Path(probe.stdout.strip()).resolve()
        if self.path.resolve() not in where.parents:
            raise SystemExit(f"the copy does not import its own scanner package: {where}")

    def run(
        self, tests: tuple[str, ...], timeout: float, trace: Path | None = None, module: str = ""
    ) -> tuple[str, str, float]:
        """("passed" | "failed" | "timeout", first failing test, seconds). With
        `trace`: record which test runs which line of `module` into that file."""
        env = self.env
        plugin: list[str] = []
        if trace is not None:
            env = {
                **env,
                "MUTATE_TRACE_FILE": str(self.path / module),
                "MUTATE_TRACE_OUT": str(trace),
            }
            plugin = ["-p", "_mutate_trace"]
        command = [
            sys.executable,
            "-m",
            "pytest",
            "-x",
            "-q",
            "-p",
            "no:cacheprovider",
            "--no-header",
            "-rfE",
            *plugin,
            *tests,
        ]
        began = time.monotonic()
        process = subprocess.Popen(
            command,
            cwd=self.path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        try:
            output, _ = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(process)
            return "timeout", "", time.monotonic() - began
        finally:
            _kill_group(process)
        seconds = time.monotonic() - began
        if process.returncode == 0:
            return "passed", "", seconds
        return "failed", _first_failure(output, process.returncode), seconds


def _kill_group(process: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=10)


def _first_failure(output: str, code: int) -> str:
    for line in output.splitlines():
        if line.startswith(("FAILED ", "ERROR ")):
            return line.split(" - ")[0][:200]
    return f"exit {code}"


@dataclass
class Coverage:
    """Which own test runs which line of the module (from the baseline run)."""

    by_line: dict[int, list[str]]
    outside: set[int]  # lines run at import: every test depends on them

    @classmethod
    def read(cls, path: Path) -> Coverage:
        data = json.loads(path.read_text(encoding="utf-8"))
        by_line: dict[int, list[str]] = {}
        for test, lines in data["tests"].items():
            for line in lines:
                by_line.setdefault(line, []).append(test)
        return cls(by_line, set(data["outside"]))

    def tests_for(self, mutant: Mutant, own: tuple[str, ...]) -> tuple[str, ...]:
        lines = range(mutant.start[0], mutant.end[0] + 1)
        if any(line in self.outside for line in lines):
            return own
        chosen: dict[str, None] = {}
        for line in lines:
            chosen.update(dict.fromkeys(self.by_line.get(line, ())))
        return tuple(chosen)


@dataclass
class Plan:
    module: str
    own: tuple[str, ...]
    wide: tuple[str, ...]
    mutants: list[Mutant]
    # --recheck: the previous report's sample, into which the new outcomes go
    previous: list[Mutant] = field(default_factory=list)
    # --recheck: the previous report's run (its date, commit, time, command)
    previous_run: dict[str, object] = field(default_factory=dict)
    sample: int = DEFAULT_SAMPLE
    seed: str = DEFAULT_SEED


def _existing(paths: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(p for p in paths if (ROOT / p).exists())


def run_plan(plan: Plan, jobs: int, use_wide: bool, out: Path) -> list[Mutant]:
    equivalents = EQUIVALENT.get(plan.module, {})
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="pinaudit-mutate-") as tmp:
        spaces = [Workspace.create(Path(tmp), i) for i in range(jobs)]
        spaces[0].check_imports_copy()
        print(f"{plan.module}: baseline {' '.join(plan.own)}", flush=True)
        trace = Path(tmp) / "trace.json"
        state, failing, base_own = spaces[0].run(plan.own, 3600, trace, plan.module)
        if state != "passed":
            raise SystemExit(f"the unmutated tests do not pass ({failing}); fix that first")
        coverage = Coverage.read(trace)
        base_wide = 0.0
        wide = tuple(t for t in plan.wide if t not in plan.own)
        if use_wide and wide:
            print(f"{plan.module}: baseline of the wider set ({len(wide)} files)", flush=True)
            state, failing, base_wide = spaces[0].run(wide, timeout=3600)
            if state != "passed":
                raise SystemExit(f"the unmutated wider set does not pass ({failing})")
        free = list(spaces)
        lock = threading.Lock()
        done = [0]

        def work(mutant: Mutant) -> Mutant:
            if mutant.id in equivalents:
                mutant.outcome, mutant.reason = "equivalent", equivalents[mutant.id]
                return mutant
            with lock:
                space = free.pop()
            target = space.path / plan.module
            original = target.read_text(encoding="utf-8")
            try:
                target.write_text(_apply(plan.module, mutant), encoding="utf-8")
                own = coverage.tests_for(mutant, plan.own)
                if own:
                    state, failing, seconds = space.run(own, timeout=3 * base_own + 20)
                else:  # no test of its own runs that line
                    state, failing, seconds = "passed", "", 0.0
                    mutant.reason = "no test of the module's own runs this line"
                mutant.stage, mutant.seconds = "own", seconds
                if state == "passed" and use_wide and wide:
                    state, failing, seconds = space.run(wide, timeout=3 * base_wide + 20)
                    mutant.stage, mutant.seconds = "wide", mutant.seconds + seconds
                mutant.outcome = {"passed": "survived", "failed": "killed"}.get(state, state)
                mutant.killed_by = failing
            finally:
                target.write_text(original, encoding="utf-8")
                with lock:
                    free.append(space)
                    done[0] += 1
                    print(
                        f"  [{done[0]}/{len(plan.mutants)}] {mutant.id} "
                        f"{plan.module}:{mutant.line} {mutant.operator}: {mutant.outcome} "
                        f"({mutant.seconds:.0f}s) {mutant.killed_by}",
                        flush=True,
                    )
            return mutant

        with ThreadPoolExecutor(max_workers=jobs) as pool:
            results = list(pool.map(work, plan.mutants))
    if plan.previous:
        fresh = {m.id: m for m in results}
        results = [fresh.get(m.id, m) for m in plan.previous]
    write_report(plan, results, out, use_wide, seconds=time.monotonic() - started, jobs=jobs)
    return results


def _git(*args: str) -> str:
    try:
        done = subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


def _revision(module: str, tests: tuple[str, ...]) -> str:
    """The commit measured: HEAD, with '+changes' when the module or a test
    file run differs from it (the run measured uncommitted work)."""
    head = _git("rev-parse", "--short", "HEAD") or "unknown"
    changed = _git("status", "--porcelain", "--", module, *tests)
    return f"{head}+changes" if changed else head


def _run_record(plan: Plan, seconds: float, jobs: int, use_wide: bool) -> dict[str, object]:
    """When, on what, how and how long: the columns of docs/mutation.md's table."""
    command = ["tools/mutate.py", plan.module]
    if plan.sample != DEFAULT_SAMPLE:
        command.append(f"--sample {plan.sample}")
    if plan.seed != DEFAULT_SEED:
        command.append(f"--seed {plan.seed}")
    if jobs != 1:
        command.append(f"--jobs {jobs}")
    if not use_wide:
        command.append("--no-wide")
    return {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "commit": _revision(plan.module, (*plan.own, *plan.wide)),
        "seconds": round(seconds),
        "jobs": jobs,
        "command": " ".join(command),
    }


# ----------------------------------------------------------------------------- reports


def score(results: list[Mutant]) -> tuple[int, int, int, int, int]:
    """(killed incl. timeouts, survived, timeouts, equivalent, scored)."""
    killed = sum(m.outcome in ("killed", "timeout") for m in results)
    survived = sum(m.outcome == "survived" for m in results)
    timeouts = sum(m.outcome == "timeout" for m in results)
    equivalent = sum(m.outcome == "equivalent" for m in results)
    return killed, survived, timeouts, equivalent, len(results) - equivalent


def write_report(
    plan: Plan, results: list[Mutant], out: Path, use_wide: bool, *, seconds: float, jobs: int
) -> None:
    out.mkdir(parents=True, exist_ok=True)
    stem = plan.module.removeprefix("scanner/").removesuffix(".py").replace("/", ".")
    killed, survived, timeouts, equivalent, scored = score(results)
    percent = 100.0 * killed / scored if scored else 100.0
    this_run = _run_record(plan, seconds, jobs, use_wide)
    if plan.previous_run:  # a recheck: the full run's time and command stay
        run = {**plan.previous_run, "date": this_run["date"], "commit": this_run["commit"]}
        run["recheck_seconds"] = this_run["seconds"]
    elif plan.previous:  # a recheck of a report that did not record its run
        run = {**this_run, "recheck_seconds": this_run["seconds"]}
        run["seconds"] = None
        run["note"] = "sample drawn and run by an earlier version of the tool"
    else:
        run = this_run
    total = len(mutants_of(plan.module))
    lines = [
        f"# Mutation report: {plan.module}",
        "",
        f"- {run['date']}, commit {run['commit']}: `{run['command']}`, {run['seconds']} s"
        + (f" (survivors rechecked in {run['recheck_seconds']} s)" if plan.previous else "")
        + (f"; {run['note']}" if "note" in run else ""),
        f"- mutants in the module: {total}; sampled: {len(results)}",
        f"- own tests: {', '.join(plan.own)}",
        f"- wider set for survivors: {'yes' if use_wide else 'no'}",
        f"- killed {killed} (of which timeouts {timeouts}), survived {survived}, "
        f"equivalent {equivalent}: **{killed}/{scored} = {percent:.0f} %**",
        "",
    ]
    for title, outcome in (("Survivors", "survived"), ("Equivalent", "equivalent")):
        chosen = [m for m in results if m.outcome == outcome]
        if not chosen:
            continue
        lines += [f"## {title}", ""]
        for m in chosen:
            lines.append(f"### {m.id} {plan.module}:{m.line} ({m.function}, {m.operator})")
            if m.reason:
                lines += ["", m.reason]
            lines += ["", "```diff", m.diff.rstrip("\n"), "```", ""]
    lines += [
        "## All sampled mutants",
        "",
        "| id | line | operator | outcome | by |",
        "|---|---|---|---|---|",
    ]
    for m in results:
        by = m.killed_by.replace("|", "\\|")
        lines.append(f"| {m.id} | {m.line} | {m.operator} | {m.outcome} | {by} |")
    (out / f"{stem}.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    payload = {
        "module": plan.module,
        "own": list(plan.own),
        "wide": use_wide,
        "total": total,
        "sample": plan.sample,
        "seed": plan.seed,
        "run": run,
        "score": {
            "killed": killed,
            "survived": survived,
            "timeout": timeouts,
            "equivalent": equivalent,
            "scored": scored,
        },
        "mutants": [asdict(m) for m in results],
    }
    (out / f"{stem}.json").write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")
    print(
        f"{plan.module}: killed {killed}/{scored} ({percent:.0f} %), survived {survived}, "
        f"timeouts {timeouts}, equivalent {equivalent} -> {out / stem}.md",
        flush=True,
    )


# ----------------------------------------------------------------------------- command line


def _module_arg(text: str) -> str:
    path = Path(text)
    if path.is_absolute():
        path = path.resolve().relative_to(ROOT)
    name = path.as_posix()
    if name not in MODULES:
        raise SystemExit(
            f"{name}: not in the module map (tools/mutate.py MODULES): "
            + ", ".join(sorted(MODULES))
        )
    return name


def _iter_modules(names: list[str]) -> Iterator[str]:
    for name in names:
        yield _module_arg(name)


def summary(out: Path) -> str:
    """The per-module table of the reports in `out`, in the order of MODULES."""
    rows = [
        "| module | mutants | sampled | killed (timeouts) | survived | equivalent "
        "| killed of non-equivalent | date | commit | time | command |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- | ---: | --- |",
    ]
    notes: list[str] = []
    for module in MODULES:
        stem = module.removeprefix("scanner/").removesuffix(".py").replace("/", ".")
        path = out / f"{stem}.json"
        if not path.exists():
            rows.append(f"| `{module}` | | not measured | | | | | | | | |")
            continue
        data = json.loads(path.read_text(encoding="utf-8"))
        results = [_mutant_of(m) for m in data["mutants"]]
        killed, survived, timeouts, equivalent, scored = score(results)
        percent = f"{killed}/{scored} = {100.0 * killed / scored:.0f} %" if scored else "-"
        total = data.get("total")
        if total is None:  # a report of an earlier version: count once, keep the count
            data["total"] = total = len(mutants_of(module))
            path.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
        run = data.get("run", {})
        took = f"{run['seconds']} s" if run.get("seconds") is not None else "?"
        if "recheck_seconds" in run:
            took += f" (+{run['recheck_seconds']} s recheck)"
        rows.append(
            f"| `{module}` | {total} | {len(results)} | {killed} ({timeouts}) | {survived} "
            f"| {equivalent} | {percent} | {run.get('date', '')} | {run.get('commit', '')} "
            f"| {took} | `{run.get('command', '')}` |"
        )
        for m in results:
            if m.outcome in ("equivalent", "survived"):
                change = f"`{' '.join(m.before.split())}` → `{m.after}`"
                why = m.reason if m.outcome == "equivalent" else "**survived**"
                notes.append(f"| {m.id} | `{module}:{m.line}` | {change} | {why} |")
    head = ["", "| id | where | change | equivalent: why; or survived |", "|---|---|---|---|"]
    notes.sort(key=lambda row: "**survived**" in row)  # the equivalent ones first
    return "\n".join(rows + head + notes)


def _mutant_of(data: dict[str, object]) -> Mutant:
    """A Mutant from a report's JSON."""
    fields = dict(data)
    fields["start"] = tuple(fields["start"])  # type: ignore[arg-type]
    fields["end"] = tuple(fields["end"])  # type: ignore[arg-type]
    return Mutant(**fields)  # type: ignore[arg-type]


def check_tests(modules: list[str], ids: list[str], tests: tuple[str, ...]) -> int:
    """Show that `tests` pass on the code as it is and fail on each mutant."""
    wanted = {m.id: m for name in modules for m in mutants_of(name) if m.id in ids}
    missing = [i for i in ids if i not in wanted]
    if missing:
        raise SystemExit(f"no such mutant in {', '.join(modules)}: {' '.join(missing)}")
    status = 0
    with tempfile.TemporaryDirectory(prefix="pinaudit-mutate-") as tmp:
        space = Workspace.create(Path(tmp), 0)
        space.check_imports_copy()
        state, failing, base = space.run(tests, timeout=1800)
        print(f"unmutated: {state} {failing}", flush=True)
        if state != "passed":
            return 1
        for mutant in wanted.values():
            target = space.path / mutant.module
            original = target.read_text(encoding="utf-8")
            try:
                target.write_text(_apply(mutant.module, mutant), encoding="utf-8")
                # the bound of a full run: a mutant that loops is killed, not waited for
                state, failing, _ = space.run(tests, timeout=3 * base + 20)
            finally:
                target.write_text(original, encoding="utf-8")
            verdict = {"failed": "killed", "passed": "SURVIVED", "timeout": "killed (timeout)"}.get(
                state, state
            )
            status |= state == "passed"
            print(
                f"{mutant.id} {mutant.module}:{mutant.line} {mutant.operator} "
                f"({' '.join(mutant.before.split())} -> {mutant.after}): {verdict} {failing}",
                flush=True,
            )
    return status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("modules", nargs="*", help="e.g. scanner/shard.py (or --all)")
    parser.add_argument("--all", action="store_true", help="every module of the map")
    parser.add_argument(
        "--sample",
        type=int,
        default=DEFAULT_SAMPLE,
        help="mutants per module (0: all of them; default %(default)s)",
    )
    parser.add_argument("--seed", default=DEFAULT_SEED)
    parser.add_argument(
        "--summary",
        action="store_true",
        help="print the table of the reports in --out (for docs/mutation.md)",
    )
    parser.add_argument("--jobs", type=int, default=1, help="mutants run at once")
    parser.add_argument(
        "--no-wide",
        action="store_true",
        help="survivors of the own tests are not run against the wider set",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "out" / "mutation")
    parser.add_argument("--list", action="store_true", help="print the sampled mutants only")
    parser.add_argument(
        "--modules", dest="show_map", action="store_true", help="print the module -> test files map"
    )
    parser.add_argument(
        "--recheck",
        type=Path,
        metavar="REPORT.json",
        help="rerun only the survivors of a previous report",
    )
    parser.add_argument(
        "--mutant",
        metavar="ID",
        action="append",
        default=[],
        help="run only this mutant (repeatable; with --tests: those tests)",
    )
    parser.add_argument(
        "--tests",
        nargs="+",
        metavar="TEST",
        help="with --mutant: pytest node ids to run against it, and against "
        "the unmutated code (they must pass there)",
    )
    args = parser.parse_args(argv)

    if args.show_map:
        for name, entry in MODULES.items():
            print(
                f"{name}: {' '.join(_existing(entry.tests))}"
                + (f" (not mutated: {', '.join(entry.exclude)})" if entry.exclude else "")
            )
        print(f"wider set: {' '.join(_existing(WIDE))}")
        return 0

    if args.summary:
        print(summary(args.out))
        return 0

    if args.mutant and args.tests:
        return check_tests(list(_iter_modules(args.modules)), args.mutant, tuple(args.tests))

    plans: list[Plan] = []
    if args.mutant:
        for name in _iter_modules(args.modules):
            chosen = [m for m in mutants_of(name) if m.id in args.mutant]
            plans.append(Plan(name, _existing(MODULES[name].tests), _existing(WIDE), chosen))
    elif args.recheck:
        previous = json.loads(args.recheck.read_text(encoding="utf-8"))
        module = previous["module"]
        current = {m.id: m for m in mutants_of(module)}
        wanted = [m["id"] for m in previous["mutants"] if m["outcome"] == "survived"]
        missing = [i for i in wanted if i not in current]
        if missing:
            print(f"no longer in the module (code changed): {' '.join(missing)}")
        before = [_mutant_of(m) for m in previous["mutants"]]
        plans.append(
            Plan(
                module,
                _existing(MODULES[module].tests),
                _existing(WIDE),
                [current[i] for i in wanted if i in current],
                [m for m in before if m.id in current or m.outcome != "survived"],
                dict(previous.get("run", {})),
                int(previous.get("sample", DEFAULT_SAMPLE)),
                str(previous.get("seed", DEFAULT_SEED)),
            )
        )
    else:
        names = list(MODULES) if args.all else list(_iter_modules(args.modules))
        if not names:
            parser.error("name a module (or --all)")
        for name in names:
            chosen = sample(mutants_of(name), args.sample, args.seed)
            plans.append(
                Plan(
                    name,
                    _existing(MODULES[name].tests),
                    _existing(WIDE),
                    chosen,
                    sample=args.sample,
                    seed=args.seed,
                )
            )

    if args.list:
        for plan in plans:
            total = len(mutants_of(plan.module))
            print(f"# {plan.module}: {len(plan.mutants)} of {total} mutants")
            for m in plan.mutants:
                flag = "  (equivalent)" if m.id in EQUIVALENT.get(plan.module, {}) else ""
                print(
                    f"{m.id} {plan.module}:{m.line} [{m.function}] {m.operator}: "
                    f"{' '.join(m.before.split())} -> {m.after}{flag}"
                )
        return 0

    for plan in plans:
        run_plan(plan, max(1, args.jobs), not args.no_wide, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
