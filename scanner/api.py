"""pinaudit as a library: scan an inventory from your own program.

Two entry points with the same arguments and the same result:

- ``await scan(...)`` in a trio program (it runs in the caller's trio loop);
- ``scan_sync(...)`` anywhere else: a script, a thread, or an asyncio program
  (it never runs trio inside a running asyncio loop's thread: it then runs
  the scan on a thread of its own and waits for it, so call it through
  ``loop.run_in_executor`` / ``asyncio.to_thread`` to keep your loop free).

The inventory is a path (loaded, with its includes, exactly as ``scan -i``
loads it) or endpoints you built (``scanner.model.Endpoint``). The result
carries one ``EndpointResult`` per endpoint, in inventory order, and
``report()`` gives the JSON report document ``scan --format json`` writes.
A problem with the inventory raises ``scanner.errors.InventoryError``;
a bad argument ``ValueError``; an endpoint's own problems are findings.

Example (see docs/api.md)::

    from scanner.api import scan_sync

    result = scan_sync("prod.yaml", concurrency=50)
    for item in result.results:
        print(item.endpoint.name, item.status.value, [f.check.value for f in item.findings])
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import trio

from scanner.engine import ScanOptions, run_scan
from scanner.exporters import jsonreport
from scanner.inventory import load_inventory
from scanner.model import Endpoint
from scanner.results import EndpointResult
from scanner.settings import DEFAULT_CONCURRENCY
from scanner.trust import TrustStores

__all__ = ["ScanResult", "scan", "scan_sync"]

Inventoryish = str | os.PathLike[str] | Sequence[Endpoint]


@dataclass(frozen=True)
class ScanResult:
    """One completed (or deadline-cut) scan."""

    results: tuple[EndpointResult, ...]  # one per endpoint, in inventory order
    as_of: datetime  # the instant verdicts were judged at
    finished_at: datetime
    duration: float  # seconds
    deadline_hit: bool
    internal_errors: tuple[tuple[str, str], ...] = ()  # (endpoint, trace) of bugs

    def report(self) -> dict[str, Any]:
        """The JSON report document (``docs/report.schema.json``)."""
        return jsonreport.report(
            self.results, scanned_at=self.finished_at, as_of=self.as_of, interrupted=False
        )


def _endpoints(inventory: Inventoryish) -> tuple[Endpoint, ...]:
    if isinstance(inventory, (str, os.PathLike)):
        return load_inventory(inventory).endpoints
    endpoints = tuple(inventory)
    if not all(isinstance(e, Endpoint) for e in endpoints):
        raise ValueError("inventory: a path, or a sequence of scanner.model.Endpoint")
    return endpoints


def _options(
    count: int, concurrency: int | None, deadline: float | None, retries: int
) -> ScanOptions:
    workers = concurrency if concurrency is not None else min(DEFAULT_CONCURRENCY, max(1, count))
    if workers < 1:
        raise ValueError(f"concurrency must be at least 1, got {workers}")
    if deadline is not None and not deadline > 0:
        raise ValueError(f"deadline must be more than 0 seconds, got {deadline}")
    if retries < 0:
        raise ValueError(f"retries must be 0 or more, got {retries}")
    return ScanOptions(concurrency=workers, deadline=deadline, retries=retries)


async def scan(
    inventory: Inventoryish,
    *,
    now: datetime | None = None,
    concurrency: int | None = None,
    deadline: float | None = None,
    retries: int = 0,
    on_result: Callable[[EndpointResult], None] | None = None,
) -> ScanResult:
    """Scan every endpoint of `inventory` in the running trio loop.

    `now` judges dates as of that instant (default: the clock); `on_result`
    is called with each endpoint's result as it completes."""
    endpoints = _endpoints(inventory)
    options = _options(len(endpoints), concurrency, deadline, retries)
    as_of = now or datetime.now(timezone.utc)
    if as_of.tzinfo is None:
        as_of = as_of.replace(tzinfo=timezone.utc)
    stores = TrustStores()
    for endpoint in endpoints:  # an unreadable trust store raises before any traffic
        stores.get(endpoint.trust)
    sinks = [on_result] if on_result is not None else []
    outcome = await run_scan(endpoints, now=as_of, options=options, stores=stores, sinks=sinks)
    return ScanResult(
        outcome.results,
        as_of,
        datetime.now(timezone.utc),
        outcome.duration,
        outcome.deadline_hit,
        outcome.internal_errors,
    )


def scan_sync(
    inventory: Inventoryish,
    *,
    now: datetime | None = None,
    concurrency: int | None = None,
    deadline: float | None = None,
    retries: int = 0,
    on_result: Callable[[EndpointResult], None] | None = None,
) -> ScanResult:
    """`scan`, blocking until it is done; callable from any thread or program.

    In a thread that runs an asyncio loop, the scan runs on a thread of its own
    (trio and asyncio cannot share one thread's loop)."""

    def run() -> ScanResult:
        return trio.run(
            lambda: scan(
                inventory,
                now=now,
                concurrency=concurrency,
                deadline=deadline,
                retries=retries,
                on_result=on_result,
            )
        )

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return run()
    box: list[ScanResult | BaseException] = []

    def target() -> None:
        try:
            box.append(run())
        except BaseException as exc:  # handed to the caller's thread below
            box.append(exc)

    worker = threading.Thread(target=target, name="pinaudit-scan")
    worker.start()
    worker.join()
    outcome = box[0]
    if isinstance(outcome, BaseException):
        raise outcome
    return outcome
