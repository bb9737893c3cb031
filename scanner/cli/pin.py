"""``pinaudit pin``: the pins of certificates in a file, of a key or CSR, or
of the chain a live server sends."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from scanner.chain import parse_certificate
from scanner.cli.args import Parser, Streams, Subparsers, UsageError
from scanner.errors import CertificateFileError
from scanner.model import PinFormat, ProbeFailure
from scanner.pins import format_pin, pins_of_spki
from scanner.preflight import public_key_spki
from scanner.safetext import printable
from scanner.status import ExitStatus
from scanner.trust import read_certificates
from scanner.units import is_ip_address

__all__ = ["add_parser", "run"]

_HOST_PORT = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.:-]+?)(?::(\d{1,5}))?$")
# Names that are files, not hosts, when nothing is there: "nope.pem" must not
# go to DNS.
_FILE_SUFFIXES = (".pem", ".crt", ".cer", ".der", ".key", ".csr", ".p7b", ".p7c", ".pub")


def add_parser(sub: Subparsers[Parser]) -> None:
    p = sub.add_parser(
        "pin",
        help="print the pins of every certificate in a file or served by a host",
        description="Print position, subject, issuer, expiry and SPKI pin of every "
        "certificate in a PEM (one or more certificates) or DER file, or of the chain a "
        "live server sends, in the order sent; or the pin of a public key, private key or "
        "CSR (a key to pin in advance).",
    )
    p.add_argument(
        "file",
        metavar="FILE|HOST[:PORT]",
        help="certificate, key or CSR file (PEM or DER), - for stdin, or a live server "
        "(port 443 by default)",
    )
    p.add_argument(
        "--sni", metavar="NAME", help="server name to send to a live server (default: the host)"
    )
    p.add_argument(
        "--timeout", type=float, default=10.0, metavar="SECONDS", help="live server timeout"
    )
    p.add_argument(
        "--format",
        "-f",
        choices=[f.value for f in PinFormat],
        default=PinFormat.OKHTTP.value,
        help='pin spelling: okhttp (sha256/B64, default), hpkp (pin-sha256="B64"), '
        'android (<pin digest="SHA-256">), plain (B64), hex',
    )
    p.set_defaults(func=run)


def _looks_like_a_file(source: str) -> bool:
    return "/" in source or "\\" in source or source.lower().endswith(_FILE_SUFFIXES)


def _live_chain(target: str, sni: str | None, timeout: float) -> list[bytes]:
    """The chain served at HOST[:PORT] (default port 443)."""
    import trio

    from scanner.probe import make_client_context, probe

    match = _HOST_PORT.match(target)
    if not match:
        raise CertificateFileError(f"{target}: neither a file nor HOST[:PORT]")
    host = match.group(1).strip("[]")
    port = int(match.group(2) or 443)
    if not 1 <= port <= 65535:
        raise UsageError(f"{target}: port must be 1..65535")
    if not 0 < timeout <= 3600:
        raise UsageError(f"--timeout {timeout}: must be more than 0 and at most 3600 seconds")
    server_name = sni if sni is not None else (None if is_ip_address(host) else host)
    ctx = make_client_context()
    results = trio.run(lambda: probe(host, port, server_name, ctx, timeout=timeout))
    first = results[0]
    if isinstance(first, ProbeFailure):
        where = f" ({first.address})" if first.address else ""
        raise CertificateFileError(f"{target}{where}: {first.kind.value}: {first.detail}")
    return list(first.served)


def _pin_of_key(data: bytes, source: str, fmt: PinFormat, streams: Streams) -> ExitStatus:
    """The pin of a public key, private key or CSR (a key to pin in advance)."""
    pin = pins_of_spki(public_key_spki(data, source))[0]
    streams.stdout.write(f"0  public key from {source}\n   pin:     {format_pin(pin, fmt)}\n")
    return ExitStatus.OK


def run(args: argparse.Namespace, streams: Streams) -> ExitStatus:
    source = args.file
    path = Path(source)
    fmt = PinFormat(args.format)
    if source == "-" or path.exists():
        try:
            data = (
                getattr(streams.stdin, "buffer", sys.stdin.buffer).read()
                if source == "-"
                else path.read_bytes()
            )
        except OSError as exc:
            raise CertificateFileError(f"{source}: {exc.strerror}") from None
        if b"-----BEGIN" in data and b"CERTIFICATE-----" not in data.replace(b"REQUEST", b""):
            return _pin_of_key(data, source, fmt, streams)
        ders = read_certificates(data, source)
    elif _looks_like_a_file(source):
        raise CertificateFileError(f"{source}: no such file")
    else:
        ders = _live_chain(source, args.sni, args.timeout)
    status = ExitStatus.OK
    out = streams.stdout
    for position, der in enumerate(ders):
        try:
            facts = parse_certificate(der)
        except ValueError as exc:
            out.write(f"{position}  <certificate does not parse: {printable(str(exc))}>\n")
            status = ExitStatus.FINDINGS
            continue
        out.write(
            f"{position}  {printable(facts.subject)}\n"
            f"   issuer:  {printable(facts.issuer)}\n"
            f"   expires: {facts.not_after:%Y-%m-%dT%H:%M:%SZ}\n"
            f"   pin:     {format_pin(facts.spki_sha256, fmt)}\n"
        )
    return status
