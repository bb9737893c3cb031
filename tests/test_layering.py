"""Rules of the house, read from the source with `ast`.

- An allowed-imports table over the import closure: the shell modules are
  listed with the I/O, async and metrics libraries each may use; every other
  module is pure by default, and nothing it imports, directly or through
  other modules of the package, may bring one of those libraries (or a shell
  module) in.
- Pure modules never read the clock: no ``datetime.now``/``time.time`` (or
  the like) called or merely referenced (a default argument counts), no
  ``time`` module, no ``importlib``/``__import__`` that could hide an import.
- Layers: each module belongs to a layer; it imports only from its own layer
  or lower ones (no arrow runs up), and no modules import each other in a
  loop.
- Only the command line touches argv and the process's streams.

The checker works on a mapping of module name → source so that the tests
below can also prove it fails on the violations it is meant to catch.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCANNER = ROOT / "scanner"

# Libraries a pure module must not reach, directly or through the package.
IMPURE = frozenset(
    {
        "trio",
        "ssl",
        "socket",
        "select",
        "selectors",
        "asyncio",
        "prometheus_client",
        "urllib",
        "http",
        "signal",
        "threading",
        "subprocess",
        "resource",
        "rich",
        "bcrypt",
        "time",
        "importlib",
        "OpenSSL",  # pyOpenSSL: the probe's TLS
        "dns",  # dnspython: the probe's CAA lookups
    }
)

# The shell: every module allowed an impure library, with exactly those it may use.
SHELL: dict[str, frozenset[str]] = {
    "scanner.probe": frozenset({"trio", "socket", "OpenSSL", "dns"}),
    "scanner.engine": frozenset({"trio", "ssl", "signal", "threading", "resource"}),
    "scanner.plan": frozenset(),
    "scanner.workers": frozenset({"trio", "subprocess"}),
    "scanner.api": frozenset({"trio", "threading", "asyncio"}),
    "scanner.targets": frozenset({"trio", "prometheus_client"}),
    "scanner.serve": frozenset({"trio", "signal", "time", "resource", "prometheus_client"}),
    "scanner.logs": frozenset(),
    "scanner.exporters.prometheus": frozenset(
        {"prometheus_client", "urllib", "time", "os", "platform"}
    ),
    "scanner.exporters.web": frozenset(
        {"prometheus_client", "h11", "trio", "socket", "ssl", "threading", "time", "os"}
        | {"bcrypt", "urllib"}
    ),
    "scanner.exporters.table": frozenset({"rich"}),
    "scanner.fleet.server": frozenset(
        {"trio", "ssl", "socket", "select", "subprocess", "resource"}
    ),
    "scanner.fleet.faults": frozenset({"trio", "socket"}),
    "scanner.fleet.scenarios": frozenset({"ssl"}),
    "scanner.cli": frozenset({"trio", "rich", "signal", "urllib"}),
    "scanner.__main__": frozenset(),
}

# Low to high. A module imports only from its own layer and the ones below.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("scanner", "scanner.model"),
    (
        "scanner.errors",
        "scanner.units",
        "scanner.status",
        "scanner.safetext",
        "scanner.data",
        "scanner.dialogue",
        "scanner.tlsversion",
    ),
    ("scanner.pins", "scanner.hostnames", "scanner.starttls", "scanner.proxy"),
    ("scanner.trust", "scanner.importers"),
    (
        "scanner.chain",
        "scanner.shard",
        "scanner.exporters.contract",
        "scanner.settings",
        "scanner.ct",
        "scanner.ocsp",
        "scanner.caa",
    ),
    ("scanner.paths", "scanner.rotation", "scanner.audit", "scanner.protocol_audit"),
    ("scanner.clients",),
    ("scanner.inventory", "scanner.preflight", "scanner.results"),
    ("scanner.probe", "scanner.state", "scanner.exporters", "scanner.fleet", "scanner.logs"),
    ("scanner.engine",),
    ("scanner.plan", "scanner.targets", "scanner.serve", "scanner.api", "scanner.workers"),
    ("scanner.cli", "scanner.__main__"),
)

CLOCK_ATTRIBUTES = frozenset(
    {
        ("datetime", "now"),
        ("datetime", "utcnow"),
        ("datetime", "today"),
        ("date", "today"),
        ("time", "time"),
        ("time", "time_ns"),
        ("time", "monotonic"),
        ("time", "monotonic_ns"),
        ("time", "perf_counter"),
        ("time", "perf_counter_ns"),
        ("time", "process_time"),
        ("time", "localtime"),
        ("time", "gmtime"),
    }
)


def source_tree(root: Path = SCANNER) -> dict[str, str]:
    """Module name → source of every module of the package."""
    modules: dict[str, str] = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path.read_text(encoding="utf-8")
    return modules


def _is_package(name: str, modules: Mapping[str, str]) -> bool:
    return any(other.startswith(name + ".") for other in modules)


def _resolve(module: str, node: ast.ImportFrom, modules: Mapping[str, str]) -> str:
    if node.level == 0:
        return node.module or ""
    package = module if _is_package(module, modules) else module.rpartition(".")[0]
    for _ in range(node.level - 1):
        package = package.rpartition(".")[0]
    return f"{package}.{node.module}" if node.module else package


def imports_of(module: str, source: str, modules: Mapping[str, str]) -> set[str]:
    """Everything a module imports: package modules (``from scanner import probe``
    counts as scanner.probe) and other top-level libraries."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(module, node, modules)
            found.add(base)
            for alias in node.names:
                if f"{base}.{alias.name}" in modules:
                    found.add(f"{base}.{alias.name}")
    internal: set[str] = set()
    for name in found:
        if name in modules:
            internal.add(name)
        elif name.split(".")[0] != "scanner":
            internal.add(name.split(".")[0])
    internal.discard(module)
    return internal


def _parents(name: str, modules: Mapping[str, str]) -> set[str]:
    """The packages Python imports first when it imports `name` (a.b.c: a, a.b)."""
    parts = name.split(".")
    return {".".join(parts[:n]) for n in range(1, len(parts))} & modules.keys()


def graph(modules: Mapping[str, str]) -> dict[str, set[str]]:
    """Import arrows, with the packages each import runs first (their faces),
    except the importing module's own packages, which are already running."""
    edges: dict[str, set[str]] = {}
    for name, source in modules.items():
        targets = imports_of(name, source, modules)
        implied = {p for t in targets if t in modules for p in _parents(t, modules)}
        edges[name] = (targets | implied) - _parents(name, modules) - {name}
    return edges


def closure(start: str, edges: Mapping[str, set[str]]) -> set[str]:
    seen: set[str] = set()
    stack = [start]
    while stack:
        for target in edges.get(stack.pop(), ()):
            if target not in seen:
                seen.add(target)
                stack.append(target)
    return seen


def shell_entry(module: str) -> frozenset[str] | None:
    for name, allowed in SHELL.items():
        if module == name or module.startswith(name + "."):
            return allowed
    return None


def layer_of(module: str) -> int:
    best, depth = -1, -1
    for index, layer in enumerate(LAYERS):
        for name in layer:
            inside = module == name or (name != "scanner" and module.startswith(name + "."))
            if inside and len(name) > depth:
                best, depth = index, len(name)
    return best


def clock_reads(source: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute):
            owner = node.value
            name = owner.id if isinstance(owner, ast.Name) else getattr(owner, "attr", "")
            if (name, node.attr) in CLOCK_ATTRIBUTES:
                found.append(f"{name}.{node.attr} at line {node.lineno}")
        elif isinstance(node, ast.ImportFrom) and node.module in ("time", "datetime"):
            for alias in node.names:
                if (node.module, alias.name) in CLOCK_ATTRIBUTES:
                    found.append(f"from {node.module} import {alias.name} at line {node.lineno}")
        elif isinstance(node, ast.Name) and node.id == "__import__":
            found.append(f"__import__ at line {node.lineno}")
    return found


def violations(modules: Mapping[str, str]) -> list[str]:
    """Every breach of the house rules, one line each."""
    edges = graph(modules)
    found: list[str] = []
    for module in sorted(modules):
        reached = closure(module, edges)
        libraries = {name for name in reached if name not in modules}
        allowed = shell_entry(module)
        if allowed is None:  # pure by default
            impure = sorted(libraries & IMPURE)
            if impure:
                found.append(f"{module} is pure but reaches {impure}")
            shells = sorted(
                name for name in reached & modules.keys() if shell_entry(name) is not None
            )
            if shells:
                found.append(f"{module} is pure but imports the shell module(s) {shells}")
            found += [
                f"{module} reads the clock: {where}" for where in clock_reads(modules[module])
            ]
        else:
            own = {name for name in edges[module] if name not in modules}
            extra = sorted((own & IMPURE) - allowed)
            if extra:
                found.append(f"{module} imports {extra}, not in its row of the shell table")
        layer = layer_of(module)
        if layer < 0:
            found.append(f"{module} is in no layer")
            continue
        explicit = imports_of(module, modules[module], modules)
        for target in sorted(explicit & modules.keys()):
            if layer_of(target) > layer:
                found.append(
                    f"{module} (layer {layer}) imports {target} (layer {layer_of(target)})"
                )
    for module in sorted(modules):
        if module in closure(module, edges):
            found.append(f"{module} imports itself through a loop")
    return found


# --- the house as it is ------------------------------------------------------------


def test_the_house_keeps_its_rules() -> None:
    assert violations(source_tree()) == []


def test_every_module_is_in_a_layer_and_every_shell_row_is_used() -> None:
    modules = source_tree()
    assert all(layer_of(m) >= 0 for m in modules)
    for name in SHELL:
        assert any(m == name or m.startswith(name + ".") for m in modules), name


def test_only_the_command_line_touches_process_io() -> None:
    """argv, the standard streams and exit belong to cli/ (and the fleet
    server's own process entry point); everything else gets streams passed in."""
    allowed = ("scanner.cli", "scanner.__main__", "scanner.fleet.server")
    process_io = {"argv", "stdout", "stderr", "stdin", "exit"}
    for module, source in source_tree().items():
        if module.startswith(allowed):
            continue
        for node in ast.walk(ast.parse(source)):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "sys"
            ):
                assert node.attr not in process_io, f"{module}:{node.lineno} uses sys.{node.attr}"


def test_every_public_module_names_its_api_and_long_ones_explain_themselves() -> None:
    for module, source in source_tree().items():
        tree = ast.parse(source)
        if module.endswith("__main__"):
            continue
        assert any(
            isinstance(node, ast.Assign)
            and any(getattr(t, "id", "") == "__all__" for t in node.targets)
            for node in tree.body
        ), f"{module} has no __all__"
        if len(source.splitlines()) > 500:
            doc = ast.get_docstring(tree) or ""
            assert len(doc.splitlines()) >= 8, (
                f"{module}: over 500 lines without a theory of operation"
            )


# --- the checker can fail ------------------------------------------------------------


def _house(**extra: str) -> dict[str, str]:
    """A small house: a pure core module, a shell probe, plus `extra` modules."""
    modules = {
        "scanner": "",
        "scanner.model": "X = 1\n",
        "scanner.audit": "from scanner.model import X\n",
        "scanner.probe": "import trio\nimport socket\n",
        "scanner.cli": "from scanner import audit\n",
    }
    modules.update({name.replace("__", "."): source for name, source in extra.items()})
    return modules


def test_a_clean_small_house_passes() -> None:
    assert violations(_house()) == []


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from scanner import probe\n", "imports the shell module(s) ['scanner.probe']"),
        ("import scanner.probe\n", "imports the shell module(s) ['scanner.probe']"),
        ("from scanner.probe import *\n", "imports the shell module(s) ['scanner.probe']"),
        ("import time\nx = time.time()\n", "reaches ['time']"),
        ("import datetime as d\n\ndef f(now=datetime.now):\n    pass\n", "datetime.now"),
        ("from datetime import datetime\n\ndef f(now=datetime.now):\n    pass\n", "datetime.now"),
        ("import importlib\n", "reaches ['importlib']"),
        ("m = __import__('trio')\n", "__import__"),
        ("from urllib.parse import urlsplit\n", "reaches ['urllib']"),
    ],
)
def test_the_checker_catches_an_impure_core(source: str, expected: str) -> None:
    found = violations(_house(scanner__audit=source))
    assert any(expected in line for line in found), found


def test_the_checker_follows_imports_through_other_modules() -> None:
    """A pure module importing a helper that brings trio in is impure too."""
    found = violations(
        _house(scanner__helpers="import trio\n", scanner__audit="from scanner import helpers\n")
    )
    assert "scanner.audit is pure but reaches ['trio']" in found


def test_a_new_module_is_pure_by_default_and_needs_a_layer() -> None:
    found = violations(_house(scanner__newthing="import socket\n"))
    assert "scanner.newthing is pure but reaches ['socket']" in found
    assert "scanner.newthing is in no layer" in found


def test_the_checker_catches_loops_and_upward_arrows() -> None:
    found = violations(
        _house(
            scanner__model="from scanner import audit\n",  # the ground imports a higher floor
        )
    )
    assert "scanner.model (layer 0) imports scanner.audit (layer 5)" in found
    assert "scanner.audit imports itself through a loop" in found


def test_a_shell_module_may_use_only_what_its_row_allows() -> None:
    found = violations(_house(scanner__probe="import trio\nimport subprocess\n"))
    assert "scanner.probe imports ['subprocess'], not in its row of the shell table" in found
