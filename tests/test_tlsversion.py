"""TLS versions ordered for the below-minimum finding (RFC 8996)."""

from __future__ import annotations

import pytest

from scanner.tlsversion import below, rank


@pytest.mark.parametrize(
    ("version", "minimum", "expected"),
    [
        ("TLSv1", "TLSv1.2", True),
        ("TLSv1.1", "TLSv1.2", True),
        ("TLSv1.2", "TLSv1.2", False),
        ("TLSv1.3", "TLSv1.2", False),
        ("TLSv1.2", "TLSv1.3", True),
        ("", "TLSv1.2", True),
        ("SSLv3", "TLSv1", True),
    ],
)
def test_below(version: str, minimum: str, expected: bool) -> None:
    assert below(version, minimum) is expected


def test_unknown_minimum_is_refused() -> None:
    with pytest.raises(ValueError, match=r"unknown TLS version 'TLS1\.2'"):
        below("TLSv1.3", "TLS1.2")


def test_rank_orders_versions() -> None:
    assert rank("TLSv1") < rank("TLSv1.1") < rank("TLSv1.2") < rank("TLSv1.3")
