"""Host names as clients compare them. Pure.

Two importers and the client judge need the same rules: OkHttp's
``toCanonicalHost`` (its patterns are validated with it, and the host it
compares is in that form), IDNA for the other clients, and the public-suffix
list that TrustKit uses to accept and match policy domains (shipped with the
``publicsuffixlist`` package: nothing is fetched).
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from typing import TYPE_CHECKING

from scanner.model import HostMode

if TYPE_CHECKING:
    from publicsuffixlist import PublicSuffixList

__all__ = [
    "PatternError",
    "idna_ascii",
    "is_public_suffix",
    "okhttp_canonical_host",
    "parse_okhttp_pattern",
    "public_suffix",
]

_BANNED = set(" #%/:?@[\\]") | {chr(c) for c in range(0x20)} | {"\x7f"}


class PatternError(ValueError):
    """A pattern OkHttp refuses (``Unexpected pattern`` / ``Invalid pattern``)."""


def idna_ascii(host: str) -> str:
    """The ASCII (punycode) form of a name by UTS #46, lower-cased; the name
    lower-cased when IDNA refuses it."""
    if host.isascii():
        return host.lower()
    try:
        import idna

        return str(idna.encode(host, uts46=True).decode("ascii"))
    except Exception:  # idna raises several types for names it refuses
        return host.lower()


def okhttp_canonical_host(text: str) -> str | None:
    """OkHttp's ``toCanonicalHost``: lower-case, IDNA (UTS #46), the label
    rules; a trailing dot is kept. None when OkHttp refuses the name."""
    if not text:
        return None
    if ":" in text:  # an IPv6 literal, bracketed or not
        inner = text[1:-1] if text.startswith("[") and text.endswith("]") else text
        try:
            return str(ipaddress.IPv6Address(inner))
        except ValueError:
            return None
    if text.isascii():
        host = text.lower()
    else:
        import idna

        try:
            host = idna.encode(text, uts46=True).decode("ascii")
        except idna.IDNAError:
            return None
    if any(c in _BANNED for c in host):
        return None
    body = host[:-1] if host.endswith(".") else host
    if not 1 <= len(body) <= 253 or any(not 1 <= len(label) <= 63 for label in body.split(".")):
        return None
    return host


def parse_okhttp_pattern(pattern: str) -> tuple[str, HostMode]:
    """(canonical host, mode) of an OkHttp ``CertificatePinner`` pattern; raises PatternError."""
    if pattern.startswith("**."):
        mode, rest = HostMode.ANY_DEPTH, pattern[3:]
    elif pattern.startswith("*."):
        mode, rest = HostMode.ONE_LABEL, pattern[2:]
    else:
        mode, rest = HostMode.EXACT, pattern
    if "*" in rest:
        raise PatternError(f"Unexpected pattern: {pattern}")
    host = okhttp_canonical_host(rest)
    if host is None:
        raise PatternError(f"Invalid pattern: {pattern}")
    return host, mode


@lru_cache(maxsize=1)
def _psl() -> PublicSuffixList:
    from publicsuffixlist import PublicSuffixList

    return PublicSuffixList()


def public_suffix(host: str) -> str | None:
    """The registry suffix of `host` from the public-suffix list; None when unknown."""
    try:
        ipaddress.ip_address(host)
        return None
    except ValueError:
        pass
    suffix: str | None = _psl().publicsuffix(host.lower().rstrip("."), accept_unknown=False)
    return suffix


def is_public_suffix(host: str) -> bool:
    return public_suffix(host) == host.lower().rstrip(".")
