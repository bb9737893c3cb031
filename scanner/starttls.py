"""STARTTLS: the plain-text opening each protocol needs before its TLS handshake.

One sans-I/O dialogue per protocol (see `scanner.dialogue`); `scanner.probe`
runs it on the connected socket, then hands the same socket to TLS. A
dialogue ends normally only when the server agreed to start TLS and has sent
nothing after its agreement (bytes after it would be read as TLS by the
handshake, the STARTTLS injection class of bugs: the probe refuses them).

| protocol | default port | standard | what is sent |
| --- | --- | --- | --- |
| smtp | 25 | RFC 3207 | ``EHLO``, ``STARTTLS`` (needs the keyword in the EHLO reply) |
| imap | 143 | RFC 3501 §6.2.1 | ``A1 STARTTLS`` |
| pop3 | 110 | RFC 2595 §4 | ``STLS`` |
| ftp | 21 | RFC 4217 §4 | ``AUTH TLS`` |
| ldap | 389 | RFC 4511 §4.14 | the StartTLS extended operation |
| postgres | 5432 | PostgreSQL protocol 3.0, SSLRequest | the SSLRequest packet |
| mysql | 3306 | MySQL client/server protocol, SSLRequest | the SSLRequest packet |
| xmpp | 5222 | RFC 6120 §5 | a client stream header, ``<starttls/>`` |
"""

from __future__ import annotations

import enum
import re
import struct
from collections.abc import Generator, Iterator
from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    import xml.etree.ElementTree as ET

from scanner.dialogue import (
    MAX_DIALOGUE_BYTES,
    MAX_REPLY_LINES,
    Dialogue,
    Exact,
    Line,
    Refused,
    Send,
    Some,
    TooLong,
    Unexpected,
    Want,
    quote,
)

__all__ = [
    "DEFAULT_PORTS",
    "LDAP_RESULT_CODES",
    "POSTGRES_SSL_REQUEST",
    "Starttls",
    "dialogue",
    "ftp",
    "imap",
    "ldap",
    "ldap_starttls_request",
    "mysql",
    "mysql_ssl_request",
    "pop3",
    "postgres",
    "smtp",
    "xmpp",
    "xmpp_stream_header",
]


class Starttls(str, enum.Enum):
    """A protocol that upgrades a plain connection to TLS. The value is the
    inventory spelling (``starttls: smtp``)."""

    SMTP = "smtp"
    IMAP = "imap"
    POP3 = "pop3"
    FTP = "ftp"
    LDAP = "ldap"
    POSTGRES = "postgres"
    MYSQL = "mysql"
    XMPP = "xmpp"

    @property
    def default_port(self) -> int:
        return DEFAULT_PORTS[self]


DEFAULT_PORTS: dict[Starttls, int] = {
    Starttls.SMTP: 25,
    Starttls.IMAP: 143,
    Starttls.POP3: 110,
    Starttls.FTP: 21,
    Starttls.LDAP: 389,
    Starttls.POSTGRES: 5432,
    Starttls.MYSQL: 3306,
    Starttls.XMPP: 5222,
}


def dialogue(protocol: Starttls, *, server_name: str, client_address: str) -> Dialogue:
    """The opening of `protocol`. `server_name` is the XMPP domain; the SMTP
    EHLO names the client by its address literal (RFC 5321 §4.1.3)."""
    if protocol is Starttls.SMTP:
        return smtp(client_address)
    if protocol is Starttls.IMAP:
        return imap()
    if protocol is Starttls.POP3:
        return pop3()
    if protocol is Starttls.FTP:
        return ftp()
    if protocol is Starttls.LDAP:
        return ldap()
    if protocol is Starttls.POSTGRES:
        return postgres()
    if protocol is Starttls.MYSQL:
        return mysql()
    return xmpp(server_name)


# --------------------------------------------------------------------------- SMTP / FTP

_REPLY = re.compile(rb"^([0-9]{3})(?:([ -])(.*))?$", re.DOTALL)


def _numeric_reply(protocol: str, *, strict: bool) -> Generator[Want, bytes, tuple[int, bytes]]:
    """One SMTP (RFC 5321 §4.2) or FTP (RFC 959 §4.2) reply: a 3-digit code,
    ``-`` on every line but the last. SMTP repeats the code on each line
    (`strict`); FTP lets the middle lines say anything. Returns (code, text)."""
    first = yield Line()
    match = _REPLY.match(first)
    if match is None:
        raise Unexpected(f"{protocol}: not a {protocol.upper()} reply: {quote(first)}")
    code, separator, text = match.group(1), match.group(2), match.group(3) or b""
    lines = [text]
    for _ in range(MAX_REPLY_LINES):
        if separator != b"-":
            return int(code), b" / ".join(lines)
        line = yield Line()
        match = _REPLY.match(line)
        if match is not None and match.group(1) == code:
            separator = match.group(2)
            lines.append(match.group(3) or b"")
        elif strict:
            raise Unexpected(f"{protocol}: not a {protocol.upper()} reply line: {quote(line)}")
        else:
            lines.append(line)
    raise TooLong(f"{protocol}: a reply of more than {MAX_REPLY_LINES} lines")


def _address_literal(address: str) -> bytes:
    return (f"[IPv6:{address}]" if ":" in address else f"[{address}]").encode("ascii")


def smtp(client_address: str) -> Dialogue:
    code, text = yield from _numeric_reply("smtp", strict=True)
    if code != 220:
        raise Refused(f"smtp: the greeting is {code} {quote(text)}, not 220")
    yield Send(b"EHLO " + _address_literal(client_address) + b"\r\n")
    code, text = yield from _numeric_reply("smtp", strict=True)
    if code != 250:
        raise Refused(f"smtp: EHLO was answered {code} {quote(text)}")
    keywords = [line.split()[0].upper() for line in text.split(b" / ")[1:] if line.split()]
    if b"STARTTLS" not in keywords:
        offered = b" ".join(keywords).decode("ascii", "replace")
        raise Refused(f"smtp: the server does not offer STARTTLS (EHLO keywords: {quote(offered)})")
    yield Send(b"STARTTLS\r\n")
    code, text = yield from _numeric_reply("smtp", strict=True)
    if code != 220:
        raise Refused(f"smtp: STARTTLS was answered {code} {quote(text)}")


def ftp() -> Dialogue:
    code, text = yield from _numeric_reply("ftp", strict=False)
    if code == 120:  # "service ready in nnn minutes": the 220 follows
        code, text = yield from _numeric_reply("ftp", strict=False)
    if code != 220:
        raise Refused(f"ftp: the greeting is {code} {quote(text)}, not 220")
    yield Send(b"AUTH TLS\r\n")
    code, text = yield from _numeric_reply("ftp", strict=False)
    if code != 234:
        raise Refused(f"ftp: AUTH TLS was answered {code} {quote(text)}")


# --------------------------------------------------------------------------- IMAP / POP3

_TAG = b"A1"


def imap() -> Dialogue:
    greeting = yield Line()
    word = greeting.split(b" ", 2)[1].upper() if greeting.startswith(b"* ") else b""
    if word == b"BYE":
        raise Refused(f"imap: the server said BYE: {quote(greeting)}")
    if word not in (b"OK", b"PREAUTH"):
        raise Unexpected(f"imap: not an IMAP greeting: {quote(greeting)}")
    yield Send(_TAG + b" STARTTLS\r\n")
    for _ in range(MAX_REPLY_LINES):
        line = yield Line()
        if line.startswith(b"* "):
            continue  # untagged data (capabilities, alerts)
        parts = line.split(b" ", 2)
        status = parts[1].upper() if len(parts) > 1 and parts[0] == _TAG else b""
        if status == b"OK":
            return
        if status in (b"NO", b"BAD"):
            raise Refused(f"imap: STARTTLS was answered {quote(line)}")
        raise Unexpected(f"imap: not an IMAP response: {quote(line)}")
    raise TooLong(f"imap: more than {MAX_REPLY_LINES} untagged lines before the STARTTLS answer")


def pop3() -> Dialogue:
    greeting = yield Line()
    if greeting.startswith(b"-ERR"):
        raise Refused(f"pop3: the greeting is {quote(greeting)}")
    if not greeting.startswith(b"+OK"):
        raise Unexpected(f"pop3: not a POP3 greeting: {quote(greeting)}")
    yield Send(b"STLS\r\n")
    answer = yield Line()
    if answer.startswith(b"-ERR"):
        raise Refused(f"pop3: STLS was answered {quote(answer)}")
    if not answer.startswith(b"+OK"):
        raise Unexpected(f"pop3: not a POP3 response: {quote(answer)}")


# --------------------------------------------------------------------------- LDAP

_LDAP_STARTTLS_OID = b"1.3.6.1.4.1.1466.20037"
_LDAP_NOTICE_OF_DISCONNECTION = b"1.3.6.1.4.1.1466.20036"
# RFC 4511 Appendix A: the result codes a StartTLS answer carries in practice.
LDAP_RESULT_CODES = {
    0: "success",
    1: "operationsError",
    2: "protocolError",
    3: "timeLimitExceeded",
    7: "authMethodNotSupported",
    8: "strongerAuthRequired",
    11: "adminLimitExceeded",
    12: "unavailableCriticalExtension",
    13: "confidentialityRequired",
    50: "insufficientAccessRights",
    51: "busy",
    52: "unavailable",
    53: "unwillingToPerform",
    80: "other",
}


def _ber(tag: int, content: bytes) -> bytes:
    if len(content) < 0x80:
        return bytes([tag, len(content)]) + content
    size = len(content).to_bytes((len(content).bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + content


def ldap_starttls_request(message_id: int = 1) -> bytes:
    """LDAPMessage { messageID, [APPLICATION 23] { requestName [0] StartTLS OID } }."""
    request = _ber(0x77, _ber(0x80, _LDAP_STARTTLS_OID))
    return _ber(0x30, _ber(0x02, bytes([message_id])) + request)


def _ber_items(data: bytes) -> list[tuple[int, bytes]]:
    """The (tag, content) elements of a BER definite-length sequence body."""
    items: list[tuple[int, bytes]] = []
    at = 0
    while at < len(data):
        if len(items) >= 32 or at + 2 > len(data):
            raise Unexpected("ldap: a malformed answer")
        tag, size = data[at], data[at + 1]
        at += 2
        if size & 0x80:
            count = size & 0x7F
            if count == 0 or count > 3 or at + count > len(data):
                raise Unexpected("ldap: a malformed answer")
            size = int.from_bytes(data[at : at + count], "big")
            at += count
        if at + size > len(data):
            raise Unexpected("ldap: a malformed answer")
        items.append((tag, data[at : at + size]))
        at += size
    return items


def ldap() -> Dialogue:
    yield Send(ldap_starttls_request())
    header = yield Exact(2)
    if header[0] != 0x30:
        raise Unexpected(f"ldap: not an LDAP message: {quote(header)}")
    size = header[1]
    if size & 0x80:
        count = size & 0x7F
        if count == 0 or count > 3:
            raise Unexpected(f"ldap: not an LDAP message: {quote(header)}")
        size = int.from_bytes((yield Exact(count)), "big")
    if size > MAX_DIALOGUE_BYTES:
        raise TooLong(f"ldap: an answer of {size} bytes")
    body = yield Exact(size)
    items = _ber_items(body)
    if len(items) < 2 or items[0][0] != 0x02 or items[1][0] != 0x78:
        raise Unexpected(f"ldap: not an extended response: {quote(body[:40])}")
    fields = _ber_items(items[1][1])
    if len(fields) < 3 or fields[0][0] != 0x0A:
        raise Unexpected("ldap: an extended response without a result code")
    code = int.from_bytes(fields[0][1], "big")
    message = fields[2][1]
    names = [content for tag, content in fields[3:] if tag == 0x8A]
    if names and names[0] == _LDAP_NOTICE_OF_DISCONNECTION:
        raise Refused(f"ldap: the server disconnected: {quote(message)}")
    if code != 0:
        name = LDAP_RESULT_CODES.get(code, "unknown")
        raise Refused(f"ldap: StartTLS was answered {code} ({name}) {quote(message)}")


# --------------------------------------------------------------------------- PostgreSQL / MySQL

POSTGRES_SSL_REQUEST = struct.pack("!II", 8, 80877103)


def postgres() -> Dialogue:
    yield Send(POSTGRES_SSL_REQUEST)
    answer = yield Exact(1)
    if answer == b"S":
        return
    if answer == b"N":
        raise Refused("postgres: the server does not accept SSL (it answered 'N')")
    if answer == b"E":
        raise Refused("postgres: the server answered the SSLRequest with an error")
    raise Unexpected(f"postgres: not a PostgreSQL answer: {quote(answer)}")


_MYSQL_CLIENT_LONG_PASSWORD = 0x1
_MYSQL_CLIENT_PROTOCOL_41 = 0x200
_MYSQL_CLIENT_SSL = 0x800
_MYSQL_CLIENT_SECURE_CONNECTION = 0x8000
_MYSQL_UTF8MB4 = 45
_MYSQL_MAX_PACKET = 1 << 24


def mysql_ssl_request(sequence: int) -> bytes:
    flags = (
        _MYSQL_CLIENT_LONG_PASSWORD
        | _MYSQL_CLIENT_PROTOCOL_41
        | _MYSQL_CLIENT_SSL
        | _MYSQL_CLIENT_SECURE_CONNECTION
    )
    payload = struct.pack("<IIB", flags, _MYSQL_MAX_PACKET, _MYSQL_UTF8MB4) + bytes(23)
    return struct.pack("<I", len(payload))[:3] + bytes([sequence & 0xFF]) + payload


def mysql() -> Dialogue:
    header = yield Exact(4)
    size = int.from_bytes(header[:3], "little")
    if size > MAX_DIALOGUE_BYTES or size == 0:
        raise Unexpected(f"mysql: not a MySQL packet: {quote(header)}")
    payload = yield Exact(size)
    if payload[0] == 0xFF:  # ERR_Packet: code, '#' + SQL state, message
        code = int.from_bytes(payload[1:3], "little")
        message = payload[9:] if payload[3:4] == b"#" else payload[3:]
        raise Refused(f"mysql: the server refused the connection: {code} {quote(message)}")
    if payload[0] != 10:
        raise Unexpected(f"mysql: protocol {payload[0]} is not MySQL protocol 10")
    end = payload.find(b"\x00", 1, 256)
    if end < 0 or len(payload) < end + 1 + 4 + 8 + 1 + 2:
        raise Unexpected("mysql: a truncated handshake packet")
    capabilities = int.from_bytes(payload[end + 14 : end + 16], "little")
    if not capabilities & _MYSQL_CLIENT_SSL:
        version = payload[1:end]
        raise Refused(f"mysql: the server ({quote(version)}) does not offer TLS (no CLIENT_SSL)")
    yield Send(mysql_ssl_request(header[3] + 1))


# --------------------------------------------------------------------------- XMPP

_STREAMS = "http://etherx.jabber.org/streams"
_TLS = "urn:ietf:params:xml:ns:xmpp-tls"
_MAX_XML_DEPTH = 16


def xmpp_stream_header(domain: str) -> bytes:
    escaped = domain.replace("&", "&amp;").replace("'", "&apos;").replace("<", "&lt;")
    return (
        "<?xml version='1.0'?><stream:stream to='" + escaped + "' version='1.0' "
        "xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"
    ).encode()


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _xmpp_element(
    parser: ET.XMLPullParser[ET.Element], depth: list[int]
) -> Generator[Want, bytes, ET.Element]:
    """Read until the next child of the stream root is complete; return it.
    RFC 6120 §11.1 forbids DTDs, comments and entity declarations: a `<!`
    anywhere is refused before the parser sees it (no entity expansion)."""
    import xml.etree.ElementTree as ET  # only XMPP needs it (~0.5 MiB a scan need not hold)

    total = 0
    while True:
        for pair in cast(Iterator[tuple[str, ET.Element]], parser.read_events()):
            event, element = pair  # "start" and "end" events carry elements
            if event == "start":
                depth[0] += 1
                if depth[0] > _MAX_XML_DEPTH:
                    raise TooLong(f"xmpp: elements nested deeper than {_MAX_XML_DEPTH}")
            elif event == "end":
                depth[0] -= 1
                if depth[0] == 1:
                    return element
                if depth[0] == 0:
                    raise Refused("xmpp: the server closed the stream")
        data = yield Some()
        total += len(data)
        if total > MAX_DIALOGUE_BYTES:
            raise TooLong(f"xmpp: more than {MAX_DIALOGUE_BYTES} bytes before TLS")
        if b"<!" in data:
            raise Unexpected("xmpp: the server sent a DTD, comment or CDATA (RFC 6120 §11.1)")
        try:
            parser.feed(data)
        except ET.ParseError as exc:
            raise Unexpected(f"xmpp: not XML: {exc}") from None


def _stream_error(element: ET.Element) -> str:
    """RFC 6120 §4.9: a defined condition element, maybe a <text/> beside it."""
    conditions = [_local(child.tag) for child in element if _local(child.tag) != "text"]
    texts = [child.text or "" for child in element if _local(child.tag) == "text"]
    words = conditions[0] if conditions else "undefined-condition"
    if texts and texts[0]:
        words += f": {texts[0]}"
    return f"xmpp: stream error: {quote(words)}"


def xmpp(domain: str) -> Dialogue:
    import xml.etree.ElementTree as ET

    yield Send(xmpp_stream_header(domain))
    parser: ET.XMLPullParser[ET.Element] = ET.XMLPullParser(events=("start", "end"))
    depth = [0]
    element = yield from _xmpp_element(parser, depth)
    if element.tag == f"{{{_STREAMS}}}error":
        raise Refused(_stream_error(element))
    if element.tag != f"{{{_STREAMS}}}features":
        raise Unexpected(f"xmpp: expected stream features, got {quote(_local(element.tag))}")
    if element.find(f"{{{_TLS}}}starttls") is None:
        offered = " ".join(_local(child.tag) for child in element)
        raise Refused(f"xmpp: the server does not offer STARTTLS (features: {quote(offered)})")
    yield Send(f"<starttls xmlns='{_TLS}'/>".encode())
    element = yield from _xmpp_element(parser, depth)
    if element.tag == f"{{{_TLS}}}proceed":
        return
    if element.tag == f"{{{_TLS}}}failure":
        raise Refused("xmpp: STARTTLS was answered <failure/>")
    if element.tag == f"{{{_STREAMS}}}error":
        raise Refused(_stream_error(element))
    raise Unexpected(f"xmpp: expected <proceed/>, got {quote(_local(element.tag))}")
