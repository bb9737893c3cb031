"""``pinaudit preflight``: is it safe to deploy this chain, key or CA?"""

from __future__ import annotations

import argparse
from pathlib import Path

from scanner.cli import options
from scanner.cli.args import Parser, Streams, Subparsers
from scanner.errors import CertificateFileError, ConfigError
from scanner.inventory import load_inventory
from scanner.model import Pin
from scanner.preflight import (
    Verdict,
    ca_lineage,
    preflight_ca,
    preflight_chain,
    preflight_key,
    public_key_spki,
)
from scanner.safetext import printable
from scanner.status import ExitStatus
from scanner.trust import TrustStores, load_certificate, read_certificates

__all__ = ["add_parser", "run"]


def add_parser(sub: Subparsers[Parser]) -> None:
    p = sub.add_parser(
        "preflight",
        help="is it safe to deploy this chain, key or CA? (exit 0 safe, 1 would break)",
        description="Judge a chain, a key or a CA that is not deployed yet against the "
        "pin-sets of the inventory's endpoints, before anyone deploys it. Nothing is "
        "contacted over the network.",
    )
    p.add_argument("--inventory", "-i", required=True, metavar="FILE", help="inventory YAML")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument(
        "--chain", metavar="NEW.pem", help="the new chain, leaf first, as it will be served"
    )
    what.add_argument(
        "--key-only",
        metavar="NEW_KEY.pem",
        help="only the next leaf key (public key, private key or CSR): is it pinned in "
        "advance, or would CA pins carry it?",
    )
    what.add_argument(
        "--ca",
        metavar="NEW_CA.pem",
        help="what if we switch CA: which pin-sets already pin this CA's key or its "
        "issuers' (the file may hold the CA and its issuers; the trust store supplies more)",
    )
    p.add_argument(
        "--endpoint", action="append", default=[], metavar="NAME", help="only this endpoint"
    )
    p.add_argument(
        "--host",
        action="append",
        default=[],
        metavar="NAME",
        help="only endpoints for this host or SNI",
    )
    p.add_argument("--now", metavar="DATE", help="judge as of this date (default: now)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, streams: Streams) -> ExitStatus:
    from datetime import datetime, timezone

    inventory = load_inventory(args.inventory)
    endpoints = [
        e
        for e in inventory.endpoints
        if (not args.endpoint or e.name in args.endpoint)
        and (not args.host or e.host in args.host or e.sni in args.host)
    ]
    if not endpoints:
        names = ", ".join(e.name for e in inventory.endpoints[:10])
        more = " …" if len(inventory.endpoints) > 10 else ""
        known = f" (endpoints: {names}{more})" if names else " (the inventory has none)"
        raise ConfigError(f"no endpoint of the inventory matches --endpoint/--host{known}")
    now = options.now(args.now) or datetime.now(timezone.utc)
    stores = TrustStores()
    source = args.chain or args.key_only or args.ca
    try:
        data = Path(source).read_bytes()
    except OSError as exc:
        raise CertificateFileError(f"{source}: {exc.strerror}") from None
    if args.chain:
        results = preflight_chain(endpoints, read_certificates(data, source), stores.get, now)
    elif args.key_only:
        ca_keys: dict[Pin, str] = {}
        for endpoint in endpoints:
            ca_keys.update(stores.get(endpoint.trust).known_keys)
        results = preflight_key(endpoints, public_key_spki(data, source), ca_keys, now)
    else:
        certs = []
        for der in read_certificates(data, source):
            try:
                certs.append(load_certificate(der)[0])
            except ValueError as exc:
                raise CertificateFileError(
                    f"{source}: a certificate does not parse: {exc}"
                ) from None
        anchors = [a for e in endpoints for a in stores.get(e.trust).anchors]
        results = preflight_ca(endpoints, ca_lineage(certs[0], certs[1:] + anchors), now)
    shown = {id(r): printable(r.endpoint.name) for r in results}
    width = max(len(name) for name in shown.values())
    labels = {Verdict.SAFE: "SAFE", Verdict.BREAKS: "BREAKS", Verdict.NOT_PINNED: "NOT PINNED"}
    out = streams.stdout
    for result in results:
        name, reason = shown[id(result)], printable(result.reason)
        out.write(f"{labels[result.verdict]:<10}  {name:<{width}}  {reason}\n")
    breaks = sum(1 for r in results if r.verdict is Verdict.BREAKS)
    safe = sum(1 for r in results if r.verdict is Verdict.SAFE)
    out.write(
        f"{len(results)} endpoint{'s' if len(results) != 1 else ''}: {safe} safe, "
        f"{breaks} would break, {len(results) - safe - breaks} not pinned\n"
    )
    return ExitStatus.FINDINGS if breaks else ExitStatus.OK
