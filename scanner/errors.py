"""The run-level exception tree. Every error a user can cause has its own type."""

from __future__ import annotations

from collections.abc import Sequence

from scanner.model import Location

__all__ = [
    "CertificateFileError",
    "ClientConfigError",
    "ConfigError",
    "ExportError",
    "InventoryError",
    "InventoryProblem",
    "PinError",
    "PushError",
    "ScannerError",
    "TrustStoreError",
    "WebConfigError",
]


class ScannerError(Exception):
    """Base of every error pinaudit reports to the user as one line."""


class PinError(ScannerError, ValueError):
    """A pin that cannot be parsed. Names the pin and where it came from."""

    def __init__(self, pin: str, reason: str, where: str | None = None) -> None:
        self.pin = pin
        self.reason = reason
        self.where = where
        shown = pin if len(pin) <= 80 else pin[:77] + "..."
        prefix = f"{where}: " if where else ""
        super().__init__(f"{prefix}invalid pin {shown!r}: {reason}")


class InventoryProblem:
    """One problem in an inventory file, with its position."""

    __slots__ = ("location", "message", "path")

    def __init__(self, location: Location, path: str, message: str) -> None:
        self.location = location
        self.path = path  # e.g. "endpoints[3].pins[0]"
        self.message = message

    def __str__(self) -> str:
        where = f"{self.path}: " if self.path else ""
        return f"{self.location}: {where}{self.message}"

    def __repr__(self) -> str:
        return f"InventoryProblem({str(self)!r})"


class InventoryError(ScannerError):
    """An inventory that cannot be used. Carries every problem found, in file order."""

    def __init__(self, problems: Sequence[InventoryProblem]) -> None:
        self.problems = tuple(problems)
        first = str(self.problems[0]) if self.problems else "invalid inventory"
        more = len(self.problems) - 1
        super().__init__(first + (f" (and {more} more)" if more > 0 else ""))


class ConfigError(ScannerError):
    """A bad command-line flag or setting."""


class TrustStoreError(ScannerError):
    """A trust store that cannot be read or holds no usable anchor."""


class CertificateFileError(ScannerError):
    """A certificate file (``pinaudit pin FILE``) that cannot be read."""


class ExportError(ScannerError):
    """An export (Pushgateway, textfile) that failed."""


class PushError(ExportError):
    """A push to the Pushgateway that still failed after its retries."""


class WebConfigError(ConfigError):
    """A ``--web-config`` file (TLS and basic auth of the exporter) that cannot be used."""


class ClientConfigError(ScannerError):
    """A client pin configuration (``pinaudit import``, an inventory ``from:``)
    that cannot be read at all: missing, hostile (entity expansion, a DTD),
    not the kind named. Carries where. What the *client* would reject is not
    this error: it becomes a CONFIG_ERROR verdict of the policy."""

    def __init__(self, location: Location, message: str) -> None:
        self.location = location
        self.message = message
        super().__init__(f"{location}: {message}")
