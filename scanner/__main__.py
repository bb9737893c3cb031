"""``python -m scanner`` is the ``pinaudit`` command."""

from scanner.cli import pinaudit_entry

pinaudit_entry()
