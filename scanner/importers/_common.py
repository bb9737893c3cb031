"""What the importers share: each client's base64 decoder, host checks, and a
collector of problems with their positions."""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field

from scanner.errors import ClientConfigError
from scanner.model import ConfigProblem, HashAlg, Location, Pin
from scanner.pins import unpadded_base64

__all__ = [
    "MAX_BYTES",
    "Collector",
    "android_base64",
    "canonical_base64",
    "decode_text",
    "line_column",
    "sha256_pin",
    "stem_name",
    "strict_base64",
]

MAX_BYTES = 8 * 1024 * 1024
_STANDARD = re.compile(r"[A-Za-z0-9+/]*")


RUNTIME = "pins computed at run time: not imported"


@dataclass
class Collector:
    """Problems (the client rejects the configuration), notes (it accepts it)
    and what the importer could not evaluate (pins computed at run time)."""

    name: str
    problems: list[ConfigProblem] = field(default_factory=list)
    notes: list[ConfigProblem] = field(default_factory=list)
    unresolved: list[ConfigProblem] = field(default_factory=list)

    def problem(self, where: Location, message: str) -> ConfigProblem:
        found = ConfigProblem(where, message)
        self.problems.append(found)
        return found

    def note(self, where: Location, message: str) -> None:
        self.notes.append(ConfigProblem(where, message))

    def not_imported(self, where: Location, what: str) -> None:
        """An importer limit, never the client's: ``pins computed at run time: not
        imported: <what>``."""
        self.unresolved.append(ConfigProblem(where, f"{RUNTIME}: {what}"))

    def reported_lines(self) -> set[int]:
        """Lines that already carry a problem, a note or an unresolved entry."""
        return {p.location.line for p in (*self.problems, *self.notes, *self.unresolved)}


def not_the_kind(where: Location, message: str) -> ClientConfigError:
    """The file is not the kind of configuration named: an input error (exit 2)."""
    return ClientConfigError(where, message)


def decode_text(data: bytes, name: str) -> str:
    """UTF-8 text of a configuration file (a BOM is fine)."""
    if len(data) > MAX_BYTES:
        raise ClientConfigError(
            Location(name, 1, 1), f"file too large: more than {MAX_BYTES} bytes"
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ClientConfigError(
            Location(name, line, column), f"not valid UTF-8 (byte 0x{data[exc.start]:02x})"
        ) from None


def android_base64(text: str) -> bytes | None:
    """android.util.Base64.decode(s, DEFAULT): standard alphabet, whitespace
    skipped, padding optional."""
    body = "".join(text.split())
    stripped = body.rstrip("=")
    if not _STANDARD.fullmatch(stripped) or len(body) - len(stripped) > 2:
        return None
    return unpadded_base64(stripped)


def strict_base64(text: str) -> bytes | None:
    """Strict RFC 4648 base64 (NSData without options, Chromium): standard
    alphabet, padded, nothing else."""
    if len(text) % 4 or not re.fullmatch(r"[A-Za-z0-9+/]*={0,2}", text):
        return None
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


def canonical_base64(text: str) -> bool:
    """Whether a base64 digest is written the one way every client reads."""
    return strict_base64(text.strip()) is not None and text == text.strip()


def lines_of(text: str) -> list[str]:
    """The file's lines as every position here counts them: split at "\n" only
    (a CR of CRLF dropped), not at the other breaks ``str.splitlines`` knows."""
    return [line[:-1] if line.endswith("\r") else line for line in text.split("\n")]


def sha256_pin(digest: bytes) -> Pin:
    return Pin(HashAlg.SHA256, digest)


def line_column(text: str, index: int) -> tuple[int, int]:
    line = text.count("\n", 0, index) + 1
    return line, index - (text.rfind("\n", 0, index) + 1) + 1


def stem_name(path: str) -> str:
    """A pin-set name from a file name: its stem with odd characters replaced."""
    import os

    stem = os.path.splitext(os.path.basename(path))[0] or "policy"
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", stem)
    return name if re.match(r"[A-Za-z0-9_]", name) else f"p{name}"
