"""The realistic fleet benchmark (issue 11): one PKI of ten distinct chains
served by nginx to N virtual hosts by SNI, scanned by a floor client,
prometheus-blackbox-exporter and pinaudit in one invocation.

Entry point: ``benchmarks/realistic_bench.py``.
"""
