"""Logging for the long-running exporter: stdlib `logging`, one record per
line whatever it holds (a value with a newline, a traceback: escaped, never a
second line).

``--log-format`` (``--log.format``):
- ``json``: one JSON object per line (log collectors);
- ``logfmt``: ``ts=… caller=… level=… msg=… key=value`` as Prometheus and its
  exporters write it (go-kit's logfmt: values quoted when they need it);
- ``text``: ``TIME LEVEL msg key=value`` for people;
- ``auto`` (default): text on a terminal, JSON otherwise.

``--log-level`` (``--log.level``): ``debug``, ``info`` (default), ``warn``,
``error``. Structured fields go in ``extra={"fields": {...}}``; every format
prints them, and control characters in them are escaped (a value from the
wire never reaches a terminal raw).
"""

from __future__ import annotations

import json
import logging
import re
from datetime import datetime, timezone
from typing import Any, TextIO

__all__ = [
    "LOGGER_NAME",
    "LOG_FORMATS",
    "LOG_LEVELS",
    "JsonFormatter",
    "LogfmtFormatter",
    "TextFormatter",
    "configure",
    "logfmt_value",
    "parse_level",
]

LOGGER_NAME = "pinaudit"
LOG_FORMATS = ("auto", "json", "logfmt", "text")
LOG_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "error": logging.ERROR,
}
_BARE = re.compile(r"[^\s\"=\\\x00-\x1f\x7f]+")  # a logfmt value that needs no quotes


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    fields = getattr(record, "fields", None)
    return dict(fields) if isinstance(fields, dict) else {}


def _time(record: logging.LogRecord) -> str:
    when = datetime.fromtimestamp(record.created, timezone.utc)
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _level(record: logging.LogRecord) -> str:
    name = record.levelname.lower()
    return "warn" if name == "warning" else name


class JsonFormatter(logging.Formatter):
    """``{"time": …, "level": …, "logger": …, "msg": …, <fields>}`` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": _time(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in _fields(record).items():
            entry.setdefault(key, value)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


def logfmt_value(value: object) -> str:
    """A value as go-logfmt writes it: bare when it can be, else a quoted
    string with Go's escapes (\\" \\\\ \\n \\t \\u001b …)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
    if text and _BARE.fullmatch(text):
        return text
    return json.dumps(text, ensure_ascii=False)


def _logfmt_key(key: str) -> str:
    cleaned = re.sub(r"[\s=\"\\\x00-\x1f\x7f]", "_", key)
    return cleaned or "_"


class LogfmtFormatter(logging.Formatter):
    """``ts=2026-01-02T03:04:05.678Z caller=serve.py:123 level=info msg="scan finished"
    endpoints=12`` on one line: the key order and level names of Prometheus' own logs."""

    def format(self, record: logging.LogRecord) -> str:
        pairs: list[tuple[str, object]] = [
            ("ts", _time(record)),
            ("caller", f"{record.filename}:{record.lineno}"),
            ("level", _level(record)),
            ("msg", record.getMessage()),
        ]
        taken = {key for key, _ in pairs}
        for key, value in _fields(record).items():
            if key not in taken:
                pairs.append((key, value))
        if record.exc_info:
            pairs.append(("exception", self.formatException(record.exc_info)))
        return " ".join(f"{_logfmt_key(key)}={logfmt_value(value)}" for key, value in pairs)


class TextFormatter(logging.Formatter):
    """``TIME LEVEL msg key=value …``."""

    def format(self, record: logging.LogRecord) -> str:
        message = json.dumps(record.getMessage(), ensure_ascii=False)[1:-1]
        parts = [_time(record), record.levelname.lower(), message]
        parts += [
            f"{key}={json.dumps(value, default=str, ensure_ascii=False)}"
            for key, value in _fields(record).items()
        ]
        text = " ".join(parts)
        if record.exc_info:
            text += " exception=" + json.dumps(self.formatException(record.exc_info))
        return text


def parse_level(text: str) -> int:
    try:
        return LOG_LEVELS[text]
    except KeyError:
        raise ValueError(f"unknown log level {text!r} (expected {', '.join(LOG_LEVELS)})") from None


def configure(
    stream: TextIO, log_format: str = "auto", level: int | str = logging.INFO
) -> logging.Logger:
    """The ``pinaudit`` logger writing to `stream`, replacing handlers a previous
    call installed."""
    if log_format not in LOG_FORMATS:
        raise ValueError(f"unknown log format {log_format!r}")
    if isinstance(level, str):
        level = parse_level(level)
    if log_format == "auto":
        terminal = stream.isatty() if hasattr(stream, "isatty") else False
        log_format = "text" if terminal else "json"
    formatter: logging.Formatter = {
        "json": JsonFormatter(),
        "logfmt": LogfmtFormatter(),
        "text": TextFormatter(),
    }[log_format]
    logger = logging.getLogger(LOGGER_NAME)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
    return logger
