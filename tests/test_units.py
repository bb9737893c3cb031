"""The duration grammar's edges: the largest duration, and the spelling
``format_duration`` gives back (what error messages and ``pinaudit import``
print). Written for what mutation testing found unasserted (issue 19,
docs/mutation.md); the grammar itself is exercised through the inventory and
the command line in test_inventory.py and test_cli_edges.py."""

from __future__ import annotations

import pytest

from scanner.units import MAX_SECONDS, format_duration, parse_duration, positive_seconds


def test_the_largest_duration_is_accepted_one_more_is_not() -> None:
    assert positive_seconds(MAX_SECONDS) == MAX_SECONDS
    assert parse_duration("36500d") == MAX_SECONDS
    with pytest.raises(ValueError, match=r"^must be at most 36500d$"):
        positive_seconds(MAX_SECONDS + 1)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (86400.0, "1d"),
        (7200.0, "2h"),
        (60.0, "1m"),
        (90.0, "90s"),
        (1.0, "1s"),
        (30.0, "30s"),
        (61.5, "61.5s"),
        (1.5, "1.5s"),
        (0.5, "500ms"),
        (0.25, "250ms"),
        (MAX_SECONDS, "36500d"),
    ],
)
def test_format_duration_is_the_shortest_spelling_read_back(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
    assert parse_duration(text) == seconds
