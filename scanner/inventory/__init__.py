"""Inventory loading: YAML files (schema version 1) to an ``Inventory``.

The package's parts, from the bottom up: ``yamlnodes`` (hostile-safe YAML
nodes that keep their positions), ``files`` (the files it may read: its only
I/O), ``reader`` (typed readers over nodes, reporting problems with
file:line:column), ``names`` (what hosts, labels and pin-set names must look
like), ``client_pinsets`` (pin-sets that follow a client's own rules:
``from:`` a client file or ``client:`` + ``rules:``), ``schema`` (schema
version 1 → ``Inventory``) and ``copy`` (an inventory written from a client
configuration, for ``pinaudit import``).
"""

from scanner.inventory.names import AUTO
from scanner.inventory.schema import MAX_DAYS, SCHEMA_VERSION, load_inventory, load_inventory_text

__all__ = ["AUTO", "MAX_DAYS", "SCHEMA_VERSION", "load_inventory", "load_inventory_text"]
