"""Benchmark: pinaudit's scan against the floor client, same endpoints, same run.

Serves N simulated endpoints (healthy, each with its own leaf) from a separate
process on 127.3.x.y, then scans them twice, each in its own child process:
the floor client (trio + TLS handshake + chain read, no analysis) and
`pinaudit scan --format json`. Prints, for both, CPU seconds per endpoint
(user+sys of the scanning process, from wait4), endpoints/s (wall), peak RSS,
and the ratios.

    .venv/bin/python benchmarks/scan_bench.py [--endpoints 2000] [--concurrency 200] [--rounds 1]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.realistic import procs  # noqa: E402
from scanner.fleet.scenarios import build_fleet  # noqa: E402
from scanner.fleet.server import FleetProcess, write_config  # noqa: E402


@dataclass(frozen=True)
class Figures:
    name: str
    cpu: float  # user + sys seconds
    wall: float
    peak_rss_mib: float
    status: int

    def line(self, n: int) -> str:
        return (
            f"{self.name:<9} cpu {self.cpu:7.2f} s  {1000 * self.cpu / n:6.3f} ms/endpoint  "
            f"{n / self.wall:8.1f} endpoints/s  peak RSS {self.peak_rss_mib:6.1f} MiB  "
            f"exit {self.status}"
        )


def measure(name: str, command: list[str]) -> Figures:
    """CPU and peak RSS of `command`, forked by a small launcher: a child forked
    by this process (which holds the whole fleet's PKI) would count this
    process's RSS as its own (benchmarks/realistic/launch.py)."""
    figures, code, err = procs.run_child(name, command, 1, cpus=None, cwd=ROOT)
    if code not in (0, 1):
        raise SystemExit(f"{name} failed with exit {code}:\n{err}")
    return Figures(name, figures.cpu, figures.wall, figures.peak_rss_mib, code)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoints", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=1, help="alternate floor/pinaudit runs")
    args = parser.parse_args()
    n = args.endpoints
    now = datetime.now(timezone.utc)
    fleet = build_fleet(now, n, scenarios=["healthy"], base=3)
    with tempfile.TemporaryDirectory(prefix="pinaudit-bench-") as tmp:
        directory = Path(tmp)
        with FleetProcess(write_config(fleet.sites, directory / "sites")) as served:
            inventory = fleet.write(directory, served.listening)
            python = sys.executable
            floor_cmd = [
                python,
                "benchmarks/floor_client.py",
                str(inventory),
                str(args.concurrency),
            ]
            scan_cmd = [
                python,
                "-m",
                "scanner",
                "scan",
                "--inventory",
                str(inventory),
                "--format",
                "json",
                "--output",
                str(directory / "report.json"),
                "--concurrency",
                str(args.concurrency),
            ]
            print(f"{n} endpoints, concurrency {args.concurrency}, served by a separate process")
            for round_ in range(1, args.rounds + 1):
                floor = measure("floor", floor_cmd)
                scan = measure("pinaudit", scan_cmd)
                print(f"round {round_}")
                print("  " + floor.line(n))
                print("  " + scan.line(n))
                print(
                    f"  ratio pinaudit/floor: cpu {scan.cpu / floor.cpu:.2f}x, "
                    f"wall {scan.wall / floor.wall:.2f}x, "
                    f"peak RSS {scan.peak_rss_mib / floor.peak_rss_mib:.2f}x"
                )


if __name__ == "__main__":
    main()
