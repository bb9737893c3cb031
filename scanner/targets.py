"""``/probe?target=HOST:PORT&module=NAME``: Prometheus chooses the targets.

As with blackbox_exporter and ssl_exporter, a scrape names one target (from
``file_sd``, ``kubernetes_sd``, relabelling …) and a module; the exporter
probes it at once and answers with the same metric families as its own scans
(``pinaudit_endpoint_up``, ``pinaudit_pin_match``, ``pinaudit_chain_valid`` …,
``endpoint`` = the target).

The probe config (``--probe.config FILE``, YAML):

    allow:                      # required: nothing else is ever probed
      hosts: ["*.example.com", "api.example.org"]   # names, shell-style patterns
      networks: ["10.20.0.0/16", "2001:db8::/48"]   # IP literals
    modules:                    # each: inventory endpoint keys but host and name
      default: {timeout: 5s}
      payments: {pinset: payments, timeout: 10s, trust: /etc/ssl/certs/ca-certificates.crt}
    pinsets:                    # as in an inventory
      payments: {expires: 2027-06-01, pins: [sha256/…, sha256/…]}

A module is an inventory endpoint without its host: every key an inventory
endpoint takes (pinset, pins, trust, timeout, port, sni, client_cert,
client_key, all_addresses, labels, and whatever keys later versions add, such
as a STARTTLS protocol or a proxy) is accepted and checked by the inventory
loader itself, at start (with its file:line:column) and at each probe.

The allow-list is what keeps ``/probe`` from being an open relay: a target is
probed only when its host matches one of ``hosts`` (case-insensitive, a
trailing dot ignored; ``*`` matches across dots) or, for an IP literal, lies
in one of ``networks``. A name is authorised as a name: what it resolves to
is not checked (list only names whose DNS you control). Anything else is
refused with 403 before any packet is sent.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import ipaddress
import math
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import trio
import yaml
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from scanner.engine import ScanOptions, run_scan
from scanner.errors import ConfigError, InventoryError
from scanner.exporters.metrics import ScanRecord, scan_exposition
from scanner.exporters.prometheus import render_text
from scanner.exporters.web import Response
from scanner.inventory import load_inventory_text
from scanner.model import Endpoint
from scanner.trust import TrustStores
from scanner.units import is_ip_address

__all__ = [
    "MAX_CONFIG_BYTES",
    "ProbeConfig",
    "Prober",
    "load_probe_config",
    "parse_target",
]

MAX_CONFIG_BYTES = 1024 * 1024
MAX_TARGET_LENGTH = 300
MAX_CONCURRENT_PROBES = 8
SCRAPE_TIMEOUT_OFFSET = 0.5  # seconds kept for the answer, as blackbox_exporter does
_TOP_KEYS = ("allow", "modules", "pinsets")
_ALLOW_KEYS = ("hosts", "networks")
_NOT_IN_MODULES = ("host", "name")
_PLACEHOLDER = "probe-module.invalid"  # checks a module at start without a real target

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclasses.dataclass(frozen=True)
class ProbeConfig:
    source: str
    directory: str
    hosts: tuple[str, ...]
    networks: tuple[Network, ...]
    modules: Mapping[str, Mapping[str, Any]]
    pinsets: Mapping[str, Any]

    def allows(self, host: str) -> bool:
        """Is `host` (a name or an IP literal, as in the target) on the allow-list?"""
        if is_ip_address(host):
            address = ipaddress.ip_address(host)
            return any(address in network for network in self.networks)
        name = host.lower().rstrip(".")
        return any(fnmatch.fnmatchcase(name, pattern) for pattern in self.hosts)

    def inventory_text(self, module: str, host: str, port: int, sni: str | None) -> str:
        """A one-endpoint inventory: the module's keys, the target's host and port."""
        endpoint: dict[str, Any] = {"name": _join(host, port), "host": host, **self.modules[module]}
        endpoint["port"] = port
        if sni is not None:
            endpoint["sni"] = sni
        doc: dict[str, Any] = {"version": 1, "endpoints": [endpoint]}
        if self.pinsets:
            doc["pinsets"] = dict(self.pinsets)
        return yaml.safe_dump(doc, sort_keys=False, default_flow_style=False)

    def endpoint(self, module: str, host: str, port: int, sni: str | None = None) -> Endpoint:
        inventory = load_inventory_text(
            self.inventory_text(module, host, port, sni),
            f"{self.source} (module {module})",
            base_dir=self.directory,
        )
        (endpoint,) = inventory.endpoints
        return endpoint


def _join(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _strings(value: object, where: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"{where}: expected a list of non-empty strings")
    return list(value)


def _mapping(value: object, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise ConfigError(f"{where}: expected a mapping")
    return value


def load_probe_config(path: str) -> ProbeConfig:
    """Read and check a probe config: its allow-list, and every module built
    once against a placeholder host. Raises ConfigError."""
    source = Path(path)
    try:
        data = source.read_bytes()[: MAX_CONFIG_BYTES + 1]
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the probe config: {exc.strerror}") from None
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path}: the probe config is over {MAX_CONFIG_BYTES} bytes")
    try:
        top = _mapping(yaml.safe_load(data.decode("utf-8")), path)
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else path
        raise ConfigError(f"{where}: {getattr(exc, 'problem', None) or exc}") from None
    for key in top:
        if key not in _TOP_KEYS:
            raise ConfigError(f"{path}: unknown key {key!r} (expected {', '.join(_TOP_KEYS)})")
    allow = _mapping(top.get("allow"), f"{path}: allow")
    for key in allow:
        if key not in _ALLOW_KEYS:
            raise ConfigError(f"{path}: allow: unknown key {key!r} (expected hosts, networks)")
    hosts = tuple(
        p.lower().rstrip(".") for p in _strings(allow.get("hosts"), f"{path}: allow.hosts")
    )
    networks: list[Network] = []
    for text in _strings(allow.get("networks"), f"{path}: allow.networks"):
        try:
            networks.append(ipaddress.ip_network(text, strict=False))
        except ValueError as exc:
            raise ConfigError(f"{path}: allow.networks: {exc}") from None
    if not hosts and not networks:
        raise ConfigError(
            f"{path}: allow: list the hosts and/or networks /probe may reach "
            "(without an allow-list the exporter would probe anything it is asked to)"
        )
    modules = _mapping(top.get("modules"), f"{path}: modules")
    if not modules:
        raise ConfigError(f"{path}: modules: define at least one module (e.g. default: {{}})")
    checked: dict[str, Mapping[str, Any]] = {}
    for name, keys in modules.items():
        fields = _mapping(keys, f"{path}: modules.{name}")
        for key in _NOT_IN_MODULES:
            if key in fields:
                raise ConfigError(
                    f"{path}: modules.{name}: {key!r} comes from the target, not the module"
                )
        checked[name] = fields
    config = ProbeConfig(
        str(source),
        str(source.parent),
        hosts,
        tuple(networks),
        checked,
        _mapping(top.get("pinsets"), f"{path}: pinsets"),
    )
    for name in checked:
        try:
            config.endpoint(name, _PLACEHOLDER, 443)
        except InventoryError as exc:
            raise ConfigError(f"{path}: modules.{name}: {exc}") from None
    return config


def parse_target(text: str) -> tuple[str, int]:
    """``host:port``, ``[ipv6]:port`` or ``host`` (port 443). Raises ValueError."""
    if not text or len(text) > MAX_TARGET_LENGTH or any(c in text for c in " /@?#\\"):
        raise ValueError("expected HOST:PORT")
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or not is_ip_address(host) or (rest and not rest.startswith(":")):
            raise ValueError("expected [IPv6]:PORT")
        port_text = rest[1:] if rest else "443"
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    elif ":" in text:
        raise ValueError("write an IPv6 address in brackets: [2001:db8::1]:443")
    else:
        host, port_text = text, "443"
    if not host or not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ValueError("expected HOST:PORT with a port 1..65535")
    return host, int(port_text)


class Prober:
    """Answers /probe (the web.Prober protocol) on the HTTP side's trio loop."""

    def __init__(self, config: ProbeConfig, stores: TrustStores | None = None) -> None:
        self.config = config
        self.stores = stores if stores is not None else TrustStores()
        self.limiter = trio.CapacityLimiter(MAX_CONCURRENT_PROBES)

    async def probe(
        self, params: Mapping[str, Sequence[str]], scrape_timeout: float | None
    ) -> Response:
        targets = params.get("target", [])
        if len(targets) != 1:
            return Response.text(400, "give exactly one target=HOST:PORT\n")
        try:
            host, port = parse_target(targets[0])
        except ValueError as exc:
            return Response.text(400, f"target {targets[0]!r}: {exc}\n")
        modules = params.get("module", ["default"])
        module = modules[0] if len(modules) == 1 else ""
        if module not in self.config.modules:
            known = ", ".join(sorted(self.config.modules))
            return Response.text(400, f"unknown module {module!r} (configured: {known})\n")
        if not self.config.allows(host):
            return Response.text(403, f"target {host!r} is not in the probe allow-list\n")
        snis = params.get("sni", [])
        try:
            endpoint = self.config.endpoint(module, host, port, snis[0] if snis else None)
        except InventoryError as exc:
            return Response.text(400, f"target {targets[0]!r}: {exc}\n")
        if scrape_timeout is not None and math.isfinite(scrape_timeout):
            budget = max(0.5, scrape_timeout - SCRAPE_TIMEOUT_OFFSET)
            endpoint = dataclasses.replace(endpoint, timeout=min(endpoint.timeout, budget))
        async with self.limiter:
            as_of = datetime.now(timezone.utc)
            outcome = await run_scan(
                [endpoint],
                now=as_of,
                options=ScanOptions(concurrency=1, deadline=endpoint.timeout * 3 + 1),
                stores=self.stores,
            )
        record = ScanRecord(outcome.results, as_of, datetime.now(timezone.utc), outcome.duration)
        families, _ = scan_exposition(record)
        return Response(200, render_text(families), CONTENT_TYPE_LATEST)
