"""The command line: argv → typed settings, checked once → one module per
command (``scan``, ``validate``, ``pin``, ``import``, ``preflight``, ``demo``
and ``fleet``) → exit status. The only code that touches ``sys``."""

from scanner.cli.dispatch import main, pinaudit_entry, scan_entry

__all__ = ["main", "pinaudit_entry", "scan_entry"]
