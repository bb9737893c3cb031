"""Rotation readiness: would an endpoint's pins survive the next rotation? Pure.

Two rotations matter (pinning-semantics §8.7):

- **leaf renewal with a new key, same CA**: survives when a pin matches a CA
  certificate of the current path (the CA stays), or when a backup pin names
  no certificate we know — a pre-generated key the renewal can use.
- **switch to another CA**: survives only when a backup pin names a CA key
  we know (a trust-store root or a CA certificate seen in the scan) that is
  not on the current path. An unresolved backup pin might be such a key,
  but nothing shows it, so it does not count.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from scanner.model import ChainReport, Pin, Pinset

__all__ = ["Readiness", "Rotation", "readiness"]


class Rotation(str, enum.Enum):
    """The `kind` label of ``pinaudit_rotation_ready``."""

    LEAF_RENEWAL = "leaf_renewal"
    CA_SWITCH = "ca_switch"


@dataclass(frozen=True)
class Readiness:
    leaf_renewal: bool
    ca_switch: bool
    leaf_renewal_reason: str
    ca_switch_reason: str

    def ready(self, rotation: Rotation) -> bool:
        return self.leaf_renewal if rotation is Rotation.LEAF_RENEWAL else self.ca_switch


def readiness(
    pinset: Pinset | None, report: ChainReport | None, ca_keys: Mapping[Pin, str]
) -> Readiness | None:
    """None when nothing is pinned (no rotation can break pinning) or no path is known.

    `ca_keys` maps pins of CA certificates known to the scan to their subjects."""
    if pinset is None or not pinset.pins or report is None or not report.path:
        return None
    position: dict[Pin, int] = {}
    for index, cert in enumerate(report.path):
        for pin in cert.facts.pins:
            position.setdefault(pin, index)
    on_ca = [p for p in pinset.pins if position.get(p, 0) >= 1]
    backups = [p for p in pinset.pins if p not in position]
    spare_keys = [p for p in backups if p not in ca_keys]
    other_cas = [p for p in backups if p in ca_keys]

    if on_ca:
        subject = report.path[position[on_ca[0]]].facts.subject
        leaf = (True, f"{on_ca[0]} pins {subject}, which a renewal keeps")
    elif spare_keys:
        leaf = (True, f"only if the new leaf uses the pre-pinned key {spare_keys[0]}")
    else:
        leaf = (False, "every pin names the current leaf's key or another CA")

    if other_cas:
        ca = (True, f"backup pin {other_cas[0]} names {ca_keys[other_cas[0]]}")
    elif spare_keys:
        ca = (False, f"backup pin {spare_keys[0]} names no known CA key")
    else:
        ca = (False, "no backup pin names another CA")
    return Readiness(leaf[0], ca[0], leaf[1], ca[1])
