"""Plain-text dialogues before TLS (STARTTLS, proxy CONNECT), written sans-I/O.

A dialogue is a generator: it yields what it wants done on the wire (`Send`
bytes, read a `Line`, read `Exact` bytes, read `Some` bytes) and is sent back
what was read. It ends normally when the peer agreed (TLS may start), or
raises `Refused` (the peer said no: its own probe-failure reason) or
`Unexpected` (the peer does not speak the protocol), or `Ended` (the peer
hung up). `scanner.probe` runs it
over a socket; tests can run it over bytes. Nothing here does I/O.

Every read is bounded by the driver (`MAX_LINE`, `MAX_DIALOGUE_BYTES`) and
every loop in a dialogue by a count, so a hostile peer can neither make the
scanner buffer without end nor keep it talking forever (the probe's deadline
bounds the time).
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass

__all__ = [
    "MAX_DIALOGUE_BYTES",
    "MAX_LINE",
    "MAX_REPLY_LINES",
    "QUOTE_CHARS",
    "Dialogue",
    "DialogueError",
    "Ended",
    "Exact",
    "Line",
    "Refused",
    "Send",
    "Some",
    "TooLong",
    "Unexpected",
    "Want",
    "quote",
    "run_on_bytes",
    "take",
]

# The longest line a dialogue accepts (SMTP allows 512 octets, IMAP capability
# lines and XMPP features run longer in practice; 8 KiB is generous).
MAX_LINE = 8192
# All the plain text a peer may send before TLS starts.
MAX_DIALOGUE_BYTES = 64 * 1024
# Lines of one reply (SMTP/FTP multi-line replies, IMAP untagged responses).
MAX_REPLY_LINES = 200
# How much of a peer's words a failure quotes.
QUOTE_CHARS = 200


@dataclass(frozen=True)
class Send:
    data: bytes


@dataclass(frozen=True)
class Line:
    """Read one line, CRLF or LF terminated; the line is returned without it."""


@dataclass(frozen=True)
class Exact:
    count: int


@dataclass(frozen=True)
class Some:
    """Read whatever is available (at least one byte)."""


Want = Send | Line | Exact | Some
Dialogue = Generator[Want, bytes, None]


class DialogueError(Exception):
    """The dialogue cannot go on; the message is the probe failure's detail."""


class Refused(DialogueError):
    """The peer understood and said no (STARTTLS not offered or refused,
    a proxy that will not connect)."""


class Unexpected(DialogueError):
    """The peer's answer is not the protocol (wrong service, garbage)."""


class Ended(DialogueError):
    """The peer closed the connection before the dialogue was over."""


class TooLong(Unexpected):
    """The peer sent more than a dialogue accepts (a line or the whole)."""


def quote(data: bytes | str) -> str:
    """A peer's words, safe to print: bounded, non-printables escaped."""
    text = data.decode("utf-8", "backslashreplace") if isinstance(data, bytes) else data
    cut = len(text) > QUOTE_CHARS
    text = text[:QUOTE_CHARS]
    escaped = "".join(c if c.isprintable() and c != "\\" else _escape(c) for c in text)
    return repr(escaped + ("..." if cut else ""))


def _escape(char: str) -> str:
    if char == "\\":
        return "\\\\"
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def run_on_bytes(dialogue: Dialogue, incoming: bytes) -> tuple[bytes, bytes]:
    """Run `dialogue` against bytes the peer would send (for tests and tools).

    Returns (everything the dialogue sent, the bytes left unread). Raises what
    the dialogue raises, or `Ended` when the bytes run out first."""
    sent = bytearray()
    buffer = bytearray(incoming)
    try:
        want = next(dialogue)
        while True:
            reply = b""
            if isinstance(want, Send):
                sent += want.data
            else:
                reply = take(buffer, want, eof=True) or b""
            want = dialogue.send(reply)
    except StopIteration:
        return bytes(sent), bytes(buffer)


def take(buffer: bytearray, want: Line | Exact | Some, *, eof: bool) -> bytes | None:
    """Take what `want` asks for from `buffer`, or None when more bytes
    are needed. Raises `TooLong` for an over-long line, `Ended` when `eof`
    says no more bytes will come and the buffer cannot answer."""
    if isinstance(want, Line):
        end = buffer.find(b"\n", 0, MAX_LINE + 1)
        if end < 0:
            if len(buffer) > MAX_LINE:
                raise TooLong(f"a line longer than {MAX_LINE} bytes: {quote(bytes(buffer[:80]))}")
            if eof:
                raise Ended(_ended(buffer))
            return None
        line = bytes(buffer[:end])
        del buffer[: end + 1]
        return line[:-1] if line.endswith(b"\r") else line
    if isinstance(want, Exact):
        if len(buffer) < want.count:
            if eof:
                raise Ended(_ended(buffer))
            return None
        data = bytes(buffer[: want.count])
        del buffer[: want.count]
        return data
    if not buffer:
        if eof:
            raise Ended(_ended(buffer))
        return None
    data = bytes(buffer)
    buffer.clear()
    return data


def _ended(buffer: bytearray) -> str:
    if buffer:
        return f"the connection ended in the middle of a reply: {quote(bytes(buffer))}"
    return "the connection ended before the reply"
