"""Processes of the benchmark: start pinned to a core, measure CPU and memory,
stop cleanly. Linux only (/proc, sched_setaffinity)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")
_SBIN = "/usr/local/sbin:/usr/sbin:/sbin"


def program(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path=_SBIN)


def pinned(cpus: set[int] | None):  # type: ignore[no-untyped-def]
    """A preexec_fn that pins the child (before exec: Go reads GOMAXPROCS from it)."""
    if not cpus:
        return None

    def pin() -> None:
        os.sched_setaffinity(0, cpus)

    return pin


def free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_free_on_all(addresses: Sequence[str]) -> int:
    """A port that is free on every address (picked by the kernel on the first)."""
    for _ in range(50):
        port = free_port(addresses[0])
        try:
            for address in addresses[1:]:
                with socket.socket() as sock:
                    sock.bind((address, port))
        except OSError:
            continue
        return port
    raise RuntimeError(f"no port free on all of {addresses}")


def wait_listening(host: str, port: int, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            raise RuntimeError(f"{proc.args!r} exited {proc.returncode}: {err[-2000:]}")
        try:
            socket.create_connection((host, port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{proc.args!r} did not listen on {host}:{port} in {timeout}s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


@contextmanager
def server(
    command: Sequence[str],
    *,
    host: str,
    port: int,
    cpus: set[int] | None,
    timeout: float = 30.0,
    env: dict[str, str] | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """Run a server until the block ends (waiting until it accepts connections)."""
    proc = subprocess.Popen(
        list(command),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        preexec_fn=pinned(cpus),  # noqa: PLW1509 - the harness has no threads yet
        env=env,
    )
    try:
        wait_listening(host, port, proc, timeout)
        yield proc
    finally:
        stop(proc)


def proc_cpu_seconds(pid: int) -> float:
    """utime + stime of a running process (10 ms resolution), threads included."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def tree_cpu_seconds(pid: int) -> float:
    """CPU of a process and its direct children (nginx: master + workers)."""
    total = proc_cpu_seconds(pid)
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        children = []
    for child in children:
        with suppress(OSError):
            total += proc_cpu_seconds(int(child))
    return total


def proc_peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@dataclass(frozen=True)
class Figures:
    client: str
    endpoints: int
    cpu: float  # seconds, user + sys
    wall: float  # seconds
    peak_rss_mib: float
    note: str = ""

    @property
    def cpu_ms(self) -> float:
        return 1000 * self.cpu / self.endpoints

    @property
    def rate(self) -> float:
        return self.endpoints / self.wall


LAUNCH = Path(__file__).with_name("launch.py")


def run_child(
    client: str,
    command: Sequence[str],
    n: int,
    *,
    cpus: set[int] | None,
    cwd: Path,
    started: Callable[[int], None] | None = None,
) -> tuple[Figures, int, str]:
    """Run a client to completion; CPU and peak RSS from wait4 of the client,
    forked by a small launcher (launch.py: a child forked by this process
    would count this process's RSS as its own). `started` is called with the
    launcher's pid once it runs (the client is its only child)."""
    with tempfile.NamedTemporaryFile("r", prefix="pinaudit-usage-") as usage_file:
        start = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-I", "-S", str(LAUNCH), usage_file.name, *command],
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            preexec_fn=pinned(cpus),  # noqa: PLW1509
        )
        assert proc.stderr is not None
        if started is not None:
            started(proc.pid)
        err = proc.stderr.read().decode(errors="replace")  # until it exits: no deadlock
        proc.wait()
        wall = time.perf_counter() - start
        proc.stderr.close()
        utime, stime, maxrss_kib = usage_file.read().split()
    figures = Figures(client, n, float(utime) + float(stime), wall, int(maxrss_kib) / 1024)
    return figures, proc.returncode, err


def loadavg() -> str:
    one, five, fifteen = Path("/proc/loadavg").read_text().split()[:3]
    return f"{one} {five} {fifteen}"
