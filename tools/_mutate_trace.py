"""pytest plugin for tools/mutate.py: which test runs which line of one module.

Loaded with ``-p _mutate_trace`` (tools/ on PYTHONPATH) in the mutation
runner's temporary copy. ``MUTATE_TRACE_FILE`` names the module's file,
``MUTATE_TRACE_OUT`` the JSON written at the end: ``{"tests": {nodeid:
[lines]}, "outside": [lines]}``, where ``outside`` holds the lines run
outside any test (at import: module constants, defaults, class bodies),
which every test depends on.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any

import pytest

_TARGET = os.path.realpath(os.environ.get("MUTATE_TRACE_FILE", ""))
_OUT = os.environ.get("MUTATE_TRACE_OUT", "")
_lines: dict[str, set[int]] = {}
_current = [""]  # the nodeid of the running test; "" outside any


def _local(frame: FrameType, event: str, arg: Any) -> Any:
    if event == "line":
        _lines.setdefault(_current[0], set()).add(frame.f_lineno)
    return _local


_known: dict[str, bool] = {}


def _global(frame: FrameType, event: str, arg: Any) -> Any:
    name = frame.f_code.co_filename
    mine = _known.get(name)
    if mine is None:
        mine = _known[name] = os.path.realpath(name) == _TARGET
    if not mine:
        return None
    _lines.setdefault(_current[0], set()).add(frame.f_lineno)
    return _local


if _TARGET and _OUT:
    sys.settrace(_global)
    threading.settrace(_global)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    _current[0] = item.nodeid
    sys.settrace(_global)  # a test may have replaced it (hypothesis does, for its own coverage)
    yield
    _current[0] = ""


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not (_TARGET and _OUT):
        return
    sys.settrace(None)
    outside = sorted(_lines.pop("", set()))
    data = {"tests": {k: sorted(v) for k, v in _lines.items()}, "outside": outside}
    with open(_OUT, "w", encoding="utf-8") as handle:
        json.dump(data, handle)
