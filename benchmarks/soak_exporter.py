"""Soak: the exporter (`scan --serve`) for many scan cycles under concurrent
scrapes; open files and RSS must stay flat.

A mixed fleet (every scenario of SCENARIOS and FAULT_SCENARIOS, repeated) is
served by a separate process on 127.12.x.y. The exporter runs as
``python -m scanner scan --inventory FILE --serve 127.0.0.1:PORT --interval 2s``
while scraper threads fetch ``/metrics`` in a loop. Each time
``pinaudit_scan_timestamp_seconds`` changes (a scan cycle completed) the
exporter's open descriptors (/proc/PID/fd), RSS and threads
(/proc/PID/status) are printed, then a summary after warm-up. Bounded by
``--cycles`` and ``--max-seconds``.

    .venv/bin/python benchmarks/soak_exporter.py [--endpoints 200] [--cycles 60] [--scrapers 8]
        [--scrape-pause 0.5]
"""

from __future__ import annotations

import argparse
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scanner.fleet.scenarios import FAULT_SCENARIOS, SCENARIOS, build_fleet  # noqa: E402
from scanner.fleet.server import FleetProcess, write_config  # noqa: E402

BASE = 12
WARM_UP_CYCLES = 5
_SCAN_TS = re.compile(r"^pinaudit_scan_timestamp_seconds(?:\{[^}]*\})? (\S+)$", re.M)
_OUTCOME = re.compile(r'^pinaudit_scan_endpoints\{result="(\w+)"\} (\S+)$', re.M)


@dataclass
class Scrapes:
    ok: int = 0
    failed: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, error: str | None) -> None:
        with self.lock:
            if error is None:
                self.ok += 1
            else:
                self.failed += 1
                self.errors[error] = self.errors.get(error, 0) + 1


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _fetch(url: str, timeout: float = 10.0) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return str(response.read().decode())


def _scraper(url: str, stop: threading.Event, scrapes: Scrapes, pause: float) -> None:
    while not stop.is_set():
        try:
            body = _fetch(url)
            scrapes.add(None if "pinaudit_build_info" in body else "incomplete exposition")
        except (OSError, urllib.error.URLError) as exc:
            scrapes.add(type(exc).__name__)
            stop.wait(0.1)
        stop.wait(pause)


def _status(pid: int) -> tuple[int, float, int]:
    """(open descriptors, RSS MiB, threads) of a process."""
    fds = len(list(Path(f"/proc/{pid}/fd").iterdir()))
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    rss = int(fields["VmRSS"].split()[0]) / 1024
    return fds, rss, int(fields["Threads"])


def _last_scan(url: str) -> tuple[float, str] | None:
    """When the last published scan finished, and its ok/drift/error counts."""
    try:
        body = _fetch(url)
    except (OSError, urllib.error.URLError):
        return None
    match = _SCAN_TS.search(body)
    if not match:
        return None
    counts = {result: int(float(n)) for result, n in _OUTCOME.findall(body)}
    outcome = "/".join(str(counts.get(k, 0)) for k in ("ok", "drift", "error"))
    return float(match.group(1)), outcome


def soak(args: argparse.Namespace) -> int:
    now = datetime.now(timezone.utc)
    names = [s.name for s in (*SCENARIOS, *FAULT_SCENARIOS)]
    fleet = build_fleet(now, args.endpoints, scenarios=names, base=BASE, timeout=1.5)
    with tempfile.TemporaryDirectory(prefix="pinaudit-soak-") as tmp:
        directory = Path(tmp)
        with FleetProcess(write_config(fleet.sites, directory / "sites")) as served:
            inventory = fleet.write(directory, served.listening)
            port = _free_port()
            url = f"http://127.0.0.1:{port}/metrics"
            log = (directory / "exporter.log").open("w")
            command = [
                sys.executable, "-m", "scanner", "scan", "--inventory", str(inventory),
                "--serve", f"127.0.0.1:{port}", "--interval", args.interval,
                "--log-format", "json",
            ]  # fmt: skip
            exporter = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=log)
            stop = threading.Event()
            scrapes = Scrapes()
            threads = [
                threading.Thread(
                    target=_scraper, args=(url, stop, scrapes, args.scrape_pause), daemon=True
                )
                for _ in range(args.scrapers)
            ]
            run = _Run(exporter, url, stop, threads, scrapes, len(fleet.endpoints))
            try:
                return _watch(args, run)
            finally:
                stop.set()
                exporter.terminate()
                try:
                    exporter.wait(30)
                except subprocess.TimeoutExpired:
                    exporter.kill()
                    exporter.wait(30)
                for thread in threads:
                    thread.join(15)
                log.close()
                tail = (directory / "exporter.log").read_text().splitlines()[-args.log_lines :]
                print(f"exporter exit status {exporter.returncode}; last log lines:")
                for line in tail:
                    print(f"  {line[:200]}")


@dataclass(frozen=True)
class _Run:
    exporter: subprocess.Popen[bytes]
    url: str
    stop: threading.Event
    threads: list[threading.Thread]
    scrapes: Scrapes
    endpoints: int


def _watch(args: argparse.Namespace, run: _Run) -> int:
    exporter, url, scrapes = run.exporter, run.url, run.scrapes
    print(
        f"{run.endpoints} endpoints (every scenario and fault), --interval {args.interval}, "
        f"{args.scrapers} concurrent scrapers ({args.scrape_pause} s apart each); "
        f"exporter pid {exporter.pid}"
    )
    started = time.monotonic()
    last: float | None = None
    while _last_scan(url) is None:  # wait for the listener (and a first scan)
        if exporter.poll() is not None or time.monotonic() - started > args.max_seconds:
            print(f"exporter not serving (exit {exporter.poll()})")
            return 1
        time.sleep(0.2)
    for thread in run.threads:
        thread.start()
    samples: list[tuple[int, int, float, int]] = []  # fds now, peak fds, RSS, threads
    peak = 0
    print(
        f"{'cycle':>5} {'t(s)':>6} {'fds':>5} {'peak fds':>8} {'rss MiB':>8} {'threads':>7} "
        f"{'scrapes ok':>10}  ok/drift/error"
    )
    while len(samples) < args.cycles and time.monotonic() - started < args.max_seconds:
        if exporter.poll() is not None:
            print(f"exporter exited with {exporter.returncode}")
            return 1
        fds, rss, nthreads = _status(exporter.pid)
        peak = max(peak, fds)
        scan = _last_scan(url)
        if scan is not None and scan[0] != last:
            last = scan[0]
            samples.append((fds, peak, rss, nthreads))
            print(
                f"{len(samples):>5} {time.monotonic() - started:>6.1f} {fds:>5} {peak:>8} "
                f"{rss:>8.1f} {nthreads:>7} {scrapes.ok:>10}  {scan[1]}",
                flush=True,
            )
            peak = 0
        time.sleep(0.05)
    run.stop.set()
    steady = samples[WARM_UP_CYCLES:] or samples
    peaks = [s[1] for s in steady]
    rss = [s[2] for s in steady]
    print(
        f"after {WARM_UP_CYCLES} warm-up cycles ({len(steady)} cycles): peak fds per cycle "
        f"{min(peaks)}..{max(peaks)}, RSS {min(rss):.1f}..{max(rss):.1f} MiB "
        f"(first {rss[0]:.1f}, last {rss[-1]:.1f}); "
        f"scrapes: {scrapes.ok} ok, {scrapes.failed} failed {scrapes.errors or ''}"
    )
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--endpoints", type=int, default=200)
    parser.add_argument("--cycles", type=int, default=60)
    parser.add_argument("--scrapers", type=int, default=8)
    parser.add_argument(
        "--scrape-pause", type=float, default=0.5, help="seconds between two scrapes of a scraper"
    )
    parser.add_argument("--interval", default="2s")
    parser.add_argument("--max-seconds", type=float, default=900.0)
    parser.add_argument("--log-lines", type=int, default=5, help="exporter log lines shown")
    raise SystemExit(soak(parser.parse_args()))


if __name__ == "__main__":
    main()
