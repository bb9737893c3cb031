"""Logging for the long-running exporter: stdlib `logging` with one JSON
object per line when stderr is not a terminal (log collectors), plain text
on a terminal (people). ``--log-format json|text|auto`` chooses.

Structured fields go in ``extra={"fields": {...}}``; both formats print them.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone
from typing import Any, TextIO

__all__ = ["LOGGER_NAME", "LOG_FORMATS", "JsonFormatter", "TextFormatter", "configure"]

LOGGER_NAME = "pinaudit"
LOG_FORMATS = ("auto", "json", "text")


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    fields = getattr(record, "fields", None)
    return dict(fields) if isinstance(fields, dict) else {}


def _time(record: logging.LogRecord) -> str:
    when = datetime.fromtimestamp(record.created, timezone.utc)
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


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


class TextFormatter(logging.Formatter):
    """``TIME LEVEL msg key=value …``."""

    def format(self, record: logging.LogRecord) -> str:
        parts = [_time(record), record.levelname.lower(), record.getMessage()]
        parts += [
            f"{key}={json.dumps(value, default=str)}" for key, value in _fields(record).items()
        ]
        text = " ".join(parts)
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


def configure(
    stream: TextIO, log_format: str = "auto", level: int = logging.INFO
) -> logging.Logger:
    """The ``pinaudit`` logger writing to `stream`, replacing handlers a previous
    call installed."""
    if log_format not in LOG_FORMATS:
        raise ValueError(f"unknown log format {log_format!r}")
    if log_format == "auto":
        terminal = stream.isatty() if hasattr(stream, "isatty") else False
        log_format = "text" if terminal else "json"
    logger = logging.getLogger(LOGGER_NAME)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
    return logger
