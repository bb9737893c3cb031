"""Data shipped with pinaudit: the CT log list snapshot and the CAA
identifiers of common CAs (each file says its date, source and how to
refresh it). `text` reads one by name; parsing is the pure modules' job."""

from __future__ import annotations

from pathlib import Path

__all__ = ["text"]

_HERE = Path(__file__).resolve().parent


def text(name: str) -> str:
    """The contents of the data file `name` (e.g. ``ct_log_list.json``)."""
    if "/" in name or name.startswith("."):
        raise ValueError(f"not a data file name: {name!r}")
    return (_HERE / name).read_text(encoding="utf-8")
