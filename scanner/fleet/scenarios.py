"""Scenarios of the simulated fleet, with the verdict each one must get.

`build_fleet(now, count)` makes a private PKI, one `Site` per endpoint on
distinct loopback addresses (127.1.x.y), and after the sites are bound,
`Fleet.write(directory, bound)` writes the matching inventory and the trust
bundle of the private roots. Every scenario states the exact findings
(check, severity, certificate) and probe-failure reason a scan must report:
the end-to-end tests, the demo and users testing their alerting rely on it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

from scanner.fleet.pki import PKI, Issued
from scanner.fleet.server import Behaviour, Credential, Site, TlsConfig
from scanner.model import Pin

Key = tuple[str, str, int | None]
C, W, INFO = "critical", "warning", "info"
DOMAIN = "fleet.test"


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    expected: frozenset[Key]
    reason: str | None = None  # probe failure reason for unreachable scenarios
    behaviour: Behaviour = Behaviour.TLS
    listening: bool = True  # False: nothing listens at the address (refused)


def _k(*items: Key) -> frozenset[Key]:
    return frozenset(items)


_UNREACHABLE = _k(("unreachable", C, None))

SCENARIOS: tuple[Scenario, ...] = (
    Scenario("healthy", "valid chain, pinned to the intermediate with a backup CA pin", _k()),
    Scenario(
        "rotated",
        "leaf renewed with a new key while clients pin the old leaf key",
        _k(("pin_mismatch", C, None), ("unresolved_pin", INFO, None)),
    ),
    Scenario("backup", "served by the backup CA: only the backup pin matches", _k()),
    Scenario("leafpin", "only the leaf key is pinned (rotation risk)", _k(("leaf_only_pin", W, 0))),
    Scenario("expired", "leaf expired two days ago", _k(("cert_expired", C, 0))),
    Scenario("expiring5", "leaf expires in 5 days", _k(("cert_expiring", C, 0))),
    Scenario("expiring20", "leaf expires in 20 days", _k(("cert_expiring", W, 0))),
    Scenario("notyet", "leaf valid only from tomorrow", _k(("cert_not_yet_valid", C, 0))),
    Scenario("wronghost", "leaf issued for another name", _k(("hostname_mismatch", C, 0))),
    Scenario("untrusted", "chain to a root nobody trusts", _k(("chain_untrusted", C, None))),
    Scenario(
        "nointermediate",
        "the server forgets to send the intermediate",
        _k(("chain_incomplete", C, None)),
    ),
    Scenario(
        "extracert", "an unrelated CA certificate is sent too", _k(("chain_extra_certs", W, 2))
    ),
    Scenario(
        "reversed",
        "intermediate sent before the leaf",
        _k(("hostname_mismatch", C, 0), ("chain_misordered", C, 0), ("chain_extra_certs", W, 1)),
    ),
    Scenario(
        "pinsetexpiring",
        "the app's pin-set expires in 30 days",
        _k(("pinset_expiring", W, None)),
    ),
    Scenario(
        "pinsetexpired",
        "the pin-set expired and no longer matches: protection lost",
        _k(
            ("pinset_expired", W, None),
            ("pin_mismatch", W, None),
            ("unresolved_pin", INFO, None),
        ),
    ),
    Scenario("silent", "accepts, never answers", _UNREACHABLE, "timeout", Behaviour.SILENT),
    Scenario("tarpit", "answers one byte per second", _UNREACHABLE, "timeout", Behaviour.TARPIT),
    Scenario("reset", "resets after the ClientHello", _UNREACHABLE, "reset", Behaviour.RESET),
    Scenario("http", "speaks plain HTTP", _UNREACHABLE, "not_tls", Behaviour.HTTP),
    Scenario("refused", "nothing listens", _UNREACHABLE, "refused", listening=False),
)
BY_NAME = {s.name: s for s in SCENARIOS}


@dataclass(frozen=True)
class FleetEndpoint:
    name: str
    scenario: Scenario
    address: str
    sni: str
    pins: tuple[Pin, ...]
    expires: date | None
    site: Site | None  # None when nothing listens


@dataclass
class Fleet:
    now: datetime
    endpoints: list[FleetEndpoint]
    anchors: list[Issued]
    timeout: float = 2.0
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def sites(self) -> list[Site]:
        return [e.site for e in self.endpoints if e.site is not None]

    def expected(self) -> dict[str, tuple[frozenset[Key], str | None]]:
        return {e.name: (e.scenario.expected, e.scenario.reason) for e in self.endpoints}

    def write(self, directory: Path, bound: Sequence[tuple[str, int]]) -> Path:
        """Write ``inventory.yaml`` and ``trust.pem`` for the bound sites; return the
        inventory path. `bound` is what `serve_sites` reported, in `sites` order."""
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "trust.pem").write_bytes(b"".join(a.pem for a in self.anchors))
        ports = iter(port for _address, port in bound)
        any_port = bound[0][1] if bound else 1
        lines = [
            "# Simulated fleet inventory, written by pinaudit (scanner/fleet/scenarios.py).",
            "version: 1",
            "defaults:",
            f"  timeout: {self.timeout}s",
            "  trust: trust.pem",
            "  labels: {env: fleet}",
            "endpoints:",
        ]
        for ep in self.endpoints:
            port = next(ports) if ep.site is not None else any_port
            pins = ", ".join(json.dumps(str(p)) for p in ep.pins)
            lines += [
                f"  - name: {ep.name}",
                f"    host: {ep.address}",
                f"    port: {port}",
                f"    sni: {ep.sni}",
                f"    pins: [{pins}]",
                f"    labels: {{scenario: {ep.scenario.name}}}",
            ]
            if ep.expires is not None:
                # Inline pins have no expiry of their own: give this endpoint a pin-set.
                lines[-2] = f"    pinset: {ep.name}"
        pinsets = [ep for ep in self.endpoints if ep.expires is not None]
        if pinsets:
            lines.append("pinsets:")
            for ep in pinsets:
                pins = ", ".join(json.dumps(str(p)) for p in ep.pins)
                expires = ep.expires.isoformat() if ep.expires else ""
                lines += [
                    f"  {ep.name}:",
                    f"    expires: {expires}",
                    f"    pins: [{pins}]",
                ]
        path = directory / "inventory.yaml"
        path.write_text("\n".join(lines) + "\n")
        return path


def address_of(index: int, base: int = 1) -> str:
    """127.<base>.x.y for endpoint `index`: 250 addresses per /24, skipping .0."""
    return f"127.{base}.{index // 250}.{index % 250 + 1}"


class _Factory:
    """Shared CAs of the fleet and one builder per scenario."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self.pki = PKI(now, org="pinaudit fleet")
        self.root_a = self.pki.root("Fleet Root A")
        self.inter_a = self.pki.intermediate("Fleet Issuing CA A", self.root_a)
        self.root_b = self.pki.root("Fleet Root B")
        self.inter_b = self.pki.intermediate("Fleet Issuing CA B", self.root_b)
        self.rogue_root = self.pki.root("Rogue Root")
        self.rogue_inter = self.pki.intermediate("Rogue Issuing CA", self.rogue_root)
        self.standard_pins = (self.inter_a.pin, self.root_b.pin)

    def leaf(self, host: str, issuer: Issued | None = None, **kw: object) -> Issued:
        return self.pki.leaf(host, issuer or self.inter_a, **kw)

    def build(
        self, scenario: Scenario, host: str
    ) -> tuple[list[Issued], tuple[Pin, ...], date | None]:
        """(served chain, pins, pin-set expiry) for one endpoint."""
        builder: Callable[[str], tuple[list[Issued], tuple[Pin, ...], date | None]] = getattr(
            self, f"_{scenario.name}", self._healthy
        )
        return builder(host)

    def _healthy(self, host: str) -> tuple[list[Issued], tuple[Pin, ...], date | None]:
        return [self.leaf(host), self.inter_a], self.standard_pins, None

    def _rotated(self, host: str) -> tuple[list[Issued], tuple[Pin, ...], date | None]:
        old = self.leaf(host)
        return [self.leaf(host), self.inter_a], (old.pin, self.root_b.pin), None

    def _backup(self, host: str) -> tuple[list[Issued], tuple[Pin, ...], date | None]:
        return [self.leaf(host, self.inter_b), self.inter_b], self.standard_pins, None

    def _leafpin(self, host: str) -> tuple[list[Issued], tuple[Pin, ...], date | None]:
        leaf = self.leaf(host)
        return [leaf, self.inter_a], (leaf.pin, self.root_b.pin), None

    def _expired(self, host: str) -> tuple[list[Issued], tuple[Pin, ...], date | None]:
        leaf = self.leaf(host, days_before=92, days_after=-2)
        return [leaf, self.inter_a], self.standard_pins, None

    def _expiring5(self, host: str) -> tuple[list[Issued], tuple[Pin, ...], date | None]:
        return [self.leaf(host, days_after=5), self.inter_a], self.standard_pins, None

    def _expiring20(self, host: str) -> tuple[list[Issued], tuple[Pin, ...], date | None]:
        return [self.leaf(host, days_after=20), self.inter_a], self.standard_pins, None

    def _notyet(self, host: str) -> tuple[list[Issued], tuple[Pin, ...], date | None]:
        leaf = self.leaf(host, days_before=-1, days_after=90)
        return [leaf, self.inter_a], self.standard_pins, None

    def _wronghost(self, host: str) -> tuple[list[Issued], tuple[Pin, ...], date | None]:
        return [self.leaf("elsewhere." + DOMAIN), self.inter_a], self.standard_pins, None

    def _untrusted(self, host: str) -> tuple[list[Issued], tuple[Pin, ...], date | None]:
        chain = [self.leaf(host, self.rogue_inter), self.rogue_inter, self.rogue_root]
        return chain, self.standard_pins, None

    def _nointermediate(self, host: str) -> tuple[list[Issued], tuple[Pin, ...], date | None]:
        return [self.leaf(host)], self.standard_pins, None

    def _extracert(self, host: str) -> tuple[list[Issued], tuple[Pin, ...], date | None]:
        return [self.leaf(host), self.inter_a, self.inter_b], self.standard_pins, None

    def _reversed(self, host: str) -> tuple[list[Issued], tuple[Pin, ...], date | None]:
        return [self.inter_a, self.leaf(host)], self.standard_pins, None

    def _pinsetexpiring(self, host: str) -> tuple[list[Issued], tuple[Pin, ...], date | None]:
        expires = (self.now + timedelta(days=30)).date()
        return [self.leaf(host), self.inter_a], self.standard_pins, expires

    def _pinsetexpired(self, host: str) -> tuple[list[Issued], tuple[Pin, ...], date | None]:
        old = self.leaf(host)
        expires = (self.now - timedelta(days=10)).date()
        return [self.leaf(host), self.inter_a], (old.pin, self.root_b.pin), expires


def build_fleet(
    now: datetime,
    count: int | None = None,
    *,
    scenarios: Sequence[str] | None = None,
    base: int = 1,
    port: int = 0,
    timeout: float = 2.0,
) -> Fleet:
    """`count` endpoints cycling through `scenarios` (all by default); port 0
    lets each listener pick a free port."""
    chosen = [BY_NAME[n] for n in scenarios] if scenarios else list(SCENARIOS)
    total = count if count is not None else len(chosen)
    factory = _Factory(now)
    endpoints: list[FleetEndpoint] = []
    for index in range(total):
        scenario = chosen[index % len(chosen)]
        name = f"{scenario.name}-{index}"
        host = f"{name}.{DOMAIN}"
        address = address_of(index, base)
        site: Site | None = None
        pins: tuple[Pin, ...] = factory.standard_pins
        expires: date | None = None
        if scenario.behaviour is Behaviour.TLS and scenario.listening:
            chain, pins, expires = factory.build(scenario, host)
            config = TlsConfig(Credential.of(chain[0], *chain[1:]))
            site = Site(address, port, Behaviour.TLS, config)
        elif scenario.listening:
            site = Site(address, port, scenario.behaviour)
        endpoints.append(FleetEndpoint(name, scenario, address, host, pins, expires, site))
    return Fleet(now, endpoints, [factory.root_a, factory.root_b], timeout)
