"""prometheus-blackbox-exporter as a peer: its config, and a /probe driver.

The tcp prober with ``tls: true`` handshakes, verifies the chain against
``ca_file`` and the name, and exports the chain's expiry: what people run to
watch certificates. Its SNI is ``tls_config.server_name`` or else the
target's host, which it would resolve first; blackbox_exporter has no
per-target SNI parameter (upstream declined one, issue 624). So, like
pinaudit (host = a loopback address, sni = the virtual host), each virtual
host gets a module naming its SNI, and the target is the address:port; the
module lookup is one map access per probe, and no DNS is involved on either
side.

The driver keeps CONCURRENCY HTTP/1.1 keep-alive connections to the exporter,
each asking for one /probe after another, as Prometheus does with many
targets, and counts ``probe_success``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import trio

from benchmarks.realistic.fleet import Endpoint


def write_config(
    path: Path, endpoints: Sequence[Endpoint], trust: Path, *, verify: bool = True
) -> Path:
    """One module per virtual host. `verify`: check the chain against the trust
    bundle and the name (what people deploy); without it, only read the chain
    (``insecure_skip_verify``), the floor's amount of work."""
    lines = ["modules:"]
    for i, ep in enumerate(endpoints):
        lines += [
            f"  v{i}:",
            "    prober: tcp",
            "    timeout: 10s",
            "    tcp:",
            "      tls: true",
            "      tls_config:",
            f"        server_name: {json.dumps(ep.sni)}",
        ]
        if verify:
            lines.append(f"        ca_file: {json.dumps(str(trust))}")
        else:
            lines.append("        insecure_skip_verify: true")
    path.write_text("\n".join(lines) + "\n")
    return path


def command(binary: str, config: Path, listen: str) -> list[str]:
    return [
        binary,
        f"--config.file={config}",
        f"--web.listen-address={listen}",
        "--log.level=warn",
    ]


async def _read_response(stream: trio.SocketStream, buffer: bytearray) -> bytes:
    """One HTTP/1.1 response body (Content-Length or chunked)."""
    while b"\r\n\r\n" not in buffer:
        data = await stream.receive_some(65536)
        if not data:
            raise ConnectionError("blackbox_exporter closed the connection")
        buffer += data
    head, _, rest = bytes(buffer).partition(b"\r\n\r\n")
    buffer[:] = rest
    headers = {}
    for line in head.split(b"\r\n")[1:]:
        key, _, value = line.partition(b":")
        headers[key.strip().lower()] = value.strip()
    status = head.split(b" ", 2)[1]
    if status != b"200":
        raise ConnectionError(f"blackbox_exporter answered {head[:200]!r}")
    if b"content-length" in headers:
        size = int(headers[b"content-length"])
        while len(buffer) < size:
            data = await stream.receive_some(65536)
            if not data:
                raise ConnectionError("short body")
            buffer += data
        body = bytes(buffer[:size])
        del buffer[:size]
        return body
    body = bytearray()
    while True:  # chunked
        while b"\r\n" not in buffer:
            buffer += await stream.receive_some(65536)
        line, _, rest = bytes(buffer).partition(b"\r\n")
        size = int(line.split(b";")[0], 16)
        buffer[:] = rest
        while len(buffer) < size + 2:
            buffer += await stream.receive_some(65536)
        body += buffer[:size]
        del buffer[: size + 2]
        if size == 0:
            return bytes(body)


async def drive(host: str, port: int, targets: Sequence[str], concurrency: int) -> dict[str, int]:
    """/probe every target (``module\\ttarget``) with `concurrency` in flight."""
    counts = {"success": 0, "failure": 0}
    queue = iter(targets)

    async def worker() -> None:
        stream = await trio.open_tcp_stream(host, port)
        buffer = bytearray()
        async with stream:
            for item in queue:
                module, target = item.split("\t")
                request = (
                    f"GET /probe?module={module}&target={target} HTTP/1.1\r\n"
                    f"Host: {host}:{port}\r\n\r\n"
                )
                await stream.send_all(request.encode())
                body = await _read_response(stream, buffer)
                if b"\nprobe_success 1" in body:
                    counts["success"] += 1
                else:
                    counts["failure"] += 1

    async with trio.open_nursery() as nursery:
        for _ in range(min(concurrency, len(targets))):
            nursery.start_soon(worker)
    return counts
