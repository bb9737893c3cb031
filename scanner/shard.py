"""Which endpoints one shard of a sharded scan owns (``--shard I/N``). Pure.

Rendezvous (highest-random-weight) hashing: endpoint ``name`` belongs to the
shard ``i`` in ``0..N-1`` whose weight ``H(i, name)`` is the highest, with
``H`` the first 8 bytes of SHA-256 over the shard number and the name. So:

- the assignment depends only on the name and N: every shard computes it
  alone, in any order, from any subset of the inventory, and gets the same
  answer (the shards partition the inventory: disjoint, union = all);
- adding or removing an endpoint moves no other endpoint;
- going from N to N+1 shards moves only the endpoints the new shard wins
  (about 1/(N+1) of them), none between the old shards;
- the hash is SHA-256 (hashlib), never Python's ``hash()``, which is salted
  per process (PYTHONHASHSEED) and would give each pod another split.

Cost: N hashes per endpoint, hence ``MAX_SHARDS``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass

from scanner.model import Endpoint

__all__ = ["MAX_SHARDS", "Shard", "shard_of", "weight"]

MAX_SHARDS = 256
_SPEC = re.compile(r"([0-9]+)/([0-9]+)")


def weight(shard: int, name: str) -> int:
    """The rendezvous weight of `name` for `shard`: stable across processes,
    machines and Python versions."""
    digest = hashlib.sha256(f"{shard}\x00{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def shard_of(name: str, count: int) -> int:
    """The shard in ``0..count-1`` that owns endpoint `name` (ties, which would
    need a 64-bit collision, go to the lower shard)."""
    if count < 1:
        raise ValueError(f"shard count must be at least 1, got {count}")
    return max(range(count), key=lambda shard: (weight(shard, name), -shard))


@dataclass(frozen=True)
class Shard:
    """Shard `index` of `count` (``--shard index/count``)."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if not 1 <= self.count <= MAX_SHARDS or not 0 <= self.index < self.count:
            raise ValueError(f"not a shard: {self.index}/{self.count}")

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``I/N`` with ``0 <= I < N <= MAX_SHARDS``; ValueError saying what is wrong."""
        match = _SPEC.fullmatch(text.strip())
        if not match:
            raise ValueError("expected I/N, shard I of N counted from 0 (e.g. 0/4)")
        index, count = int(match.group(1)), int(match.group(2))
        if not 1 <= count <= MAX_SHARDS:
            raise ValueError(f"N must be 1..{MAX_SHARDS}")
        if index >= count:
            raise ValueError(f"I must be 0..{count - 1} (shards are counted from 0)")
        return cls(index, count)

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def owns(self, name: str) -> bool:
        return shard_of(name, self.count) == self.index

    def select(self, endpoints: Iterable[Endpoint]) -> list[Endpoint]:
        """The endpoints this shard owns (by name), in inventory order."""
        return [endpoint for endpoint in endpoints if self.owns(endpoint.name)]
