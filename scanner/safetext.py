"""Text from the wire or an inventory, made safe to show on a terminal. Pure.

A certificate's subject or SAN, a host name from an inventory or an error a
server provoked can carry control characters: an ANSI escape sequence that
recolours, moves the cursor or rewrites the terminal's title, a carriage
return that overwrites the line, a bidirectional override that makes one name
read as another. Every human output passes such text through `printable`,
which shows those characters as visible escapes (``\\x1b``, ``\\u202e``) and
leaves every other character as it is. Markup is never interpreted anywhere
(rich renders this text as plain text, never as markup), so brackets need no
escaping here.
"""

from __future__ import annotations

import re

__all__ = ["printable"]

# C0 and C1 controls, DEL, and the Unicode formatting characters that reorder
# or hide text: bidi embeddings/overrides/isolates, marks, zero-width ones.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str) -> str:
    """`text` with every control and reordering character shown as an escape."""
    return _UNSAFE.sub(_escape, text)
