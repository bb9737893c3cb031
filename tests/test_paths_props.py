"""Property test of path building over generated cross-sign meshes.

Every example serves a leaf, maybe its real intermediate, and a mesh of CA
certificates named like the intermediate: each carries the intermediate's
public key or one of a handful of other keys, and is signed by one of those
keys (or, sometimes, by the intermediate itself, as a CA re-issuing its own
certificate would). Whatever the mesh, the search stays within its budget
(signature checks and steps, counted: the per-input bound that does not
depend on the machine), every path it lists is a real one, and the real path
is found whenever it was served and the search was not stopped. A per-input
alarm turns a hang into a failure instead of a stuck CI run.
"""

from __future__ import annotations

import itertools
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone

from cryptography.hazmat.primitives.hashes import SHA256
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scanner.audit import path_budget_finding
from scanner.chain import CertificateCache, analyze_chain
from scanner.fleet.pki import PKI, Issued, make_key
from scanner.model import Check, PathStatus
from scanner.paths import MAX_DEPTH, MAX_PATHS, MAX_SIGNATURE_CHECKS, MAX_STEPS, search_paths
from scanner.trust import store_from_pem

NOW = datetime(2026, 3, 1, tzinfo=timezone.utc)
HOST = "mesh.example"
HANG_SECONDS = 120  # a hang guard, not a speed assertion: a budgeted search takes < 1 s
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

_PKI = PKI(NOW)
_ROOT = _PKI.root("Mesh Root")
_INTER = _PKI.intermediate("Mesh CA", _ROOT)
_LEAF = _PKI.leaf(HOST, _INTER)
_STORE = store_from_pem(_ROOT.pem, "mesh.pem")
_KEYS = [_INTER.key, *(make_key() for _ in range(6))]  # index 0: the intermediate's own


@contextmanager
def hang_guard(seconds: int) -> Iterator[None]:
    def stop(_signum: int, _frame: object) -> None:
        raise TimeoutError(f"one input ran for {seconds} s: the search is not bounded")

    previous = signal.signal(signal.SIGALRM, stop)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@st.composite
def meshes(draw: st.DrawFn) -> list[bytes]:
    keys = draw(st.integers(1, len(_KEYS)))
    size = draw(st.integers(0, 40))
    mesh = []
    for _ in range(size):
        carried = draw(st.integers(0, keys - 1))
        signer = draw(st.integers(0, keys - 1))
        days = draw(st.sampled_from([100, 100, 100, 0, -1]))
        mesh.append(
            _PKI.issue(
                "",
                subject=_INTER.cert.subject,
                key=_KEYS[carried],
                issuer=Issued(_INTER.cert, _KEYS[signer]),
                ca=True,
                path_length=draw(st.sampled_from([None, None, 0, 1])),
                days_before=10,
                days_after=days,
            )
        )
    served = [m.der for m in mesh]
    if draw(st.booleans()):
        served.insert(draw(st.integers(0, len(served))), _INTER.der)
    return [_LEAF.der, *served]


@SETTINGS
@given(meshes())
def test_path_building_over_a_cross_sign_mesh_is_bounded_and_sound(served: list[bytes]) -> None:
    cache = CertificateCache()
    with hang_guard(HANG_SECONDS):
        search = search_paths(served, _STORE, NOW, cache=cache)
        report = analyze_chain(served, _STORE, HOST, NOW, cache=cache)
    assert search.signature_checks <= MAX_SIGNATURE_CHECKS
    assert search.steps <= MAX_STEPS + 1
    assert len(search.paths) <= MAX_PATHS
    for path in search.paths:
        assert path[0].der_sha256 == _LEAF.cert.fingerprint(SHA256())
        assert path[-1].spki_sha256 == _ROOT.pin
        assert len(path) <= MAX_DEPTH + 1
        assert len({f.der_sha256 for f in path}) == len(path)
        for below, above in itertools.pairwise(path):
            assert below.issuer == above.subject
    real = _INTER.der in served
    if not real:
        assert report.status is not PathStatus.VALID
    elif report.status is not PathStatus.VALID:
        # Copies of the intermediate re-signed by its own key, served before it,
        # can exhaust the verifier's own signature-check limit (as clients' do).
        assert report.status is PathStatus.UNTRUSTED
        assert (report.error or "").startswith("the verifier gave up building a path")
    if real and search.exhausted is None and len(search.paths) < MAX_PATHS:
        assert any(len(p) == 3 for p in search.paths)  # leaf, Mesh CA, Mesh Root
    finding = path_budget_finding(search.exhausted, len(served))
    assert (finding is None) is (search.exhausted is None)
    if finding is not None:
        assert finding.check is Check.PATH_BUDGET_EXCEEDED
