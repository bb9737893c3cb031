"""The nursery: bounded workers, deadlines, retries, streaming results.

A fixed set of workers pulls endpoints from one iterator, so memory does not
grow with the inventory (a task per endpoint started up front costs ~11 KB
each). Each endpoint's timeout is enforced by the probe from the moment a
worker takes it, so waiting in the queue never counts as a timeout. A global
deadline, or Ctrl-C, cancels what is running; every endpoint not finished
by then is reported as `not_scanned`, never dropped.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import random
import resource
import signal
import threading
import traceback
from collections.abc import AsyncIterable, Callable, Hashable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import trio

from scanner.caa import CaaLookup
from scanner.chain import DEFAULT_CACHE, AnalysisCache, CertificateCache
from scanner.errors import ConfigError
from scanner.model import Endpoint, Observation, ProbeErrorKind, ProbeFailure
from scanner.probe import ClientContext, lookup_caa, make_client_context, probe
from scanner.protocol_audit import caa_query_name
from scanner.results import (
    Dependencies,
    EndpointResult,
    Rejudge,
    ScanKnowledge,
    analyse,
    analysed,
    evaluate,
    internal_error,
    not_scanned,
    with_rotation,
)
from scanner.trust import TrustStores

__all__ = [
    "DEFAULT_CONCURRENCY",
    "FD_HEADROOM",
    "FD_RESERVE",
    "TRANSIENT",
    "Probed",
    "ScanOptions",
    "ScanOutcome",
    "Sink",
    "ensure_open_files",
    "open_descriptors",
    "probe_only",
    "run_scan",
]

DEFAULT_CONCURRENCY = 200
# File descriptors kept free for the interpreter, trust bundles, outputs.
FD_RESERVE = 64
# Worker threads analysing chains new to the scan at once. The work holds the
# GIL for the most part, so more threads would not add speed; two let one
# hostile chain's bounded search run beside the next new chain's validation.
ANALYSIS_THREADS = 2
# Free descriptors kept on top of those already open (trio's own, an output file).
FD_HEADROOM = 16
TRANSIENT = frozenset(
    {
        ProbeErrorKind.TIMEOUT,
        ProbeErrorKind.RESET,
        ProbeErrorKind.CLOSED,
        ProbeErrorKind.UNREACHABLE,
        ProbeErrorKind.OS_ERROR,
    }
)

Sink = Callable[[EndpointResult], None]
# What probing one endpoint gave, before judging: (its index, the probe's
# results, attempts, its CAA lookup), as scanner.workers' processes send it.
Probed = tuple[int, list[Observation | ProbeFailure], int, CaaLookup | None]


@dataclass(frozen=True)
class ScanOptions:
    concurrency: int = DEFAULT_CONCURRENCY
    deadline: float | None = None  # seconds for the whole scan
    retries: int = 0  # extra attempts after a transient failure
    backoff: float = 0.5  # seconds before the first retry, doubled each time, jittered
    dns_server: tuple[str, int] | None = None  # CAA lookups' server; None: resolv.conf
    # The reference way of judging, for tests and doubts: no cache of chain
    # analyses, and every endpoint judged again from scratch at the end of the
    # scan (the incremental second look re-judges only those whose answers changed).
    reference: bool = False


@dataclass(frozen=True)
class ScanOutcome:
    results: tuple[EndpointResult, ...]  # in inventory order
    duration: float  # seconds
    interrupted: bool
    deadline_hit: bool
    # (endpoint name, traceback) of every endpoint whose judgement raised: a bug,
    # recorded as that endpoint's internal_error finding while the scan went on
    internal_errors: tuple[tuple[str, str], ...] = ()
    # endpoints the second look judged again (their scan-wide answers changed)
    rejudged: int = 0


def open_descriptors() -> int:
    """File descriptors this process has open now (0 when the system cannot say)."""
    for directory in ("/proc/self/fd", "/dev/fd"):
        try:
            return max(0, len(os.listdir(directory)) - 1)  # less the one listing it
        except OSError:
            continue
    return 0


def ensure_open_files(concurrency: int) -> int:
    """Raise the soft open-files limit as far as the hard limit allows and
    refuse a concurrency it cannot serve. Returns the soft limit. Descriptors
    already open (inherited ones too) count against the limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    in_use = open_descriptors()
    reserve = max(FD_RESERVE, in_use + FD_HEADROOM)
    need = concurrency + reserve
    if soft < need:
        target = need if hard == resource.RLIM_INFINITY else min(hard, max(need, soft))
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft < need:
        already = f" ({in_use} are open already)" if reserve > FD_RESERVE else ""
        lower = f"lower the concurrency to {soft - reserve} or " if soft > reserve else ""
        raise ConfigError(
            f"a concurrency of {concurrency} needs about {need} open files{already}, but "
            f"the limit is {soft} (hard limit {hard}): {lower}raise the limit (ulimit -n)"
        )
    return soft


class _Run:
    def __init__(
        self,
        endpoints: Sequence[Endpoint],
        now: datetime,
        options: ScanOptions,
        stores: TrustStores,
        sinks: Sequence[Sink],
    ) -> None:
        self.endpoints = endpoints
        self.now = now
        self.options = options
        self.stores = stores
        self.sinks = sinks
        self.knowledge = ScanKnowledge()
        if options.reference:
            self.analyses: AnalysisCache | None = None
            self.certificates = CertificateCache()
        else:
            self.analyses = AnalysisCache()
            self.certificates = DEFAULT_CACHE
        self.results: list[EndpointResult | None] = [None] * len(endpoints)
        self.probed: dict[int, tuple[list[Observation | ProbeFailure], int]] = {}
        self.caa: dict[int, CaaLookup] = {}
        self.queue: Iterator[int] = iter(range(len(endpoints)))
        self.contexts: dict[tuple[str | None, str | None], ClientContext] = {}
        self.interrupted = False
        self.internal_errors: list[tuple[str, str]] = []
        self.rejudged = 0
        # every distinct DER and served chain of the scan, held once (see held_once)
        self.ders: dict[bytes, bytes] = {}
        self.chains: dict[tuple[bytes, ...], tuple[bytes, ...]] = {}
        self.held: dict[Any, Any] = {}  # parts of results shared by endpoints (see compact)
        # threads that analyse chains new to the scan (see analyse_new_chains)
        self.analysers = trio.CapacityLimiter(ANALYSIS_THREADS)

    def context(self, endpoint: Endpoint) -> ClientContext:
        key = (endpoint.client_cert, endpoint.client_key)
        ctx = self.contexts.get(key)
        if ctx is None:
            ctx = make_client_context(client_cert=key[0], client_key=key[1])
            self.contexts[key] = ctx
        return ctx

    async def attempt(self, endpoint: Endpoint) -> tuple[list[Observation | ProbeFailure], int]:
        try:
            context = self.context(endpoint)
        except (OSError, ValueError) as exc:
            # The inventory checked the pair when it was loaded; a file changed
            # since (the exporter runs for months) is this endpoint's problem.
            detail = f"cannot use client_cert/client_key: {exc}"
            return [ProbeFailure(ProbeErrorKind.OS_ERROR, detail)], 1
        tries = 0
        while True:
            tries += 1
            results = await probe(
                endpoint.host,
                endpoint.port,
                endpoint.sni,
                context,
                timeout=endpoint.timeout,
                all_addresses=endpoint.all_addresses,
                starttls=endpoint.starttls,
                proxy=None if endpoint.direct else endpoint.proxy,
                ocsp=endpoint.ocsp,
                scts=bool(endpoint.ct),
            )
            transient = all(isinstance(r, ProbeFailure) and r.kind in TRANSIENT for r in results)
            if not transient or tries > self.options.retries:
                return list(results), tries
            pause = self.options.backoff * (2 ** (tries - 1)) * random.uniform(0.5, 1.5)
            await trio.sleep(pause)

    async def lookup_caa(self, index: int, probed: list[Observation | ProbeFailure]) -> None:
        """The endpoint's CAA set, when it asks (``caa: true``) and a leaf was read."""
        endpoint = self.endpoints[index]
        leaf = next((p.served[0] for p in probed if isinstance(p, Observation) and p.served), None)
        if not endpoint.caa or leaf is None:
            return
        name, _ = caa_query_name(endpoint, leaf)
        self.caa[index] = await lookup_caa(
            name, nameserver=self.options.dns_server, timeout=endpoint.timeout
        )

    def held_once(self, item: Observation | ProbeFailure) -> Observation | ProbeFailure:
        """The observation with its served chain held once per scan: a fleet
        serves a few distinct chains to thousands of endpoints, and each probe
        reads its own copy of every certificate's DER (~1.8 KB per endpoint
        kept until the report is written)."""
        if not isinstance(item, Observation):
            return item
        chain = self.chains.get(item.served)
        if chain is None:
            chain = tuple(self.ders.setdefault(der, der) for der in item.served)
            self.chains[chain] = chain
        return replace(item, served=chain)

    def learn(self, probed: list[Observation | ProbeFailure]) -> None:
        for item in probed:
            if isinstance(item, Observation):
                self.knowledge.learn(item.served, self.certificates)

    async def analyse_new_chains(
        self, index: int, probed: list[Observation | ProbeFailure]
    ) -> None:
        """Analyse in a worker thread each chain of this endpoint that the scan
        has not analysed yet (validation, diagnosis, client-path search: CPU
        work, bounded by counts, that would hold the loop), so that other
        endpoints' timeouts, ``--deadline`` and interrupts keep firing while
        it runs. A chain already analysed is judged on the loop: a lookup.
        On cancellation the thread is abandoned (its bounded work ends on its
        own and only fills the cache) and the endpoint is not judged."""
        analyses = self.analyses
        if analyses is None:  # the reference run judges everything on the loop
            return
        endpoint = self.endpoints[index]
        try:
            store = self.stores.get(endpoint.trust)
        except Exception:  # judge() reports it as this endpoint's error
            return
        for item in probed:
            if not isinstance(item, Observation):
                continue
            pool = tuple(self.knowledge.pool)  # the thread's own: the loop may grow the pool
            work = functools.partial(
                _analyse_quietly, endpoint, item.served, store, self.now,
                pool=pool, cache=self.certificates, analyses=analyses,
            )  # fmt: skip
            if not analysed(*work.args, **work.keywords):
                await trio.to_thread.run_sync(work, abandon_on_cancel=True, limiter=self.analysers)

    def finish(self, index: int, probed: list[Observation | ProbeFailure], tries: int) -> None:
        result = self.judge(index, probed, tries)
        self.probed[index] = (probed, tries)
        self.results[index] = result
        for sink in self.sinks:
            sink(result)

    def judge(
        self, index: int, probed: list[Observation | ProbeFailure], tries: int
    ) -> EndpointResult:
        """The endpoint's verdict; a bug in judging it is that endpoint's
        internal_error finding, never the end of the scan. What the verdict
        read of the scan-wide knowledge that may still change is indexed."""
        endpoint = self.endpoints[index]
        depends = Dependencies()
        try:
            store = self.stores.get(endpoint.trust)
            result = evaluate(
                endpoint, probed, store, self.now, knowledge=self.knowledge, attempts=tries,
                caa=self.caa.get(index), cache=self.certificates, analyses=self.analyses,
                depends=depends,
            )  # fmt: skip
        except Exception as exc:
            self.internal_errors.append((endpoint.name, traceback.format_exc()))
            return internal_error(endpoint, exc, tries)
        self.knowledge.watch(index, depends)
        return self.compact(result)

    def compact(self, result: EndpointResult) -> EndpointResult:
        """The result with the parts it shares with other endpoints' held once:
        endpoints on one chain under one pin-set get equal findings, rotation
        readiness and pin-path verdicts, each otherwise kept per endpoint until
        the report is written. Only values whose every field compares (equal
        means the same) are shared."""
        hold = self.held.setdefault
        addresses = tuple(
            replace(
                a, findings=hold(a.findings, a.findings), pin_paths=hold(a.pin_paths, a.pin_paths)
            )
            for a in result.addresses
        )
        rotation = (
            result.rotation if result.rotation is None else hold(result.rotation, result.rotation)
        )
        return replace(
            result,
            findings=hold(result.findings, result.findings),
            addresses=addresses,
            rotation=rotation,
        )

    async def worker(self) -> None:
        for index in self.queue:
            probed, tries = await self.attempt(self.endpoints[index])
            await self.lookup_caa(index, probed)
            await self.after_probing(index, probed, tries)

    async def consume(self, source: AsyncIterable[Probed]) -> None:
        """Endpoints probed elsewhere (scanner.workers), judged here as they come."""
        async for index, probed, tries, caa in source:
            if caa is not None:
                self.caa[index] = caa
            await self.after_probing(index, probed, tries)

    async def after_probing(
        self, index: int, probed: list[Observation | ProbeFailure], tries: int
    ) -> None:
        """Everything after an endpoint's probing, whether it was probed here
        (worker) or by a worker process (consume): the two must not differ.
        Served certificates are held once, the scan learns them, a chain new
        to the scan is analysed off the loop, then the endpoint is judged."""
        probed = [self.held_once(item) for item in probed]
        self.learn(probed)
        await self.analyse_new_chains(index, probed)
        self.finish(index, probed, tries)

    def second_look(self) -> None:
        """Re-judge the verdicts whose scan-wide answers changed since they were
        judged (the reference way: every verdict, from scratch)."""
        changed: dict[Hashable, Rejudge]
        if self.options.reference:
            changed = dict.fromkeys(self.probed, Rejudge.FULL)
        else:
            changed = self.knowledge.take_changed()
        for index, level in sorted((i, lv) for i, lv in changed.items() if isinstance(i, int)):
            result = self.results[index]
            if result is None or index not in self.probed:
                continue
            endpoint = self.endpoints[index]
            self.rejudged += 1
            if level is Rejudge.FULL:
                probed, tries = self.probed[index]
                self.results[index] = self.judge(index, probed, tries)
            elif result.primary is not None:  # which CA keys are known grew while the scan ran
                try:
                    store = self.stores.get(endpoint.trust)
                    self.results[index] = with_rotation(result, store, self.knowledge)
                except Exception as exc:
                    self.internal_errors.append((endpoint.name, traceback.format_exc()))
                    self.results[index] = internal_error(endpoint, exc, result.attempts)

    async def watch_interrupt(self, scope: trio.CancelScope) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        with trio.open_signal_receiver(signal.SIGINT) as signals:
            async for _ in signals:
                self.interrupted = True
                scope.cancel()
                return


def _analyse_quietly(*args: Any, **kwargs: Any) -> None:
    """`results.analyse` in a worker thread; a bug in it is left for judge(),
    which meets it again on the loop and makes it the endpoint's finding."""
    with contextlib.suppress(Exception):
        analyse(*args, **kwargs)


async def run_scan(
    endpoints: Sequence[Endpoint],
    *,
    now: datetime,
    options: ScanOptions = ScanOptions(),
    stores: TrustStores | None = None,
    sinks: Sequence[Sink] = (),
    source: AsyncIterable[Probed] | None = None,
) -> ScanOutcome:
    """Scan every endpoint; one result each, in inventory order. With a
    `source`, the endpoints are probed elsewhere (scanner.workers) and only
    judged here, as they come: the same verdicts, second look included."""
    if options.concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, got {options.concurrency}")
    stores = stores if stores is not None else TrustStores()
    for endpoint in endpoints:  # fail on an unreadable trust store before any traffic
        stores.get(endpoint.trust)
    run = _Run(endpoints, now, options, stores, sinks)
    workers = min(options.concurrency, len(endpoints))
    limiter = trio.to_thread.current_default_thread_limiter()
    limiter.total_tokens = max(limiter.total_tokens, min(workers, 256))  # getaddrinfo threads
    started = trio.current_time()
    deadline = math.inf if options.deadline is None else started + options.deadline
    async with trio.open_nursery() as outer:
        with trio.CancelScope(deadline=deadline) as scope:
            outer.start_soon(run.watch_interrupt, scope)
            async with trio.open_nursery() as nursery:
                if source is not None:
                    nursery.start_soon(run.consume, source)
                for _ in range(workers if source is None else 0):
                    nursery.start_soon(run.worker)
        outer.cancel_scope.cancel()
    run.second_look()
    deadline_hit = scope.cancelled_caught and not run.interrupted
    why = "scan interrupted" if run.interrupted else "global deadline passed before it finished"
    results = []
    for index, done in enumerate(run.results):
        result = done if done is not None else not_scanned(endpoints[index], why)
        if done is None:
            for sink in sinks:
                sink(result)
        results.append(result)
    return ScanOutcome(
        tuple(results),
        trio.current_time() - started,
        run.interrupted,
        deadline_hit,
        tuple(run.internal_errors),
        run.rejudged,
    )


async def probe_only(
    endpoints: Sequence[Endpoint], *, options: ScanOptions, emit: Callable[[Probed], None]
) -> None:
    """Probe every endpoint as run_scan does (retries, CAA lookups), judge
    none: each endpoint's probing goes to `emit` (scanner.workers' processes)."""
    run = _Run(endpoints, datetime.now().astimezone(), options, TrustStores(), ())

    async def worker() -> None:
        for index in run.queue:
            probed, tries = await run.attempt(endpoints[index])
            await run.lookup_caa(index, probed)
            emit((index, probed, tries, run.caa.pop(index, None)))

    workers = min(options.concurrency, len(endpoints))
    limiter = trio.to_thread.current_default_thread_limiter()
    limiter.total_tokens = max(limiter.total_tokens, min(workers, 256))  # getaddrinfo threads
    async with trio.open_nursery() as nursery:
        for _ in range(workers):
            nursery.start_soon(worker)
