"""The index behind the incremental second look (issue 11 item 2), judged
without a network: what a verdict waits for, who is marked when it arrives,
and that a pin nobody serves costs nothing at the end of the scan.

The whole-fleet comparison with a reference run is tests/test_incremental_fleet.py.
"""

from __future__ import annotations

from datetime import datetime, timezone

from scanner.chain import AnalysisCache, CertificateCache
from scanner.fleet.pki import PKI, make_key
from scanner.model import Check, Endpoint, Observation, PathStatus, Pin, Pinset
from scanner.pins import pin_of_certificate
from scanner.results import Dependencies, Rejudge, ScanKnowledge, evaluate
from scanner.trust import store_from_pem

NOW = datetime(2026, 6, 1, tzinfo=timezone.utc)
_PKI = PKI(NOW)
ROOT = _PKI.root("Knowledge Root")
INTER = _PKI.intermediate("Knowledge Issuing CA", ROOT)
OTHER_INTER = _PKI.intermediate("Knowledge Issuing CA 2", ROOT)
STORE = store_from_pem(ROOT.pem, "knowledge.pem")
OFFLINE_BACKUP = pin_of_certificate(_PKI.root("Never Served", key=make_key("ec256")).cert)


def endpoint(name: str, *pins: Pin) -> Endpoint:
    host = f"{name}.example.com"
    return Endpoint(name, host, 443, host, Pinset("app", pins) if pins else None)


def observation(*ders: bytes) -> Observation:
    return Observation("192.0.2.1", 443, ders, "TLSv1.3", "TLS_AES_128_GCM_SHA256", None, 0, 0)


def judge(ep: Endpoint, obs: Observation, knowledge: ScanKnowledge) -> tuple[object, Dependencies]:
    depends = Dependencies()
    result = evaluate(
        ep, [obs], STORE, NOW, knowledge=knowledge, cache=CertificateCache(),
        analyses=AnalysisCache(), depends=depends,
    )  # fmt: skip
    return result, depends


def test_a_pin_nobody_serves_costs_nothing_at_the_end() -> None:
    knowledge = ScanKnowledge()
    leaf = _PKI.leaf("a.example.com", INTER)
    knowledge.learn([leaf.der, INTER.der])
    for n in range(1000):
        _result, depends = judge(
            endpoint(f"e{n}", INTER.pin, OFFLINE_BACKUP), observation(leaf.der, INTER.der),
            knowledge,
        )  # fmt: skip
        assert (depends.keys, depends.pool, depends.everything) == ({OFFLINE_BACKUP}, None, False)
        knowledge.watch(n, depends)
    other = _PKI.leaf("b.example.com", OTHER_INTER)
    knowledge.learn([other.der, OTHER_INTER.der])  # a new leaf and a new CA: not the backup
    assert knowledge.take_changed() == {}
    assert knowledge.waiting() >= 1000  # they wait; nothing is judged again


def test_a_key_that_arrives_marks_exactly_its_waiting_endpoints() -> None:
    knowledge = ScanKnowledge()
    leaf = _PKI.leaf("a.example.com", INTER)
    knowledge.learn([leaf.der, INTER.der])
    waiting = endpoint("waits", INTER.pin, OTHER_INTER.pin)
    result, depends = judge(waiting, observation(leaf.der, INTER.der), knowledge)
    assert depends.keys == {OTHER_INTER.pin}
    assert Check.UNRESOLVED_PIN in {f.check for f in result.findings}  # type: ignore[attr-defined]
    knowledge.watch("waits", depends)
    knowledge.watch("unrelated", Dependencies(keys={OFFLINE_BACKUP}))
    knowledge.learn([_PKI.leaf("b.example.com", OTHER_INTER).der, OTHER_INTER.der])
    assert knowledge.take_changed() == {"waits": Rejudge.FULL}
    again, _ = judge(waiting, observation(leaf.der, INTER.der), knowledge)
    assert Check.UNRESOLVED_PIN not in {f.check for f in again.findings}  # type: ignore[attr-defined]
    assert knowledge.take_changed() == {}  # handed over once


def test_a_ca_key_looked_up_by_rotation_alone_asks_for_rotation_alone() -> None:
    knowledge = ScanKnowledge()
    knowledge.watch("rotation", Dependencies(ca_keys={OTHER_INTER.pin}))
    knowledge.watch("both", Dependencies(keys={OTHER_INTER.pin}, ca_keys={OTHER_INTER.pin}))
    knowledge.learn([OTHER_INTER.der])
    assert knowledge.take_changed() == {"rotation": Rejudge.ROTATION, "both": Rejudge.FULL}


def test_a_chain_that_needed_the_pool_is_judged_again_when_the_pool_grows() -> None:
    # Its pins are both anchors of the store: only the pool can change its verdict.
    knowledge = ScanKnowledge()
    leaf = _PKI.leaf("a.example.com", INTER)
    lonely = endpoint("lonely", ROOT.pin)
    result, depends = judge(lonely, observation(leaf.der), knowledge)
    primary = result.primary  # type: ignore[attr-defined]
    assert (primary.report.status, depends.keys, depends.pool) == (PathStatus.UNTRUSTED, set(), 0)
    knowledge.watch("lonely", depends)
    knowledge.learn([_PKI.leaf("leaf-only.example.com", INTER).der])  # a leaf: no intermediate
    assert knowledge.take_changed() == {}
    knowledge.learn([_PKI.leaf("b.example.com", INTER).der, INTER.der])
    assert knowledge.take_changed() == {"lonely": Rejudge.FULL}
    again, _ = judge(lonely, observation(leaf.der), knowledge)
    assert again.primary.report.status is PathStatus.INCOMPLETE  # type: ignore[attr-defined]


def test_a_valid_chain_never_waits_for_the_pool() -> None:
    knowledge = ScanKnowledge()
    leaf = _PKI.leaf("a.example.com", INTER)
    knowledge.learn([leaf.der, INTER.der])
    _result, depends = judge(
        endpoint("ok", INTER.pin, ROOT.pin), observation(leaf.der, INTER.der), knowledge
    )
    assert (depends.keys, depends.ca_keys, depends.pool) == (set(), set(), None)


def test_a_verdict_that_read_the_knowledge_whole_is_judged_again_on_any_change() -> None:
    knowledge = ScanKnowledge()
    whole = Dependencies()
    list(knowledge.known_keys(STORE.known_keys, whole))  # iterating reads everything
    assert whole.everything
    knowledge.watch("whole", whole)
    knowledge.learn([_PKI.leaf("c.example.com", INTER).der])
    assert knowledge.take_changed() == {"whole": Rejudge.FULL}


def test_the_client_paths_of_a_chain_are_searched_once_and_the_searches_are_bounded() -> None:
    # A pinned fleet: one wildcard chain served under many names (the realistic
    # benchmark's shape). The search of every client path depends on the served
    # chain, the store and the instant only: searched once, judged per name the
    # same as without the cache.
    leaf = _PKI.issue("*.example.com", issuer=INTER, dns=("*.example.com",))
    pins = (pin_of_certificate(INTER.cert), OFFLINE_BACKUP)
    obs = observation(leaf.der, INTER.der)
    analyses, certs = AnalysisCache(max_entries=2), CertificateCache()
    for n in range(20):
        ep = endpoint(f"api-{n}", *pins)
        cached = evaluate(ep, [obs], STORE, NOW, cache=certs, analyses=analyses)
        plain = evaluate(ep, [obs], STORE, NOW, cache=CertificateCache())
        assert cached == plain
        assert [len(p.certs) for p in cached.addresses[0].pin_paths] == [3]
    assert (analyses.search_misses, analyses.search_hits) == (1, 19)
    for n in range(5):  # five other chains: the oldest searches go
        other = _PKI.issue(f"*.n{n}.example.com", issuer=INTER, dns=(f"*.n{n}.example.com",))
        ep = Endpoint("x", f"a.n{n}.example.com", 443, f"a.n{n}.example.com", Pinset("app", pins))
        evaluate(ep, [observation(other.der, INTER.der)], STORE, NOW, analyses=analyses)
    assert analyses.searches() == 2
