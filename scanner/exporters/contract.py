"""The metric contract: every family's name, labels, help and scope. Pure.

This is what ``deploy/`` (alert rules, the dashboard) and users' own rules
are built on; the metric docs table is written from ``SPECS`` and a test
keeps the two equal. Adding a family is fine; renaming one needs a migration
note. Label names pinaudit sets itself (and Prometheus' target labels) are
``RESERVED_LABELS``: the inventory refuses them as label names, so that
inventory labels never need rewriting.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from scanner.model import ProbeErrorKind

__all__ = [
    "BY_NAME",
    "INTERNAL_ERROR_REASON",
    "MAX_CHAIN_POSITIONS",
    "MAX_INFO_VALUE",
    "NOT_SCANNED_REASON",
    "ORDER",
    "PROBE_ERROR_REASONS",
    "RESERVED_LABELS",
    "ROLES",
    "SPECS",
    "MetricSpec",
    "Scope",
    "own_label_names",
]

# Labels pinaudit puts on its own series plus Prometheus' target labels: an
# inventory label with one of these names would clash (the inventory loader
# refuses it, so label names never need rewriting).
RESERVED_LABELS = frozenset(
    {
        "endpoint",
        "address",
        "reason",
        "check",
        "severity",
        "pinset",
        "position",
        "role",
        "subject",
        "issuer",
        "spki_sha256",
        "serial",
        "result",
        "version",
        "revision",
        "python_version",
        "kind",
        "cipher",
        "alpn",
        "ocsp_status",
        "ct_policy",
        "caa_outcome",
        "instance",
        "job",
    }
)

# Certificates exported per chain: bounds `position` when a server sends a
# long chain that does not validate (a validated path is short anyway).
MAX_CHAIN_POSITIONS = 10
# Longest subject/issuer label value on pinaudit_leaf_info (longer ones end in "…").
MAX_INFO_VALUE = 256
# `reason` of an endpoint the scan's global deadline left unprobed, and of one
# whose judgement hit a bug (its internal_error finding).
NOT_SCANNED_REASON = "not_scanned"
INTERNAL_ERROR_REASON = "internal_error"
PROBE_ERROR_REASONS = (
    *(kind.value for kind in ProbeErrorKind),
    NOT_SCANNED_REASON,
    INTERNAL_ERROR_REASON,
)
ROLES = ("leaf", "intermediate", "root", "other")


class Scope(str, enum.Enum):
    """Which labels a family's series carry besides its own."""

    ADDRESS = "address"  # endpoint + inventory labels (+ address with all_addresses)
    ENDPOINT = "endpoint"  # endpoint + inventory labels
    SCAN = "scan"  # one per scan
    PROCESS = "process"  # one per process


@dataclass(frozen=True)
class MetricSpec:
    name: str
    help: str
    labels: tuple[str, ...] = ()  # besides those of the scope
    scope: Scope = Scope.ENDPOINT
    exporter_only: bool = False  # only served by `scan --serve`


SPECS: tuple[MetricSpec, ...] = (
    MetricSpec(
        "pinaudit_endpoint_up",
        "1 when the last probe completed a TLS handshake and read a chain, else 0.",
        scope=Scope.ADDRESS,
    ),
    MetricSpec(
        "pinaudit_last_success_timestamp_seconds",
        "When a chain was last read from the endpoint (end of that scan), Unix time.",
        scope=Scope.ADDRESS,
    ),
    MetricSpec(
        "pinaudit_probe_error",
        "1 for the reason the last probe failed (closed set); absent when it succeeded.",
        ("reason",),
        Scope.ADDRESS,
    ),
    MetricSpec(
        "pinaudit_handshake_duration_seconds",
        "TCP connect plus TLS handshake time of the last probe.",
        scope=Scope.ADDRESS,
    ),
    MetricSpec(
        "pinaudit_tls_info",
        "1 for the TLS version, cipher and ALPN protocol the last handshake negotiated.",
        ("version", "cipher", "alpn"),
        Scope.ADDRESS,
    ),
    MetricSpec(
        "pinaudit_ocsp_status",
        "1 for what the stapled OCSP response says (good, revoked, unknown, absent, "
        "invalid); only for endpoints with ocsp: true.",
        ("ocsp_status",),
        Scope.ADDRESS,
    ),
    MetricSpec(
        "pinaudit_ocsp_next_update_timestamp_seconds",
        "When the stapled OCSP response expires (its nextUpdate), Unix time.",
        scope=Scope.ADDRESS,
    ),
    MetricSpec(
        "pinaudit_ct_compliant",
        "1 when the leaf's SCTs satisfy the CT policy, 0 when not; only for publicly "
        "trusted leaves of endpoints with ct: set.",
        ("ct_policy",),
        Scope.ADDRESS,
    ),
    MetricSpec(
        "pinaudit_caa_result",
        "1 for how the name's CAA records judge the leaf's issuer (authorized, "
        "not_authorized, no_caa, issuer_unknown, lookup_failed); only with caa: true.",
        ("caa_outcome",),
        Scope.ADDRESS,
    ),
    MetricSpec(
        "pinaudit_pin_match",
        "1 when a declared pin matches a key of the path, or of one of the paths "
        "cross-signs let clients build; 0 when none does (drift); absent when no pins "
        "are declared.",
        scope=Scope.ADDRESS,
    ),
    MetricSpec(
        "pinaudit_pin_paths",
        "Paths clients could build (cross-signs give several) on which a declared pin "
        "matches (result=match) or none does (result=mismatch); absent when no pins are "
        "declared.",
        ("result",),
        Scope.ADDRESS,
    ),
    MetricSpec(
        "pinaudit_pins_enforced",
        "1 while the pin-set is in force, 0 from its expiration on (or when it is empty).",
    ),
    MetricSpec(
        "pinaudit_pinset_expiry_timestamp_seconds",
        "When the pin-set stops being enforced (00:00 UTC of its expires date), Unix time.",
        ("pinset",),
    ),
    MetricSpec(
        "pinaudit_backup_pins",
        "Declared pins that match no certificate of the current paths.",
        scope=Scope.ADDRESS,
    ),
    MetricSpec(
        "pinaudit_chain_valid",
        "1 when the path validates against the trust store and hostname at the scan's "
        "time, else 0.",
        scope=Scope.ADDRESS,
    ),
    MetricSpec(
        "pinaudit_cert_not_after_timestamp_seconds",
        "Expiry of each certificate of the path (position 0 = leaf), or of the served "
        "chain when no path exists, Unix time.",
        ("position", "role"),
        Scope.ADDRESS,
    ),
    MetricSpec(
        "pinaudit_offpath_cert_not_after_timestamp_seconds",
        "Expiry of each served certificate that is not on the path (position = where it "
        "was served), Unix time.",
        ("position", "role"),
        Scope.ADDRESS,
    ),
    MetricSpec(
        "pinaudit_chain_expiry_timestamp_seconds",
        "Earliest expiry among the certificates of the path, Unix time.",
        scope=Scope.ADDRESS,
    ),
    MetricSpec(
        "pinaudit_leaf_info",
        "Facts of the served leaf (the first certificate sent); value 1.",
        ("subject", "issuer", "spki_sha256", "serial"),
        Scope.ADDRESS,
    ),
    MetricSpec(
        "pinaudit_chain_divergence",
        "Distinct chains served across the endpoint's addresses (1 = consistent).",
    ),
    MetricSpec(
        "pinaudit_rotation_ready",
        "1 when the pins survive this rotation (leaf_renewal: a new leaf key under the same "
        "CA; ca_switch: a move to another CA); absent when nothing is pinned.",
        ("kind",),
    ),
    MetricSpec(
        "pinaudit_leaf_key_changed_timestamp_seconds",
        "When a new leaf key was first seen (needs --state), Unix time.",
    ),
    MetricSpec(
        "pinaudit_findings",
        "Findings of each check and severity in the last scan (absent = none).",
        ("check", "severity"),
    ),
    MetricSpec(
        "pinaudit_scan_duration_seconds",
        "Duration of the last complete scan.",
        scope=Scope.SCAN,
    ),
    MetricSpec(
        "pinaudit_scan_timestamp_seconds",
        "When the last complete scan finished, Unix time.",
        scope=Scope.SCAN,
    ),
    MetricSpec(
        "pinaudit_scan_endpoints",
        "Endpoints of the last complete scan per outcome (ok, drift, error).",
        ("result",),
        Scope.SCAN,
    ),
    MetricSpec(
        "pinaudit_scan_shards",
        "Shards the inventory is split into (N of --shard I/N); absent without --shard.",
        scope=Scope.SCAN,
    ),
    MetricSpec(
        "pinaudit_scan_interval_seconds",
        "Time between the starts of two scans (--interval).",
        scope=Scope.SCAN,
        exporter_only=True,
    ),
    MetricSpec(
        "pinaudit_build_info",
        "pinaudit version, source revision (unknown when not recorded at build time) and "
        "Python version; value 1.",
        ("version", "revision", "python_version"),
        Scope.PROCESS,
    ),
    MetricSpec(
        "pinaudit_inventory_reload_success",
        "1 when the last inventory (re)load succeeded, 0 when it failed and the previous "
        "inventory is still in use.",
        scope=Scope.PROCESS,
        exporter_only=True,
    ),
    MetricSpec(
        "pinaudit_inventory_reload_timestamp_seconds",
        "When the inventory was last (re)loaded or a reload was attempted, Unix time.",
        scope=Scope.PROCESS,
        exporter_only=True,
    ),
    MetricSpec(
        "pinaudit_config_last_reload_successful",
        "1 when the last inventory reload (SIGHUP, POST /-/reload) succeeded, else 0; named "
        "as Prometheus names its own.",
        scope=Scope.PROCESS,
        exporter_only=True,
    ),
    MetricSpec(
        "pinaudit_config_last_reload_success_timestamp_seconds",
        "When the inventory was last loaded successfully (start or reload), Unix time.",
        scope=Scope.PROCESS,
        exporter_only=True,
    ),
)
BY_NAME = {spec.name: spec for spec in SPECS}
ORDER = {spec.name: n for n, spec in enumerate(SPECS)}


def own_label_names() -> frozenset[str]:
    """Every label name pinaudit itself puts on a series."""
    return frozenset({"endpoint", "address"} | {label for s in SPECS for label in s.labels})
