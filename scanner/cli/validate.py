"""``pinaudit validate``: load an inventory and report every problem."""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from typing import TextIO

from scanner.cli.args import Parser, Streams, Subparsers
from scanner.inventory import load_inventory
from scanner.model import ClientPolicy
from scanner.safetext import printable
from scanner.status import ExitStatus

__all__ = ["add_parser", "client_warnings", "run"]


def add_parser(sub: Subparsers[Parser]) -> None:
    p = sub.add_parser(
        "validate",
        help="load an inventory and report every problem (exit 0 or 2)",
        description="Load an inventory with its includes and report every problem "
        "with file:line:column. Nothing is scanned.",
    )
    p.add_argument("--inventory", "-i", required=True, metavar="FILE", help="inventory YAML")
    p.set_defaults(func=run)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'s' if count != 1 else ''}"


def run(args: argparse.Namespace, streams: Streams) -> ExitStatus:
    inventory = load_inventory(args.inventory)
    client_warnings(inventory.policies.values(), "pinaudit validate", streams.stderr)
    if not inventory.endpoints:
        streams.stderr.write(
            f"pinaudit validate: warning: {args.inventory}: the inventory has no endpoints: "
            "scan refuses it (exit 2) unless --allow-empty\n"
        )
    pinsets = len(inventory.pinsets) + len(inventory.policies)
    streams.stdout.write(
        f"{args.inventory}: OK: {_plural(len(inventory.endpoints), 'endpoint')}, "
        f"{_plural(pinsets, 'pin-set')}, {_plural(len(inventory.files), 'file')}\n"
    )
    return ExitStatus.OK


def client_warnings(policies: Iterable[ClientPolicy], who: str, stderr: TextIO) -> None:
    """What a client would reject in its own configuration, and what it accepts but
    is worth knowing: warnings, the inventory itself is fine."""
    for policy in policies:
        for problem in policy.problems:
            stderr.write(
                f"{who}: warning: {printable(str(problem))}: pinset {policy.name!r}: "
                f"{policy.client.value} rejects this configuration (CONFIG_ERROR)\n"
            )
        for rule in policy.rules:
            for problem in rule.problems:
                stderr.write(
                    f"{who}: warning: {printable(str(problem))}: pinset {policy.name!r}: "
                    f"{policy.client.value} ignores this rule for {printable(rule.host)} "
                    "(CONFIG_ERROR)\n"
                )
        for note in policy.notes:
            stderr.write(f"{who}: note: {printable(str(note))}\n")
        for missing in policy.unresolved:  # a limit of the importer, not of the app
            stderr.write(f"{who}: unresolved: {printable(str(missing))}\n")
