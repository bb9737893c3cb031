"""The floor: the least a scanner must do per endpoint (trio + TLS handshake +
read the served chain), with no analysis. benchmarks/scan_bench.py runs it
beside pinaudit to show what pinaudit's analysis costs on top.

    python benchmarks/floor_client.py INVENTORY CONCURRENCY
"""

from __future__ import annotations

import sys

import trio
import yaml

from scanner.probe import make_client_context, served_chain


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
