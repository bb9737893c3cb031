"""The floor: the least a pin auditor must do per endpoint, and nothing more.

trio + one shared ssl client context (nothing verified) + TLS handshake with
the endpoint's SNI + read the served chain (DER) + SHA-256 of each
certificate's SubjectPublicKeyInfo + look the hashes up in the endpoint's
pins. No path validation, no expiry, no report. Self-contained (imports
nothing from pinaudit) so its import cost is trio's and ssl's only.

    python benchmarks/realistic/floor.py TARGETS.tsv CONCURRENCY

TARGETS.tsv: ``name address port sni pin,pin,...`` per line. Prints one JSON
line of counts on stderr.
"""

from __future__ import annotations

import _ssl  # type: ignore[import-not-found]
import base64
import hashlib
import json
import ssl
import sys
from typing import Any

import trio


def _tlv(data: bytes, offset: int) -> tuple[int, int, int]:
    """(tag, content start, content end) of the DER TLV at `offset`."""
    tag, first = data[offset], data[offset + 1]
    pos = offset + 2
    if first < 0x80:
        length = first
    else:
        n = first & 0x7F
        length = int.from_bytes(data[pos : pos + n], "big")
        pos += n
    return tag, pos, pos + length


def spki(cert_der: bytes) -> bytes:
    """The encoded SubjectPublicKeyInfo of a certificate: walk the TBS fields."""
    _, cert_body, _ = _tlv(cert_der, 0)
    _, pos, _ = _tlv(cert_der, cert_body)  # tbsCertificate content
    tag, _, end = _tlv(cert_der, pos)
    if tag == 0xA0:  # [0] version
        pos = end
    for _ in range(5):  # serial, signature, issuer, validity, subject
        _, _, pos = _tlv(cert_der, pos)
    _, _, end = _tlv(cert_der, pos)
    return cert_der[pos:end]


def pin(cert_der: bytes) -> str:
    return "sha256/" + base64.b64encode(hashlib.sha256(spki(cert_der)).digest()).decode()


def served_chain(stream: trio.SSLStream[trio.SocketStream]) -> list[bytes]:
    ssl_object: Any = stream._ssl_object
    if sys.version_info >= (3, 13):
        return list(ssl_object.get_unverified_chain() or ())
    items = ssl_object._sslobj.get_unverified_chain() or ()
    return [item.public_bytes(_ssl.ENCODING_DER) for item in items]


def client_context() -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


async def probe(
    target: tuple[str, str, int, str, frozenset[str]], ctx: ssl.SSLContext, counts: dict[str, int]
) -> None:
    _name, address, port, sni, pins = target
    try:
        with trio.fail_after(10):
            tcp = await trio.open_tcp_stream(address, port)
            stream = trio.SSLStream(tcp, ctx, server_hostname=sni)
            try:
                await stream.do_handshake()
                chain = served_chain(stream)
            finally:
                await trio.aclose_forcefully(stream)
        counts["ok"] += 1
        counts["certs"] += len(chain)
        if any(pin(der) in pins for der in chain):
            counts["pinned"] += 1
    except (OSError, trio.BrokenResourceError, trio.TooSlowError):
        counts["failed"] += 1


async def run(
    targets: list[tuple[str, str, int, str, frozenset[str]]], concurrency: int
) -> dict[str, int]:
    ctx = client_context()
    counts = {"ok": 0, "failed": 0, "certs": 0, "pinned": 0}
    queue = iter(targets)

    async def worker() -> None:
        for target in queue:
            await probe(target, ctx, counts)

    async with trio.open_nursery() as nursery:
        for _ in range(min(concurrency, len(targets))):
            nursery.start_soon(worker)
    return counts


def read_targets(path: str) -> list[tuple[str, str, int, str, frozenset[str]]]:
    targets = []
    with open(path) as handle:
        for line in handle:
            name, address, port, sni, pins = line.rstrip("\n").split("\t")
            targets.append((name, address, int(port), sni, frozenset(pins.split(","))))
    return targets


def main() -> None:
    targets = read_targets(sys.argv[1])
    counts = trio.run(run, targets, int(sys.argv[2]))
    print(json.dumps(counts), file=sys.stderr)


if __name__ == "__main__":
    main()
