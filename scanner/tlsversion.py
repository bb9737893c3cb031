"""TLS protocol versions as the probe reports them ("TLSv1.2"), ordered.

Pure. RFC 8996 deprecates TLS 1.0 and 1.1 (and every browser refuses them
since 2020); the audit's ``tls_version`` finding compares what a handshake
negotiated with a minimum, TLS 1.2 unless an endpoint says otherwise.
"""

from __future__ import annotations

__all__ = [
    "DEFAULT_MINIMUM",
    "VERSIONS",
    "below",
    "rank",
]

VERSIONS = ("SSLv3", "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")
DEFAULT_MINIMUM = "TLSv1.2"


def rank(version: str) -> int:
    """Position of `version` in `VERSIONS`; -1 for anything unknown."""
    try:
        return VERSIONS.index(version)
    except ValueError:
        return -1


def below(version: str, minimum: str = DEFAULT_MINIMUM) -> bool:
    """True when `version` is older than `minimum` (an unknown version is
    older than any: a handshake that names none is not trusted to be recent)."""
    if minimum not in VERSIONS:
        raise ValueError(f"unknown TLS version {minimum!r} (one of {', '.join(VERSIONS)})")
    return rank(version) < rank(minimum)
