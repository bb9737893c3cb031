"""Inventory loading: CPU per endpoint, block and flow style, beside a baseline.

Writes the realistic fleet's inventory (benchmarks/realistic/fleet.py: named
pin-sets with offline backups, inline pins, labels, a custom trust bundle)
for each size, in block style (one key per line) and flow style (one
``{...}`` mapping per endpoint), and times ``load_inventory`` on each: CPU
time (``time.process_time``) in a child process per measurement, after its
imports, the best and the median of ``--rounds``. With ``--baseline REV``
(default: ``main``) the same files are loaded, in the same run, by the
``scanner`` package of that git revision (exported to a temporary
directory), so the figures are printed beside their baseline.

    .venv/bin/python benchmarks/inventory_bench.py [--sizes 1000 10000]
        [--rounds 5] [--baseline main | --baseline none]

Issue 11 asks for at most 0.1 ms per endpoint (10 000 endpoints in 1 s).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
from datetime import datetime, timezone
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.realistic import fleet  # noqa: E402

TARGET_MS = 0.1
_CHILD = """
import gc, sys, time
from scanner.inventory import load_inventory
import scanner
path, rounds = sys.argv[1], int(sys.argv[2])
times = []
for _ in range(rounds):
    inventory = None
    gc.collect()  # the previous round's objects freed and collected before the clock runs
    start = time.process_time()
    inventory = load_inventory(path)
    times.append(time.process_time() - start)
print(len(inventory.endpoints), scanner.__file__, *times)
"""


def export(revision: str, into: Path) -> Path:
    """The `scanner` package of a git revision, written under `into`."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", revision, "scanner"],
        capture_output=True,
        check=True,
    ).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


def measure(path: Path, rounds: int, package_root: Path) -> tuple[int, list[float]]:
    env = dict(os.environ, PYTHONPATH=str(package_root))
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(path), str(rounds)],
        capture_output=True,
        text=True,
        check=False,
        cwd=package_root,
        env=env,
    )
    if done.returncode != 0:
        raise SystemExit(f"loading {path} failed:\n{done.stderr[-2000:]}")
    count, where, *times = done.stdout.split()
    if not where.startswith(str(package_root)):
        raise SystemExit(f"the child imported scanner from {where}, not {package_root}")
    return int(count), [float(t) for t in times]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--baseline", default="main", help="git revision, or 'none'")
    args = parser.parse_args()
    load = os.getloadavg()
    print(f"python {sys.version.split()[0]}, load average {load[0]:.2f} {load[1]:.2f}")
    print(f"target: {TARGET_MS} ms per endpoint; CPU per load, best (median) of {args.rounds}")
    the_fleet = fleet.build(datetime.now(timezone.utc), [f"127.70.0.{i}" for i in (1, 2, 3, 4)])
    with tempfile.TemporaryDirectory(prefix="inventory-bench-") as tmp:
        directory = Path(tmp)
        trust = the_fleet.write_trust(directory / "trust.pem")
        packages = {"this tree": ROOT}
        if args.baseline != "none":
            base = export(args.baseline, directory / "baseline")
            packages = {f"baseline {args.baseline}": base, **packages}
        header = f"{'endpoints':>9}  {'style':5}  " + "  ".join(f"{k:>28}" for k in packages)
        print(header)
        for size in args.sizes:
            endpoints = the_fleet.endpoints(size)
            for style in ("block", "flow"):
                path = directory / f"inventory-{size}-{style}.yaml"
                the_fleet.write_inventory(path, endpoints, 8443, trust, style)
                cells = []
                for root in packages.values():
                    count, times = measure(path, args.rounds, root)
                    if count != size:
                        raise SystemExit(f"{path}: {count} endpoints loaded, not {size}")
                    best, median = min(times), statistics.median(times)
                    ms = 1000 * best / size
                    cells.append(f"{ms:6.3f} ({1000 * median / size:.3f}) ms/ep {best:6.2f} s")
                print(f"{size:>9}  {style:5}  " + "  ".join(f"{c:>28}" for c in cells))
    load = os.getloadavg()
    print(f"load average at the end {load[0]:.2f} {load[1]:.2f}")


if __name__ == "__main__":
    main()
