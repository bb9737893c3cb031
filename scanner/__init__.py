"""pinaudit: audit TLS endpoints against the pins their clients enforce."""

__version__ = "0.1.0"
