"""Flags → typed settings, each checked once, here: its syntax and its range.

A bad flag is a ConfigError naming the flag (``--deadline '1y': expected
seconds, or a duration like 500ms, 30s, 5m, 1h or 7d``), exit 2, and nothing
is scanned. Nothing below the command line ever sees a flag.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlsplit

from scanner.errors import ConfigError
from scanner.exporters.contract import RESERVED_LABELS, own_label_names
from scanner.settings import DEFAULT_PUSH_JOB, PushSettings, Selector
from scanner.shard import MAX_SHARDS, Shard
from scanner.units import MAX_SECONDS, format_duration, parse_duration

__all__ = [
    "MAX_CONCURRENCY",
    "MAX_RETRIES",
    "PUSH_PASSWORD_ENV",
    "PUSH_USERNAME_ENV",
    "SHARD_LABEL",
    "check_output",
    "concurrency",
    "duration",
    "listen",
    "now",
    "push_settings",
    "retries",
    "selector",
    "shard",
    "workers",
]

PUSH_USERNAME_ENV = "PINAUDIT_PUSH_USERNAME"
PUSH_PASSWORD_ENV = "PINAUDIT_PUSH_PASSWORD"
# The Pushgateway grouping label that keeps the groups of `--shard I/N` apart.
SHARD_LABEL = "shard"
# Handshakes in flight: each holds a descriptor; beyond this no machine helps.
MAX_CONCURRENCY = 65_536
MAX_RETRIES = 100
_ONLY = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(.*)$", re.DOTALL)
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def now(text: str | None, flag: str = "--now") -> datetime | None:
    """A date (00:00 UTC) or an ISO 8601 time; None when not given (the clock)."""
    if text is None:
        return None
    try:
        if _DAY.fullmatch(text):
            day = date.fromisoformat(text)
            return datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ConfigError(f"{flag} {text!r}: {exc} (expected YYYY-MM-DD or ISO 8601)") from None
    when = when if when.tzinfo else when.replace(tzinfo=timezone.utc)
    try:  # judging adds up to ~100 years of thresholds to it: keep clear of datetime's ends
        when + timedelta(seconds=MAX_SECONDS)
        when - timedelta(seconds=MAX_SECONDS)
    except OverflowError:
        raise ConfigError(f"{flag} {text!r}: too far from today to judge anything") from None
    return when


def duration(flag: str, text: str | None) -> float | None:
    """Seconds of a duration flag: ``30``, ``500ms``, ``30s``, ``5m``, ``1h``, ``7d``;
    more than 0 and at most 100 years."""
    if text is None:
        return None
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise ConfigError(f"{flag} {text!r}: {exc}") from None


def _whole(flag: str, value: int | None, low: int, high: int) -> int | None:
    if value is not None and not low <= value <= high:
        raise ConfigError(f"{flag} {value}: must be {low}..{high}")
    return value


def concurrency(value: int | None) -> int | None:
    return _whole("--concurrency", value, 1, MAX_CONCURRENCY)


def workers(value: int | None) -> int | None:
    return _whole("--workers", value, 1, MAX_SHARDS)


def retries(value: int) -> int:
    checked = _whole("--retries", value, 0, MAX_RETRIES)
    assert checked is not None
    return checked


def shard(text: str | None) -> Shard | None:
    if text is None:
        return None
    try:
        return Shard.parse(text)
    except ValueError as exc:
        raise ConfigError(f"--shard {text!r}: {exc}") from None


def selector(items: Sequence[str]) -> Selector:
    """``--only KEY=VALUE`` filters: AND across keys, OR within one key."""
    wanted: dict[str, set[str]] = {}
    for item in items:
        match = _ONLY.match(item)
        if not match:
            raise ConfigError(f"--only {item!r}: expected KEY=VALUE, e.g. team=payments")
        wanted.setdefault(match.group(1), set()).add(match.group(2))
    return Selector(tuple((key, frozenset(values)) for key, values in wanted.items()))


def listen(text: str, flag: str = "--serve") -> tuple[str, int]:
    """``HOST:PORT``, ``[IPv6]:PORT`` or ``:PORT`` (every IPv4 address)."""
    host, sep, port_text = text.rpartition(":")
    if not sep or not port_text.isdigit():
        raise ConfigError(f"{flag} {text!r}: expected HOST:PORT, e.g. 127.0.0.1:9918 or :9918")
    port = int(port_text)
    if not 0 <= port <= 65535:
        raise ConfigError(f"{flag} {text!r}: port must be 0..65535")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ConfigError(f"{flag} {text!r}: write an IPv6 address in brackets, e.g. [::1]:9918")
    return host, port


def push_settings(
    url: str | None,
    job: str | None,
    grouping: Sequence[str],
    environ: Mapping[str, str],
    shard_: Shard | None,
) -> PushSettings | None:
    """``--push-gateway``, ``--push-job`` and ``--grouping`` checked, the shard's
    grouping label added, and basic auth credentials taken from the
    environment (never from the command line)."""
    if url is None:
        if job is not None or grouping:
            raise ConfigError("--push-job and --grouping need --push-gateway")
        return None
    normalised = url if "://" in url else f"http://{url}"
    parts = urlsplit(normalised)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"--push-gateway {url!r}: expected http(s)://HOST[:PORT][/PATH]")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ConfigError(
            f"--push-gateway {url!r}: no query, fragment or credentials in the URL "
            f"(set {PUSH_USERNAME_ENV} and {PUSH_PASSWORD_ENV} for basic auth)"
        )
    job = DEFAULT_PUSH_JOB if job is None else job
    if not job:
        raise ConfigError("--push-job must not be empty")
    pairs: list[tuple[str, str]] = []
    for item in grouping:
        key, sep, value = item.partition("=")
        if not sep or not _LABEL_NAME.fullmatch(key) or key.startswith("__"):
            raise ConfigError(f"--grouping {item!r}: expected KEY=VALUE with KEY a label name")
        if key == "job":
            raise ConfigError("--grouping job=…: the job is set with --push-job")
        if key == SHARD_LABEL and shard_ is not None:
            if value != str(shard_.index):
                raise ConfigError(
                    f"--grouping {SHARD_LABEL}={value} contradicts --shard {shard_}: each "
                    f"shard pushes under {SHARD_LABEL}={shard_.index} (leave --grouping "
                    f"{SHARD_LABEL} out)"
                )
        elif key in own_label_names() | RESERVED_LABELS:
            raise ConfigError(f"--grouping {key}=…: {key!r} is a label pinaudit sets itself")
        if any(key == k for k, _ in pairs):
            raise ConfigError(f"--grouping {key}=… given twice")
        pairs.append((key, value))
    if shard_ is not None and not any(k == SHARD_LABEL for k, _ in pairs):
        pairs.append((SHARD_LABEL, str(shard_.index)))  # each shard its own group
    username = environ.get(PUSH_USERNAME_ENV)
    password = environ.get(PUSH_PASSWORD_ENV)
    if (username is None) != (password is None):
        raise ConfigError(
            f"set both {PUSH_USERNAME_ENV} and {PUSH_PASSWORD_ENV} for Pushgateway basic auth, "
            "or neither"
        )
    return PushSettings(
        url=normalised.rstrip("/"),
        job=job,
        grouping=tuple(pairs),
        username=username,
        password=password,
    )


def check_output(flag: str, path: str | None) -> None:
    """Refuse, before anything is scanned, an output that could not be written:
    its directory must exist. A regular file (or a new name) is replaced
    atomically; ``-``, a terminal, a pipe or a character device is written in
    place; anything else (a directory, a socket, a block device) is refused."""
    if path is None or path == "-":
        return
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        parent = Path(path).parent
        if not parent.is_dir():
            raise ConfigError(f"{flag} {path}: directory {parent} does not exist") from None
        return
    except OSError as exc:
        raise ConfigError(f"{flag} {path}: {exc.strerror or exc}") from None
    except ValueError as exc:  # an embedded NUL
        raise ConfigError(f"{flag} {path!r}: {exc}") from None
    if stat.S_ISREG(mode) or stat.S_ISFIFO(mode) or stat.S_ISCHR(mode):
        return
    what = "a directory" if stat.S_ISDIR(mode) else "neither a regular file, a pipe nor a device"
    raise ConfigError(f"{flag} {path}: {what}")


def describe_duration(seconds: float) -> str:
    return format_duration(seconds)
