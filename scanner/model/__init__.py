"""Frozen value objects and enums shared by every layer.

Nothing here does I/O or reads the clock; every type is immutable so results
can be shared between the engine, the exporters and the state file safely.
Import them from here (``from scanner.model import Pin``); the submodules
group them by subject: ``base`` (severities, check codes, pins, positions,
trust specs, findings), ``policy`` (client pin policies and verdicts),
``inventory`` (pin-sets, endpoints), ``chain`` (certificate facts, paths),
``probe`` (observations and probe failures).
"""

from scanner.model.base import (
    Check,
    Finding,
    HashAlg,
    KeyType,
    Location,
    Pin,
    PinFormat,
    Severity,
    TrustKind,
    TrustSpec,
)
from scanner.model.chain import (
    CertFacts,
    ChainReport,
    PathCert,
    PathStatus,
    PinPath,
    ServedCert,
)
from scanner.model.inventory import (
    Endpoint,
    Inventory,
    Pinset,
)
from scanner.model.policy import (
    CONFIG_KINDS,
    DEFAULT_OKHTTP_PLATFORM,
    DEFAULT_OKHTTP_VERSION,
    OKHTTP_PLATFORMS,
    OKHTTP_VERSIONS,
    Client,
    ClientPolicy,
    ClientVerdict,
    ConfigProblem,
    HostMode,
    PathVerdict,
    Platform,
    PolicyRule,
    Verdict,
)
from scanner.model.probe import (
    Observation,
    Phase,
    ProbeErrorKind,
    ProbeFailure,
)

__all__ = [
    "CONFIG_KINDS",
    "DEFAULT_OKHTTP_PLATFORM",
    "DEFAULT_OKHTTP_VERSION",
    "OKHTTP_PLATFORMS",
    "OKHTTP_VERSIONS",
    "CertFacts",
    "ChainReport",
    "Check",
    "Client",
    "ClientPolicy",
    "ClientVerdict",
    "ConfigProblem",
    "Endpoint",
    "Finding",
    "HashAlg",
    "HostMode",
    "Inventory",
    "KeyType",
    "Location",
    "Observation",
    "PathCert",
    "PathStatus",
    "PathVerdict",
    "Phase",
    "Pin",
    "PinFormat",
    "PinPath",
    "Pinset",
    "Platform",
    "PolicyRule",
    "ProbeErrorKind",
    "ProbeFailure",
    "ServedCert",
    "Severity",
    "TrustKind",
    "TrustSpec",
    "Verdict",
]
