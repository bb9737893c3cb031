"""Results → the human table: one row per endpoint with findings, grouped
by severity, then a summary line. Rendered with rich, which handles terminal
width, colour only on a terminal, and NO_COLOR.

Every string is given to rich as plain `Text` (never as markup, so a subject
containing ``[/x]`` is shown, not parsed) after `printable` has made its
control characters visible. At any width the status and check columns are
shown whole; the endpoint name and the detail wrap instead of being cut."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import TextIO

from rich.console import Console
from rich.table import Table
from rich.text import Text

from scanner.model import Severity
from scanner.results import EndpointResult, ResultStatus
from scanner.safetext import printable

__all__ = ["FILE_WIDTH", "make_console", "render", "rotation_text", "summary_text"]

_STYLE = {
    Severity.CRITICAL: "bold red",
    Severity.WARNING: "yellow",
    Severity.INFO: "cyan",
}
# Width used when the output is not a terminal (a file, a pipe, CI logs).
FILE_WIDTH = 160


def make_console(out: TextIO, *, color: bool | None = None) -> Console:
    """A console on `out`; colour follows the terminal unless forced."""
    terminal = out.isatty() if hasattr(out, "isatty") else False
    return Console(
        file=out,
        width=None if terminal else FILE_WIDTH,
        force_terminal=color if color is not None else None,
        no_color=False if color else None,
        highlight=False,
        soft_wrap=False,
    )


def _detail(result: EndpointResult) -> str:
    worst = result.worst()
    first = next((f for f in result.findings if f.severity is worst), None)
    return first.message if first else ""


def summary_text(results: Sequence[EndpointResult]) -> str:
    status = Counter(r.status for r in results)
    severities = Counter(f.severity for r in results for f in r.findings)
    parts = [
        f"{len(results)} endpoint{'s' if len(results) != 1 else ''}: "
        f"{status[ResultStatus.OK]} ok, {status[ResultStatus.DRIFT]} drift, "
        f"{status[ResultStatus.ERROR]} error",
        f"findings: {severities[Severity.CRITICAL]} critical, "
        f"{severities[Severity.WARNING]} warning, {severities[Severity.INFO]} info",
    ]
    return "; ".join(parts)


def rotation_text(results: Sequence[EndpointResult]) -> str:
    judged = [r.rotation for r in results if r.rotation is not None]
    if not judged:
        return ""
    leaf = sum(1 for r in judged if r.leaf_renewal)
    ca = sum(1 for r in judged if r.ca_switch)
    return (
        f"rotation readiness of {len(judged)} pinned endpoint{'s' if len(judged) != 1 else ''}: "
        f"{leaf} survive a leaf renewal with a new key, {ca} a switch of CA"
    )


def render(
    results: Sequence[EndpointResult], console: Console, *, interrupted: bool = False
) -> None:
    for severity in (Severity.CRITICAL, Severity.WARNING, Severity.INFO):
        group = [r for r in results if r.worst() is severity]
        if not group:
            continue
        table = Table(
            title=Text(f"{severity.value.upper()} ({len(group)})", style=_STYLE[severity]),
            title_justify="left",
            show_edge=False,
            box=None,
            pad_edge=False,
        )
        longest_check = max(len(f.check.value) for r in group for f in r.findings)
        table.add_column("endpoint", overflow="fold", ratio=1, min_width=12)
        table.add_column("status", no_wrap=True, min_width=6)
        table.add_column("checks", overflow="fold", min_width=longest_check)
        table.add_column("detail", overflow="fold", ratio=2, min_width=16)
        for result in group:
            checks = sorted({f.check.value for f in result.findings})
            table.add_row(
                Text(printable(result.endpoint.name)),
                Text(result.status.value, style=_STYLE[severity]),
                Text(",\n".join(checks) if len(checks) > 1 else "".join(checks)),
                Text(printable(_detail(result))),
            )
        console.print(table)
        console.print()
    prefix = "INTERRUPTED: partial report. " if interrupted else ""
    console.print(Text(prefix + summary_text(results)))
    rotation = rotation_text(results)
    if rotation:
        console.print(Text(rotation))
