"""CAA (RFC 8659): may the CA that issued the served leaf issue for this name?

Pure: the DNS answers come in (`CaaLookup`, filled by `scanner.probe.lookup_caa`),
a frozen verdict goes out. The relevant record set is the first non-empty CAA
set found climbing from the name towards the root (RFC 8659 §3). ``issue``
governs names, ``issuewild`` wildcard names (falling back to ``issue``). A
property value is an issuer domain (case-insensitive) and optional
parameters, ignored here; an empty domain (``";"``) authorises no one. An
unknown property with the critical flag forbids issuance (§4.1).

Which CAA identifiers a CA answers to is not in its certificates: it is
published by each CA (its CPS §4.2.4, the CCADB). `bundled_identifiers`
ships them for common CAs, keyed by the issuing CA's organisation name, dated
and sourced; an inventory can declare more for any issuer.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from scanner import data

__all__ = [
    "KNOWN_TAGS",
    "MAX_RECORDS",
    "CaIdentifiers",
    "CaaLookup",
    "CaaOutcome",
    "CaaRecord",
    "CaaVerdict",
    "IdentifierTable",
    "bundled_identifiers",
    "caa_name",
    "climb",
    "judge_caa",
    "load_identifiers",
]

MAX_RECORDS = 64  # a larger set is cut: a hostile zone cannot make the judge loop long
KNOWN_TAGS = frozenset({"issue", "issuewild", "iodef", "issuemail", "issuevmc", "contactemail",
                        "contactphone"})  # fmt: skip


@dataclass(frozen=True)
class CaaRecord:
    flags: int
    tag: str  # lower-cased
    value: str

    @property
    def critical(self) -> bool:
        return bool(self.flags & 0x80)


@dataclass(frozen=True)
class CaaLookup:
    """What the DNS said for one name, climbing: the first non-empty set and
    where it was found, or an error (a failed lookup is not "no CAA")."""

    name: str  # the name looked up (the wildcard's base for a wildcard)
    owner: str | None  # where the relevant set was found; None: no CAA up to the root
    records: tuple[CaaRecord, ...] = ()
    error: str | None = None


class CaaOutcome(str, enum.Enum):
    AUTHORIZED = "authorized"
    NOT_AUTHORIZED = "not_authorized"  # the issuer is not among the authorised CAs
    NO_CAA = "no_caa"  # no record set: any CA may issue
    ISSUER_UNKNOWN = "issuer_unknown"  # records exist, the issuer's identifiers are not known
    LOOKUP_FAILED = "lookup_failed"


@dataclass(frozen=True)
class CaaVerdict:
    outcome: CaaOutcome
    name: str
    owner: str | None
    property: str | None  # "issue" or "issuewild": the one that decided
    authorised: tuple[str, ...]  # issuer domains the records name
    detail: str


def _issuer_domain(value: str) -> str:
    """RFC 8659 §4.2: issuer-domain-name, then ``;`` and parameters."""
    return value.split(";", 1)[0].strip().rstrip(".").lower()


def judge_caa(
    lookup: CaaLookup, *, wildcard: bool, issuer_identifiers: frozenset[str] | None
) -> CaaVerdict:
    """Judge one name: `wildcard` when the leaf covers it only by a wildcard;
    `issuer_identifiers` are the CAA domains the leaf's CA answers to (None:
    not known)."""
    if lookup.error is not None:
        return CaaVerdict(CaaOutcome.LOOKUP_FAILED, lookup.name, None, None, (), lookup.error)
    records = lookup.records[:MAX_RECORDS]
    if lookup.owner is None or not records:
        return CaaVerdict(CaaOutcome.NO_CAA, lookup.name, None, None, (), "no CAA records")
    owner = lookup.owner
    critical = sorted({r.tag for r in records if r.critical and r.tag not in KNOWN_TAGS})
    if critical:
        detail = f"the CAA set at {owner} has an unknown critical property: {', '.join(critical)}"
        return CaaVerdict(CaaOutcome.NOT_AUTHORIZED, lookup.name, owner, None, (), detail)
    wild = [r for r in records if r.tag == "issuewild"]
    plain = [r for r in records if r.tag == "issue"]
    chosen, prop = (wild, "issuewild") if wildcard and wild else (plain, "issue")
    if not chosen:
        return CaaVerdict(
            CaaOutcome.NO_CAA, lookup.name, owner, None, (),
            f"the CAA set at {owner} restricts no issuance ({prop} absent)",
        )  # fmt: skip
    authorised = tuple(sorted({d for d in (_issuer_domain(r.value) for r in chosen) if d}))
    if issuer_identifiers is None:
        detail = f"{prop} at {owner} authorises {', '.join(authorised) or 'no CA'}; the issuer's "
        detail += "CAA identifiers are not known"
        return CaaVerdict(CaaOutcome.ISSUER_UNKNOWN, lookup.name, owner, prop, authorised, detail)
    ids = {i.lower() for i in issuer_identifiers}
    if ids & set(authorised):
        return CaaVerdict(
            CaaOutcome.AUTHORIZED, lookup.name, owner, prop, authorised,
            f"{prop} at {owner} authorises {', '.join(sorted(ids & set(authorised)))}",
        )  # fmt: skip
    named = ", ".join(authorised) if authorised else 'no CA (";")'
    detail = f"{prop} at {owner} authorises {named}, not the issuer ({', '.join(sorted(ids))})"
    return CaaVerdict(CaaOutcome.NOT_AUTHORIZED, lookup.name, owner, prop, authorised, detail)


def caa_name(server_name: str, san_dns: Sequence[str]) -> tuple[str, bool]:
    """The name whose CAA set governs `server_name` in this leaf, and whether
    issuance was by wildcard: the name itself when the leaf lists it, else the
    base of the wildcard that covers it (RFC 8659 §3: ``*.example.com`` is
    looked up at example.com with issuewild)."""
    name = server_name.rstrip(".").lower()
    names = {n.rstrip(".").lower() for n in san_dns}
    if name in names or "." not in name:
        return name, False
    parent = name.split(".", 1)[1]
    if f"*.{parent}" in names:
        return parent, True
    return name, False


def climb(name: str) -> list[str]:
    """The names RFC 8659 §3 queries, the name first, the TLD last, the root never."""
    labels = name.rstrip(".").split(".")
    return [".".join(labels[i:]) for i in range(min(len(labels), 127))]


# --------------------------------------------------------------------------- identifiers


@dataclass(frozen=True)
class CaIdentifiers:
    ca: str
    organizations: tuple[str, ...]  # issuer O= values that identify this CA's intermediates
    identifiers: frozenset[str]
    source: str


@dataclass(frozen=True)
class IdentifierTable:
    date: str
    entries: tuple[CaIdentifiers, ...]

    def for_issuer(self, organization: str | None) -> frozenset[str] | None:
        if organization is None:
            return None
        key = organization.casefold()
        for entry in self.entries:
            if key in (o.casefold() for o in entry.organizations):
                return entry.identifiers
        return None

    def with_declared(self, declared: Mapping[str, Sequence[str]]) -> IdentifierTable:
        """The table plus inventory declarations (organisation → identifiers),
        which take precedence."""
        extra = tuple(
            CaIdentifiers(org, (org,), frozenset(i.lower() for i in ids), "inventory")
            for org, ids in declared.items()
        )
        return IdentifierTable(self.date, extra + self.entries)


def load_identifiers(text: str) -> IdentifierTable:
    doc = json.loads(text)
    entries = tuple(
        CaIdentifiers(
            e["ca"],
            tuple(e["issuer_organizations"]),
            frozenset(i.lower() for i in e["identifiers"]),
            e["source"],
        )
        for e in doc["cas"]
    )
    return IdentifierTable(doc["date"], entries)


def bundled_identifiers() -> IdentifierTable:
    return load_identifiers(data.text("caa_identifiers.json"))
