"""pinaudit: audit TLS endpoints against the pins their clients enforce."""

__all__ = []

__version__ = "0.1.0"
