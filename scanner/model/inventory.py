"""What an inventory declares: pin-sets, endpoints with every default applied."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date

from scanner.model.base import Location, Pin, Severity, TrustKind, TrustSpec
from scanner.model.policy import ClientPolicy

__all__ = ["CERTIFI", "Endpoint", "Inventory", "Pinset"]

CERTIFI = TrustSpec(TrustKind.CERTIFI)  # the default trust store


@dataclass(frozen=True, slots=True)
class Pinset:
    """A named set of pins with an optional enforcement end date.

    ``expires`` follows Android ``pin-set expiration`` / TrustKit
    ``TSKExpirationDate``: the pins are enforced *before* 00:00 UTC of that
    date and not from then on.

    ``offline``: pins declared as offline backup keys (a key kept offline,
    never served, to move to when the current key or CA has to go). They
    are part of ``pins``; being unknown to the scan is their point, and one
    that shows up on a served chain is no backup any more.
    """

    name: str
    pins: tuple[Pin, ...]
    expires: date | None = None
    location: Location | None = field(default=None, compare=False)
    offline: frozenset[Pin] = frozenset()


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One TLS endpoint from the inventory, with every default applied."""

    name: str
    host: str
    port: int
    sni: str | None  # name sent in the ClientHello; None = no SNI
    pinset: Pinset | None  # effective pins: named pinset plus inline pins
    timeout: float = 5.0  # seconds: DNS + connect + handshake
    warn_days: int = 30
    critical_days: int = 7
    pinset_warn_days: int = 60
    trust: TrustSpec = CERTIFI
    labels: tuple[tuple[str, str], ...] = ()
    location: Location | None = field(default=None, compare=False)
    all_addresses: bool = False  # probe every resolved address, not only the first
    client_cert: str | None = None  # PEM chain for mTLS endpoints
    client_key: str | None = None  # its key (None: in the same file)
    # client pin configurations that apply (inventory `from:`/`client:` pin-sets)
    client_policies: tuple[ClientPolicy, ...] = ()
    starttls: str | None = None  # a scanner.starttls.Starttls value: speak it before TLS
    proxy: str | None = None  # proxy URL (http://, socks5://, socks5h://)
    direct: bool = False  # `proxy: false`: never a proxy, not even --proxy-from-env's
    ocsp: bool = False  # ask for the OCSP staple and judge it
    ct: tuple[str, ...] = ()  # CT policies to judge a publicly trusted leaf by: chrome, apple
    caa: bool = False  # look up CAA and judge the leaf's issuer against it
    # issuer organisation → its CAA identifiers, declared in the inventory (they
    # take precedence over the bundled table): for a private or unlisted CA
    caa_identifiers: tuple[tuple[str, tuple[str, ...]], ...] = ()
    tls_min_version: str = "TLSv1.2"  # an older negotiated version is a finding
    tls_version_severity: Severity = Severity.WARNING

    @property
    def server_name(self) -> str:
        """The name the certificate must be valid for (SNI, else the host)."""
        return self.sni or self.host

    @property
    def label_map(self) -> dict[str, str]:
        return dict(self.labels)


@dataclass(frozen=True, slots=True)
class Inventory:
    endpoints: tuple[Endpoint, ...]
    pinsets: Mapping[str, Pinset]
    files: tuple[str, ...]  # every file read, the root first
    # pin-sets that follow a client's rules (`from:` a config file, or `client:` + `rules:`)
    policies: Mapping[str, ClientPolicy] = field(default_factory=dict)
