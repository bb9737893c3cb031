"""Benchmark on a realistic fleet: the floor, blackbox_exporter and pinaudit, one run.

The fleet (benchmarks/realistic/fleet.py): ten distinct chains (EC P-384 and
RSA-3072 roots, three issuers, EC and RSA leaves, wildcards, two chains that
send their root), served by one nginx to N virtual hosts by SNI on 127.70.0.x;
pin-sets with offline backup pins no server sends; a custom trust bundle;
~10 % drift (expired and expiring leaves, a missing issuer, a wrong name, a
retired pin, an expired pin-set).

Each round runs, one after the other and in rotating order, each in its own
child process pinned to the scanner core (nginx and this harness on the
other core):
- floor: trio + ssl handshake + chain read + SPKI hash (benchmarks/realistic/floor.py);
- blackbox: prometheus-blackbox-exporter, tcp prober with TLS, one /probe per
  virtual host at the same concurrency (driven from the server core); its
  CPU from /proc/PID/stat over the probing, its peak RSS from VmHWM;
- pinaudit: ``python -m scanner scan --format json`` (CPU and peak RSS from wait4).

It prints CPU ms per endpoint, endpoints/s, peak RSS and the ratios, per round
and as medians, the machine's load average, and checks that pinaudit's report
has exactly the verdicts the fleet promises.

    .venv/bin/python benchmarks/realistic_bench.py [--endpoints 1000 5000 10000]
        [--concurrency 100] [--rounds 3] [--profile] [--py-spy] [--markdown]
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import platform
import signal
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import trio  # noqa: E402

from benchmarks.realistic import blackbox, fleet, procs, profiles, verdicts  # noqa: E402
from benchmarks.realistic.procs import Figures  # noqa: E402

CLIENTS = ("floor", "blackbox", "blackbox-noverify", "pinaudit")
DEFAULT_CLIENTS = "floor,blackbox,pinaudit"
INSTRUMENTED = ROOT / "benchmarks/realistic/instrumented.py"
BASE = "127.70"  # this benchmark's loopback block


def _version(command: list[str]) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=10, check=False)
    except OSError:
        return "missing"
    text = (done.stdout + done.stderr).strip().splitlines()
    return text[0] if text else "?"


def header(args: argparse.Namespace, nginx: str | None, bbe: str | None) -> str:
    lines = [
        f"realistic fleet benchmark, {datetime.now(timezone.utc):%Y-%m-%d %H:%M}Z",
        f"  machine: {os.cpu_count()} CPUs ({platform.machine()}), Python "
        f"{platform.python_version()}, {ssl.OPENSSL_VERSION}",
        f"  nginx: {_version([nginx, '-v']) if nginx else 'missing'}",
        f"  blackbox: {_version([bbe, '--version']) if bbe else 'missing'}",
        f"  concurrency {args.concurrency}, {args.rounds} rounds, "
        f"{len(args_addresses(args))} loopback addresses, inventory {args.inventory_style} style",
        f"  CPU pinning: clients on CPU {args.scanner_cpu}; nginx, blackbox's driver and "
        f"this harness on CPU {args.server_cpu}",
        f"  load average at start: {procs.loadavg()}",
    ]
    return "\n".join(lines)


def args_addresses(args: argparse.Namespace) -> list[str]:
    return [f"{BASE}.0.{i + 1}" for i in range(args.addresses)]


def wait_for_low_load(limit: float, patience: float) -> None:
    deadline = time.monotonic() + patience
    while True:
        one = float(procs.loadavg().split()[0])
        if one <= limit or time.monotonic() >= deadline:
            if one > limit:
                print(f"  WARNING: load {one} > {limit}: figures are disturbed by other work")
            return
        print(f"  load {one} > {limit}: waiting", flush=True)
        time.sleep(30)


class Run:
    """One fleet size: files written, clients measured."""

    def __init__(  # noqa: PLR0917
        self,
        args: argparse.Namespace,
        the_fleet: fleet.RealisticFleet,
        directory: Path,
        port: int,
        trust: Path,
        n: int,
    ) -> None:
        self.args = args
        self.fleet = the_fleet
        self.n = n
        self.dir = directory / f"n{n}"
        self.dir.mkdir()
        self.port = port
        self.endpoints = the_fleet.endpoints(n)
        self.trust = self.dir / "trust.pem"
        self.trust.write_bytes(trust.read_bytes())
        start = time.perf_counter()
        self.inventory = the_fleet.write_inventory(
            self.dir / "inventory.yaml", self.endpoints, port, self.trust, args.inventory_style
        )
        self.targets = the_fleet.write_targets(self.dir / "targets.tsv", self.endpoints, port)
        self.bbe_config = blackbox.write_config(
            self.dir / "blackbox.yml", self.endpoints, self.trust
        )
        self.bbe_config_nv = blackbox.write_config(
            self.dir / "blackbox-noverify.yml", self.endpoints, self.trust, verify=False
        )
        self.write_seconds = time.perf_counter() - start
        self.report = self.dir / "report.json"
        self.cpus = {args.scanner_cpu} if args.scanner_cpu >= 0 else None
        self.nginx_pid = 0

    def measured(self, client: str, bbe: str | None) -> Figures:
        """One client's run, with how busy nginx and this harness were meanwhile
        (a server core near 100 % caps endpoints/s, not the client's CPU)."""
        nginx0 = procs.tree_cpu_seconds(self.nginx_pid) if self.nginx_pid else 0.0
        harness0 = time.process_time()
        if client == "floor":
            figures = self.floor()
        elif client.startswith("blackbox"):
            assert bbe is not None
            figures = self.blackbox(bbe, verify=client == "blackbox")
        else:
            figures = self.pinaudit()
        nginx = procs.tree_cpu_seconds(self.nginx_pid) - nginx0 if self.nginx_pid else 0.0
        harness = time.process_time() - harness0
        busy = f"nginx {100 * nginx / figures.wall:.0f} %"
        if client.startswith("blackbox"):
            busy += f", driver {100 * harness / figures.wall:.0f} %"
        return _with_note(figures, f"{figures.note}; {busy} of its core")

    def scan_command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "scanner",
            "scan",
            "--inventory",
            str(self.inventory),
            "--format",
            "json",
            "--output",
            str(self.report),
            "--concurrency",
            str(self.args.concurrency),
            "--fail-on",
            "never",
            "--no-progress",
        ]

    def inventory_load(self) -> str:
        """CPU to load the inventory alone (block and flow style), in a pinned child."""
        out = []
        for style in ("block", "flow"):
            path = self.dir / f"inventory-{style}.yaml"
            self.fleet.write_inventory(path, self.endpoints, self.port, self.trust, style)
            code = (
                "import sys, time\n"
                "from scanner.inventory import load_inventory\n"
                "start = time.process_time()\n"
                "load_inventory(sys.argv[1])\n"
                "print(time.process_time() - start)\n"
            )
            command = [sys.executable, "-c", code, str(path)]
            done = subprocess.run(
                command, capture_output=True, text=True, check=False, cwd=ROOT,
                preexec_fn=procs.pinned(self.cpus),
            )  # fmt: skip
            if done.returncode != 0:
                return f"inventory load failed: {done.stderr[-500:]}"
            seconds = float(done.stdout.strip())
            out.append(f"{style} {seconds:.2f} s ({1000 * seconds / self.n:.3f} ms/endpoint)")
        return "inventory load alone (CPU): " + ", ".join(out)

    def floor(self) -> Figures:
        command = [
            sys.executable,
            str(ROOT / "benchmarks/realistic/floor.py"),
            str(self.targets),
            str(self.args.concurrency),
        ]
        figures, code, err = procs.run_child("floor", command, self.n, cpus=self.cpus, cwd=ROOT)
        if code != 0:
            raise SystemExit(f"floor failed ({code}): {err[-2000:]}")
        counts = json.loads(err.strip().splitlines()[-1])
        return _with_note(
            figures, f"ok={counts['ok']} failed={counts['failed']} pinned={counts['pinned']}"
        )

    def pinaudit(self) -> Figures:
        self.report.unlink(missing_ok=True)
        figures, code, err = procs.run_child(
            "pinaudit", self.scan_command(), self.n, cpus=self.cpus, cwd=ROOT
        )
        if code != 0:
            raise SystemExit(f"pinaudit failed ({code}): {err[-2000:]}")
        report = json.loads(self.report.read_text())
        good, _text = verdicts.render(report, self.endpoints)
        summary = report["summary"]
        note = (
            f"ok={summary['ok']} drift={summary['drift']} error={summary['error']} "
            f"verdicts {'as promised' if good else 'WRONG'}"
        )
        return _with_note(figures, note)

    def blackbox(self, binary: str, *, verify: bool) -> Figures:
        listen_host = f"{BASE}.0.250"
        port = procs.free_port(listen_host)
        config = self.bbe_config if verify else self.bbe_config_nv
        command = blackbox.command(binary, config, f"{listen_host}:{port}")
        with procs.server(command, host=listen_host, port=port, cpus=self.cpus, timeout=60) as bbe:
            startup_cpu = procs.proc_cpu_seconds(bbe.pid)
            targets = [f"v{i}\t{ep.address}:{self.port}" for i, ep in enumerate(self.endpoints)]
            start = time.perf_counter()
            counts = trio.run(blackbox.drive, listen_host, port, targets, self.args.concurrency)
            wall = time.perf_counter() - start
            cpu = procs.proc_cpu_seconds(bbe.pid) - startup_cpu
            rss = procs.proc_peak_rss_mib(bbe.pid)
        note = (
            f"success={counts['success']} failure={counts['failure']} "
            f"(+{startup_cpu:.2f} s CPU to start)"
        )
        name = "blackbox" if verify else "blackbox-noverify"
        return Figures(name, self.n, cpu, wall, rss, note)


def _with_note(figures: Figures, note: str) -> Figures:
    return Figures(
        figures.client, figures.endpoints, figures.cpu, figures.wall, figures.peak_rss_mib, note
    )


def line(f: Figures) -> str:
    return (
        f"{f.client:<17} cpu {f.cpu:7.2f} s {f.cpu_ms:6.2f} ms/endpoint {f.rate:7.1f} endpoints/s "
        f"peak RSS {f.peak_rss_mib:6.1f} MiB  {f.note}"
    )


def medians(rounds: Sequence[Figures]) -> Figures:
    return Figures(
        rounds[0].client,
        rounds[0].endpoints,
        statistics.median(f.cpu for f in rounds),
        statistics.median(f.wall for f in rounds),
        statistics.median(f.peak_rss_mib for f in rounds),
    )


def ratio(a: float, b: float | None) -> str:
    return f"{a / b:.2f}x" if b else "-"


def table(n: int, results: dict[str, Figures], concurrency: int) -> str:
    floor, bbe = results.get("floor"), results.get("blackbox")
    rows = [
        f"N = {n}, concurrency {concurrency} (medians of the rounds)",
        "| client | CPU ms/endpoint | endpoints/s | peak RSS MiB | CPU / floor | CPU / blackbox "
        "| RSS / floor |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name in CLIENTS:
        f = results.get(name)
        if f is None:
            continue
        rows.append(
            f"| {name} | {f.cpu_ms:.2f} | {f.rate:.0f} | {f.peak_rss_mib:.0f} "
            f"| {ratio(f.cpu, floor.cpu if floor else None)} "
            f"| {ratio(f.cpu, bbe.cpu if bbe else None)} "
            f"| {ratio(f.peak_rss_mib, floor.peak_rss_mib if floor else None)} |"
        )
    return "\n".join(rows)


def run_profiles(run: Run, args: argparse.Namespace, keep: Path) -> None:
    if args.profile:
        out = keep / f"pinaudit-n{run.n}.pstats"
        command = [sys.executable, str(INSTRUMENTED), "cprofile", str(out), *run.scan_command()[3:]]
        figures, code, err = procs.run_child("cprofile", command, run.n, cpus=run.cpus, cwd=ROOT)
        if code != 0:
            raise SystemExit(f"profiled scan failed ({code}): {err[-2000:]}")
        print(f"\nprofiled scan (cProfile, CPU timer, its overhead included): {line(figures)}")
        print(profiles.cprofile_summary(out, run.n))
        print(f"  (stats saved to {out})")
    if args.rss_timeline:
        timeline = keep / f"pinaudit-n{run.n}.rss.txt"
        command = [sys.executable, str(INSTRUMENTED), "rss", str(timeline), *run.scan_command()[3:]]
        figures, code, err = procs.run_child("rss", command, run.n, cpus=run.cpus, cwd=ROOT)
        if code != 0:
            raise SystemExit(f"sampled scan failed ({code}): {err[-2000:]}")
        print(f"\nRSS sampled every 20 ms: {line(figures)} (timeline in {timeline})")
    if args.memory:
        out = keep / f"pinaudit-n{run.n}.tracemalloc.txt"
        command = [
            sys.executable,
            str(INSTRUMENTED),
            "tracemalloc",
            str(out),
            *run.scan_command()[3:],
        ]
        figures, code, err = procs.run_child("traced", command, run.n, cpus=run.cpus, cwd=ROOT)
        if code != 0:
            raise SystemExit(f"traced scan failed ({code}): {err[-2000:]}")
        print(f"\ntraced scan (tracemalloc, 8 frames): {line(figures)}")
        print(out.read_text() if out.exists() else "  (no snapshot: no JSON report written?)")
    spy = procs.program("py-spy") or (
        str(Path(sys.executable).parent / "py-spy")
        if (Path(sys.executable).parent / "py-spy").exists()
        else None
    )
    if args.py_spy and spy:
        out = keep / f"pinaudit-n{run.n}.collapsed"
        command = [
            spy,
            "record",
            "--rate",
            "250",
            "--format",
            "raw",
            "--output",
            str(out),
            "--",
            *run.scan_command(),
        ]
        figures, code, err = procs.run_child("py-spy", command, run.n, cpus=run.cpus, cwd=ROOT)
        if code != 0:
            raise SystemExit(f"py-spy failed ({code}): {err[-2000:]}")
        print(f"\nsampled scan (py-spy, 250 Hz): {line(figures)}")
        print(profiles.pyspy_summary(out))
        print(f"  (collapsed stacks saved to {out})")
    elif args.py_spy:
        print("py-spy not installed (pip install py-spy): no sampled profile")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--endpoints",
        type=int,
        nargs="+",
        default=[2000],
        help="fleet sizes, e.g. 1000 5000 10000 (default 2000)",
    )
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--clients",
        default=DEFAULT_CLIENTS,
        help=f"comma-separated, among {','.join(CLIENTS)} (default {DEFAULT_CLIENTS})",
    )
    parser.add_argument(
        "--pinaudit-only-above",
        type=int,
        default=20000,
        metavar="N",
        help="sizes above N run pinaudit alone (default 20000)",
    )
    parser.add_argument(
        "--addresses",
        type=int,
        default=4,
        help="loopback addresses nginx listens on (127.70.0.1..)",
    )
    parser.add_argument("--inventory-style", choices=("block", "flow"), default="block")
    parser.add_argument("--scanner-cpu", type=int, default=1, help="-1: no pinning")
    parser.add_argument("--server-cpu", type=int, default=0, help="-1: no pinning")
    parser.add_argument("--profile", action="store_true", help="also one cProfile'd scan per size")
    parser.add_argument("--py-spy", action="store_true", help="also one py-spy sampled scan")
    parser.add_argument(
        "--rss-timeline",
        action="store_true",
        help="also one scan with its RSS sampled every 20 ms (no tracing)",
    )
    parser.add_argument(
        "--memory",
        action="store_true",
        help="also one tracemalloc'd scan: where the memory is at report time",
    )
    parser.add_argument(
        "--max-load",
        type=float,
        default=1.5,
        help="wait (up to --load-patience s) for a lower 1-min load first",
    )
    parser.add_argument("--load-patience", type=float, default=0.0)
    parser.add_argument("--keep", type=Path, help="keep profiles and the last report here")
    args = parser.parse_args()
    # SIGTERM unwinds like Ctrl-C: nginx and blackbox_exporter are stopped, temp files go.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    clients = [c for c in args.clients.split(",") if c]
    if unknown := set(clients) - set(CLIENTS):
        parser.error(f"unknown clients: {sorted(unknown)}")
    if (os.cpu_count() or 1) < 2:
        args.scanner_cpu = args.server_cpu = -1
    if args.server_cpu >= 0:
        os.sched_setaffinity(0, {args.server_cpu})

    nginx = procs.program("nginx")
    bbe = procs.program("prometheus-blackbox-exporter")
    if nginx is None:
        raise SystemExit("nginx is not installed (.ci/install-peers installs it)")
    if bbe is None and any(c.startswith("blackbox") for c in clients):
        print("prometheus-blackbox-exporter is not installed: skipping it")
        clients = [c for c in clients if not c.startswith("blackbox")]
    print(header(args, nginx, bbe), flush=True)
    # As an installed package is (pip compiles on install): otherwise, with
    # PYTHONDONTWRITEBYTECODE set or a stale cache, every changed module is
    # compiled again in each scan, which costs CPU and several MiB of RSS.
    compileall.compile_dir(ROOT / "scanner", quiet=1)
    wait_for_low_load(args.max_load, args.load_patience)

    addresses = args_addresses(args)
    start = time.perf_counter()
    the_fleet = fleet.build(datetime.now(timezone.utc), addresses)
    print(f"  PKI built in {time.perf_counter() - start:.1f} s")
    print(the_fleet.describe(), flush=True)

    with tempfile.TemporaryDirectory(prefix="pinaudit-realistic-") as tmp:
        directory = Path(tmp)
        keep = args.keep or directory
        keep.mkdir(parents=True, exist_ok=True)
        trust = the_fleet.write_trust(directory / "trust.pem")
        files = the_fleet.write_server_files(directory / "certs")
        port = procs.port_free_on_all(addresses)
        nginx_dir = directory / "nginx"
        nginx_dir.mkdir()
        conf = nginx_dir / "nginx.conf"
        conf.write_text(
            fleet.nginx_config(the_fleet, nginx_dir, port, files, as_root=os.geteuid() == 0)
        )
        nginx_cmd = [
            nginx,
            "-p",
            str(nginx_dir),
            "-c",
            str(conf),
            "-e",
            str(nginx_dir / "error.log"),
            "-g",
            "daemon off;",
        ]
        server_cpus = {args.server_cpu} if args.server_cpu >= 0 else None
        with procs.server(nginx_cmd, host=addresses[0], port=port, cpus=server_cpus) as served:
            print(f"  nginx serving on {', '.join(addresses)} port {port}", flush=True)
            for index, n in enumerate(args.endpoints):
                if index:
                    wait_for_low_load(args.max_load, args.load_patience)
                run = Run(args, the_fleet, directory, port, trust, n)
                run.nginx_pid = served.pid
                these = ["pinaudit"] if n > args.pinaudit_only_above else clients
                print(
                    f"\nN = {n}: {fleet.summary_json(the_fleet, n)}; "
                    f"files written in {run.write_seconds:.1f} s; load {procs.loadavg()}",
                    flush=True,
                )
                print(f"  {run.inventory_load()}", flush=True)
                results: dict[str, list[Figures]] = {c: [] for c in these}
                for round_ in range(args.rounds):
                    order = these[round_ % len(these) :] + these[: round_ % len(these)]
                    for client in order:
                        figures = run.measured(client, bbe)
                        results[client].append(figures)
                        print(f"  round {round_ + 1}  {line(figures)}", flush=True)
                    print(f"  load {procs.loadavg()}")
                if "pinaudit" in these:
                    report = json.loads(run.report.read_text())
                    _good, text = verdicts.render(report, run.endpoints)
                    print(text)
                    if args.keep:
                        (keep / f"report-n{n}.json").write_text(run.report.read_text())
                print()
                print(table(n, {c: medians(r) for c, r in results.items()}, args.concurrency))
                run_profiles(run, args, keep)
                print(f"load average after N = {n}: {procs.loadavg()}", flush=True)


if __name__ == "__main__":
    main()
