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
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtensionOID

from scanner.fleet import faults
from scanner.fleet.pki import PKI, Issued, make_key
from scanner.fleet.server import Behaviour, Credential, Site, TlsConfig
from scanner.model import Pin
from scanner.pins import pins_of_spki

__all__ = [
    "BIG_CHAIN_DECOYS",
    "BY_NAME",
    "CROSS_SIGN_SCENARIOS",
    "DOMAIN",
    "FAULT_SCENARIOS",
    "HUGE_CHAIN_CERTS",
    "PATIENT_TIMEOUT",
    "SCENARIOS",
    "Fleet",
    "FleetEndpoint",
    "Key",
    "Scenario",
    "address_of",
    "build_fleet",
]

Key = tuple[str, str, int | None]
C, W, INFO = "critical", "warning", "info"
DOMAIN = "fleet.test"
PATIENT_TIMEOUT = 30.0  # seconds; see Fleet.patient_timeout


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    expected: frozenset[Key]
    reason: str | None = None  # probe failure reason for unreachable scenarios
    behaviour: Behaviour = Behaviour.TLS
    listening: bool = True  # False: nothing listens at the address (refused)
    detail: str | None = None  # text the probe failure's detail contains (fault scenarios)
    resolvable: bool = True  # False: the host is a name under .invalid (never resolves)
    client: str | None = None  # a client pin-set of this kind (e.g. "okhttp") pins the endpoint


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

# Misbehaviour at the TCP and TLS record level, absurd certificates, names
# that never resolve (scanner/fleet/faults.py). Not in the demo; the fault
# tests serve them beside SCENARIOS. The fleet's hosts are loopback IP
# literals: "resolves to an unreachable address" is `blackhole`, an address
# that accepts no connection (a routable unreachable address would leave the
# machine).
BIG_CHAIN_DECOYS = 40  # certificates named like the intermediate, with other keys
HUGE_CHAIN_CERTS = 40  # of ~8 KB each: ~340 KB, over the 100 KiB OpenSSL clients accept
FAULT_SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        "endless",
        "after the ClientHello, endless HelloRequest records and never a ServerHello",
        _UNREACHABLE,
        "timeout",
        Behaviour.ENDLESS,
        detail="timed out during handshake",
    ),
    Scenario(
        "midclose",
        "ServerHello and half a Certificate message, then a clean close",
        _UNREACHABLE,
        "closed",
        Behaviour.MIDCLOSE,
        detail="UNEXPECTED_EOF_WHILE_READING",
    ),
    Scenario(
        "alert",
        "answers the ClientHello with a fatal handshake_failure alert",
        _UNREACHABLE,
        "tls_alert",
        Behaviour.ALERT,
        detail="ALERT_HANDSHAKE_FAILURE",
    ),
    Scenario(
        "tls10",
        "speaks TLS 1.0 only: the chain is still read, the version is below TLS 1.2",
        _k(("old_tls_version", W, None)),
    ),
    Scenario("mtls", "demands a client certificate (TLS 1.3: after the chain is read)", _k()),
    Scenario(
        "mtls12",
        "demands a client certificate over TLS 1.2: the handshake fails",
        _UNREACHABLE,
        "tls_alert",
        detail="ALERT_HANDSHAKE_FAILURE",
    ),
    Scenario(
        "bigchain",
        f"{BIG_CHAIN_DECOYS} decoys named like the intermediate sent before it",
        _k(*(("chain_extra_certs", W, n) for n in range(1, BIG_CHAIN_DECOYS + 1))),
    ),
    Scenario(
        "hugechain",
        f"{HUGE_CHAIN_CERTS + 2} certificates, ~340 KB: more than a client accepts",
        _UNREACHABLE,
        "protocol_error",
        detail="EXCESSIVE_MESSAGE_SIZE",
    ),
    Scenario(
        "garbagecert",
        "a Certificate message whose certificate is not DER",
        _UNREACHABLE,
        "protocol_error",
        Behaviour.GARBAGE_CERT,
        detail="ASN1 lib",
    ),
    Scenario(
        "truncatedcert",
        "a Certificate message whose certificate DER is cut in half",
        _UNREACHABLE,
        "protocol_error",
        Behaviour.TRUNCATED_CERT,
        detail="ASN1 lib",
    ),
    Scenario(
        "badsan",
        "a leaf OpenSSL reads but a strict DER parser refuses (a byte after its names)",
        _k(("cert_unparsable", C, 0)),
    ),
    Scenario("negserial", "a leaf with a negative serial number", _k(("chain_untrusted", C, None))),
    Scenario("sans10k", "a leaf with 10 000 subjectAltNames", _k()),
    Scenario("year9999", "a leaf valid from 1950 to 9999-12-31", _k()),
    Scenario(
        "year1950",
        "a leaf valid only in 1950, issued by a current intermediate",
        _k(("cert_expired", C, 0), ("chain_untrusted", C, None)),
    ),
    Scenario(
        "notbefore9999",
        "a leaf valid from 9999-12-31T23:59:59Z, the last second there is",
        _k(("cert_not_yet_valid", C, 0), ("chain_untrusted", C, None)),
    ),
    Scenario(
        "critext",
        "a leaf with an unknown critical extension",
        _k(("chain_untrusted", C, None)),
    ),
    Scenario(
        "nxdomain",
        "a host name under .invalid",
        _UNREACHABLE,
        "dns",
        listening=False,
        detail=".invalid names never resolve",
        resolvable=False,
    ),
    Scenario(
        "blackhole",
        "an address that never completes a connect (full accept queue: SYNs dropped)",
        _UNREACHABLE,
        "timeout",
        Behaviour.BLACKHOLE,
        detail="timed out during connect",
    ),
)
# Hostile chains that attack the analysis itself rather than the connection.
# Served by their own tests (tests/test_paths_mesh_e2e.py), not in the mixed
# fault fleet. `crossmesh`: the leaf and its intermediate, then certificates
# named like the intermediate that carry its public key or one of a handful of
# attacker keys, each signed by an attacker key (no trusted key needed): the
# paths a client could build explode, and listing them for the endpoint's
# client pin-set once never ended. An OkHttp pin-set pins the endpoint so
# that every client path is listed.
CROSS_MESH_KEYS = 6
CROSS_MESH_CERTS = 36
PATH_SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        "crossmesh",
        f"{CROSS_MESH_CERTS} certificates named like the intermediate, cross-signed with "
        f"{CROSS_MESH_KEYS} keys",
        _k(
            ("path_budget_exceeded", W, None),
            *(("chain_extra_certs", W, n) for n in range(2, CROSS_MESH_CERTS + 2)),
        ),
        client="okhttp",
    ),
)
# A cross-signed issuing CA (pinning-semantics §8.5, §9.53-55): its key is
# certified by Fleet Root A and, cross-signed, by Fleet Root B, both trusted;
# the server sends the leaf and both intermediate certificates, so a client
# builds leaf → CA → Root A or leaf → CA → Root B depending on its verifier
# and trust store (Let's Encrypt's ISRG Root X1 and DST Root CA X3 in 2021).
# Each pin-set has an offline backup key; what it pins decides the verdict:
# one root → some clients fail (path-dependent); the CA or the leaf → all pass.
CROSS_SIGN_SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        "xsignroota",
        "cross-signed issuing CA; Root A pinned: clients that build the path to Root B fail",
        _k(("pin_path_dependent", W, None)),
    ),
    Scenario(
        "xsignrootb",
        "cross-signed issuing CA; Root B pinned: clients that build the path to Root A fail",
        _k(("pin_path_dependent", W, None)),
    ),
    Scenario(
        "xsigninter",
        "cross-signed issuing CA, itself pinned: one key on both paths",
        _k(),
    ),
    Scenario(
        "xsignleaf",
        "cross-signed issuing CA; the leaf key pinned: both paths pass (rotation risk)",
        _k(("leaf_only_pin", W, 0)),
    ),
)
BY_NAME = {
    s.name: s for s in (*SCENARIOS, *FAULT_SCENARIOS, *PATH_SCENARIOS, *CROSS_SIGN_SCENARIOS)
}


@dataclass(frozen=True)
class FleetEndpoint:
    name: str
    scenario: Scenario
    address: str
    sni: str
    pins: tuple[Pin, ...]
    expires: date | None
    site: Site | None  # None when nothing listens
    offline: tuple[Pin, ...] = ()  # pins written as offline backup keys


@dataclass
class Fleet:
    now: datetime
    endpoints: list[FleetEndpoint]
    anchors: list[Issued]
    # The timeout of endpoints whose scenario is to time out (silent, tarpit, ...):
    # short, so that a scan of them ends soon.
    timeout: float = 2.0
    # Every other endpoint's: generous, so that a busy machine (a loaded CI
    # runner, a fleet server starved of CPU) never turns a healthy endpoint's
    # slow handshake into a timeout its scenario does not promise.
    patient_timeout: float = PATIENT_TIMEOUT
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
            f"  timeout: {self.patient_timeout}s",
            "  trust: trust.pem",
            "  labels: {env: fleet}",
            "endpoints:",
        ]
        for ep in self.endpoints:
            port = next(ports) if ep.site is not None else any_port
            pins = ", ".join(
                f"{{pin: {json.dumps(str(p))}, offline: true}}"
                if p in ep.offline
                else json.dumps(str(p))
                for p in ep.pins
            )
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
            if ep.scenario.client is not None:
                lines[-2] = f"    pinset: {ep.name}-app"
            if ep.scenario.reason == "timeout":
                lines.append(f"    timeout: {self.timeout}s")
        pinsets = [ep for ep in self.endpoints if ep.expires is not None]
        clients = [ep for ep in self.endpoints if ep.scenario.client is not None]
        if pinsets or clients:
            lines.append("pinsets:")
        for ep in clients:
            lines += [
                f"  {ep.name}-app:",
                f"    client: {ep.scenario.client}",
                "    rules:",
                f"      - host: {json.dumps(ep.sni)}",
                "        pins:",
                *(f"          - {json.dumps(str(p))}" for p in ep.pins),
            ]
        if pinsets:
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
        self._inter_a_by_b: Issued | None = None
        self._spare: Pin | None = None

    @property
    def inter_a_by_b(self) -> Issued:
        """Fleet Issuing CA A cross-signed by Fleet Root B (made when first asked for)."""
        if self._inter_a_by_b is None:
            self._inter_a_by_b = self.pki.cross_sign(self.inter_a, self.root_b)
        return self._inter_a_by_b

    @property
    def spare_pin(self) -> Pin:
        """The pin of an offline backup key: a key no certificate carries."""
        if self._spare is None:
            spki = (
                make_key()
                .public_key()
                .public_bytes(
                    serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
                )
            )
            self._spare = pins_of_spki(spki)[0]
        return self._spare

    def offline(self, pins: tuple[Pin, ...]) -> tuple[Pin, ...]:
        """Which of `pins` are offline backup keys."""
        return tuple(p for p in pins if self._spare is not None and p == self._spare)

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

    # --- fault scenarios (FAULT_SCENARIOS) ---

    def tls_options(self, scenario: Scenario) -> dict[str, Any]:
        """TlsConfig options of a scenario's listener beyond its chain."""
        tls10, tls12 = ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_2
        options: dict[str, dict[str, Any]] = {
            "tls10": {"min_version": tls10, "max_version": tls10},
            "mtls": {"client_ca": self.root_a.pem},
            "mtls12": {"client_ca": self.root_a.pem, "max_version": tls12},
        }
        return options.get(scenario.name, {})

    def _bigchain(self, host: str) -> tuple[list[Issued], tuple[Pin, ...], date | None]:
        subject = self.inter_a.cert.subject
        decoys = [self.pki.issue("", subject=subject, ca=True) for _ in range(BIG_CHAIN_DECOYS)]
        return [self.leaf(host), *decoys, self.inter_a], self.standard_pins, None

    def _hugechain(self, host: str) -> tuple[list[Issued], tuple[Pin, ...], date | None]:
        padding = x509.UnrecognizedExtension(
            x509.ObjectIdentifier("1.3.6.1.4.1.55555.2"), b"\x04\x82\x1f\x40" + bytes(8000)
        )
        extra = [self.pki.root(f"Padding {n}", extra_extensions=[(padding, False)])
                 for n in range(HUGE_CHAIN_CERTS)]  # fmt: skip
        return [self.leaf(host), self.inter_a, *extra], self.standard_pins, None

    def _badsan(self, host: str) -> tuple[list[Issued], tuple[Pin, ...], date | None]:
        san = x509.UnrecognizedExtension(
            ExtensionOID.SUBJECT_ALTERNATIVE_NAME, faults.san_with_trailing_byte(host)
        )
        leaf = self.leaf(host, dns=(), extra_extensions=[(san, False)])
        return [leaf, self.inter_a], self.standard_pins, None

    def _negserial(self, host: str) -> tuple[list[Issued], tuple[Pin, ...], date | None]:
        leaf = faults.with_negative_serial(
            self.leaf(host, serial=0x1234_5678_9ABC_DEF0), self.inter_a
        )
        return [leaf, self.inter_a], self.standard_pins, None

    def _sans10k(self, host: str) -> tuple[list[Issued], tuple[Pin, ...], date | None]:
        names = (host, *(f"{n}.x" for n in range(9_999)))  # short: the chain stays < 100 KiB
        return [self.leaf(host, dns=names), self.inter_a], self.standard_pins, None

    def _year9999(self, host: str) -> tuple[list[Issued], tuple[Pin, ...], date | None]:
        leaf = self.leaf(host, not_before=_Y1950, not_after=_Y9999)
        return [leaf, self.inter_a], self.standard_pins, None

    def _year1950(self, host: str) -> tuple[list[Issued], tuple[Pin, ...], date | None]:
        leaf = self.leaf(host, not_before=_Y1950, not_after=_Y1950 + timedelta(days=364))
        return [leaf, self.inter_a], self.standard_pins, None

    def _notbefore9999(self, host: str) -> tuple[list[Issued], tuple[Pin, ...], date | None]:
        leaf = self.leaf(host, not_before=_Y9999, not_after=_Y9999)
        return [leaf, self.inter_a], self.standard_pins, None

    def _crossmesh(self, host: str) -> tuple[list[Issued], tuple[Pin, ...], date | None]:
        attacker = [make_key() for _ in range(CROSS_MESH_KEYS)]
        carried = [self.inter_a.key, *attacker]
        mesh = [
            self.pki.issue(
                "",
                subject=self.inter_a.cert.subject,
                key=carried[n % len(carried)],
                issuer=Issued(self.inter_a.cert, attacker[(n // len(carried)) % len(attacker)]),
                ca=True,
            )
            for n in range(CROSS_MESH_CERTS)
        ]
        return [self.leaf(host), self.inter_a, *mesh], self.standard_pins, None

    def _cross_signed(
        self, host: str, pinned: str
    ) -> tuple[list[Issued], tuple[Pin, ...], date | None]:
        leaf = self.leaf(host)
        pins = {
            "root_a": self.root_a.pin,
            "root_b": self.root_b.pin,
            "inter": self.inter_a.pin,
            "leaf": leaf.pin,
        }
        return [leaf, self.inter_a, self.inter_a_by_b], (pins[pinned], self.spare_pin), None

    def _xsignroota(self, host: str) -> tuple[list[Issued], tuple[Pin, ...], date | None]:
        return self._cross_signed(host, "root_a")

    def _xsignrootb(self, host: str) -> tuple[list[Issued], tuple[Pin, ...], date | None]:
        return self._cross_signed(host, "root_b")

    def _xsigninter(self, host: str) -> tuple[list[Issued], tuple[Pin, ...], date | None]:
        return self._cross_signed(host, "inter")

    def _xsignleaf(self, host: str) -> tuple[list[Issued], tuple[Pin, ...], date | None]:
        return self._cross_signed(host, "leaf")

    def _critext(self, host: str) -> tuple[list[Issued], tuple[Pin, ...], date | None]:
        oid = x509.ObjectIdentifier("1.3.6.1.4.1.55555.1")
        leaf = self.leaf(
            host, extra_extensions=[(x509.UnrecognizedExtension(oid, b"\x05\x00"), True)]
        )
        return [leaf, self.inter_a], self.standard_pins, None


_Y1950 = datetime(1950, 1, 1, tzinfo=timezone.utc)
_Y9999 = datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone.utc)


def build_fleet(
    now: datetime,
    count: int | None = None,
    *,
    scenarios: Sequence[str] | None = None,
    base: int = 1,
    port: int = 0,
    timeout: float = 2.0,
) -> Fleet:
    """`count` endpoints cycling through `scenarios` (all of SCENARIOS by
    default; FAULT_SCENARIOS only when named); port 0 lets each listener pick
    a free port."""
    chosen = [BY_NAME[n] for n in scenarios] if scenarios else list(SCENARIOS)
    total = count if count is not None else len(chosen)
    factory = _Factory(now)
    endpoints: list[FleetEndpoint] = []
    for index in range(total):
        scenario = chosen[index % len(chosen)]
        name = f"{scenario.name}-{index}"
        host = f"{name}.{DOMAIN}"
        address = address_of(index, base) if scenario.resolvable else f"{name}.invalid"
        site: Site | None = None
        pins: tuple[Pin, ...] = factory.standard_pins
        expires: date | None = None
        if scenario.behaviour is Behaviour.TLS and scenario.listening:
            chain, pins, expires = factory.build(scenario, host)
            options = factory.tls_options(scenario)
            config = TlsConfig(Credential.of(chain[0], *chain[1:]), **options)
            site = Site(address, port, Behaviour.TLS, config)
        elif scenario.listening:
            site = Site(address, port, scenario.behaviour)
        endpoints.append(
            FleetEndpoint(name, scenario, address, host, pins, expires, site, factory.offline(pins))
        )
    fleet = Fleet(now, endpoints, [factory.root_a, factory.root_b], timeout)
    fleet.extra["factory"] = factory  # its CAs and keys, to change the fleet between scans
    return fleet
