"""Where pinaudit's time goes: summaries of a cProfile run and of py-spy's
collapsed stacks, printed beside the benchmark figures."""

from __future__ import annotations

import io
import pstats
import re
from collections import Counter
from pathlib import Path

# Functions whose call counts say how often the expensive work runs, against
# the number of endpoints and of distinct chains: (label, file suffix or "" for
# built-ins, function-name pattern).
WATCH = (
    ("ServerVerifier.verify", "", re.compile(r"method 'verify' of '.*ServerVerifier")),
    ("ClientVerifier.verify", "", re.compile(r"method 'verify' of '.*ClientVerifier")),
    ("ssl do_handshake", "", re.compile(r"method 'do_handshake' of '_ssl")),
    ("load_inventory", "schema.py", re.compile(r"^load_inventory$")),
    ("evaluate (results)", "results.py", re.compile(r"^evaluate$")),
    ("analyze_chain", "chain.py", re.compile(r"^analyze_chain$")),
    ("audit", "audit.py", re.compile(r"^audit$")),
    ("second_look", "engine.py", re.compile(r"^second_look$")),
    ("json report", "jsonreport.py", re.compile(r"^(report|endpoint_entry)$")),
)
# (label, callee name, caller name): how many calls come from where.
EDGES = (
    ("evaluate from the second look", "evaluate", "second_look"),
    ("evaluate from the worker", "evaluate", "finish"),
    ("judge from the second look", "judge", "second_look"),
    ("judge from the worker", "judge", "finish"),
)


def _name(func: tuple[str, int, str]) -> str:
    filename, line, name = func
    if filename == "~":
        return name
    short = filename
    for marker in ("/scanner/", "/site-packages/", "/lib/python3"):
        if marker in filename:
            short = filename.split(marker, 1)[1]
            short = ("scanner/" + short) if marker == "/scanner/" else short
            break
    return f"{short}:{line}({name})"


def cprofile_summary(path: Path, endpoints: int, top: int = 25) -> str:
    stats = pstats.Stats(str(path), stream=io.StringIO())
    raw = stats.stats  # type: ignore[attr-defined]
    total = max(stats.total_tt, 1e-9)  # type: ignore[attr-defined]
    out = [f"cProfile: {total:.2f} s profiled CPU for {endpoints} endpoints"]
    out.append("  call counts of the expensive steps (cumulative CPU):")
    for label, suffix, pattern in WATCH:
        calls, cum = 0, 0.0
        for func, (_cc, nc, _tt, ct, _callers) in raw.items():
            builtin = func[0] == "~"
            where = func[0].endswith((suffix, "inventory.py")) if suffix else builtin
            if pattern.search(func[2]) and where:
                calls += nc
                cum += ct
        out.append(
            f"    {label:<30} {calls:>8} calls {calls / endpoints:6.2f}/endpoint  "
            f"{cum:7.2f} s {100 * cum / total:5.1f} %"
        )
    for label, callee, caller in EDGES:
        calls, cum = 0, 0.0
        for func, (_cc, _nc, _tt, _ct, callers) in raw.items():
            if func[2] != callee or "/scanner/" not in func[0]:
                continue
            for who, edge in callers.items():
                if who[2] == caller:
                    calls += edge[1]
                    cum += edge[3]
        if not calls:  # that function or caller is not in this version of pinaudit
            continue
        out.append(
            f"    {label:<30} {calls:>8} calls {calls / endpoints:6.2f}/endpoint  "
            f"{cum:7.2f} s {100 * cum / total:5.1f} %"
        )
    out.append(f"  top {top} by cumulative time (pinaudit's own functions):")
    own = [(f, v) for f, v in raw.items() if "/scanner/" in f[0]]
    for func, (_cc, nc, _tt, ct, _callers) in sorted(own, key=lambda kv: -kv[1][3])[:top]:
        out.append(f"    {ct:7.2f} s {100 * ct / total:5.1f} %  {nc:>8} calls  {_name(func)}")
    out.append(f"  top {top} by own time (any function):")
    for func, (_cc, nc, tt, _ct, _callers) in sorted(raw.items(), key=lambda kv: -kv[1][2])[:top]:
        out.append(f"    {tt:7.2f} s {100 * tt / total:5.1f} %  {nc:>8} calls  {_name(func)}")
    return "\n".join(out)


# Where a sample's time belongs: the first bucket whose frame is on its stack.
BUCKETS = (
    ("second look (engine second_look)", "second_look ("),
    ("first look (engine finish -> evaluate)", ".finish ("),
    ("inventory loading", "load_inventory ("),
    ("TLS handshake (ssl do_handshake)", "do_handshake (ssl.py"),
    ("rest of the probe (connect, sockets, close)", "_probe_each"),
    ("imports (start-up)", "_find_and_load ("),
    ("JSON report", "jsonreport.py"),
    ("trust store loading", "trust.py"),
)


def pyspy_buckets(collapsed: Path) -> str:
    counts: Counter[str] = Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        total += count
        label = next((label for label, frame in BUCKETS if frame in stack), "other")
        counts[label] += count
    out = ["  samples by phase (first match on the stack):"]
    for label, count in counts.most_common():
        out.append(f"    {100 * count / max(total, 1):5.1f} %  {label}")
    return "\n".join(out)


def pyspy_summary(collapsed: Path, top: int = 25) -> str:
    """Self and inclusive samples per frame from py-spy's ``--format raw``
    (collapsed stacks: ``frame;frame;... count``)."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        total += count
        frames = stack.split(";")
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    out = [f"py-spy: {total} samples", pyspy_buckets(collapsed)]
    out.append(f"  top {top} frames by inclusive samples (pinaudit's own):")
    mine = [(f, c) for f, c in inclusive.items() if "scanner/" in f]
    for frame, count in sorted(mine, key=lambda kv: -kv[1])[:top]:
        out.append(f"    {100 * count / max(total, 1):5.1f} %  {frame}")
    out.append(f"  top {top} frames by own samples:")
    for frame, count in own.most_common(top):
        out.append(f"    {100 * count / max(total, 1):5.1f} %  {frame}")
    return "\n".join(out)
