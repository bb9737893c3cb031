"""A scan imports only what it uses (issue 11 item 4: memory).

Every module a process imports stays resident; the floor client of the
realistic benchmark imports trio and ssl only, so what pinaudit's scan
imports beyond what it needs is peak RSS it pays at any fleet size
(docs/performance.md). The table exporter, the one-shot metric exports,
the demo's fleet, the client-config parsers (with ElementTree, defusedxml and
plistlib), XMPP's XML parser and the workers' pickle are imported where they
are used. This runs a real JSON scan in a fresh interpreter and lists what it
imported.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

NOT_FOR_A_JSON_SCAN = [
    "scanner.importers",
    "scanner.fleet",
    "scanner.exporters.table",
    "scanner.exporters.prometheus",
    "scanner.serve",
    "rich",
    "prometheus_client",
    "xml.etree.ElementTree",
    "defusedxml",
    "plistlib",
    "pickle",
]

_SCAN = """
import json, runpy, sys
sys.argv = ["pinaudit", "scan", "--inventory", sys.argv[1], "--format", "json",
            "--output", sys.argv[2], "--fail-on", "never", "--no-progress"]
try:
    runpy.run_module("scanner", run_name="__main__")
except SystemExit as exc:
    code = exc.code
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # closed again when the block ends


def test_a_json_scan_imports_nothing_it_does_not_use(tmp_path: Path) -> None:
    inventory = tmp_path / "inv.yaml"
    inventory.write_text(
        f"version: 1\nendpoints:\n  - {{host: 127.0.0.1, port: {_closed_port()}, timeout: 2s}}\n"
    )
    report = tmp_path / "report.json"
    done = subprocess.run(
        [sys.executable, "-c", _SCAN, str(inventory), str(report)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["code"] == 0
    assert json.loads(report.read_text())["summary"]["error"] == 1  # it did scan
    imported = set(result["modules"])
    assert [m for m in NOT_FOR_A_JSON_SCAN if m in imported] == []
    assert {"scanner.probe", "scanner.inventory.schema", "trio"} <= imported
