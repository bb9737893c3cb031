"""The files an inventory may read, and how: the loader's only I/O.

An inventory reads its own file, the files it includes (``include:`` globs
relative to the including file), and checks that the files it names exist
(trust bundles, client certificates and keys, client pin configurations).
Every file read is a regular file of bounded size: a FIFO or a device is
refused before it is opened, so it cannot block the loader.
"""

from __future__ import annotations

import fnmatch
import glob
import os
import stat
from dataclasses import dataclass

from cryptography.exceptions import UnsupportedAlgorithm

from scanner.model import Location

__all__ = [
    "MAX_FILE_BYTES",
    "MAX_INCLUDED_FILES",
    "MAX_INCLUDE_DEPTH",
    "MAX_INCLUDE_ENTRIES",
    "PSEUDO_FILESYSTEMS",
    "FileRef",
    "Unreadable",
    "client_pair_problem",
    "decode",
    "expand_include",
    "locate",
    "oversized",
    "read_file",
    "resolve",
    "too_large",
]

MAX_FILE_BYTES = 8 * 1024 * 1024  # per file
# Bounds on expanding one include pattern: directory entries looked at, and
# directories deep. A real inventory tree is far inside both; a pattern over a
# huge or looping tree stops with a clear problem instead of running forever.
MAX_INCLUDE_ENTRIES = 100_000
MAX_INCLUDE_DEPTH = 32
# Files an inventory may include in all (through every pattern and file).
MAX_INCLUDED_FILES = 10_000
# Pseudo filesystems: their "regular files" can block when read (/proc/kmsg),
# never end, or describe the machine rather than an inventory.
PSEUDO_FILESYSTEMS = ("/proc", "/sys", "/dev")


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


def expand_include(pattern: str, directory: str, *, limit: int = MAX_INCLUDE_ENTRIES) -> list[str]:
    """Regular files matching a glob relative to `directory`, sorted, as
    ``glob(recursive=True)`` matches them (``*``, ``?``, ``[…]`` within a name,
    names starting with ``.`` only when the pattern part does, ``**`` for any
    depth), but bounded: a directory reached through a symbolic link is never
    walked into by a wildcard or ``**`` (a link loop, or a link out of the tree,
    cannot make it endless), at most `limit` directory entries are looked at,
    at most MAX_INCLUDE_DEPTH directories deep. Raises ValueError when a bound
    is hit; a directory that cannot be listed matches nothing, as in glob."""
    parts = [part for part in pattern.split("/") if part not in ("", ".")]
    if not parts:
        raise ValueError("the pattern names no file")
    found: set[str] = set()
    looked = 0
    # (directory to look in, the path matched so far as the pattern spells it,
    # the index of the pattern part to match there, directories deep)
    start = "/" if pattern.startswith("/") else directory
    stack: list[tuple[str, str, int, int]] = [(start, "", 0, 0)]
    while stack:
        here, spelled, index, depth = stack.pop()
        if depth > MAX_INCLUDE_DEPTH:
            raise ValueError(f"more than {MAX_INCLUDE_DEPTH} directories deep")
        part, last = parts[index], index == len(parts) - 1
        if part == "**" or glob.has_magic(part):
            entries = _entries(here, part, limit - looked, limit)
            looked += len(entries)
            if part == "**" and not last:
                stack.append((here, spelled, index + 1, depth))  # ** as no directory at all
            for entry in entries:
                path = f"{spelled}/{entry.name}" if spelled else entry.name
                if part == "**":
                    if entry.is_dir(follow_symlinks=False):
                        stack.append((entry.path, path, index, depth + 1))
                    elif last and entry.is_file():
                        found.add(path)
                elif fnmatch.fnmatchcase(entry.name, part):
                    if last and entry.is_file():
                        found.add(path)
                    elif not last and entry.is_dir(follow_symlinks=False):
                        stack.append((entry.path, path, index + 1, depth + 1))
            continue
        target = os.path.join(here, part)
        path = f"{spelled}/{part}" if spelled else part
        if last:
            if os.path.isfile(target):
                found.add(path)
        elif os.path.isdir(target):  # named in the pattern itself: a link is followed
            stack.append((target, path, index + 1, depth + 1))
    prefix = "/" if pattern.startswith("/") else ""
    return sorted(prefix + path for path in found)


def _entries(directory: str, part: str, budget: int, limit: int) -> list[os.DirEntry[str]]:
    """The entries of `directory` that a pattern part may match (hidden ones
    only when the part starts with a dot), within the entry budget."""
    hidden = part.startswith(".")
    entries: list[os.DirEntry[str]] = []
    try:
        with os.scandir(directory) as listing:
            for entry in listing:
                if len(entries) >= budget:
                    raise ValueError(f"looked at more than {limit} directory entries")
                if hidden or not entry.name.startswith("."):
                    entries.append(entry)
    except OSError:  # a directory that cannot be listed matches nothing, as in glob
        return []
    return entries


def locate(directory: str, text: str) -> tuple[str, bool]:
    """(absolute path, whether a regular file is there) of a file named
    relative to `directory`."""
    resolved = os.path.normpath(os.path.join(directory, text))
    return resolved, bool(text.strip()) and os.path.isfile(resolved)


def client_pair_problem(cert_path: str, key_path: str | None) -> str | None:
    """Why a client certificate and its key cannot be used for mTLS, or None.

    Checked when the inventory is loaded, so that a scan never finds out in
    the middle (before, a key that did not match its certificate passed
    `validate` and then ended the scan with exit 70)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    try:
        cert_data = read_file(cert_path)
        key_data = read_file(key_path) if key_path is not None else cert_data
    except Unreadable as exc:
        return f"cannot read the client certificate or key: {exc}"
    try:
        cert = x509.load_pem_x509_certificate(cert_data)
    except ValueError:
        return "client_cert holds no PEM certificate"
    try:
        key = serialization.load_pem_private_key(key_data, password=None)
    except TypeError:
        return (
            "the client key is encrypted: give an unencrypted key "
            "(a scan cannot prompt for a passphrase)"
        )
    except (ValueError, UnsupportedAlgorithm):
        where = "client_key" if key_path is not None else "client_cert (no client_key given)"
        return f"{where} holds no PEM private key"
    if key.public_key().public_bytes(
        serialization.Encoding.DER, spki
    ) != cert.public_key().public_bytes(serialization.Encoding.DER, spki):
        return "client_key does not match client_cert: their public keys differ"
    return None
