"""What one scan covers: the inventory's endpoints, selected and sharded, with
the trust stores they need loaded and the engine's options set.

Both the one-shot ``scan`` and the exporter (at start and on every reload)
build their scan from here, so they refuse the same inventories the same way;
nothing is contacted over the network, and every check that can fail fails
here, before the first handshake.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from scanner.engine import ScanOptions, ensure_open_files
from scanner.errors import ConfigError
from scanner.inventory import load_inventory
from scanner.model import Endpoint
from scanner.proxy import proxy_for
from scanner.settings import ScanSettings, Selector
from scanner.trust import TrustStores

__all__ = ["ScanPlan", "load_plan", "selection_hint"]

# How many values of a label `--only` lists when nothing matches.
_HINT_VALUES = 8


@dataclass(frozen=True)
class ScanPlan:
    endpoints: tuple[Endpoint, ...]
    stores: TrustStores
    options: ScanOptions
    warnings: tuple[str, ...] = ()  # trust-store anchors that do not parse, …
    inventory_endpoints: int = 0  # before --only and --shard


def selection_hint(endpoints: Sequence[Endpoint], keys: Sequence[str]) -> str:
    """What values the `--only` keys have in the inventory, so that a filter
    that matches nothing says what would have."""
    parts = []
    for key in keys:
        values = sorted(
            {value for ep in endpoints if (value := Selector.value(ep, key)) is not None}
        )
        if not values:
            labels = sorted({k for ep in endpoints for k, _ in ep.labels})
            known = ", ".join(["name", "host", *labels])
            parts.append(f"no endpoint has a label {key!r} (keys: {known})")
            continue
        shown = ", ".join(values[:_HINT_VALUES])
        more = f", … ({len(values) - _HINT_VALUES} more)" if len(values) > _HINT_VALUES else ""
        parts.append(f"{key} is one of: {shown}{more}")
    return "; ".join(parts)


def load_plan(settings: ScanSettings) -> ScanPlan:
    """Load and check everything a scan needs; raises ScannerError, changes nothing."""
    inventory = load_inventory(settings.inventory)
    if not inventory.endpoints and not settings.allow_empty:
        raise ConfigError(
            f"{settings.inventory}: the inventory has no endpoints: nothing to scan "
            "(--allow-empty scans it anyway)"
        )
    endpoints = settings.selector.select(inventory.endpoints)
    if settings.selector and not endpoints:
        keys = [key for key, _ in settings.selector.terms]
        hint = selection_hint(inventory.endpoints, keys)
        raise ConfigError(f"no endpoint matches {settings.selector}: {hint}")
    push = settings.exports.push
    if push is not None:  # before sharding: every shard refuses the same way
        inventory_keys = {key for ep in endpoints for key, _ in ep.labels}
        for key, _ in push.grouping:
            if key in inventory_keys:
                raise ConfigError(
                    f"the Pushgateway grouping label {key!r} is also an inventory label: "
                    "the Pushgateway would refuse the push"
                )
    if settings.shard is not None:  # may leave none: an empty shard still exports its scan
        endpoints = settings.shard.select(endpoints)
    if settings.proxy_environment is not None:
        environ = dict(settings.proxy_environment)
        endpoints = [
            e if e.proxy is not None or e.direct else replace(e, proxy=proxy_for(e.host, environ))
            for e in endpoints
        ]
    concurrency = settings.limits.workers(len(endpoints))
    ensure_open_files(concurrency)
    stores = TrustStores()
    for endpoint in endpoints:
        stores.get(endpoint.trust)
    warnings = tuple(
        warning
        for store in stores.loaded()
        for warning in store.warnings
        if "does not parse" in warning or "bad base64" in warning
    )
    options = ScanOptions(
        concurrency=concurrency,
        deadline=settings.limits.deadline,
        retries=settings.limits.retries,
        dns_server=settings.dns_server,
    )
    return ScanPlan(tuple(endpoints), stores, options, warnings, len(inventory.endpoints))
