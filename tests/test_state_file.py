"""The --state file is read from disk the next run: whatever is in it (a
corrupt write, a hostile edit, a pipe, a device) must give a warning and a
fresh start, never an exit 70 on every later run (issue 15 item 6)."""

from __future__ import annotations

import contextlib
import json
import os
import threading
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from scanner.state import MAX_STATE_BYTES, STATE_VERSION, load_state, loads

GOOD_SEEN = {
    "value": "x",
    "first_seen": "2026-01-01T00:00:00Z",
    "last_seen": "2026-01-02T00:00:00Z",
}


def _state(**endpoint: object) -> str:
    entry = {"leaf_key": GOOD_SEEN, "issuer_key": None, "chain": GOOD_SEEN, **endpoint}
    return json.dumps({"version": STATE_VERSION, "endpoints": {"e": entry}})


def test_a_good_state_loads() -> None:
    state = loads(_state())
    assert state["e"].leaf_key.value == "x"


def test_deep_nesting_is_a_warning_not_a_recursion_error(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text("[" * 100_000)
    state, warning = load_state(path)
    assert state == {}
    assert warning == f"{path}: not a state file (JSON nested too deeply); starting a fresh state"


def test_an_out_of_range_time_is_a_warning_not_an_overflow(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    early = {**GOOD_SEEN, "first_seen": "0001-01-01T00:00:00+01:00"}
    path.write_text(_state(leaf_key=early))
    state, warning = load_state(path)
    assert state == {}
    assert warning == (
        f"{path}: malformed state file (OverflowError: date value out of range); "
        "starting a fresh state"
    )


def test_a_pipe_is_not_read_so_it_cannot_block(tmp_path: Path) -> None:
    fifo = tmp_path / "state.json"
    os.mkfifo(fifo)
    result: list[object] = []
    reader = threading.Thread(target=lambda: result.append(load_state(fifo)), daemon=True)
    reader.start()
    reader.join(timeout=10)
    assert result == [({}, f"{fifo}: not a regular file; starting a fresh state")]


def test_an_oversized_state_is_not_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    with open(path, "wb") as handle:
        handle.truncate(MAX_STATE_BYTES + 10)
    state, warning = load_state(path)
    assert (state, warning) == (
        {},
        f"{path}: larger than {MAX_STATE_BYTES} bytes; starting a fresh state",
    )


def test_bytes_that_are_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_bytes(b'{"version": 1, "endpoints": {"\xff": {}}}')
    assert load_state(path) == ({}, f"{path}: not UTF-8; starting a fresh state")


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=200), _json.map(json.dumps)))
def test_any_text_loads_or_is_a_value_error(text: str) -> None:
    with contextlib.suppress(ValueError):
        loads(text)


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["leaf_key", "issuer_key", "chain", "leaf_key_changed_at", "x"]),
        _json,
        max_size=5,
    )
)
def test_any_endpoint_entry_loads_or_is_a_value_error(entry: dict[str, object]) -> None:
    text = json.dumps({"version": STATE_VERSION, "endpoints": {"e": entry}})
    with contextlib.suppress(ValueError):
        loads(text)
