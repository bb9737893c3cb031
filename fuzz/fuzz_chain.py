"""Fuzz target: chain parsing and analysis from DER bytes, over mutated real chains.

The input is a flags byte, then certificates as a TLS Certificate message
carries them (3-byte length, DER), so mutations land in the DER of real
certificates. Invariants:

- the whole per-endpoint verdict (``ScanKnowledge.learn``, ``evaluate`` =
  ``analyze_chain`` + ``audit``, and the JSON report entry) never raises:
  one hostile server must not end a scan;
- every served certificate either parses or carries its reason, and the
  path only names served positions that exist;
- ``spki_der_from_tbs`` (our own DER walker) raises only ValueError;
- ``read_certificates`` and ``store_from_pem`` raise only their own errors;
- the same certificates as trust anchors (the last one of the message joins
  the store, the others are served) and as a store bundle (mode 3) never make
  ``analyze_chain``, ``audit`` or the client-path search raise;
- the client-path search (``paths.search_paths``) stays within its budget and
  every path it lists runs leaf → anchor without repeating a certificate; the
  seeds include cross-sign meshes (certificates named like the intermediate,
  cross-signed with a handful of keys) for the mutations to work on.

    python fuzz/fuzz_chain.py [CORPUS_DIR] [-runs=N] [-max_total_time=S] [-max_len=65536]
"""

from __future__ import annotations

import base64
import contextlib
import json
from datetime import datetime, timedelta, timezone

from _driver import fuzz, instrumented

with instrumented():
    from cryptography import x509

    from scanner.audit import audit
    from scanner.chain import CertificateCache, analyze_chain
    from scanner.errors import CertificateFileError, TrustStoreError
    from scanner.exporters import jsonreport
    from scanner.fleet import faults
    from scanner.fleet.pki import PKI, Issued, make_key
    from scanner.model import Endpoint, Observation, Pinset, ServedCert
    from scanner.paths import MAX_DEPTH, MAX_PATHS, MAX_SIGNATURE_CHECKS, MAX_STEPS, search_paths
    from scanner.pins import spki_der_from_tbs
    from scanner.results import ScanKnowledge, evaluate
    from scanner.trust import TrustStore, read_certificates, store_from_pem

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)
TIMES = (
    NOW,
    datetime(1950, 1, 1, tzinfo=timezone.utc),
    datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone.utc),
    datetime(1, 1, 1, tzinfo=timezone.utc),
)
NAMES = ("api.example.com", "192.0.2.7", "2001:db8::7", "*.example.com", "my_host.internal",
         "xn--bcher-kva.example", "", ".", "a" * 300)  # fmt: skip
MAX_CERTS = 16

_PKI = PKI(NOW)
_ROOT = _PKI.root("Fuzz Root")
_INTER = _PKI.intermediate("Fuzz Issuing CA", _ROOT)
_OTHER_ROOT = _PKI.root("Other Root", key_type="rsa2048")
_LEAF = _PKI.leaf("api.example.com", _INTER)
_STORE = store_from_pem(_ROOT.pem + _OTHER_ROOT.pem, "fuzz-trust.pem")
_PINSETS = (
    None,
    Pinset("app", (_INTER.pin, _OTHER_ROOT.pin)),
    Pinset("old", (_INTER.pin,), expires=NOW.date() - timedelta(days=3)),
)


def _certificates(data: bytes) -> list[bytes]:
    ders: list[bytes] = []
    at = 0
    while at + 3 <= len(data) and len(ders) < MAX_CERTS:
        length = int.from_bytes(data[at : at + 3], "big")
        ders.append(data[at + 3 : at + 3 + length])
        at += 3 + length
    return ders


def test_one_input(data: bytes) -> None:
    if not data:
        return
    flags, body = data[0], data[1:]
    mode = flags & 0x3
    if mode == 3:  # the same bytes as a certificate file and a trust bundle
        with contextlib.suppress(CertificateFileError):
            read_certificates(body, "fuzz")
        with contextlib.suppress(TrustStoreError):
            bundle = store_from_pem(body, "fuzz")
            _judge([_LEAF.der, _INTER.der], bundle, NOW)  # every anchor of it, fuzzed
        return
    served = _certificates(body)
    for der in served:
        with contextlib.suppress(ValueError):
            spki_der_from_tbs(der)
    now = TIMES[(flags >> 2) % len(TIMES)]
    name = NAMES[(flags >> 4) % len(NAMES)]
    pinset = _PINSETS[mode % len(_PINSETS)]
    cache = CertificateCache()  # fresh: every input is parsed, nothing is remembered
    knowledge = ScanKnowledge()
    if flags & 0x80:
        knowledge.learn(served, cache)
    endpoint = Endpoint("fuzz", name or "h.example", 443, name or None, pinset)
    observation = Observation("192.0.2.1", 443, tuple(served), "TLSv1.3", "x", None, 0.0, 0.0)
    result = evaluate(endpoint, [observation], _STORE, now, knowledge=knowledge, cache=cache)
    report = result.addresses[0].report
    assert report is not None
    assert len(report.served) == len(served)
    for position, cert in enumerate(report.served):
        assert isinstance(cert, ServedCert) and cert.position == position
        assert (cert.facts is None) == (cert.error is not None)
    for step in report.path:
        assert step.served_position is None or 0 <= step.served_position < len(served)
    json.dumps(jsonreport.endpoint_entry(result, now))
    _check_search(served, _STORE, now, cache)
    if len(served) > 1:  # the last certificate as a trust anchor
        with contextlib.suppress(TrustStoreError):
            store = store_from_pem(_ROOT.pem + _pem(served[-1]), "fuzz-anchor.pem")
            _judge(served[:-1], store, now)


def _pem(der: bytes) -> bytes:
    body = base64.encodebytes(der).replace(b"\n", b"")
    lines = b"\n".join(body[i : i + 64] for i in range(0, len(body), 64))
    return b"-----BEGIN CERTIFICATE-----\n" + lines + b"\n-----END CERTIFICATE-----\n"


def _judge(served: list[bytes], store: TrustStore, now: datetime) -> None:
    cache = CertificateCache()
    report = analyze_chain(served, store, "api.example.com", now, cache=cache)
    audit(Endpoint("fuzz", "api.example.com", 443, "api.example.com", None), report, now)
    for step in report.path:
        assert step.served_position is None or 0 <= step.served_position < len(served)
    _check_search(served, store, now, cache)


def _check_search(
    served: list[bytes], store: TrustStore, now: datetime, cache: CertificateCache
) -> None:
    search = search_paths(served, store, now, cache=cache)
    assert search.signature_checks <= MAX_SIGNATURE_CHECKS
    assert search.steps <= MAX_STEPS + 1
    assert len(search.paths) <= MAX_PATHS
    for path in search.paths:
        assert 2 <= len(path) <= MAX_DEPTH + 1
        digests = [f.der_sha256 for f in path]
        assert len(set(digests)) == len(digests)


def _message(chain: list[Issued] | list[bytes], flags: int) -> bytes:
    ders = [c.der if isinstance(c, Issued) else c for c in chain]
    return bytes([flags]) + b"".join(len(d).to_bytes(3, "big") + d for d in ders)


def seeds() -> list[bytes]:
    pki = PKI(NOW)
    leaf = pki.leaf("api.example.com", _INTER)
    rsa_root = pki.root("RSA Root", key_type="rsa2048")
    rsa_leaf = pki.leaf("api.example.com", rsa_root, key_type="rsa2048", hash_alg="sha1")
    ed_leaf = pki.leaf("192.0.2.7", _INTER, key_type="ed25519", dns=(), ips=("192.0.2.7",))
    wild = pki.leaf("*.example.com", _INTER, days_after=-1)
    odd = x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.55555.1"), b"\x05\x00")
    critical = pki.leaf("api.example.com", _INTER, extra_extensions=[(odd, True)])
    negative = faults.with_negative_serial(
        pki.leaf("api.example.com", _INTER, serial=0x1234_5678_9ABC_DEF0), _INTER
    )
    late = datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone.utc)
    future = pki.leaf("api.example.com", _INTER, not_before=late, not_after=late)
    chains: list[list[Issued] | list[bytes]] = [
        [leaf, _INTER],
        [leaf, _INTER, _ROOT],
        [_INTER, leaf],
        [leaf],
        [rsa_leaf, rsa_root],
        [ed_leaf, _INTER],
        [wild, _INTER, _OTHER_ROOT],
        [critical, _INTER],
        [negative, _INTER],
        [future, _INTER],
        [leaf.der[: len(leaf.der) // 2], _INTER.der],
        [leaf.cert.tbs_certificate_bytes],
    ]
    attacker = [make_key() for _ in range(3)]
    carried = [_INTER.key, *attacker]
    mesh = [
        pki.issue(
            "",
            subject=_INTER.cert.subject,
            key=carried[n % len(carried)],
            issuer=Issued(_INTER.cert, attacker[(n // len(carried)) % len(attacker)]),
            ca=True,
        )
        for n in range(24)
    ]
    chains.append([leaf, _INTER, *mesh])
    chains.append([leaf, *mesh[:8], _ROOT])
    out = [_message(chain, flags) for chain in chains for flags in (0x00, 0x85, 0x16, 0xE1)]
    out.append(b"\x03" + leaf.pem + _INTER.pem)
    out.append(b"\x03" + leaf.der)
    return out


if __name__ == "__main__":
    fuzz(test_one_input, seeds)
