"""Judging a chain the way each pinning client would (pinning-semantics §8).

``selection`` (which rules apply to a host, as each client canonicalises and
selects), ``judge`` (the client's verdict on a path), ``failures`` (the
failure as the client shows it) and ``findings`` (verdicts → findings for an
endpoint: what a scan calls). The judge depends on the value objects of
``scanner.model``, never on the importers that build them.
"""

from scanner.clients.findings import assess_clients, client_findings
from scanner.clients.judge import Environment, enforcement_window, judge, judge_endpoint
from scanner.clients.selection import Selection, applies, canonical_host, select

__all__ = [
    "Environment",
    "Selection",
    "applies",
    "assess_clients",
    "canonical_host",
    "client_findings",
    "enforcement_window",
    "judge",
    "judge_endpoint",
    "select",
]
