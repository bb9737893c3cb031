"""``pinaudit import``: the inventory equivalent to a client's pin configuration."""

from __future__ import annotations

import argparse
import re
from dataclasses import replace

from scanner.cli.args import Parser, Streams, Subparsers, UsageError
from scanner.cli.validate import client_warnings
from scanner.inventory.copy import inventory_text
from scanner.model import CONFIG_KINDS, OKHTTP_PLATFORMS, OKHTTP_VERSIONS, Platform
from scanner.status import ExitStatus

__all__ = ["add_parser", "run"]

_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")


def add_parser(sub: Subparsers[Parser]) -> None:
    p = sub.add_parser(
        "import",
        help="print the inventory equivalent to a client's pin configuration",
        description="Read a client pin configuration (Android network-security-config, OkHttp "
        "CertificatePinner source or list, TrustKit, iOS NSPinnedDomains, HPKP headers, "
        "Chromium static pins) and print an inventory with the same pins, host rules and "
        "expiry, and one endpoint per exact host. What the client itself would reject is "
        "kept (errors:) and printed as warnings.",
    )
    p.add_argument("kind", choices=CONFIG_KINDS, help="the kind of file")
    p.add_argument("file", metavar="FILE", help="the configuration file")
    p.add_argument("--name", help="pin-set name (default: the file's stem)")
    p.add_argument(
        "--pins",
        metavar="FILE",
        help="chromium: the .pins file (default: FILE with the suffix .pins)",
    )
    p.add_argument(
        "--platform",
        choices=[platform.value for platform in OKHTTP_PLATFORMS],
        help="okhttp: where the app runs (default android; jvm: OkHttp's own chain cleaner)",
    )
    p.add_argument(
        "--okhttp-version",
        type=int,
        choices=OKHTTP_VERSIONS,
        help="okhttp: the OkHttp major version whose rules read the file (default 4)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace, streams: Streams) -> ExitStatus:
    # Imported here: every command's parser is built for every run, and a scan
    # needs none of the parsers (~1.5 MiB of its resident memory).
    from scanner.importers import read_policy
    from scanner.importers._common import stem_name

    name = args.name or stem_name(args.file)
    if not _NAME.fullmatch(name) or name in ("inline", "auto"):
        raise UsageError(f"--name {name!r}: must match [A-Za-z0-9_][A-Za-z0-9_.-]*")
    if args.pins is not None and args.kind != "chromium":
        raise UsageError("--pins is for the chromium kind only")
    for flag, value in (("--platform", args.platform), ("--okhttp-version", args.okhttp_version)):
        if value is not None and args.kind != "okhttp":
            raise UsageError(f"{flag} is for the okhttp kind only")
    policy = read_policy(
        args.kind, args.file, name=name, pins_path=args.pins, okhttp_version=args.okhttp_version
    )
    if args.platform is not None:
        policy = replace(policy, platform=Platform(args.platform))
    client_warnings([policy], "pinaudit import", streams.stderr)
    command = " ".join(["pinaudit import", args.kind, args.file])
    streams.stdout.write(inventory_text(policy, command=command))
    return ExitStatus.OK
