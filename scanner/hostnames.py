"""Host names as clients compare them. Pure.

Two importers and the client judge need the same rules: OkHttp's
``toCanonicalHost`` (its patterns are validated with it, and the host it
compares is in that form), IDNA for the other clients, and the public-suffix
list that TrustKit uses to accept and match policy domains (shipped with the
``publicsuffixlist`` package: nothing is fetched).

OkHttp's rules depend on its major version (proven against OkHttp 3.13.1 by
tests/test_okhttp_oracle.py; 4 and 5 read from their source):

* 3 (3.x, and 4.0 to 4.2): a pattern is read as a URL (``HttpUrl.get("http://"
  + pattern).host()``), so ``host:8443`` pins ``host`` and ``example.*`` is a
  name that never matches; ``*.`` compares what follows the host's first dot;
  there is no ``**.``.
* 4 (4.3 to 4.12): ``*.`` and ``**.``, ``Unexpected pattern`` / ``Invalid
  pattern`` for anything else.
* 3 and 4 map names with ``java.net.IDN`` (IDNA 2003: ``straße`` →
  ``strasse``); 5 with its own UTS #46 table (``straße`` → ``xn--strae-oqa``)
  and the label-length limits.
"""

from __future__ import annotations

import encodings.idna as idna2003
import ipaddress
import re
import stringprep
from functools import lru_cache
from typing import TYPE_CHECKING

from scanner.model import DEFAULT_OKHTTP_VERSION, HostMode

if TYPE_CHECKING:
    from publicsuffixlist import PublicSuffixList

__all__ = [
    "PatternError",
    "httpurl_host",
    "idna_ascii",
    "is_public_suffix",
    "java_idn_host",
    "okhttp_canonical_host",
    "parse_okhttp_pattern",
    "public_suffix",
]

_BANNED = set(" #%/:?@[\\]") | {chr(c) for c in range(0x20)} | {"\x7f"}
_IDN_DOTS = re.compile("[.\u3002\uff0e\uff61]")  # the label separators of java.net.IDN
_PORT = re.compile(r"[+-]?[0-9]{1,10}")
_PERCENT = re.compile(r"(?:%[0-9A-Fa-f]{2})+")


class PatternError(ValueError):
    """A pattern OkHttp refuses, with the message of the exception it throws."""


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


def _ipv6(text: str) -> str | None:
    """An IPv6 literal, bracketed or not, as OkHttp's ``toCanonicalHost``
    gives it: RFC 5952 form, or the IPv4 text of an IPv4-mapped address (Java
    makes one an ``Inet4Address``). A zone index (``%eth0``) is refused, as
    OkHttp's decoder refuses it (Python's parser would take it)."""
    inner = text[1:-1] if text.startswith("[") and text.endswith("]") else text
    if "%" in inner:
        return None
    try:
        address = ipaddress.IPv6Address(inner)
    except ValueError:
        return None
    mapped = address.ipv4_mapped
    return str(mapped) if mapped is not None else str(address)


def java_idn_host(text: str) -> str | None:
    """OkHttp 3 and 4's ``canonicalizeHost``: ``IDN.toASCII(host).toLowerCase()``
    (IDNA 2003 with Unicode 3.2, unassigned code points refused), then no
    control, non-ASCII or `` #%/:?@[\\]`` character; a trailing dot is kept.
    None when OkHttp refuses the name."""
    if ":" in text:
        return _ipv6(text)
    labels = _IDN_DOTS.split(text)
    trailing = len(labels) > 1 and labels[-1] == ""
    if trailing:
        labels = labels[:-1]
    out: list[str] = []
    for label in labels:
        try:
            if not label.isascii() and any(
                stringprep.in_table_a1(c) for c in idna2003.nameprep(label)
            ):
                return None  # unassigned in Unicode 3.2: IDN.toASCII refuses it
            out.append(idna2003.ToASCII(label).decode("ascii"))
        except UnicodeError:
            return None
    host = (".".join(out) + ("." if trailing else "")).lower()
    if not host or any(c in _BANNED or not c.isascii() for c in host):
        return None
    return host


def okhttp_canonical_host(text: str, version: int = DEFAULT_OKHTTP_VERSION) -> str | None:
    """The name as OkHttp `version` compares it (``HttpUrl.host``,
    ``toCanonicalHost``): lower case, IDNA 2003 (3, 4) or UTS #46 with the
    label rules (5); a trailing dot is kept. None when OkHttp refuses it."""
    if version < 5:
        return java_idn_host(text)
    if not text:
        return None
    if ":" in text:  # an IPv6 literal, bracketed or not
        return _ipv6(text)
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


def _percent_decode(text: str) -> str:
    """``%xx`` sequences as UTF-8 (HttpUrl.percentDecode); others kept."""

    def decode(match: re.Match[str]) -> str:
        raw = bytes.fromhex(match[0].replace("%", ""))
        return raw.decode("utf-8", errors="replace")

    return _PERCENT.sub(decode, text)


def httpurl_host(pattern: str) -> str:
    """OkHttp 3's ``HttpUrl.get("http://" + pattern).host()``: the pattern read as
    a URL authority (user info, port and path dropped). Raises PatternError with
    HttpUrl's message."""
    text = ("http://" + pattern).strip("\t\n\f\r ")
    pos = len("http://")
    while pos < len(text) and text[pos] in "/\\":
        pos += 1
    while True:  # user info ends at the last "@" of the authority
        end = next((i for i in range(pos, len(text)) if text[i] in "@/\\?#"), len(text))
        if end < len(text) and text[end] == "@":
            pos = end + 1
            continue
        break
    colon = end
    index = pos
    while index < end:
        if text[index] == "[":
            close = text.find("]", index + 1, end)
            index = end if close < 0 else close
        elif text[index] == ":":
            colon = index
            break
        index += 1
    if colon + 1 < end:
        port = text[colon + 1 : end]
        if not _PORT.fullmatch(port) or not 0 < int(port) <= 65535:
            raise PatternError(f'Invalid URL port: "{port}"')
    host = java_idn_host(_percent_decode(text[pos:colon]))
    if host is None:
        raise PatternError(f'Invalid URL host: "{text[pos:colon]}"')
    return host


def parse_okhttp_pattern(
    pattern: str, version: int = DEFAULT_OKHTTP_VERSION
) -> tuple[str, HostMode]:
    """(canonical host, mode) of a ``CertificatePinner`` pattern for OkHttp
    `version`; raises PatternError with the message OkHttp throws.

    OkHttp 3 has no ``**.``: such a pattern is a name (``**.example.com``)
    that no host matches."""
    if version < 4:
        if pattern.startswith("*."):
            return httpurl_host(pattern[2:]), HostMode.ONE_LABEL
        return httpurl_host(pattern), HostMode.EXACT
    if pattern.startswith("**."):
        mode, rest = HostMode.ANY_DEPTH, pattern[3:]
    elif pattern.startswith("*."):
        mode, rest = HostMode.ONE_LABEL, pattern[2:]
    else:
        mode, rest = HostMode.EXACT, pattern
    if "*" in rest:
        raise PatternError(f"Unexpected pattern: {pattern}")
    host = okhttp_canonical_host(rest, version)
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
