"""HPKP headers (RFC 7469; pinning-semantics §5), parsed the way Chromium did.

The file holds response headers as ``curl -sI`` prints them, each block after
the URL (or a ``Host:`` line) it came from::

    # comment
    https://example.com/
    Public-Key-Pins: max-age=5184000; pin-sha256="..."; pin-sha256="..."; includeSubDomains

Headers other than ``Public-Key-Pins`` and ``Public-Key-Pins-Report-Only``
are ignored. A header with a syntax error is ignored by the browser: it
becomes a rule with a problem (CONFIG_ERROR for its host), so the reason is
shown instead of the host silently looking unpinned.
"""

from __future__ import annotations

import re

from scanner.importers._common import (
    Collector,
    decode_text,
    lines_of,
    not_the_kind,
    stem_name,
    strict_base64,
)
from scanner.model import (
    Client,
    ClientPolicy,
    ConfigProblem,
    HashAlg,
    HostMode,
    Location,
    Pin,
    PolicyRule,
)

__all__ = ["MAX_AGE_CAP", "PKP", "PKP_RO", "HeaderError", "parse_header", "parse_hpkp_headers"]

MAX_AGE_CAP = 86400 * 60  # Chromium's kMaxHPKPAgeSecs (RFC 7469 §4.1)
PKP = "public-key-pins"
PKP_RO = "public-key-pins-report-only"
_HEADER = re.compile(r"^([A-Za-z0-9-]+)\s*:\s*(.*)$")
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


class HeaderError(ValueError):
    """Why a PKP header is ignored."""


def _unquote(value: str, what: str) -> str:
    if len(value) < 2 or not (value.startswith('"') and value.endswith('"')):
        raise HeaderError(f"{what} must be a quoted string, got {value or 'nothing'}")
    inner = value[1:-1]
    if '"' in inner.replace('\\"', ""):
        raise HeaderError(f"{what}: bad quoting in {value}")
    return inner.replace('\\"', '"')


def parse_header(
    value: str, *, report_only: bool
) -> tuple[tuple[Pin, ...], bool, int | None, str | None]:
    """(pins, includeSubDomains, max-age, report-uri) of one header value.

    Raises HeaderError when Chromium would ignore the header."""
    pins: list[Pin] = []
    subdomains = False
    max_age: int | None = None
    report_uri: str | None = None
    seen: set[str] = set()
    for raw in value.split(";"):
        directive = raw.strip()
        if not directive:
            continue
        name, eq, arg = directive.partition("=")
        name, arg = name.strip().lower(), arg.strip()
        if not _TOKEN.fullmatch(name):
            raise HeaderError(f"bad directive {directive!r}")
        if name in ("max-age", "includesubdomains", "report-uri"):
            if name in seen:
                raise HeaderError(f"{name} appears more than once")
            seen.add(name)
        if name in ("pin-sha256", "pin-sha1"):
            alg = HashAlg.SHA256 if name == "pin-sha256" else HashAlg.SHA1
            digest = strict_base64(_unquote(arg, name)) if eq else None
            if digest is None or len(digest) != alg.digest_size:
                raise HeaderError(f"{name}={arg} is not a base64 {alg.value} digest")
            pins.append(Pin(alg, digest))
        elif name == "max-age":
            text = arg[1:-1] if len(arg) >= 2 and arg[0] == arg[-1] == '"' else arg
            if not eq or not text.isdigit():
                raise HeaderError(f"max-age must be a non-negative integer, got {arg or 'nothing'}")
            max_age = int(text)
        elif name == "includesubdomains":
            if eq:
                raise HeaderError("includeSubDomains takes no value")
            subdomains = True
        elif name == "report-uri":
            uri = _unquote(arg, "report-uri") if eq else ""
            if not uri:
                raise HeaderError("report-uri must be a non-empty quoted URI")
            report_uri = uri
    if max_age is None and not report_only:
        raise HeaderError("max-age is required")
    return tuple(dict.fromkeys(pins)), subdomains, max_age, report_uri


def parse_hpkp_headers(data: bytes, source: str, *, name: str | None = None) -> ClientPolicy:
    """Every PKP / PKP-Report-Only header of the file, one rule each."""
    text = decode_text(data, source)
    out = Collector(source)
    rules: list[PolicyRule] = []
    host: str | None = None
    seen_pkp = False
    for number, raw in enumerate(lines_of(text), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = Location(source, number, 1)
        if "://" in line.split(" ", 1)[0]:
            host = _host_of_url(line.split()[0])
            if host is None:
                out.note(where, f"cannot read a host from {line!r}")
            continue
        match = _HEADER.match(line)
        if match is None:
            if not line.upper().startswith("HTTP/"):
                out.note(where, f"ignored: {line!r}")
            continue
        header, value = match[1].lower(), match[2]
        if header == "host":
            host = value.strip().lower().rstrip(".") or None
            continue
        if header not in (PKP, PKP_RO):
            continue
        seen_pkp = True
        if host is None:
            out.note(where, f"{match[1]} header before any URL or Host: line: ignored")
            continue
        rules.append(_rule(host, header == PKP_RO, value, where))
    if not seen_pkp:
        raise not_the_kind(
            Location(source, 1, 1),
            "not HPKP headers: no Public-Key-Pins or Public-Key-Pins-Report-Only header "
            "in this file",
        )
    return ClientPolicy(
        name=name or stem_name(source),
        client=Client.HPKP,
        rules=tuple(rules),
        problems=tuple(out.problems),
        notes=tuple(out.notes),
        source=source,
        location=Location(source, 1, 1),
    )


def _rule(host: str, report_only: bool, value: str, where: Location) -> PolicyRule:
    header = "Public-Key-Pins-Report-Only" if report_only else "Public-Key-Pins"
    try:
        pins, subdomains, max_age, uri = parse_header(value, report_only=report_only)
    except HeaderError as exc:
        problem = ConfigProblem(where, f"{header} ignored: {exc}")
        return PolicyRule(
            host=host,
            report_only=report_only,
            enforce=not report_only,
            has_pinset=False,
            problems=(problem,),
            location=where,
        )
    return PolicyRule(
        host=host,
        mode=HostMode.SUBTREE if subdomains else HostMode.EXACT,
        pins=pins,
        enforce=not report_only,
        report_only=report_only,
        max_age=max_age,
        report_uris=(uri,) if uri else (),
        location=where,
    )


def _host_of_url(url: str) -> str | None:
    """The host of ``scheme://[user@]host[:port]/...``."""
    rest = url.split("://", 1)[1]
    authority = re.split(r"[/?#]", rest, maxsplit=1)[0].rsplit("@", 1)[-1]
    if authority.startswith("["):
        host = authority[1 : authority.find("]")] if "]" in authority else ""
    else:
        host = authority.split(":", 1)[0]
    return host.lower().rstrip(".") or None
