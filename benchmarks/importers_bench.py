"""Benchmark: importing a Chromium static-pins list of the 2017 combined shape.

Chromium's `transport_security_state_static.json` of 2017 carried the whole
HSTS preload list (about 33,000 entries, one object per line, `//` comment
lines between groups) with the pinsets in the same file, and its `.pins`
companion held PEM certificates, some of them old roots whose serial number
is zero (cryptography warns about those). This generates a file of that shape
and size (`--entries`, default 33,000) and a `.pins` file with PEM
certificates including one with a zero serial, then prints:

* the wall time of `read_policy("chromium", …)` in this process (best of
  `--repeat`), and the entries and rules it found;
* what `python -m scanner import chromium FILE` writes to stderr (it must be
  nothing but pinaudit's own notes: no warning of a dependency).

    .venv/bin/python benchmarks/importers_bench.py [--entries 33000] [--repeat 3]

Baseline (2 cores, shared): before the locator was made linear, 33,000 entries
took about 55 s; see the report of the change for the figures measured since.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scanner.importers import read_policy  # noqa: E402


def _certificate(name: str, serial: int) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    start = dt.datetime(2010, 1, 1, tzinfo=dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(max(serial, 1))
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=9000))
        .sign(key, hashes.SHA256())
    )
    der = cert.public_bytes(serialization.Encoding.DER)
    if serial == 0:  # as some 1990s roots have it: rewrite the serial INTEGER 1 into 0
        der = der.replace(
            b"\xa0\x03\x02\x01\x02\x02\x01\x01", b"\xa0\x03\x02\x01\x02\x02\x01\x00", 1
        )
    encoded = base64.b64encode(der).decode()
    body = "\n".join(encoded[i : i + 64] for i in range(0, len(encoded), 64))
    return f"-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----\n".encode()


def write_files(directory: Path, entries: int) -> tuple[Path, Path]:
    names = [f"Root{n}" for n in range(24)]
    pins = [b"PinsListTimestamp\n1500000000\n\n"]
    for n, name in enumerate(names):
        pins.append(name.encode() + b"\n" + _certificate(name, 0 if n == 0 else n + 1) + b"\n")
    pinsets = [
        {
            "name": f"set{n}",
            "static_spki_hashes": names[n : n + 3],
            "report_uri": f"https://r{n}.example/",
        }
        for n in range(20)
    ]
    lines = [
        "// Copyright (c) 2012 The Chromium Authors. All rights reserved.",
        '// The top-level element is a dictionary with two keys: "pinsets" and "entries".',
        "{",
        '  "pinsets": ' + json.dumps(pinsets, indent=2).replace("\n", "\n  ") + ",",
        '  "entries": [',
    ]
    for n in range(entries):
        if n % 500 == 0:
            lines.append(f"    // group {n // 500}")
        entry: dict[str, object] = {"name": f"host{n}.example{n % 97}.com", "mode": "force-https"}
        if n % 7 == 0:
            entry["include_subdomains"] = True
        if n % 40 == 0:
            entry["pins"] = f"set{n % 20}"
        comma = "," if n < entries - 1 else ""
        lines.append("    " + json.dumps(entry) + comma)
    lines += ["  ]", "}"]
    json_path = directory / "transport_security_state_static.json"
    json_path.write_text("\n".join(lines) + "\n")
    pins_path = directory / "transport_security_state_static.pins"
    pins_path.write_bytes(b"\n".join(pins))
    return json_path, pins_path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--entries", type=int, default=33000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        json_path, _ = write_files(Path(tmp), args.entries)
        size = json_path.stat().st_size
        best = float("inf")
        policy = None
        for _ in range(args.repeat):
            start = time.perf_counter()
            policy = read_policy("chromium", str(json_path))
            best = min(best, time.perf_counter() - start)
        assert policy is not None
        print(
            f"chromium import: {args.entries} entries, {size / 1e6:.1f} MB: "
            f"{best:.2f} s (best of {args.repeat}), {len(policy.rules)} pinned rules, "
            f"{len(policy.problems)} problems, {len(policy.notes)} notes"
        )
        env = {**os.environ, "PYTHONWARNINGS": "default"}
        run = subprocess.run(
            [sys.executable, "-m", "scanner", "import", "chromium", str(json_path)],
            capture_output=True,
            text=True,
            cwd=ROOT,
            env=env,
            timeout=600,
            check=False,
        )
        foreign = [
            line
            for line in run.stderr.splitlines()
            if line and not line.startswith("pinaudit import: ")
        ]
        print(
            f"pinaudit import chromium: exit {run.returncode}, stderr lines "
            f"{len(run.stderr.splitlines())}, of which not pinaudit's own: {len(foreign)}"
        )
        for line in foreign[:5]:
            print(f"  {line}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
