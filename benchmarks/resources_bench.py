"""Benchmark: peak memory and open files of `scan` as the fleet grows.

For each size (default 1000, 5000 and 10000 endpoints) a fleet of healthy
endpoints, each with its own leaf, is served by a separate process
(`FleetProcess`, on 127.10.x.y: 250 addresses per /24), and
`python -m scanner scan --format json --output FILE` scans it in a child
process. Printed per size: peak RSS of the scanning process (ru_maxrss from
wait4, in a small launcher that forks it), the most descriptors it had open
at once (sampled from /proc/PID/fd every 10 ms), CPU seconds, wall seconds,
and the report's summary.

    .venv/bin/python benchmarks/resources_bench.py [--sizes 1000 5000 10000] [--concurrency 200]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.realistic import procs  # noqa: E402
from scanner.fleet.scenarios import build_fleet  # noqa: E402
from scanner.fleet.server import FleetProcess, write_config  # noqa: E402

BASE = 10  # 127.10.x.y: other benchmarks and tests use other blocks
SAMPLE_SECONDS = 0.01


@dataclass(frozen=True)
class Figures:
    endpoints: int
    peak_rss_mib: float
    peak_fds: int
    cpu: float
    wall: float
    status: int
    summary: dict[str, int]

    def line(self) -> str:
        return (
            f"{self.endpoints:>6} endpoints  peak RSS {self.peak_rss_mib:7.1f} MiB  "
            f"peak open files {self.peak_fds:>5}  cpu {self.cpu:6.1f} s  wall {self.wall:6.1f} s  "
            f"exit {self.status}  {self.summary}"
        )


def _count_fds(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


def _watch_fds(launcher: int, stop: threading.Event, peak: list[int]) -> None:
    """The scan's open descriptors: the launcher's child (see measure)."""
    while not stop.is_set():
        try:
            children = Path(f"/proc/{launcher}/task/{launcher}/children").read_text().split()
        except OSError:
            children = []
        for child in children:
            peak[0] = max(peak[0], _count_fds(int(child)))
        stop.wait(SAMPLE_SECONDS)


def measure(command: list[str], endpoints: int, report: Path) -> Figures:
    """CPU and peak RSS of the scan (forked by the small launcher of
    ``procs.run_child``: this process holds the whole fleet's PKI, and a child
    it forks would count that RSS as its own); its open files watched."""
    stop, peak = threading.Event(), [0]
    watcher: list[threading.Thread] = []

    def watch(launcher: int) -> None:
        watcher.append(
            threading.Thread(target=_watch_fds, args=(launcher, stop, peak), daemon=True)
        )
        watcher[0].start()

    figures, code, err = procs.run_child(
        "pinaudit", command, endpoints, cpus=None, cwd=ROOT, started=watch
    )
    stop.set()
    for thread in watcher:
        thread.join()
    if code not in (0, 1):
        raise SystemExit(f"scan failed with exit {code}:\n{err}")
    summary = json.loads(report.read_text())["summary"]
    return Figures(
        endpoints, figures.peak_rss_mib, peak[0], figures.cpu, figures.wall, code, summary
    )


def run_size(n: int, concurrency: int) -> Figures:
    now = datetime.now(timezone.utc)
    fleet = build_fleet(now, n, scenarios=["healthy"], base=BASE, timeout=10.0)
    with tempfile.TemporaryDirectory(prefix="pinaudit-resources-") as tmp:
        directory = Path(tmp)
        with FleetProcess(write_config(fleet.sites, directory / "sites"), ready_timeout=300) as fl:
            inventory = fleet.write(directory, fl.listening)
            report = directory / "report.json"
            command = [
                sys.executable, "-m", "scanner", "scan", "--inventory", str(inventory),
                "--format", "json", "--output", str(report), "--concurrency", str(concurrency),
            ]  # fmt: skip
            return measure(command, n, report)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000, 10000])
    parser.add_argument("--concurrency", type=int, default=200)
    args = parser.parse_args()
    print(f"scan --concurrency {args.concurrency}; fleet served by a separate process")
    for n in args.sizes:
        print(run_size(n, args.concurrency).line(), flush=True)


if __name__ == "__main__":
    main()
