"""Benchmark: a scan where a fraction of endpoints never answer.

Serves N simulated endpoints from a separate process, first all healthy,
then with every tenth one silent (accepts, never answers), and scans each
fleet with `pinaudit scan`. With enough concurrency, the second scan should
take about one per-endpoint timeout longer than the first, and every
endpoint must get exactly one result (the silent ones as `timeout`).

    .venv/bin/python benchmarks/silent_fraction.py [--endpoints 2000] [--timeout 2] \\
        [--concurrency 200]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scanner.fleet.scenarios import build_fleet  # noqa: E402
from scanner.fleet.server import FleetProcess, write_config  # noqa: E402


def scan(
    label: str, names: list[str], *, base: int, n: int, timeout: float, concurrency: int
) -> None:
    fleet = build_fleet(datetime.now(timezone.utc), n, scenarios=names, base=base, timeout=timeout)
    with tempfile.TemporaryDirectory(prefix="pinaudit-silent-") as tmp:
        directory = Path(tmp)
        with FleetProcess(write_config(fleet.sites, directory / "sites")) as served:
            inventory = fleet.write(directory, served.listening)
            command = [
                sys.executable,
                "-m",
                "scanner",
                "scan",
                "--inventory",
                str(inventory),
                "--format",
                "json",
                "--concurrency",
                str(concurrency),
                "--fail-on",
                "never",
            ]
            start = time.perf_counter()
            out = subprocess.run(command, cwd=ROOT, capture_output=True, check=True).stdout
            wall = time.perf_counter() - start
    report = json.loads(out)
    reasons: dict[str, int] = {}
    for entry in report["endpoints"]:
        reason = entry["error"]["reason"] if entry["error"] else "handshake"
        reasons[reason] = reasons.get(reason, 0) + 1
    results = len(report["endpoints"])
    names_seen = len({e["name"] for e in report["endpoints"]})
    print(f"  {label:<18} wall {wall:6.2f} s  results {results} (distinct {names_seen})  {reasons}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoints", type=int, default=2000)
    parser.add_argument("--timeout", type=float, default=2.0)
    parser.add_argument("--concurrency", type=int, default=200)
    args = parser.parse_args()
    n = args.endpoints
    print(f"{n} endpoints, per-endpoint timeout {args.timeout} s, concurrency {args.concurrency}")
    scan(
        "all healthy", ["healthy"], base=5, n=n, timeout=args.timeout, concurrency=args.concurrency
    )
    scan(
        "10% silent",
        ["healthy"] * 9 + ["silent"],
        base=6,
        n=n,
        timeout=args.timeout,
        concurrency=args.concurrency,
    )


if __name__ == "__main__":
    main()
