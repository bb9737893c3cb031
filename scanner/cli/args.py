"""argparse plumbing shared by every command: a parser that raises instead of
exiting (so ``main`` owns the exit status), and the streams a command writes to."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import TextIO

from scanner.errors import ScannerError

__all__ = ["HelpShown", "Parser", "Streams", "Subparsers", "UsageError"]


class UsageError(ScannerError):
    """Bad arguments: exit 2, with the usage line."""


class HelpShown(Exception):
    """--help or --version was printed: exit with `status`."""

    def __init__(self, status: int) -> None:
        self.status = status


class Parser(argparse.ArgumentParser):
    """argparse that raises instead of exiting, so main() owns the exit code."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message)

    def exit(self, status: int = 0, message: str | None = None) -> None:  # type: ignore[override]
        if message:
            raise UsageError(message.strip())
        raise HelpShown(status)


Subparsers = argparse._SubParsersAction  # the type `add_subparsers` returns


@dataclass(frozen=True)
class Streams:
    """Where a command reads and writes: the process's streams, or a test's."""

    stdin: TextIO
    stdout: TextIO
    stderr: TextIO
