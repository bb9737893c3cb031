"""``pinaudit preflight``: is it safe to deploy this chain, key or CA?"""

from __future__ import annotations

import argparse
from pathlib import Path

from cryptography import x509

from scanner.chain import CertificateCache
from scanner.cli import options
from scanner.cli.args import Parser, Streams, Subparsers, UsageError
from scanner.errors import CertificateFileError, ConfigError, PinError
from scanner.inventory import load_inventory
from scanner.model import Endpoint, Pin
from scanner.pins import parse_pin, pins_of_spki, spki_der
from scanner.preflight import (
    PreflightResult,
    Verdict,
    ca_lineage,
    leaf_covers,
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
    what = p.add_mutually_exclusive_group()
    what.add_argument(
        "--chain",
        metavar="NEW.pem",
        help="the new chain, leaf first, as it will be served: judged for the endpoints its "
        "leaf names (all of --endpoint/--host when given)",
    )
    what.add_argument(
        "--key-only",
        metavar="NEW_KEY.pem",
        help="only the next leaf key (public key, private key or CSR): is it pinned in "
        "advance, or would CA pins carry it? The CAs come from the trust store, --state and "
        "--ca",
    )
    p.add_argument(
        "--ca",
        metavar="CA.pem",
        help="alone: what if we switch CA: which pin-sets already pin this CA's key or its "
        "issuers' (the file may hold the CA and its issuers; the trust store supplies more). "
        "With --key-only: the CA the new leaf will be issued under (any CA certificates in "
        "the file count, e.g. the chain served today)",
    )
    p.add_argument(
        "--state",
        metavar="FILE",
        help="with --key-only: the state file of the last scan (scan --state), whose issuing "
        "CAs per endpoint a new leaf is likely issued under",
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


def _check_combinations(args: argparse.Namespace) -> None:
    if args.ca and args.chain:
        raise UsageError(
            "--ca goes alone (what if we switch CA?) or with --key-only (the CA the new key's "
            "leaf will be issued under), not with --chain"
        )
    if args.state and not args.key_only:
        raise UsageError("--state goes with --key-only")
    if not (args.chain or args.key_only or args.ca):
        raise UsageError("one of the arguments --chain --key-only --ca is required")


def _read(source: str) -> bytes:
    try:
        return Path(source).read_bytes()
    except OSError as exc:
        raise CertificateFileError(f"{source}: {exc.strerror}") from None


def _ca_certificates(source: str) -> list[x509.Certificate]:
    certs = []
    for der in read_certificates(_read(source), source):
        try:
            certs.append(load_certificate(der)[0])
        except ValueError as exc:
            raise CertificateFileError(f"{source}: a certificate does not parse: {exc}") from None
    return certs


def _issuing(path: str, streams: Streams) -> dict[str, list[tuple[Pin, str]]]:
    """The CAs above the leaf per endpoint, as the last scan's state has them."""
    from scanner.state import load_state

    if not Path(path).exists():
        streams.stderr.write(f"pinaudit preflight: warning: {path}: no such state file\n")
        return {}
    state, warning = load_state(path)
    if warning:
        streams.stderr.write(f"pinaudit preflight: warning: {printable(warning)}\n")
    learnt: dict[str, list[tuple[Pin, str]]] = {}
    for name, entry in state.items():
        for text, subject in entry.issuing:
            try:
                learnt.setdefault(name, []).append((parse_pin(text), subject))
            except PinError:
                continue  # a hand-edited state: that key is not learnt
    return learnt


def _for_the_leaf(
    endpoints: list[Endpoint], chain: list[bytes], explicit: bool, source: str
) -> tuple[list[Endpoint], int, str]:
    """The endpoints a new chain is for: those its leaf names, unless the
    endpoints were picked explicitly; and how many were left out."""
    if explicit or not chain:
        return endpoints, 0, ""
    entry = CertificateCache().get(chain[0])
    if isinstance(entry, str):
        raise CertificateFileError(f"{source}: the leaf does not parse: {entry}")
    leaf = entry[1]
    names = ", ".join(leaf.san_dns + leaf.san_ip) or "no subjectAltName"
    covered = [e for e in endpoints if leaf_covers(leaf, e.server_name)]
    if not covered:
        shown = ", ".join(f"{e.name} for {e.server_name}" for e in endpoints[:5])
        more = " …" if len(endpoints) > 5 else ""
        raise ConfigError(
            f"the new leaf names no endpoint of the inventory (it names {printable(names)}; "
            f"endpoints: {printable(shown)}{more}): pick one with --endpoint or --host"
        )
    return covered, len(endpoints) - len(covered), names


def run(args: argparse.Namespace, streams: Streams) -> ExitStatus:
    from datetime import datetime, timezone

    _check_combinations(args)
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
    skipped, leaf_names = 0, ""
    if args.chain:
        chain = read_certificates(_read(args.chain), args.chain)
        explicit = bool(args.endpoint or args.host)
        endpoints, skipped, leaf_names = _for_the_leaf(endpoints, chain, explicit, args.chain)
        results = preflight_chain(endpoints, chain, stores.get, now)
    elif args.key_only:
        ca_keys: dict[Pin, str] = {}
        for endpoint in endpoints:
            ca_keys.update(stores.get(endpoint.trust).known_keys)
        for cert in _ca_certificates(args.ca) if args.ca else ():
            if _is_ca(cert):
                for pin in pins_of_spki(spki_der(cert)):
                    ca_keys[pin] = cert.subject.rfc4514_string()
        issuing = _issuing(args.state, streams) if args.state else None
        spki = public_key_spki(_read(args.key_only), args.key_only)
        results = preflight_key(endpoints, spki, ca_keys, now, issuing=issuing)
    else:
        certs = _ca_certificates(args.ca)
        anchors = [a for e in endpoints for a in stores.get(e.trust).anchors]
        results = preflight_ca(endpoints, ca_lineage(certs[0], certs[1:] + anchors), now)
    _print(results, skipped, leaf_names, streams)
    failing = (Verdict.BREAKS, Verdict.PATH_DEPENDENT)
    return ExitStatus.FINDINGS if any(r.verdict in failing for r in results) else ExitStatus.OK


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except (x509.ExtensionNotFound, ValueError):
        return False


_LABELS = {
    Verdict.SAFE: "SAFE",
    Verdict.BREAKS: "BREAKS",
    Verdict.PATH_DEPENDENT: "DEPENDS",
    Verdict.NOT_PINNED: "NOT PINNED",
}


def _print(results: list[PreflightResult], skipped: int, names: str, streams: Streams) -> None:
    shown = {id(r): printable(r.endpoint.name) for r in results}
    width = max(len(name) for name in shown.values())
    out = streams.stdout
    for result in results:
        name, reason = shown[id(result)], printable(result.reason)
        out.write(f"{_LABELS[result.verdict]:<10}  {name:<{width}}  {reason}\n")
    if skipped:
        plural = "s" if skipped != 1 else ""
        them = "them" if skipped != 1 else "it"
        out.write(
            f"({skipped} endpoint{plural} not named by the new leaf, which names "
            f"{printable(names)}: not judged; --endpoint or --host judges {them} anyway)\n"
        )
    count = {v: sum(1 for r in results if r.verdict is v) for v in Verdict}
    depends = count[Verdict.PATH_DEPENDENT]
    out.write(
        f"{len(results)} endpoint{'s' if len(results) != 1 else ''}: {count[Verdict.SAFE]} safe, "
        f"{count[Verdict.BREAKS]} would break, "
        + (f"{depends} depend on the path, " if depends else "")
        + f"{count[Verdict.NOT_PINNED]} not pinned\n"
    )
