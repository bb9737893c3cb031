"""Rules of the house (DESIGN §1), read from the source with `ast`: the pure
core never imports network, TLS, async or metrics libraries and never reads
the clock; exporters never reach back into the probe."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SCANNER = Path(__file__).resolve().parent.parent / "scanner"
PURE = [
    "model.py",
    "errors.py",
    "pins.py",
    "inventory.py",
    "trust.py",
    "chain.py",
    "audit.py",
    "results.py",
    "status.py",
    "exporters/jsonreport.py",
    "exporters/metrics.py",
    "fleet/pki.py",
    "rotation.py",
    "preflight.py",
    "state.py",
    "policy.py",
    "clients.py",
    "paths.py",
    "inventory_clients.py",
    "importers/__init__.py",
    "importers/_common.py",
    "importers/_xml.py",
    "importers/android.py",
    "importers/apple.py",
    "importers/chromium.py",
    "importers/hpkp.py",
    "importers/okhttp.py",
    "importers/plist.py",
]
FORBIDDEN = {"trio", "ssl", "socket", "prometheus_client", "asyncio", "urllib", "http", "select"}
CLOCK_CALLS = {
    ("datetime", "now"),
    ("datetime", "utcnow"),
    ("date", "today"),
    ("time", "time"),
    ("time", "monotonic"),
    ("time", "perf_counter"),
}


def _imports(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _clock_calls(tree: ast.AST) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = node.func.value
            name = owner.id if isinstance(owner, ast.Name) else getattr(owner, "attr", "")
            if (name, node.func.attr) in CLOCK_CALLS:
                found.append(f"{name}.{node.func.attr}() at line {node.lineno}")
    return found


@pytest.mark.parametrize("module", PURE)
def test_pure_modules_do_no_io_and_read_no_clock(module: str) -> None:
    tree = ast.parse((SCANNER / module).read_text())
    bad = {name for name in _imports(tree) if name.split(".")[0] in FORBIDDEN}
    bad |= {name for name in _imports(tree) if name in {"scanner.probe", "scanner.engine"}}
    assert not bad, f"{module} imports {sorted(bad)}"
    assert _clock_calls(tree) == [], module


def test_exporters_do_not_reach_into_the_probe() -> None:
    for path in (SCANNER / "exporters").glob("*.py"):
        imports = _imports(ast.parse(path.read_text()))
        assert not {"scanner.probe", "scanner.engine"} & imports, path.name


def test_only_the_command_line_touches_process_io() -> None:
    """argv, the standard streams and exit belong to cli.py (and the fleet
    server's own process entry point); everything else gets streams passed in."""
    allowed = {"cli.py", "__main__.py", "fleet/server.py"}
    process_io = {"argv", "stdout", "stderr", "stdin", "exit"}
    for path in SCANNER.rglob("*.py"):
        relative = str(path.relative_to(SCANNER))
        if relative in allowed:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "sys"
            ):
                assert node.attr not in process_io, f"{relative}:{node.lineno} uses sys.{node.attr}"
