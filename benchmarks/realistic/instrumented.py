"""Run ``python -m scanner ARGS`` in this process under an instrument.

    python benchmarks/realistic/instrumented.py cprofile OUT.pstats ARGS...
    python benchmarks/realistic/instrumented.py tracemalloc OUT.txt ARGS...

cprofile: cProfile with a CPU-time timer (``time.process_time``), so time
spent descheduled on a busy machine, or waiting in epoll, is not counted as
a function's time (``python -m cProfile`` uses wall time).

tracemalloc: 8 frames per allocation; a snapshot is taken when the JSON
report starts being serialised (every result is alive then: the scan's
peak), and the top allocation sites are written to OUT.
"""

from __future__ import annotations

import cProfile
import json
import runpy
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any


def _run_scanner(args: list[str]) -> int:
    sys.argv = ["scanner", *args]
    try:
        runpy.run_module("scanner", run_name="__main__", alter_sys=True)
    except SystemExit as stop:
        return int(stop.code or 0) if not isinstance(stop.code, str) else 1
    return 0


def _snapshot_report(out: Path) -> None:
    original = json.dumps
    taken = [False]

    def dumps(obj: Any, *args: Any, **kwargs: Any) -> str:
        # the report's head (written entry by entry, the head first) or the whole
        # document (before the report was streamed)
        if not taken[0] and isinstance(obj, dict) and "summary" in obj and "version" in obj:
            taken[0] = True
            current, peak = tracemalloc.get_traced_memory()
            snapshot = tracemalloc.take_snapshot().filter_traces(
                (tracemalloc.Filter(False, tracemalloc.__file__),)
            )
            n = max(int(obj["summary"]["endpoints"]), 1)
            lines = [
                f"traced memory when the report is serialised: {current / 2**20:.1f} MiB "
                f"(peak {peak / 2**20:.1f} MiB), {current / n / 1024:.1f} KiB per endpoint",
                "by file:",
            ]
            for stat in snapshot.statistics("filename")[:15]:
                frame = stat.traceback[0]
                lines.append(
                    f"  {stat.size / 2**20:8.2f} MiB {stat.size / n:9.0f} B/endpoint "
                    f"{stat.count:>9} blocks  {_short(frame.filename)}"
                )
            lines.append("by line:")
            for stat in snapshot.statistics("lineno")[:25]:
                frame = stat.traceback[0]
                lines.append(
                    f"  {stat.size / 2**20:8.2f} MiB {stat.size / n:9.0f} B/endpoint "
                    f"{stat.count:>9} blocks  {_short(frame.filename)}:{frame.lineno}"
                )
            lines.extend(_process_memory())
            out.write_text("\n".join(lines) + "\n")
        return original(obj, *args, **kwargs)

    json.dumps = dumps


def _process_memory() -> list[str]:
    """What the process holds beside what tracemalloc traces: RSS, peak RSS and
    glibc's malloc statistics (in use / free inside its heaps)."""
    lines = ["process:"]
    try:
        status = Path("/proc/self/status").read_text()
        lines += [f"  {row}" for row in status.splitlines() if row.startswith(("VmRSS", "VmHWM"))]
        rollup = Path("/proc/self/smaps_rollup").read_text().splitlines()[1:8]
        lines += [f"  {row}" for row in rollup]
    except OSError:
        pass
    try:
        import ctypes

        class _Mallinfo2(ctypes.Structure):
            _fields_ = [
                (name, ctypes.c_size_t)
                for name in (
                    "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                    "fsmblks", "uordblks", "fordblks", "keepcost",
                )
            ]  # fmt: skip

        libc = ctypes.CDLL(None)
        libc.mallinfo2.restype = _Mallinfo2
        info = libc.mallinfo2()
        lines.append(
            f"  malloc: heap {info.arena / 2**20:.1f} MiB, mmapped {info.hblkhd / 2**20:.1f} MiB, "
            f"in use {info.uordblks / 2**20:.1f} MiB, free in heap {info.fordblks / 2**20:.1f} MiB"
        )
    except (OSError, AttributeError):
        pass
    return lines


def _short(filename: str) -> str:
    for marker in ("/scanner/", "/site-packages/", "/lib/python3.11/", "/lib/python3"):
        if marker in filename:
            tail = filename.split(marker, 1)[1]
            return ("scanner/" + tail) if marker == "/scanner/" else tail
    return filename


def _rss_timeline(out: Path, args: list[str]) -> int:
    """RSS every 20 ms while the scan runs (no tracing: the figures are the
    plain process's), marked when the JSON report starts being written."""
    import threading

    samples: list[str] = []
    start = time.perf_counter()
    stop = threading.Event()

    def rss_kib() -> int:
        for row in Path("/proc/self/status").read_text().splitlines():
            if row.startswith("VmRSS"):
                return int(row.split()[1])
        return 0

    def sample() -> None:
        while not stop.wait(0.02):
            samples.append(f"{time.perf_counter() - start:7.2f} s {rss_kib() / 1024:7.1f} MiB")

    original = json.dumps

    def dumps(obj: Any, *a: Any, **kw: Any) -> str:
        if isinstance(obj, dict) and "summary" in obj and "version" in obj:
            samples.append(f"{time.perf_counter() - start:7.2f} s report starts")
        return original(obj, *a, **kw)

    json.dumps = dumps
    threading.Thread(target=sample, daemon=True).start()
    code = _run_scanner(args)
    stop.set()
    out.write_text("\n".join(samples) + "\n")
    return code


def main() -> None:
    mode, out, args = sys.argv[1], Path(sys.argv[2]), sys.argv[3:]
    if mode == "cprofile":
        profiler = cProfile.Profile(time.process_time)
        profiler.enable()
        code = _run_scanner(args)
        profiler.disable()
        profiler.dump_stats(str(out))
    elif mode == "rss":
        code = _rss_timeline(out, args)
    elif mode == "tracemalloc":
        tracemalloc.start(8)
        _snapshot_report(out)
        code = _run_scanner(args)
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    sys.exit(code)


if __name__ == "__main__":
    main()
