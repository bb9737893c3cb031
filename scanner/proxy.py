"""Reaching an endpoint through a proxy: HTTP CONNECT and SOCKS5, sans-I/O.

Proxy URLs are spelled as curl spells them:

- ``http://[user:password@]host[:port]`` -- an HTTP proxy asked to ``CONNECT
  host:port`` (RFC 9110 §9.3.6); the proxy resolves the name. Port 1080 when
  absent is curl's default for every scheme; HTTP proxies usually listen on
  3128 or 8080, so write the port.
- ``socks5://[user:password@]host[:port]`` -- SOCKS5 (RFC 1928), the name
  resolved here and the address sent; ``socks5h://`` lets the proxy resolve
  the name. User and password use RFC 1929.

`proxy_for` picks the proxy of one endpoint from the environment the way curl
does for an ``https://`` URL (``https_proxy``/``HTTPS_PROXY``, then
``all_proxy``/``ALL_PROXY``; ``no_proxy``/``NO_PROXY`` exempts names, domain
suffixes, IP addresses and CIDR ranges; ``*`` exempts everything).

A proxy that will not connect is `Refused` (the probe's ``proxy_refused``
reason); the detail names the proxy without its credentials.
"""

from __future__ import annotations

import base64
import enum
import ipaddress
import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field

from scanner.dialogue import (
    MAX_REPLY_LINES,
    Dialogue,
    Exact,
    Line,
    Refused,
    Send,
    TooLong,
    Unexpected,
    quote,
)

__all__ = [
    "DEFAULT_PROXY_PORT",
    "SOCKS5_REPLIES",
    "Proxy",
    "ProxyScheme",
    "connect_dialogue",
    "http_connect",
    "parse_proxy",
    "proxy_for",
    "socks5_connect",
]

DEFAULT_PROXY_PORT = 1080  # curl's default for a proxy URL without a port


class ProxyScheme(str, enum.Enum):
    HTTP = "http"
    SOCKS5 = "socks5"  # names resolved by the scanner
    SOCKS5H = "socks5h"  # names resolved by the proxy


@dataclass(frozen=True)
class Proxy:
    scheme: ProxyScheme
    host: str
    port: int
    username: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)

    @property
    def resolves_names(self) -> bool:
        """True when the proxy, not the scanner, resolves the endpoint's name."""
        return self.scheme is not ProxyScheme.SOCKS5

    def __str__(self) -> str:
        """The URL without credentials: what reports and failures show."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme.value}://{host}:{self.port}"


_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://(.*)$", re.DOTALL)
_PERCENT = re.compile(r"%([0-9A-Fa-f]{2})")


def _unquote(text: str) -> str:
    raw = _PERCENT.sub(lambda m: chr(int(m.group(1), 16)), text)
    return raw.encode("latin-1", "replace").decode("utf-8", "replace")


def parse_proxy(url: str) -> Proxy:
    """A `Proxy` from its URL; ValueError says what is wrong (never echoing a password).

    Parsed by hand (not with urllib) to stay in the pure core: scheme, optional
    ``user:password@``, host (``[...]`` for IPv6), optional port, optional ``/``.
    """
    match = _SCHEME.match(url.strip())
    if match is None:
        raise ValueError("a proxy URL looks like http://host:port or socks5://host:port")
    scheme, rest = match.group(1).lower(), match.group(2)
    try:
        kind = ProxyScheme(scheme)
    except ValueError:
        allowed = ", ".join(f"{s.value}://" for s in ProxyScheme)
        raise ValueError(f"unsupported proxy scheme {scheme + '://'!r} (use {allowed})") from None
    if rest.endswith("/"):
        rest = rest[:-1]
    if any(c in rest for c in "/?#"):
        raise ValueError("a proxy URL has no path, query or fragment")
    userinfo, _, hostport = rest.rpartition("@")
    username = password = None
    if _:
        user, colon, secret = userinfo.partition(":")
        username = _unquote(user)
        password = _unquote(secret) if colon else None
    if hostport.startswith("["):
        host, bracket, tail = hostport[1:].partition("]")
        if not bracket or (tail and not tail.startswith(":")):
            raise ValueError("a proxy URL's IPv6 address is written [address]:port")
        port_text = tail[1:] if tail else ""
    else:
        host, _, port_text = hostport.partition(":")
    if not host:
        raise ValueError("a proxy URL needs a host")
    if port_text and not (port_text.isdigit() and 0 < int(port_text) < 65536):
        raise ValueError("the proxy port is not a number in 1-65535")
    port = int(port_text) if port_text else DEFAULT_PROXY_PORT
    return Proxy(kind, host.lower(), port, username, password)


# --------------------------------------------------------------------------- environment


def _no_proxy_matches(host: str, entries: str) -> bool:
    """curl's NO_PROXY: '*' alone, names (a leading dot optional) matching the
    host or a domain above it, IP addresses, CIDR ranges. Case-insensitive;
    ports are not considered."""
    name = host.lower().rstrip(".").strip("[]")
    try:
        address: ipaddress.IPv4Address | ipaddress.IPv6Address | None
        address = ipaddress.ip_address(name)
    except ValueError:
        address = None
    for raw in entries.split(","):
        entry = raw.strip().lower().rstrip(".")
        if not entry:
            continue
        if entry == "*":
            return True
        if address is not None:
            try:
                if address in ipaddress.ip_network(entry.strip("[]"), strict=False):
                    return True
            except ValueError:
                pass
            continue
        entry = entry.lstrip(".")
        if name == entry or name.endswith("." + entry):
            return True
    return False


def proxy_for(host: str, environ: Mapping[str, str]) -> str | None:
    """The proxy URL curl would use for ``https://host/`` in `environ`, or None."""
    no_proxy = environ.get("no_proxy", environ.get("NO_PROXY", ""))
    if no_proxy and _no_proxy_matches(host, no_proxy):
        return None
    for key in ("https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        value = environ.get(key, "").strip()
        if value:
            return value if "://" in value else f"http://{value}"  # curl's default scheme
    return None


# --------------------------------------------------------------------------- HTTP CONNECT


def _authority(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def http_connect(proxy: Proxy, host: str, port: int) -> Dialogue:
    target = _authority(host, port)
    request = f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n"
    if proxy.username is not None:
        secret = f"{proxy.username}:{proxy.password or ''}".encode()
        request += f"Proxy-Authorization: Basic {base64.b64encode(secret).decode()}\r\n"
    yield Send((request + "\r\n").encode("ascii"))
    status = yield Line()
    parts = status.split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
        raise Unexpected(f"proxy {proxy}: not an HTTP answer: {quote(status)}")
    code = int(parts[1])
    for _ in range(MAX_REPLY_LINES):
        line = yield Line()
        if not line:
            break
    else:
        raise TooLong(f"proxy {proxy}: more than {MAX_REPLY_LINES} header lines")
    if not 200 <= code < 300:
        raise Refused(f"proxy {proxy} refused CONNECT {target}: {quote(status)}")


# --------------------------------------------------------------------------- SOCKS5

SOCKS5_REPLIES = {
    1: "general SOCKS server failure",
    2: "connection not allowed by ruleset",
    3: "network unreachable",
    4: "host unreachable",
    5: "connection refused",
    6: "TTL expired",
    7: "command not supported",
    8: "address type not supported",
}


def _socks_address(host: str) -> bytes:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        name = host.encode("idna")
        if not 0 < len(name) < 256:
            raise Unexpected(f"{host!r} cannot be sent to a SOCKS5 proxy") from None
        return b"\x03" + bytes([len(name)]) + name
    return (b"\x01" if address.version == 4 else b"\x04") + address.packed


def socks5_connect(proxy: Proxy, host: str, port: int) -> Dialogue:
    target = _authority(host, port)
    methods = b"\x00\x02" if proxy.username is not None else b"\x00"
    yield Send(b"\x05" + bytes([len(methods)]) + methods)
    choice = yield Exact(2)
    if choice[0] != 5:
        raise Unexpected(f"proxy {proxy}: not a SOCKS5 answer: {quote(choice)}")
    if choice[1] == 0xFF:
        raise Refused(f"proxy {proxy} refused: no acceptable authentication method")
    if choice[1] == 2:
        if proxy.username is None:
            raise Unexpected(f"proxy {proxy}: asked for a password that was not offered")
        user = proxy.username.encode()[:255]
        word = (proxy.password or "").encode()[:255]
        yield Send(b"\x01" + bytes([len(user)]) + user + bytes([len(word)]) + word)
        status = yield Exact(2)
        if status[1] != 0:
            raise Refused(f"proxy {proxy} refused: user name or password not accepted")
    elif choice[1] != 0:
        raise Unexpected(f"proxy {proxy}: chose authentication method {choice[1]}")
    yield Send(b"\x05\x01\x00" + _socks_address(host) + struct.pack("!H", port))
    reply = yield Exact(4)
    if reply[0] != 5:
        raise Unexpected(f"proxy {proxy}: not a SOCKS5 reply: {quote(reply)}")
    if reply[1] != 0:
        why = SOCKS5_REPLIES.get(reply[1], f"reply code {reply[1]}")
        raise Refused(f"proxy {proxy} refused CONNECT {target}: {why}")
    kind = reply[3]
    if kind == 1:
        yield Exact(4 + 2)
    elif kind == 4:
        yield Exact(16 + 2)
    elif kind == 3:
        size = yield Exact(1)
        yield Exact(size[0] + 2)
    else:
        raise Unexpected(f"proxy {proxy}: a reply with address type {kind}")


def connect_dialogue(proxy: Proxy, host: str, port: int) -> Dialogue:
    """The dialogue that asks `proxy` for a tunnel to host:port."""
    if proxy.scheme is ProxyScheme.HTTP:
        return http_connect(proxy, host, port)
    return socks5_connect(proxy, host, port)
