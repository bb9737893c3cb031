"""One scan over several processes (``scan --workers N``): every core used.

The endpoints are split into N shares by name (``scanner.shard``'s
rendezvous hashing), and each share is *probed* by a worker process of its
own (``python -m scanner.cli.worker``: its own trio loop, a share of the
concurrency): handshakes, retries, CAA lookups, the CPU-heavy part. Workers
judge nothing. Each sends every endpoint's probing back as soon as it is
done; this process judges it (``scanner.engine.run_scan`` with a source
instead of its own probing), so the scan-wide knowledge (intermediates and
keys seen at any endpoint), the second look, the sinks (progress, JSON
lines), the deadline, Ctrl-C and the not_scanned results are exactly those
of a one-process scan: one report, one exit status, one metrics snapshot.

The wire between the processes: the job (the share's endpoints and the scan
options) pickled on the worker's stdin; the results as length-prefixed
pickles on its stdout (both ends are this program). A worker that dies
leaves its unfinished endpoints failed with ``os_error`` saying so; a scan
that stops (deadline, Ctrl-C) kills its workers. Workers run in a session
of their own, so a terminal's Ctrl-C (sent to its foreground process group)
reaches this process only, even while a worker is still starting: only the
scan decides what an interrupt means (and workers ignore SIGINT besides).

Default: as many workers as CPUs this process may run on, but one per
``DEFAULT_SHARE`` endpoints at most, since starting a worker costs about a
second of CPU (its imports), as much as probing a few hundred endpoints, and
each endpoint's probing crosses a pipe. The long-running exporter
(``--serve``) scans in one process.
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import BinaryIO

import trio

from scanner.engine import Probed, ScanOptions, ScanOutcome, Sink, ensure_open_files, probe_only
from scanner.engine import run_scan as run_one_process
from scanner.model import Endpoint, ProbeErrorKind, ProbeFailure
from scanner.shard import MAX_SHARDS, shard_of
from scanner.trust import TrustStores

__all__ = [
    "DEFAULT_SHARE",
    "MAX_WORKERS",
    "available_cpus",
    "run_scan",
    "serve_share",
    "shares",
    "worker_count",
]

MAX_WORKERS = MAX_SHARDS  # 256
DEFAULT_SHARE = 2000  # endpoints per worker at least, when --workers is not given
_FRAME = struct.Struct(">I")
_MAX_FRAME = 64 * 1024 * 1024  # one endpoint's probing (a huge chain is a few MB)
_WORKER = (sys.executable, "-m", "scanner.cli.worker")


@dataclass(frozen=True)
class _Job:
    endpoints: tuple[Endpoint, ...]
    options: ScanOptions


def available_cpus() -> int:
    """CPUs this process may run on (its affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def worker_count(requested: int | None, endpoints: int, concurrency: int) -> int:
    """Processes to probe with: as asked (``--workers``), else the CPUs
    available but one per DEFAULT_SHARE endpoints at most; never more than
    endpoints, nor than handshakes in flight (each worker holds one at least)."""
    wanted = requested
    if wanted is None:
        wanted = min(available_cpus(), endpoints // DEFAULT_SHARE)
    return max(1, min(wanted, endpoints, concurrency))


def shares(endpoints: Sequence[Endpoint], count: int) -> list[list[int]]:
    """The indexes of the endpoints each worker probes, by name (rendezvous
    hashing: stable across runs), in inventory order; empty shares dropped."""
    split: list[list[int]] = [[] for _ in range(count)]
    for index, endpoint in enumerate(endpoints):
        split[shard_of(endpoint.name, count)].append(index)
    return [share for share in split if share]


async def run_scan(
    endpoints: Sequence[Endpoint],
    *,
    now: datetime,
    options: ScanOptions,
    stores: TrustStores,
    sinks: Sequence[Sink] = (),
    workers: int = 1,
) -> ScanOutcome:
    """``scanner.engine.run_scan`` with the probing spread over `workers`
    processes (one process: probed here, as always)."""
    split = shares(endpoints, workers) if workers > 1 else []
    if len(split) < 2:
        return await run_one_process(
            endpoints, now=now, options=options, stores=stores, sinks=sinks
        )
    send, receive = trio.open_memory_channel[Probed](1000)
    async with trio.open_nursery() as nursery:
        async with send:
            for number, share in enumerate(split):
                concurrency = options.concurrency // len(split) + (
                    number < options.concurrency % len(split)
                )
                job = _Job(
                    tuple(endpoints[i] for i in share),
                    replace(options, concurrency=max(1, concurrency), deadline=None),
                )
                nursery.start_soon(_worker, number, share, job, send.clone())
        outcome = await run_one_process(
            endpoints, now=now, options=options, stores=stores, sinks=sinks, source=receive
        )
        nursery.cancel_scope.cancel()  # a stopped scan: its workers are killed
    return outcome


async def _worker(
    number: int, share: list[int], job: _Job, send: trio.MemorySendChannel[Probed]
) -> None:
    """Start one worker, hand it its job, pass on what it sends; whatever it
    did not finish when it ends is failed, saying why."""
    import pickle  # here: a scan in one process never needs it

    done: set[int] = set()
    async with send:
        process = await trio.lowlevel.open_process(
            _WORKER, stdin=subprocess.PIPE, stdout=subprocess.PIPE, start_new_session=True
        )
        try:
            assert process.stdin is not None and process.stdout is not None
            async with process.stdin:
                await process.stdin.send_all(pickle.dumps(job, pickle.HIGHEST_PROTOCOL))
            async for local, probed, tries, caa in _frames(process.stdout):
                if not 0 <= local < len(share) or local in done:
                    continue
                done.add(local)
                await send.send((share[local], probed, tries, caa))
            status = await process.wait()
        finally:
            if process.returncode is None:
                process.kill()
                with trio.CancelScope(shield=True):
                    await process.wait()
        why = f"worker process {number} exited with status {status} before probing it"
        for local, index in enumerate(share):
            if local not in done:
                await send.send((index, [ProbeFailure(ProbeErrorKind.OS_ERROR, why)], 0, None))


async def _frames(stream: trio.abc.ReceiveStream) -> AsyncIterator[Probed]:
    import pickle

    buffer = bytearray()
    while True:
        while len(buffer) >= _FRAME.size:
            (size,) = _FRAME.unpack_from(buffer)
            if size > _MAX_FRAME:
                return
            if len(buffer) < _FRAME.size + size:
                break
            frame = bytes(buffer[_FRAME.size : _FRAME.size + size])
            del buffer[: _FRAME.size + size]
            yield pickle.loads(frame)  # our own worker process
        data = await stream.receive_some(1 << 16)
        if not data:
            return
        buffer += data


def serve_share(stdin: BinaryIO, stdout: BinaryIO) -> int:
    """A worker process: read the job, probe its endpoints, send each one's
    probing as it is done (``scanner.cli.worker`` runs it)."""
    import pickle

    job: _Job = pickle.load(stdin)  # sent by the scan that started us
    ensure_open_files(job.options.concurrency)

    def emit(probed: Probed) -> None:
        data = pickle.dumps(probed, pickle.HIGHEST_PROTOCOL)
        stdout.write(_FRAME.pack(len(data)) + data)
        stdout.flush()

    trio.run(lambda: probe_only(job.endpoints, options=job.options, emit=emit))
    return 0
