"""Fuzz target: the client-configuration importers (pinning-semantics §1-§6).

Invariant: whatever the bytes and whatever kind and file name they are given
as, ``parse_policy`` returns a ClientPolicy or raises ClientConfigError (an
input error); every problem, note and unresolved entry it reports, and every
rule's position, points into the file (line >= 1, column >= 1). The first
byte picks the kind and the file name; the rest is the file. Seeds: the
corpus of tests/data/importers/.

    python fuzz/fuzz_importers.py [CORPUS_DIR] [-runs=N] [-max_total_time=S]
"""

from __future__ import annotations

import re
from pathlib import Path

from _driver import fuzz, instrumented

with instrumented():
    from scanner.errors import ClientConfigError
    from scanner.importers import parse_policy

ROOT = Path(__file__).resolve().parent.parent
AS = (
    ("okhttp", "Pinning.kt"),
    ("okhttp", "Pinning.java"),
    ("okhttp", "pins.txt"),
    ("trustkit", "Config.swift"),
    ("trustkit", "Config.m"),
    ("trustkit", "Info.plist"),
    ("trustkit-android", "nsc.xml"),
    ("android", "nsc.xml"),
    ("ios", "Info.plist"),
    ("hpkp", "headers.txt"),
    ("chromium", "pins.json"),
)


def test_one_input(data: bytes) -> None:
    if not data:
        return
    kind, name = AS[data[0] % len(AS)]
    try:
        policy = parse_policy(kind, data[1:], name)
    except ClientConfigError as exc:
        assert exc.location.line >= 1 and exc.location.column >= 1, exc
        return
    lines = len(re.split(rb"\r\n|\r|\n", data[1:]))  # expat also breaks lines at a lone CR
    found = [*policy.problems, *policy.notes, *policy.unresolved]
    found += [p for r in policy.rules for p in r.problems]
    for problem in found:
        assert 1 <= problem.location.line <= lines, (problem, lines)
        assert problem.location.column >= 1, problem
    for rule in policy.rules:
        if rule.location is not None:
            assert 1 <= rule.location.line <= lines, (rule, lines)


def seeds() -> list[bytes]:
    out: list[bytes] = []
    for path in sorted((ROOT / "tests" / "data" / "importers").iterdir()):
        data = path.read_bytes()
        for n, (_, name) in enumerate(AS):
            if name.rsplit(".", 1)[-1] == path.suffix.lstrip(".") or n % 4 == 0:
                out.append(bytes([n]) + data)
    return out


if __name__ == "__main__":
    fuzz(test_one_input, seeds)
