"""``scan --workers N``: endpoints/s and CPU against the number of workers.

The realistic fleet (benchmarks/realistic/fleet.py: ten distinct chains, N
virtual hosts, offline backup pins, ~10 % drift) served by nginx (one
worker) on 127.70.0.1-4, scanned by ``python -m scanner scan --format json
--workers W`` for each W, rounds alternating, nothing pinned (the workers
need the cores; nginx shares them, and its CPU is printed beside). CPU is
the scan's user + sys from wait4, its workers included (they are waited
for). Every run's verdicts are checked against the fleet's promise
(benchmarks/realistic/verdicts.py), so a faster split that changes one shows.

    .venv/bin/python benchmarks/workers_bench.py [--endpoints 2000]
        [--workers 1 2 4] [--rounds 2] [--concurrency 100]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.realistic import fleet, procs, verdicts  # noqa: E402

ADDRESSES = [f"127.70.0.{i}" for i in (1, 2, 3, 4)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoints", type=int, default=2000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=100)
    args = parser.parse_args()
    nginx = procs.program("nginx")
    if nginx is None:
        raise SystemExit("nginx is not installed (.ci/install-peers installs it)")
    print(f"CPUs available: {len(os.sched_getaffinity(0))}; load {procs.loadavg()}")
    the_fleet = fleet.build(datetime.now(timezone.utc), ADDRESSES)
    with tempfile.TemporaryDirectory(prefix="pinaudit-workers-") as tmp:
        directory = Path(tmp)
        trust = the_fleet.write_trust(directory / "trust.pem")
        files = the_fleet.write_server_files(directory / "certs")
        port = procs.port_free_on_all(ADDRESSES)
        endpoints = the_fleet.endpoints(args.endpoints)
        inventory = the_fleet.write_inventory(
            directory / "inventory.yaml", endpoints, port, trust, "block"
        )
        nginx_dir = directory / "nginx"
        nginx_dir.mkdir()
        conf = nginx_dir / "nginx.conf"
        conf.write_text(
            fleet.nginx_config(the_fleet, nginx_dir, port, files, as_root=os.geteuid() == 0)
        )
        command = [nginx, "-p", str(nginx_dir), "-c", str(conf), "-e",
                   str(nginx_dir / "error.log"), "-g", "daemon off;"]  # fmt: skip
        rates: dict[int, list[float]] = {w: [] for w in args.workers}
        cpus: dict[int, list[float]] = {w: [] for w in args.workers}
        with procs.server(command, host=ADDRESSES[0], port=port, cpus=None) as served:
            for round_ in range(args.rounds):
                order = args.workers[round_ % len(args.workers) :]
                order += args.workers[: round_ % len(args.workers)]
                for workers in order:
                    report = directory / f"report-{workers}.json"
                    scan = [sys.executable, "-m", "scanner", "scan", "-i", str(inventory),
                            "--format", "json", "--output", str(report), "--concurrency",
                            str(args.concurrency), "--fail-on", "never", "--no-progress",
                            "--workers", str(workers)]  # fmt: skip
                    nginx_before = procs.tree_cpu_seconds(served.pid)
                    figures, status, err = procs.run_child(
                        f"workers={workers}", scan, args.endpoints, cpus=None, cwd=ROOT
                    )
                    nginx_cpu = procs.tree_cpu_seconds(served.pid) - nginx_before
                    if status != 0:
                        raise SystemExit(f"scan --workers {workers} exited {status}:\n{err}")
                    ok, summary = verdicts.render(json.loads(report.read_text()), endpoints)
                    rates[workers].append(figures.rate)
                    cpus[workers].append(figures.cpu_ms)
                    print(
                        f"round {round_ + 1}  --workers {workers}: {figures.rate:7.1f} endpoints/s"
                        f"  {figures.cpu_ms:5.2f} ms CPU/endpoint (workers included)"
                        f"  wall {figures.wall:6.2f} s  nginx CPU {nginx_cpu:5.2f} s"
                        f"  load {procs.loadavg()}  {summary.splitlines()[0]}",
                        flush=True,
                    )
                    if not ok:
                        raise SystemExit(summary)
    print(f"\nN = {args.endpoints}, concurrency {args.concurrency}, medians:")
    base = statistics.median(rates[args.workers[0]])
    for workers in args.workers:
        rate = statistics.median(rates[workers])
        print(
            f"  --workers {workers}: {rate:7.1f} endpoints/s ({rate / base:.2f}x)"
            f"  {statistics.median(cpus[workers]):5.2f} ms CPU/endpoint"
        )


if __name__ == "__main__":
    main()
