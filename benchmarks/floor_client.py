"""The floor: the least a scanner must do per endpoint (trio + TLS handshake +
read the served chain), with no analysis. benchmarks/scan_bench.py runs it
beside pinaudit to show what pinaudit's analysis costs on top.

    python benchmarks/floor_client.py INVENTORY CONCURRENCY
"""

from __future__ import annotations

import ssl
import sys
from typing import Any

import trio
import yaml


def make_client_context() -> ssl.SSLContext:
    """Stdlib ssl, nothing verified, old versions allowed: the least a client does."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    return ctx


def served_chain(ssl_object: ssl.SSLObject) -> tuple[bytes, ...]:
    """The peer's chain, DER, as sent (public from Python 3.13, private before)."""
    if sys.version_info >= (3, 13):
        items: Any = ssl_object.get_unverified_chain()
    else:
        items = ssl_object._sslobj.get_unverified_chain()  # type: ignore[attr-defined]
    import _ssl

    return tuple(i if isinstance(i, bytes) else i.public_bytes(_ssl.ENCODING_DER) for i in items)


async def handshake(address: str, port: int, sni: str, ctx: object, counts: dict[str, int]) -> None:
    try:
        with trio.fail_after(10):
            tcp = await trio.open_tcp_stream(address, port)
            stream = trio.SSLStream(tcp, ctx, server_hostname=sni)  # type: ignore[arg-type]
            await stream.do_handshake()
            chain = served_chain(stream._ssl_object)
            counts["certs"] += len(chain)
            counts["ok"] += 1
            await trio.aclose_forcefully(stream)
    except (OSError, trio.BrokenResourceError, trio.TooSlowError):
        counts["failed"] += 1


async def run(targets: list[tuple[str, int, str]], concurrency: int) -> dict[str, int]:
    ctx = make_client_context()
    counts = {"ok": 0, "failed": 0, "certs": 0}
    queue = iter(targets)

    async def worker() -> None:
        for address, port, sni in queue:
            await handshake(address, port, sni, ctx, counts)

    async with trio.open_nursery() as nursery:
        for _ in range(min(concurrency, len(targets))):
            nursery.start_soon(worker)
    return counts


def main() -> None:
    inventory, concurrency = sys.argv[1], int(sys.argv[2])
    with open(inventory) as handle:
        doc = yaml.safe_load(handle)
    targets = [(e["host"], int(e["port"]), e["sni"]) for e in doc["endpoints"]]
    counts = trio.run(run, targets, concurrency)
    print(f"floor: {counts}", file=sys.stderr)


if __name__ == "__main__":
    main()
