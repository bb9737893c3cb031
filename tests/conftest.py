"""Suite-wide test settings: which tests are slow.

``pytest -m "not slow and not peers"`` is the fast subset for day-to-day work
(well under a minute); CI runs everything. A module is slow when it serves a
fleet from a child process, runs external programs, fuzzes, or runs
hypothesis at length; tests that need an external program carry the
``peers`` marker themselves.
"""

from __future__ import annotations

import pytest

SLOW_MODULES = frozenset(
    {
        "test_bench_realistic.py",
        "test_chain_cache.py",
        "test_chain_differential.py",
        "test_chain_props.py",
        "test_client_scan_e2e.py",
        "test_conformance_scan.py",
        "test_crosssign_e2e.py",
        "test_deploy.py",
        "test_deploy_components.py",
        "test_deploy_image.py",
        "test_docs_examples.py",
        "test_exporter.py",
        "test_exporter_lifecycle.py",
        "test_exporter_probe.py",
        "test_faults.py",
        "test_fuzz.py",
        "test_importers_props.py",
        "test_incremental_fleet.py",
        "test_inventory_props.py",
        "test_loop_responsive.py",
        "test_okhttp_oracle.py",
        "test_paths_mesh_e2e.py",
        "test_paths_props.py",
        "test_prometheus_alerts_e2e.py",
        "test_prometheus_alerts_parameters.py",
        "test_prometheus_export.py",
        "test_resources.py",
        "test_scan_e2e.py",
        "test_shard.py",
        "test_static.py",
    }
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.name in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)
