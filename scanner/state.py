"""What was seen last time: drift since the previous scan (``--state FILE``).

Per endpoint the state keeps the served leaf key, the leaf's issuer key and
a fingerprint of the served chain, each with when it was first and last
seen, and the keys of the CAs above the leaf on the paths clients build
(``issuing``: what ``preflight --key-only --state`` learns pinned
intermediates from). `advance` is pure: previous state + results + the scan's time → the
new state and the findings (key changed, issuer changed, chain changed).
`load_state`/`save_state` read and write the versioned JSON file; a missing
file is a fresh start, a corrupt one a warning and a fresh start, and the
file is replaced atomically.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any

from scanner.audit import CATALOGUE, sort_findings
from scanner.exporters.files import write_atomic
from scanner.model import Check, Finding
from scanner.results import EndpointResult, ResultStatus

__all__ = [
    "STATE_VERSION",
    "EndpointState",
    "Seen",
    "State",
    "advance",
    "chain_fingerprint",
    "dumps",
    "load_state",
    "loads",
    "save_state",
]

STATE_VERSION = 1
# A state holds a few hundred bytes per endpoint: far beyond any real inventory.
MAX_STATE_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class Seen:
    """A value and the first and last scan that saw it."""

    value: str
    first_seen: datetime
    last_seen: datetime


@dataclass(frozen=True)
class EndpointState:
    leaf_key: Seen
    issuer_key: Seen | None  # None when the path had no issuer (self-signed leaf)
    chain: Seen
    leaf_key_changed_at: datetime | None = None  # when a different leaf key was first seen
    # (pin, subject) of each CA above the leaf on the paths of the last scan
    issuing: tuple[tuple[str, str], ...] = ()


State = Mapping[str, EndpointState]


def chain_fingerprint(served: Sequence[bytes]) -> str:
    digest = hashlib.sha256()
    for der in served:
        digest.update(hashlib.sha256(der).digest())
    return "sha256:" + digest.hexdigest()


def _observed(result: EndpointResult) -> tuple[str, str | None, str] | None:
    """(leaf key pin, issuer key pin, chain fingerprint) of the primary address."""
    primary = result.primary
    if primary is None or primary.observation is None or primary.report is None:
        return None
    report = primary.report
    leaf = report.leaf
    if leaf is None:
        return None
    issuer = str(report.path[1].facts.spki_sha256) if len(report.path) > 1 else None
    return str(leaf.spki_sha256), issuer, chain_fingerprint(primary.observation.served)


# A path holds a handful of CAs; cross-signs give a few paths (paths.MAX_PATHS).
MAX_ISSUING = 32


def _issuing(result: EndpointResult) -> tuple[tuple[str, str], ...]:
    """(pin, subject) of the CAs above the leaf on the primary address's paths:
    the validated (or diagnostic) path, then the others cross-signs allow."""
    primary = result.primary
    if primary is None or primary.report is None:
        return ()
    paths = [tuple(pc.facts for pc in primary.report.path)]
    paths += [p.certs for p in primary.pin_paths]
    found: dict[str, str] = {}
    for path in paths:
        for facts in path[1:]:
            found.setdefault(str(facts.spki_sha256), facts.subject)
    return tuple(found.items())[:MAX_ISSUING]


def _seen(previous: Seen | None, value: str, now: datetime) -> Seen:
    if previous is not None and previous.value == value:
        return replace(previous, last_seen=now)
    return Seen(value, now, now)


def _finding(check: Check, message: str) -> Finding:
    return Finding(check, CATALOGUE[check][0], message)


def _since(seen: Seen) -> str:
    return f"seen {seen.first_seen:%Y-%m-%d %H:%M}Z to {seen.last_seen:%Y-%m-%d %H:%M}Z"


def advance(
    previous: State, results: Sequence[EndpointResult], now: datetime
) -> tuple[dict[str, EndpointState], list[EndpointResult]]:
    """The new state, and the results with drift findings added. Endpoints not
    observed this time (probe failed, not in this scan) keep their entry."""
    now = now.replace(microsecond=0)  # the file's resolution: memory and file agree
    state = dict(previous)
    updated = []
    for result in results:
        observed = _observed(result)
        if observed is None:
            updated.append(result)
            continue
        leaf_key, issuer_key, chain = observed
        old = previous.get(result.endpoint.name)
        findings: list[Finding] = []
        changed_at = old.leaf_key_changed_at if old else None
        if old is not None:
            if old.leaf_key.value != leaf_key:
                changed_at = now
                findings.append(
                    _finding(
                        Check.KEY_CHANGED,
                        f"leaf key changed from {old.leaf_key.value} ({_since(old.leaf_key)}) "
                        f"to {leaf_key}",
                    )
                )
            if old.issuer_key is not None and issuer_key not in (None, old.issuer_key.value):
                findings.append(
                    _finding(
                        Check.ISSUER_CHANGED,
                        f"issuer key changed from {old.issuer_key.value} "
                        f"({_since(old.issuer_key)}) to {issuer_key}",
                    )
                )
            if old.chain.value != chain and not findings:
                findings.append(
                    _finding(
                        Check.CHAIN_CHANGED,
                        f"served chain changed ({_since(old.chain)}) with the same leaf and "
                        "issuer keys",
                    )
                )
        state[result.endpoint.name] = EndpointState(
            leaf_key=_seen(old.leaf_key if old else None, leaf_key, now),
            issuer_key=_seen(old.issuer_key if old else None, issuer_key, now)
            if issuer_key
            else None,
            chain=_seen(old.chain if old else None, chain, now),
            leaf_key_changed_at=changed_at,
            issuing=_issuing(result),
        )
        if findings:
            merged = sort_findings((*result.findings, *findings))
            status = result.status
            if status is ResultStatus.OK and any(f.severity.rank > 0 for f in findings):
                status = ResultStatus.DRIFT
            result = replace(result, findings=merged, status=status)  # noqa: PLW2901
        updated.append(replace(result, key_changed_at=changed_at))
    return state, updated


# --- the file ---------------------------------------------------------------


def _time(text: str) -> datetime:
    """An ISO 8601 time as aware UTC; ValueError/OverflowError when it is not one
    or lies outside what `datetime` can hold in UTC."""
    if not isinstance(text, str):
        raise TypeError(f"a time must be a string, got {type(text).__name__}")
    when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    when = when if when.tzinfo else when.replace(tzinfo=timezone.utc)
    return when.astimezone(timezone.utc)


def _stamp(when: datetime) -> str:
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _seen_json(seen: Seen | None) -> dict[str, str] | None:
    if seen is None:
        return None
    return {
        "value": seen.value,
        "first_seen": _stamp(seen.first_seen),
        "last_seen": _stamp(seen.last_seen),
    }


def _seen_of(data: Any) -> Seen | None:
    if data is None:
        return None
    return Seen(str(data["value"]), _time(data["first_seen"]), _time(data["last_seen"]))


def dumps(state: State) -> str:
    endpoints = {
        name: {
            "leaf_key": _seen_json(entry.leaf_key),
            "issuer_key": _seen_json(entry.issuer_key),
            "chain": _seen_json(entry.chain),
            "leaf_key_changed_at": _stamp(entry.leaf_key_changed_at)
            if entry.leaf_key_changed_at
            else None,
            "issuing": [{"spki_sha256": pin, "subject": subject} for pin, subject in entry.issuing],
        }
        for name, entry in sorted(state.items())
    }
    return json.dumps({"version": STATE_VERSION, "endpoints": endpoints}, indent=1) + "\n"


def loads(text: str) -> dict[str, EndpointState]:
    """Parse a state file. Raises ValueError (with the reason) when it is not one,
    whatever is wrong with it: not JSON, nested beyond the parser's depth, a
    field of the wrong type, a time that is not ISO 8601 or out of range."""
    try:
        doc = json.loads(text)
        if not isinstance(doc, dict) or doc.get("version") != STATE_VERSION:
            raise ValueError(f"not a version {STATE_VERSION} pinaudit state file")
        endpoints = doc["endpoints"]
        if not isinstance(endpoints, dict):
            raise TypeError("endpoints is not an object")
        state = {}
        for name, data in endpoints.items():
            leaf, chain = _seen_of(data["leaf_key"]), _seen_of(data["chain"])
            if leaf is None or chain is None:
                raise ValueError(f"endpoint {name!r}: leaf_key and chain are required")
            changed = data.get("leaf_key_changed_at")
            issuing = tuple(
                (str(ca["spki_sha256"]), str(ca["subject"]))
                for ca in data.get("issuing", ())[:MAX_ISSUING]
            )
            state[str(name)] = EndpointState(
                leaf,
                _seen_of(data.get("issuer_key")),
                chain,
                _time(changed) if changed else None,
                issuing,
            )
        return state
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON ({exc})") from None
    except RecursionError:
        raise ValueError("not a state file (JSON nested too deeply)") from None
    except (KeyError, TypeError, AttributeError, OverflowError) as exc:
        raise ValueError(f"malformed state file ({type(exc).__name__}: {exc})") from None


def load_state(path: str | os.PathLike[str]) -> tuple[dict[str, EndpointState], str | None]:
    """(state, warning): a missing file is a fresh start without warning; an
    unreadable, oversized or corrupt one, or one that is not a regular file (a
    pipe would block the read), is a fresh start with a warning naming why."""
    where = os.fspath(path)
    try:
        mode = os.stat(path).st_mode
        if not stat.S_ISREG(mode):
            return {}, f"{where}: not a regular file; starting a fresh state"
        with open(path, "rb") as handle:
            data = handle.read(MAX_STATE_BYTES + 1)
    except FileNotFoundError:
        return {}, None
    except (OSError, ValueError) as exc:
        return {}, f"{where}: cannot read state ({exc}); starting a fresh state"
    if len(data) > MAX_STATE_BYTES:
        return {}, f"{where}: larger than {MAX_STATE_BYTES} bytes; starting a fresh state"
    try:
        return loads(data.decode("utf-8")), None
    except UnicodeDecodeError:
        return {}, f"{where}: not UTF-8; starting a fresh state"
    except ValueError as exc:
        return {}, f"{where}: {exc}; starting a fresh state"


def save_state(path: str | os.PathLike[str], state: State) -> None:
    write_atomic(path, dumps(state))
