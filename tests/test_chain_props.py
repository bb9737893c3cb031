"""Property tests of the per-endpoint verdict over hostile chains: whatever a
server sends (real chains with bytes flipped, cut, spliced, reordered,
repeated), ``evaluate`` (chain analysis + audit) and the JSON entry never
raise, and the report stays consistent with what was served.

The coverage-guided counterpart is fuzz/fuzz_chain.py (tests/test_fuzz.py).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scanner.chain import CertificateCache
from scanner.exporters import jsonreport
from scanner.fleet import faults
from scanner.fleet.pki import PKI
from scanner.model import Check, Endpoint, Observation, PathStatus, Pinset
from scanner.results import ScanKnowledge, evaluate
from scanner.trust import store_from_pem

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)
SETTINGS = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])

_PKI = PKI(NOW)
_ROOT = _PKI.root("Props Root")
_INTER = _PKI.intermediate("Props Issuing CA", _ROOT)
_STORE = store_from_pem(_ROOT.pem, "props.pem")
_LATE = datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone.utc)
_DUPLICATE = faults.duplicate_basic_constraints()
_LEAVES = [
    _PKI.leaf("api.example.com", _INTER),
    _PKI.leaf("api.example.com", _INTER, key_type="rsa2048", days_after=3),
    _PKI.leaf("api.example.com", _INTER, not_before=_LATE, not_after=_LATE),
    faults.with_negative_serial(
        _PKI.leaf("api.example.com", _INTER, serial=0x1234_5678_9ABC_DEF0), _INTER
    ),
    faults.with_duplicate_extension(
        _PKI.leaf(
            "api.example.com", _INTER, extra_extensions=[faults.duplicate_basic_constraints()]
        ),
        _INTER,
    ),
]
DERS = [leaf.der for leaf in _LEAVES] + [_INTER.der, _ROOT.der]
ENDPOINT = Endpoint(
    "props", "api.example.com", 443, "api.example.com", Pinset("app", (_INTER.pin, _ROOT.pin))
)


@st.composite
def mutated_der(draw: st.DrawFn) -> bytes:
    der = bytearray(draw(st.sampled_from(DERS)))
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(0, len(der)))
        op = draw(st.sampled_from(["flip", "set", "cut", "insert", "delete"]))
        if op == "flip" and at < len(der):
            der[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and at < len(der):
            der[at] = draw(st.sampled_from([0x00, 0x7F, 0x80, 0x81, 0x82, 0xFF]))
        elif op == "cut":
            del der[at:]
        elif op == "insert":
            der[at:at] = draw(st.binary(min_size=1, max_size=8))
        else:
            del der[at : at + draw(st.integers(1, 32))]
    return bytes(der)


chains = st.lists(st.one_of(mutated_der(), st.sampled_from(DERS)), min_size=0, max_size=6)


@SETTINGS
@given(chains, st.sampled_from([NOW, _LATE, datetime(1, 1, 1, tzinfo=timezone.utc)]), st.booleans())
def test_any_served_chain_gets_a_verdict(served: list[bytes], now: datetime, learn: bool) -> None:
    cache = CertificateCache()
    knowledge = ScanKnowledge()
    if learn:
        knowledge.learn(served, cache)
    observation = Observation("192.0.2.1", 443, tuple(served), "TLSv1.3", "x", None, 0.0, 0.0)
    result = evaluate(ENDPOINT, [observation], _STORE, now, knowledge=knowledge, cache=cache)
    report = result.addresses[0].report
    assert report is not None
    assert [s.position for s in report.served] == list(range(len(served)))
    unparsable = {s.position for s in report.served if s.facts is None}
    assert all(s.error for s in report.served if s.facts is None)
    # A certificate whose fields cannot all be read is reported unparsable, yet the
    # verifier may build its path through it: then the path keeps it, as built.
    on_path = {step.served_position for step in report.path} - {None}
    flagged = {f.certificate for f in result.findings if f.check is Check.CERT_UNPARSABLE}
    assert flagged == unparsable - on_path
    unreadable = {f.certificate for f in result.findings if f.check is Check.CERT_FIELD_UNREADABLE}
    assert unparsable & on_path <= unreadable
    if not served or 0 in unparsable:
        assert report.status is PathStatus.UNPARSABLE and report.path == ()
    for step in report.path:
        if step.served_position in unparsable:
            assert report.served[step.served_position].error.startswith("unreadable: ")
            assert step.facts.unreadable
    json.dumps(jsonreport.endpoint_entry(result, now))


@SETTINGS
@given(st.lists(st.sampled_from(DERS), min_size=1, max_size=8))
def test_reordered_and_repeated_real_certificates(served: list[bytes]) -> None:
    observation = Observation("192.0.2.1", 443, tuple(served), "TLSv1.3", "x", None, 0.0, 0.0)
    result = evaluate(ENDPOINT, [observation], _STORE, NOW + timedelta(days=1))
    assert result.findings  # an unmutated chain is judged; something is always said
    json.dumps(jsonreport.endpoint_entry(result, NOW))
