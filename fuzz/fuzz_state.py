"""Fuzz target: the --state file loader (read back on every later run).

Invariant: ``loads`` returns a state or raises ValueError, whatever the text;
a state it returns can be written and read back, and then stays the same
(times are written to the second). Seeds are real
state files and the corruptions that once made every later run exit 70
(deep nesting, out-of-range times).

    python fuzz/fuzz_state.py [CORPUS_DIR] [-runs=N] [-max_total_time=S]
"""

from __future__ import annotations

from _driver import fuzz, instrumented

with instrumented():
    from scanner.state import dumps, loads

GOOD = (
    '{"version": 1, "endpoints": {"api": {'
    '"leaf_key": {"value": "sha256/AAAA", "first_seen": "2026-01-01T00:00:00Z", '
    '"last_seen": "2026-01-02T00:00:00Z"}, "issuer_key": null, '
    '"chain": {"value": "c0ffee", "first_seen": "2026-01-01T00:00:00Z", '
    '"last_seen": "2026-01-02T00:00:00Z"}, "leaf_key_changed_at": null}}}'
)


def test_one_input(data: bytes) -> None:
    text = data.decode("utf-8", "replace")
    try:
        state = loads(text)
    except ValueError:
        return
    once = loads(dumps(state))
    assert loads(dumps(once)) == once


def seeds() -> list[bytes]:
    return [
        GOOD.encode(),
        GOOD.replace("2026-01-01T00:00:00Z", "0001-01-01T00:00:00+01:00").encode(),
        GOOD.replace('"issuer_key": null', '"issuer_key": []').encode(),
        b"[" * 5000,
        b'{"version": 1, "endpoints": []}',
        b"{}",
    ]


if __name__ == "__main__":
    fuzz(test_one_input, seeds)
