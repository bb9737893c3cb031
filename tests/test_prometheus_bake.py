"""Scrapes between two scans share one rendering of the snapshot."""

from __future__ import annotations

import gzip

from prometheus_client.parser import text_string_to_metric_families

from scanner.exporters.metrics import Exposition, Family
from scanner.exporters.prometheus import ExpositionCollector


def _exposition(value: float) -> Exposition:
    family = Family("pinaudit_scan_duration_seconds", "Last scan's duration.", (), (((), value),))
    return Exposition((family,))


def test_one_rendering_per_snapshot_and_format() -> None:
    collector = ExpositionCollector(_exposition(1.5))
    content_type, compressed, body = collector.bake(None, None)
    assert (content_type, compressed) == ("text/plain; version=0.0.4; charset=utf-8", False)
    assert collector.bake("text/plain", "")[2] is body  # the same bytes object: no re-render
    samples = [s for f in text_string_to_metric_families(body.decode()) for s in f.samples]
    assert [(s.name, s.value) for s in samples] == [("pinaudit_scan_duration_seconds", 1.5)]

    _, compressed, zipped = collector.bake(None, "gzip")
    assert compressed and gzip.decompress(zipped) == body
    content_type, _, open_metrics = collector.bake("application/openmetrics-text", None)
    assert content_type.startswith("application/openmetrics-text")
    assert open_metrics.endswith(b"# EOF\n")

    collector.publish(_exposition(2.5))  # a new scan: new bodies
    _, _, fresh = collector.bake(None, None)
    assert fresh is not body
    assert b"pinaudit_scan_duration_seconds 2.5" in fresh
