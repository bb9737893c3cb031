"""Client verdicts → findings (``clients.findings``): which check, which
severity, whose message, joined across clients or not, and when the path
search runs. Written for what mutation testing (issue 19, docs/mutation.md)
showed nothing asserted."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

import pytest

from scanner.chain import CertificateCache, analyze_chain
from scanner.clients import Environment, assess_clients, client_findings, judge
from scanner.clients.judge import report_paths
from scanner.fleet.pki import PKI, Issued, make_key
from scanner.importers.android import parse_network_security_config
from scanner.importers.chromium import parse_chromium
from scanner.importers.okhttp import parse_okhttp_list
from scanner.model import (
    ChainReport,
    Check,
    ClientPolicy,
    ClientVerdict,
    Endpoint,
    Severity,
    Verdict,
)
from scanner.paths import MAX_SIGNATURE_CHECKS, candidate_paths
from scanner.trust import TrustStore, store_from_pem

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)
HOST = "api.example.com"
C, W = Severity.CRITICAL, Severity.WARNING


@dataclass(frozen=True)
class World:
    pki: PKI
    root: Issued
    inter: Issued
    leaf: Issued
    stranger: Issued
    store: TrustStore


@pytest.fixture(scope="module")
def world() -> World:
    pki = PKI(NOW)
    root = pki.root("Root A")
    inter = pki.intermediate("Issuing CA", root)
    return World(
        pki,
        root,
        inter,
        pki.leaf(HOST, inter),
        pki.root("Stranger"),
        store_from_pem(root.pem, "roots.pem"),
    )


def report_of(world: World, served: list[bytes] | None = None, name: str = HOST) -> ChainReport:
    served = served if served is not None else [world.leaf.der, world.inter.der]
    return analyze_chain(served, world.store, name, NOW, cache=CertificateCache())


def endpoint(*policies: ClientPolicy, host: str = HOST) -> Endpoint:
    return Endpoint(host, host, 443, host, None, client_policies=policies)


def okhttp(name: str, *pins: Issued) -> ClientPolicy:
    text = f"{HOST}: " + ", ".join(str(p.pin) for p in pins)
    return parse_okhttp_list(text.encode(), "pins.txt", name=name)


def checks(findings: tuple[object, ...]) -> list[tuple[Check, Severity, str]]:
    return [(f.check, f.severity, f.message) for f in findings]  # type: ignore[attr-defined]


# --- one finding per client verdict ---------------------------------------------------


def test_a_refusing_client_is_a_critical_finding_that_names_it(world: World) -> None:
    policy = okhttp("app", world.stranger, world.root)
    _, findings = assess_clients(endpoint(policy), report_of(world), world.store, NOW)
    assert Check.CLIENT_PIN_FAILURE not in {f.check for f in findings}  # the root pin passes
    policy = okhttp("app", world.stranger)
    _, findings = assess_clients(endpoint(policy), report_of(world), world.store, NOW)
    assert (
        Check.CLIENT_PIN_FAILURE,
        C,
        f"okhttp (pin-set 'app') refuses {HOST}: no pin matches the path",
    ) in checks(findings)


def test_two_clients_refusing_share_one_finding_and_rotation_checks_are_not_joined(
    world: World,
) -> None:
    """One finding per check and severity (the results merge on them): the
    clients' messages are joined; a rotation check keeps its first message."""
    a, b = okhttp("a", world.stranger), okhttp("b", world.stranger)
    _, findings = assess_clients(endpoint(a, b), report_of(world), world.store, NOW)
    failure = [f for f in findings if f.check is Check.CLIENT_PIN_FAILURE]
    assert [f.message for f in failure] == [
        f"okhttp (pin-set 'a') refuses {HOST}: no pin matches the path; "
        f"okhttp (pin-set 'b') refuses {HOST}: no pin matches the path"
    ]
    single = [f for f in findings if f.check is Check.SINGLE_PIN]
    assert len(single) == 1
    assert "a (okhttp)" in single[0].message and "b (okhttp)" not in single[0].message
    # the same client listed twice says it once
    _, twice = assess_clients(endpoint(a, a), report_of(world), world.store, NOW)
    assert [f.message for f in twice if f.check is Check.CLIENT_PIN_FAILURE] == [
        f"okhttp (pin-set 'a') refuses {HOST}: no pin matches the path"
    ]


# --- pin-sets about to stop being enforced --------------------------------------------


def _android(world: World, expiration: str) -> ClientPolicy:
    xml = (
        "<network-security-config><domain-config>"
        f'<domain>{HOST}</domain><pin-set expiration="{expiration}">'
        f'<pin digest="SHA-256">{world.root.pin.b64}</pin>'
        f'<pin digest="SHA-256">{world.stranger.pin.b64}</pin>'
        "</pin-set></domain-config></network-security-config>"
    )
    return parse_network_security_config(xml.encode(), "nsc.xml", name="app")


@pytest.mark.parametrize(
    ("expiration", "expected"),
    [
        # the first devices (UTC+14) stop at 10:00Z the day before
        ("2026-01-20", "the pins stop being enforced from 2026-01-19T10:00:00Z (in 18 days)"),
        ("2026-03-02", "the pins stop being enforced from 2026-03-01T10:00:00Z (in 59 days)"),
        ("2026-03-03", None),  # beyond the 60 warning days
        ("2026-01-01", None),  # some devices stopped already: the window, not a warning
    ],
)
def test_a_client_pinset_expiring_within_the_warning_days(
    world: World, expiration: str, expected: str | None
) -> None:
    _, findings = assess_clients(
        endpoint(_android(world, expiration)), report_of(world), world.store, NOW
    )
    expiring = [f.message for f in findings if f.check is Check.PINSET_EXPIRING]
    assert expiring == ([f"android (pin-set 'app'): {expected}"] if expected else [])


def test_an_empty_pinset_is_not_also_expiring(world: World) -> None:
    """An empty ``<pin-set>`` switches pinning off (NOT_ENFORCED): its
    expiration date ends nothing, so no expiring warning."""
    xml = (
        f"<network-security-config><domain-config><domain>{HOST}</domain>"
        '<pin-set expiration="2026-01-20"/></domain-config></network-security-config>'
    )
    policy = parse_network_security_config(xml.encode(), "nsc.xml", name="app")
    verdicts, findings = assess_clients(endpoint(policy), report_of(world), world.store, NOW)
    assert verdicts[0].verdict is Verdict.NOT_ENFORCED
    assert verdicts[0].enforce_until is not None
    assert Check.PINSET_EXPIRING not in {f.check for f in findings}


# --- path-dependent and ambiguous verdicts ---------------------------------------------


@dataclass(frozen=True)
class Mesh:
    x1: Issued
    x2: Issued
    served: list[bytes]


@pytest.fixture(scope="module")
def mesh(world: World) -> Mesh:
    """Two roots, X2 cross-signed by X1 (Let's Encrypt's 2020-2024 shape):
    the served chain ends at X2 or, one certificate on, at X1."""
    pki = world.pki
    x1, x2 = pki.root("X1"), pki.root("X2")
    ye = pki.root("YE")
    ye1 = pki.intermediate("YE1", ye)
    leaf = pki.leaf(HOST, ye1)
    served = [leaf.der, ye1.der, pki.cross_sign(ye, x2).der, pki.cross_sign(x2, x1).der]
    return Mesh(x1, x2, served)


def _chromium(entries: str, pinsets: str, names: dict[str, str]) -> ClientPolicy:
    doc = f'{{"pinsets": [{pinsets}], "entries": [{entries}]}}'
    pins = "PinsListTimestamp\n1767225600\n\n" + "".join(
        f"{name}\n{pin}\n\n" for name, pin in names.items()
    )
    return parse_chromium(
        doc.encode(), "pins.json", pins_data=pins.encode(), pins_source="x.pins", name="chrome"
    )


def _judged(
    policy: ClientPolicy, report: ChainReport, paths: object, env: object = None
) -> ClientVerdict:
    return judge(policy, HOST, report_paths(report, paths), NOW, valid=report.valid, env=env)  # type: ignore[arg-type]


def test_a_path_dependent_verdict_with_no_failing_path_is_a_warning(mesh: Mesh) -> None:
    """A locally installed X2 makes Chromium skip the pins on the path ending
    there; the other path passes on X1: path-dependent, but nobody fails."""
    store = store_from_pem(mesh.x1.pem + mesh.x2.pem, "x.pem")
    report = analyze_chain(mesh.served, store, HOST, NOW, cache=CertificateCache())
    paths = candidate_paths(mesh.served, store, NOW, cache=CertificateCache())
    policy = _chromium(
        f'{{"name": "{HOST}", "pins": "x"}}',
        '{"name": "x", "static_spki_hashes": ["X1"]}',
        {"X1": str(mesh.x1.pin)},
    )
    local = Environment(local_anchors=frozenset({mesh.x2.pin}))
    got = _judged(policy, report, paths, local)
    assert got.verdict is Verdict.PATH_DEPENDENT
    assert sorted(p.verdict.value for p in got.paths) == ["bypassed_local_anchor", "pass"]
    found = client_findings(endpoint(policy), [got], report, NOW)
    assert [(f.check, f.severity) for f in found] == [(Check.CLIENT_AMBIGUOUS, W)]
    assert found[0].message.startswith("chromium (pin-set 'chrome'): the verdict depends on")


@pytest.mark.parametrize(("bad", "severity"), [(False, W), (True, C)])
def test_chromiums_lookups_disagreeing_is_critical_only_when_one_fails(
    world: World, bad: bool, severity: Severity
) -> None:
    """b.login.example.com: the component list applies example.com's pins, the
    compiled-in list none (edge 50); critical when those pins fail."""
    names = {
        "Good": str(world.root.pin),
        "Bad": str(world.inter.pin if bad else world.stranger.pin),
    }
    policy = _chromium(
        '{"name": "example.com", "pins": "corp", "include_subdomains": true},'
        '{"name": "login.example.com", "pins": "corp"}',
        '{"name": "corp", "static_spki_hashes": ["Good"], "bad_static_spki_hashes": ["Bad"]}',
        names,
    )
    host = "b.login.example.com"
    leaf = world.pki.leaf(host, world.inter)
    report = report_of(world, [leaf.der, world.inter.der], host)
    got = judge(policy, host, report_paths(report), NOW, valid=report.valid)
    assert got.verdict is Verdict.AMBIGUOUS
    found = client_findings(endpoint(policy, host=host), [got], report, NOW)
    assert [(f.check, f.severity) for f in found] == [(Check.CLIENT_AMBIGUOUS, severity)]


# --- the path search runs for chains that validate --------------------------------------


def test_the_path_budget_is_a_finding_of_a_valid_chain_only(world: World) -> None:
    """A served cross-sign mesh (tests/test_paths.py) exhausts the search: a
    finding when the chain validates; none when it does not (no client gets
    as far as building paths for pins)."""
    attacker = [make_key() for _ in range(3)]
    carried = [world.inter.key, *attacker]
    mesh = [
        world.pki.issue(
            "",
            subject=world.inter.cert.subject,
            key=carried[n % len(carried)],
            issuer=Issued(world.inter.cert, attacker[(n // len(carried)) % 3]),
            ca=True,
        ).der
        for n in range(36)
    ]
    served = [world.leaf.der, world.inter.der, *mesh]
    policy = okhttp("app", world.root, world.stranger)
    _, findings = assess_clients(endpoint(policy), report_of(world, served), world.store, NOW)
    assert [f.message for f in findings if f.check is Check.PATH_BUDGET_EXCEEDED] == [
        f"path building stopped after {MAX_SIGNATURE_CHECKS} signature checks: the 38 served "
        "certificates offer more paths to an anchor than clients explore; client verdicts "
        "cover the paths found so far"
    ]
    misnamed = report_of(world, served, "other.example.com")
    assert not misnamed.valid
    _, findings = assess_clients(
        endpoint(policy, host="other.example.com"), misnamed, world.store, NOW
    )
    assert Check.PATH_BUDGET_EXCEEDED not in {f.check for f in findings}
