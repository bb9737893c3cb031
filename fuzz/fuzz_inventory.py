"""Fuzz target: the inventory loader, and the audit of what it loads.

Invariant: whatever the bytes, ``load_inventory_text`` (first byte even) or
``load_inventory`` on a file (first byte odd) returns an Inventory or raises
InventoryError whose problems all carry a file, a line and a column >= 1.
Every endpoint of an inventory that loads is then audited against a fixed
chain report (the loader's values meet the audit's date and day arithmetic)
and rendered as the JSON report renders it.

    python fuzz/fuzz_inventory.py [CORPUS_DIR] [-runs=N] [-max_total_time=S]
"""

from __future__ import annotations

import json
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from _driver import fuzz, instrumented

with instrumented():
    from scanner.audit import audit
    from scanner.chain import CertificateCache, analyze_chain
    from scanner.errors import InventoryError
    from scanner.exporters import jsonreport
    from scanner.fleet.pki import PKI, standard_chain
    from scanner.inventory import load_inventory, load_inventory_text
    from scanner.model import Inventory, Observation
    from scanner.results import evaluate
    from scanner.trust import store_from_pem

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)
MAX_ENDPOINTS_AUDITED = 16

_BASE = Path(tempfile.mkdtemp(prefix="pinaudit-fuzz-inventory-"))
_PKI = PKI(NOW)
_CHAIN = standard_chain(_PKI, "api.example.com")
(_BASE / "teams").mkdir()
(_BASE / "ca.pem").write_bytes(_CHAIN.root.pem)
(_BASE / "teams" / "payments.yaml").write_text(
    "version: 1\nendpoints:\n  - host: pay.example.com\n    pins: [sha256/"
    + _CHAIN.intermediate.pin.b64
    + "]\n"
)
_STORE = store_from_pem(_CHAIN.root.pem, "ca.pem")
_REPORT = analyze_chain(_CHAIN.served, _STORE, "api.example.com", NOW, cache=CertificateCache())


def test_one_input(data: bytes) -> None:
    if not data:
        return
    body = data[1:]
    try:
        if data[0] % 2 == 0:
            inventory = load_inventory_text(
                body.decode("utf-8", "replace"), "fuzz.yaml", base_dir=_BASE
            )
        else:
            path = _BASE / "fuzz.yaml"
            path.write_bytes(body)
            inventory = load_inventory(path)
    except InventoryError as exc:
        assert exc.problems, "InventoryError without problems"
        for problem in exc.problems:
            assert problem.location.line >= 1 and problem.location.column >= 1, problem
            assert problem.message, problem
        return
    _judge(inventory)


def _judge(inventory: Inventory) -> None:
    for endpoint in inventory.endpoints[:MAX_ENDPOINTS_AUDITED]:
        audit(endpoint, _REPORT, NOW)
        observation = Observation(
            "192.0.2.1", endpoint.port, tuple(_CHAIN.served), "", "", None, 0, 0
        )
        result = evaluate(endpoint, [observation], _STORE, NOW)
        json.dumps(jsonreport.endpoint_entry(result, NOW))


def seeds() -> list[bytes]:
    texts = [
        (ROOT / "inventories" / "example.yaml").read_bytes(),
        *(p.read_bytes() for p in sorted((ROOT / "tests" / "data" / "inventories").glob("*"))),
        f"""version: 1
defaults: &d {{port: 8443, timeout: 500ms, warn_days: 30, critical_days: 7,
  pinset_warn_days: 60, trust: ca.pem, labels: {{env: prod}}}}
include: [teams/*.yaml]
pinsets:
  main:
    expires: 2027-06-01
    digest: SHA-256
    pins:
      - sha256/{_CHAIN.intermediate.pin.b64}
      - pin-sha256="{_CHAIN.root.pin.b64}"
      - {_CHAIN.leaf.pin.digest.hex()}
endpoints:
  - host: api.example.com
    pinset: main
    labels: {{team: core}}
  - name: edge
    <<: *d
    host: 10.0.0.5
    sni: api.example.com
    pins: [sha1/{_CHAIN.leaf.sha1_pin.b64}]
    all_addresses: true
  - host: "2001:db8::1"
    sni: false
    pins: []
""".encode(),
    ]
    return [bytes([mode]) + text for text in texts for mode in (0, 1)]


if __name__ == "__main__":
    sys.setrecursionlimit(10_000)
    fuzz(test_one_input, seeds)
