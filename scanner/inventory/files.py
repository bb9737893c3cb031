"""The files an inventory may read, and how: the loader's only I/O.

An inventory reads its own file, the files it includes (``include:`` globs
relative to the including file), and checks that the files it names exist
(trust bundles, client certificates and keys, client pin configurations).
Every file read is a regular file of bounded size: a FIFO or a device is
refused before it is opened, so it cannot block the loader.
"""

from __future__ import annotations

import glob
import os
import stat
from dataclasses import dataclass

from scanner.model import Location

__all__ = [
    "MAX_FILE_BYTES",
    "FileRef",
    "Unreadable",
    "decode",
    "expand_include",
    "locate",
    "oversized",
    "read_file",
    "resolve",
    "too_large",
]

MAX_FILE_BYTES = 8 * 1024 * 1024  # per file


@dataclass(frozen=True)
class FileRef:
    """A file to read: its name in messages and where its relative paths start."""

    name: str  # as the user spelled it (joined onto the including file's directory)
    directory: str  # absolute
    display_dir: str  # `directory` as the user spelled it
    chain: tuple[tuple[str, str], ...]  # (real path, name) of the including files and this one
    is_root: bool


class Unreadable(Exception):
    """A file that cannot be read; the message says why."""


def resolve(name: str) -> tuple[str, str]:
    """(absolute path, real path with symlinks resolved) of a file name."""
    try:
        absolute = os.path.abspath(name)
        return absolute, os.path.realpath(absolute)
    except ValueError as exc:  # an embedded NUL
        raise Unreadable(str(exc)) from None


def read_file(path: str) -> bytes:
    """A regular file's bytes, at most one more than the size limit."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):  # before open(): a FIFO would block
            raise Unreadable("not a regular file")
        with open(path, "rb") as handle:
            return handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise Unreadable(exc.strerror or str(exc)) from None
    except ValueError as exc:  # an embedded NUL in the path
        raise Unreadable(str(exc)) from None


def decode(data: bytes, name: str) -> str | tuple[Location, str]:
    """A file's text (UTF-8, a BOM is fine, at most MAX_FILE_BYTES), or where
    and why it cannot be read as such."""
    if len(data) > MAX_FILE_BYTES:
        return Location(name, 1, 1), too_large()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        bad = data[exc.start : exc.start + 1].hex()
        return Location(name, line, column), f"not valid UTF-8 (byte 0x{bad})"


def oversized(text: str) -> bool:
    """Whether text read from elsewhere than a file is over the size limit."""
    return len(text.encode("utf-8", "surrogatepass")) > MAX_FILE_BYTES


def too_large() -> str:
    return f"file too large: more than {MAX_FILE_BYTES} bytes"


def expand_include(pattern: str, directory: str) -> list[str]:
    """Regular files matching a glob relative to `directory` (``**`` recurses),
    sorted. Raises OSError or ValueError when the pattern cannot be expanded."""
    found = glob.glob(pattern, root_dir=directory, recursive=True)
    return sorted(m for m in found if os.path.isfile(os.path.join(directory, m)))


def locate(directory: str, text: str) -> tuple[str, bool]:
    """(absolute path, whether a regular file is there) of a file named
    relative to `directory`."""
    resolved = os.path.normpath(os.path.join(directory, text))
    return resolved, bool(text.strip()) and os.path.isfile(resolved)
