"""Process exit codes (DESIGN §4), for cron and CI."""

from __future__ import annotations

import enum

__all__ = ["ExitStatus"]


class ExitStatus(enum.IntEnum):
    OK = 0  # done, nothing at or above --fail-on
    FINDINGS = 1  # done, findings at or above --fail-on
    USAGE = 2  # bad invocation or bad inventory: nothing scanned or exported
    EXPORT_FAILED = 3  # scan done but an export failed
    INTERNAL = 70  # a bug
    INTERRUPTED = 130  # Ctrl-C / SIGINT
