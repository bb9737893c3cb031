"""Rotation readiness: would an endpoint's pins survive the next rotation? Pure.

Two rotations matter (pinning-semantics §8.7):

- **leaf renewal with a new key, same CA**: survives when, on every path
  clients build, a pin matches a CA certificate (the CA stays), or when a
  backup pin is a spare key: declared an offline backup key, or naming no
  certificate we know — a pre-generated key the renewal can use.
- **switch to another CA**: survives only when a backup pin names a CA key
  we know (a trust-store root or a CA certificate seen in the scan) that is
  not on a current path. An unresolved backup pin might be such a key, but
  nothing shows it, so it does not count.

Neither is ready while the pins fail today: when no path clients build
carries a pin, or only some do (cross-signs), the pinned clients that fail
fail already, whatever the next rotation.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from scanner.model import ChainReport, Pin, PinPath, Pinset

__all__ = ["Readiness", "Rotation", "readiness"]


class Rotation(str, enum.Enum):
    """The `kind` label of ``pinaudit_rotation_ready``."""

    LEAF_RENEWAL = "leaf_renewal"
    CA_SWITCH = "ca_switch"


@dataclass(frozen=True, slots=True)
class Readiness:
    leaf_renewal: bool
    ca_switch: bool
    leaf_renewal_reason: str
    ca_switch_reason: str

    def ready(self, rotation: Rotation) -> bool:
        return self.leaf_renewal if rotation is Rotation.LEAF_RENEWAL else self.ca_switch


def readiness(
    pinset: Pinset | None,
    report: ChainReport | None,
    ca_keys: Mapping[Pin, str],
    paths: Sequence[PinPath] = (),
) -> Readiness | None:
    """None when nothing is pinned (no rotation can break pinning) or no path is known.

    `ca_keys` maps pins of CA certificates known to the scan to their subjects.
    `paths`: every path clients could build, judged against `pinset`
    (``audit.pin_paths``); without them, the report's path alone."""
    if pinset is None or not pinset.pins or report is None or not report.path:
        return None
    if not paths:
        certs = tuple(pc.facts for pc in report.path)
        matched = tuple(p for p in pinset.pins if any(p in c.pins for c in certs))
        paths = (PinPath(certs, matched),)
    passing = [p for p in paths if p.passes]
    if not passing:
        why = "no pin matches a path clients build today: pinned clients fail already"
        return Readiness(False, False, why, why)
    if len(passing) < len(paths):
        why = (
            f"pins match only {len(passing)} of the {len(paths)} paths clients build today: "
            "the clients that build the others fail already"
        )
        return Readiness(False, False, why, why)
    on_paths = {pin for path in paths for cert in path.certs for pin in cert.pins}
    backups = [p for p in pinset.pins if p not in on_paths]
    spare_keys = [p for p in backups if p in pinset.offline or p not in ca_keys]
    other_cas = [p for p in backups if p in ca_keys and p not in pinset.offline]

    # the CA pin of each path: its first matched pin on a certificate above the leaf
    hits = [
        next(((pin, c) for c in path.certs[1:] for pin in path.matched if pin in c.pins), None)
        for path in paths
    ]
    on_ca = [hit for hit in hits if hit is not None]
    if len(on_ca) == len(paths):
        pin, cert = on_ca[0]
        leaf = (True, f"{pin} pins {cert.subject}, which a renewal keeps")
    elif spare_keys:
        kind = "offline backup key" if spare_keys[0] in pinset.offline else "pre-pinned key"
        leaf = (True, f"only if the new leaf uses the {kind} {spare_keys[0]}")
    else:
        leaf = (False, "every pin names the current leaf's key or another CA")

    if other_cas:
        ca = (True, f"backup pin {other_cas[0]} names {ca_keys[other_cas[0]]}")
    elif spare_keys:
        ca = (False, f"backup pin {spare_keys[0]} names no known CA key")
    else:
        ca = (False, "no backup pin names another CA")
    return Readiness(leaf[0], ca[0], leaf[1], ca[1])
