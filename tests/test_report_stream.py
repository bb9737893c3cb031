"""The JSON report written entry by entry (issue 11 item 4: flat memory) is,
byte for byte, the document built whole; and a report whose writing fails
half-way leaves the previous file as it was, with no temporary file behind.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from scanner.chain import AnalysisCache, CertificateCache
from scanner.exporters import jsonreport
from scanner.exporters.files import write_atomic
from scanner.fleet.pki import PKI, make_key
from scanner.model import Endpoint, Observation, Pinset, ProbeErrorKind, ProbeFailure
from scanner.pins import pin_of_certificate
from scanner.results import EndpointResult, evaluate, not_scanned
from scanner.trust import store_from_pem

NOW = datetime(2026, 6, 1, tzinfo=timezone.utc)
SCANNED = NOW + timedelta(seconds=42)
_PKI = PKI(NOW)
ROOT = _PKI.root("Stream Root")
INTER = _PKI.intermediate("Stream Issuing CA", ROOT)
STORE = store_from_pem(ROOT.pem, "stream.pem")
BACKUP = pin_of_certificate(_PKI.root("Stream Backup", key=make_key("ec256")).cert)


def _results() -> list[EndpointResult]:
    leaf = _PKI.issue("*.example.com", issuer=INTER, dns=("*.example.com",))
    expired = _PKI.issue("old.example.com", issuer=INTER, dns=("old.example.com",), days_after=-2)
    pins = Pinset("app", (pin_of_certificate(INTER.cert), BACKUP))
    analyses, certs = AnalysisCache(), CertificateCache()

    def observed(*ders: bytes) -> Observation:
        return Observation("192.0.2.1", 443, ders, "TLSv1.3", "TLS_AES_128_GCM_SHA256", None, 0, 0)

    out = []
    for n, (name, served, pinset) in enumerate(
        [
            ("api.example.com", (leaf.der, INTER.der), pins),
            ("www.example.com", (leaf.der, INTER.der), None),
            ("old.example.com", (expired.der, INTER.der), pins),
            ('quo"te\\.example.com', (leaf.der,), pins),  # escaped in JSON
        ]
    ):
        ep = Endpoint(f"ep-{n}", name, 443, name, pinset)
        out.append(evaluate(ep, [observed(*served)], STORE, NOW, cache=certs, analyses=analyses))
    down = Endpoint("down", "192.0.2.9", 443, None, None)
    failure = ProbeFailure(ProbeErrorKind.REFUSED, "connection refused", "192.0.2.9")
    out.append(evaluate(down, [failure], STORE, NOW))
    out.append(not_scanned(Endpoint("late", "late.example.com", 443, None, None), "deadline"))
    return out


@pytest.mark.parametrize("count", [0, 1, 6])
@pytest.mark.parametrize("interrupted", [False, True])
def test_the_streamed_report_is_the_whole_document_byte_for_byte(
    count: int, interrupted: bool
) -> None:
    results = _results()[:count]
    whole = jsonreport.report(results, scanned_at=SCANNED, as_of=NOW, interrupted=interrupted)
    pieces = list(
        jsonreport.report_text(results, scanned_at=SCANNED, as_of=NOW, interrupted=interrupted)
    )
    assert "".join(pieces) == json.dumps(whole) + "\n"
    assert len(pieces) == count + 2  # the head, one piece per endpoint, the end
    assert json.loads("".join(pieces))["summary"]["endpoints"] == count


def test_a_report_written_in_pieces_is_the_file_written_whole(tmp_path: Path) -> None:
    results = _results()
    target = tmp_path / "report.json"
    write_atomic(target, jsonreport.report_text(results, scanned_at=SCANNED, as_of=NOW))
    whole = jsonreport.report(results, scanned_at=SCANNED, as_of=NOW)
    assert target.read_text() == json.dumps(whole) + "\n"


def test_a_report_that_fails_half_way_leaves_the_last_one_and_no_temporary_file(
    tmp_path: Path,
) -> None:
    target = tmp_path / "report.json"
    target.write_text("the last complete report\n")

    def pieces() -> Iterator[str]:
        yield '{"version": 1, "endpoints": ['
        raise RuntimeError("a bug while writing an entry")

    with pytest.raises(RuntimeError, match="a bug while writing an entry"):
        write_atomic(target, pieces())
    assert target.read_text() == "the last complete report\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]
