"""The real OkHttp as the oracle for pinaudit's OkHttp verdicts.

Each case of tests/oracle/okhttp_cases.py is served by its own loopback
``openssl s_server`` (one address of 127.60/16 each). One JVM runs the real
OkHttp (Debian's libokhttp-java, OkHttp 3.13.1) on every case
(tests/oracle/OkHttpOracle.java, compiled here against the packaged jars):
a ``CertificatePinner`` with the case's ``add()`` calls, a trust store of
exactly the case's roots, a ``Dns`` answering the case's address. pinaudit
scans the same server (its own probe, over real TLS) with the same pins read
from a Kotlin source file, and must give the same answer:

* OkHttp connects, and a second request whose pins were all replaced by a pin
  no certificate has still connects: ``not_pinned``;
* OkHttp connects and that second request fails the pin check: ``pass``;
* ``Certificate pinning failure!`` or ``Failed to find a trusted cert that
  signed …``: ``fail_enforced``, with the message as OkHttp prints it (for the
  second one, which ends in the JDK's dump of the certificate, its subject);
* ``CertificatePinner.Builder`` throws: ``config_error``, with its message;
* the handshake or the hostname check fails: ``chain_invalid``.

The adapter to pinaudit's API is the one function ``pinaudit_outcome``.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import trio
from cryptography import x509
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import NameOID, ObjectIdentifier
from oracle.okhttp_cases import Case, build_cases
from peers import free_port, require_program, running

from scanner.chain import analyze_chain
from scanner.clients import assess_clients
from scanner.clients.okhttp_jvm import jdk_subject
from scanner.fleet.pki import PKI, Issued
from scanner.inventory import load_inventory
from scanner.model import Verdict
from scanner.probe import make_client_context, probe_address
from scanner.trust import store_from_pem

pytestmark = pytest.mark.peers

ORACLE = Path(__file__).resolve().parent / "oracle" / "OkHttpOracle.java"
JARS = ("/usr/share/java/okhttp.jar", "/usr/share/java/okio.jar")
NOW = datetime.now(timezone.utc)
CASES = build_cases(NOW)
BATCH = 16  # servers running at once
OKHTTP_VERSION = 3  # Debian's libokhttp-java: 3.13.1
_FAILED_TO_FIND = "Failed to find a trusted cert that signed "


@dataclass(frozen=True)
class Outcome:
    verdict: str
    text: str | None = None  # the failure as the client prints it

    def __str__(self) -> str:
        return self.verdict + (f"\n{self.text}" if self.text is not None else "")


@dataclass(frozen=True)
class Observed:
    okhttp: dict[str, Any]  # the oracle's line for the case
    served: tuple[bytes, ...]  # what pinaudit's probe received
    port: int


# --- the real OkHttp -----------------------------------------------------------------


def _subject_of_dump(message: str) -> str:
    """The subject line of the JDK's X509Certificate.toString() in a message."""
    found = re.search(r"^\s*Subject: (.*)$", message, re.MULTILINE)
    return found[1] if found else message


def okhttp_outcome(line: dict[str, Any]) -> Outcome:
    """The oracle's answer as a verdict and failure text."""
    outcome = line["outcome"]
    message = str(line.get("message", ""))
    if outcome == "builder_error":
        return Outcome(Verdict.CONFIG_ERROR.value, message)
    if outcome == "ok":
        canary = line["canary"]
        if canary["outcome"] == "ok":
            return Outcome(Verdict.NOT_PINNED.value)
        if str(canary.get("message", "")).startswith("Certificate pinning failure!"):
            return Outcome(Verdict.PASS.value)
        return Outcome(f"unexpected canary: {canary}")
    cls = line.get("class", "")
    if cls == "javax.net.ssl.SSLPeerUnverifiedException":
        if message.startswith("Certificate pinning failure!"):
            return Outcome(Verdict.FAIL_ENFORCED.value, message)
        if message.startswith(_FAILED_TO_FIND):
            return Outcome(Verdict.FAIL_ENFORCED.value, _FAILED_TO_FIND + _subject_of_dump(message))
        if message.startswith("Hostname "):
            return Outcome(Verdict.CHAIN_INVALID.value)
    if cls == "javax.net.ssl.SSLHandshakeException":
        return Outcome(Verdict.CHAIN_INVALID.value)
    return Outcome(f"unexpected: {cls}: {message}")


# --- pinaudit ------------------------------------------------------------------------


def kotlin_source(case: Case) -> str:
    """The case's pinner as an app writes it (what pinaudit imports)."""
    lines = ["import okhttp3.CertificatePinner", "", "val pinner = CertificatePinner.Builder()"]
    for pattern, pins in case.pins:
        args = ", ".join(json.dumps(v, ensure_ascii=False) for v in (pattern, *pins))
        lines.append(f"    .add({args})")
    lines.append("    .build()")
    return "\n".join(lines) + "\n"


def pinaudit_outcome(
    case: Case, served: tuple[bytes, ...], port: int, directory: Path, *, platform: str = "jvm"
) -> Outcome:
    """pinaudit's verdict and failure text for one case, through its public API:
    an inventory naming the Kotlin file (OkHttp 3 on `platform`), the chain its
    probe received, the case's roots as the trust store. The only code here
    that knows that API."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "Pinning.kt").write_text(kotlin_source(case), encoding="utf-8")
    roots = b"".join(r.pem for r in case.roots)
    (directory / "roots.pem").write_bytes(roots)
    name = "" if case.host == case.address else f"    sni: {json.dumps(case.host)}\n"
    (directory / "inventory.yaml").write_text(
        "version: 1\n"
        "pinsets:\n"
        "  app:\n"
        "    from: {okhttp: Pinning.kt}\n"
        f"    platform: {platform}\n"
        f"    okhttp_version: {OKHTTP_VERSION}\n"
        "endpoints:\n"
        f"  - host: {json.dumps(case.address)}\n"
        f"{name}"
        f"    port: {port}\n"
        "    trust: roots.pem\n"
        "    pinset: app\n",
        encoding="utf-8",
    )
    endpoint = load_inventory(directory / "inventory.yaml").endpoints[0]
    store = store_from_pem(roots, "roots.pem")
    report = analyze_chain(served, store, endpoint.server_name, NOW)
    verdicts, _ = assess_clients(endpoint, report, store, NOW)
    verdict = verdicts[0]
    if verdict.verdict is Verdict.CONFIG_ERROR:
        return Outcome(verdict.verdict.value, verdict.problems[0].message)
    text = verdict.failure.get("message") if verdict.failure else None
    return Outcome(verdict.verdict.value, text)


# --- serving the cases, running the oracle ------------------------------------------------


def _server_files(case: Case, directory: Path) -> list[str]:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "leaf.pem").write_bytes(case.leaf.pem)
    (directory / "leaf.key").write_bytes(case.leaf.key_pem())
    args = ["-cert", str(directory / "leaf.pem"), "-key", str(directory / "leaf.key")]
    if len(case.served) > 1:
        (directory / "chain.pem").write_bytes(b"".join(c.pem for c in case.served[1:]))
        args += ["-cert_chain", str(directory / "chain.pem")]
    return args


async def _probe(case: Case, port: int) -> tuple[bytes, ...]:
    sni = None if case.host == case.address else case.host.rstrip(".")
    result = await probe_address(case.address, port, sni, make_client_context(), timeout=10)
    return getattr(result, "served", ())


def _run_batch(
    cases: list[Case], tmp: Path, classes: Path, openssl: str, java: str
) -> dict[str, Observed]:
    ports = {c.id: free_port(c.address) for c in cases}
    with _servers(cases, ports, tmp, openssl):
        spec = {
            "cases": [
                {
                    "id": c.id,
                    "url": c.url(ports[c.id]),
                    "address": c.address,
                    "pins": [[p, list(v)] for p, v in c.pins],
                    "roots": [r.pem.decode() for r in c.roots],
                }
                for c in cases
            ]
        }
        spec_file = tmp / f"cases-{cases[0].id}.json"
        spec_file.write_text(json.dumps(spec), encoding="utf-8")
        classpath = ":".join((str(classes), *JARS))
        done = subprocess.run(
            [java, "-cp", classpath, "OkHttpOracle", str(spec_file)],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        lines = {d["id"]: d for d in map(json.loads, done.stdout.splitlines())}

        async def probe_all() -> dict[str, tuple[bytes, ...]]:
            found: dict[str, tuple[bytes, ...]] = {}
            for c in cases:
                found[c.id] = await _probe(c, ports[c.id])
            return found

        served = trio.run(probe_all)
    return {c.id: Observed(lines[c.id], served[c.id], ports[c.id]) for c in cases}


class _servers:
    """One openssl s_server per case, stopped when the block ends."""

    def __init__(self, cases: list[Case], ports: dict[str, int], tmp: Path, openssl: str):
        self.cases, self.ports, self.tmp, self.openssl = cases, ports, tmp, openssl
        self.stack: list[Any] = []

    def __enter__(self) -> None:
        try:
            for case in self.cases:
                args = _server_files(case, self.tmp / "servers" / case.id)
                command = [
                    self.openssl,
                    "s_server",
                    "-accept",
                    f"{case.address}:{self.ports[case.id]}",
                    *args,
                    "-www",
                    "-quiet",
                    "-no-CAfile",
                    "-no-CApath",
                    "-no-CAstore",
                ]
                context = running(command, host=case.address, port=self.ports[case.id])
                context.__enter__()
                self.stack.append(context)
        except BaseException:
            self.__exit__(None, None, None)
            raise

    def __exit__(self, *exc: object) -> None:
        while self.stack:
            self.stack.pop().__exit__(None, None, None)


@dataclass(frozen=True)
class Oracle:
    java: str
    classes: Path  # OkHttpOracle compiled
    tmp: Path


@pytest.fixture(scope="module")
def oracle(tmp_path_factory: pytest.TempPathFactory) -> Oracle:
    java = require_program("java")
    javac = require_program("javac")
    for jar in JARS:
        if not Path(jar).exists():
            require_program(Path(jar).name)  # skips, or fails under PINAUDIT_REQUIRE_PEERS=1
    tmp = tmp_path_factory.mktemp("okhttp-oracle")
    classes = tmp / "classes"
    compiled = subprocess.run(
        [javac, "-cp", ":".join(JARS), "-d", str(classes), str(ORACLE)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert compiled.returncode == 0, compiled.stderr
    return Oracle(java, classes, tmp)


@pytest.fixture(scope="module")
def observed(oracle: Oracle) -> Iterator[dict[str, Observed]]:
    openssl = require_program("openssl")
    results: dict[str, Observed] = {}
    for start in range(0, len(CASES), BATCH):
        batch = CASES[start : start + BATCH]
        results.update(_run_batch(batch, oracle.tmp, oracle.classes, openssl, oracle.java))
    yield results


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_pinaudit_agrees_with_okhttp(
    case: Case, observed: dict[str, Observed], tmp_path: Path
) -> None:
    """The JVM judge (``platform: jvm``, ``okhttp_version: 3``) says what OkHttp did."""
    seen = observed[case.id]
    assert seen.served == tuple(c.der for c in case.served), "s_server sent another chain"
    expected = okhttp_outcome(seen.okhttp)
    got = pinaudit_outcome(case, seen.served, seen.port, tmp_path)
    assert str(got) == str(expected), f"{case.id} ({case.seen})"


# --- Android: what the Android judge says, where it differs from OkHttp on a JVM ------------
#
# Android itself cannot run here. On Android OkHttp pins against the chain the
# platform's trust manager built (AndroidCertificateChainCleaner: the validated
# path), and the subjects in its message are printed the Android way (RFC 2253,
# as in real crash logs: "CN=R3,O=Let's Encrypt,C=US"). Every other case must
# say exactly what OkHttp said on the JVM, with the subjects so printed.


def _validated(*positions: str) -> Callable[[Case], list[Issued]]:
    """The validated path as positions: s0, s1 … served; r0 … roots."""

    def pick(case: Case) -> list[Issued]:
        return [(case.served if p[0] == "s" else case.roots)[int(p[1:])] for p in positions]

    return pick


# case → (the Android judge's verdict, its chain when it fails, why it differs)
ANDROID_DIFFERENCES: dict[str, tuple[str, Callable[[Case], list[Issued]] | None, str]] = {
    "intermediate-trusted-root-sent-pin-root": (
        "fail_enforced",
        _validated("s0", "r0"),
        "the validated path ends at the trusted intermediate; the served root is not on it",
    ),
    "two-intermediates-untrusted-first": (
        "pass",
        None,
        "the platform validates through the trusted copy; nothing takes the first signer served",
    ),
    "non-ca-copy-of-intermediate-first": (
        "pass",
        None,
        "the platform validates through the CA copy; nothing takes the first signer served",
    ),
    "cross-intermediate-b-trusted-a-first-pin-b": (
        "pass",
        None,
        "the platform validates through the copy signed by the trusted root",
    ),
    "cross-root-both-trusted-pin-old": (
        "path_dependent",
        None,
        "two valid paths; which one the platform's trust manager builds is not OkHttp's rule",
    ),
    "cross-root-both-trusted-pin-old-reversed": (
        "path_dependent",
        None,
        "two valid paths; which one the platform's trust manager builds is not OkHttp's rule",
    ),
    "cross-intermediate-both-trusted-a-first-pin-a": (
        "path_dependent",
        None,
        "two valid paths; which one the platform's trust manager builds is not OkHttp's rule",
    ),
    "cross-intermediate-both-trusted-b-first-pin-a": (
        "path_dependent",
        None,
        "two valid paths; which one the platform's trust manager builds is not OkHttp's rule",
    ),
}


def _android_subjects(text: str, case: Case) -> str:
    """OkHttp's JVM message with each chain subject as Android prints it."""
    by_pin = {str(c.pin): c for c in (*case.served, *case.roots)}

    def subject(match: re.Match[str]) -> str:
        cert = by_pin[match[1]]
        return f"    {match[1]}: {cert.cert.subject.rfc4514_string()}"

    return re.sub(r"^    (sha256/\S+): .*$", subject, text, flags=re.MULTILINE)


def _android_message(case: Case, chain: list[Issued], host: str) -> str:
    lines = ["Certificate pinning failure!", "  Peer certificate chain:"]
    lines += [f"    {c.pin}: {c.cert.subject.rfc4514_string()}" for c in chain]
    lines.append(f"  Pinned certificates for {host}:")
    lines += [f"    {p}" for _, pins in case.pins for p in dict.fromkeys(pins)]
    return "\n".join(lines)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_android_judge(case: Case, observed: dict[str, Observed], tmp_path: Path) -> None:
    """Same case, ``platform: android``: OkHttp's own answer unless listed above."""
    seen = observed[case.id]
    okhttp = okhttp_outcome(seen.okhttp)
    got = pinaudit_outcome(case, seen.served, seen.port, tmp_path, platform="android")
    difference = ANDROID_DIFFERENCES.get(case.id)
    if difference is None:
        text = _android_subjects(okhttp.text, case) if okhttp.text is not None else None
        assert str(got) == str(Outcome(okhttp.verdict, text)), case.id
        return
    verdict, chain, why = difference
    assert got.verdict != okhttp.verdict, f"{case.id} no longer differs ({why})"
    expected = Outcome(verdict, _android_message(case, chain(case), case.host) if chain else None)
    assert str(got) == str(expected), why


# --- how the JDK prints a subject --------------------------------------------------------

_A = x509.NameAttribute
_TRICKY_NAMES = [
    # real CA names: an apostrophe (Let's Encrypt), a comma (Entrust, Inc.)
    [_A(NameOID.COUNTRY_NAME, "US"), _A(NameOID.ORGANIZATION_NAME, "Let's Encrypt")],
    [_A(NameOID.ORGANIZATION_NAME, "Entrust, Inc."), _A(NameOID.COMMON_NAME, "Entrust L1K")],
    [_A(NameOID.COMMON_NAME, "a+b=c;d<e>")],
    [_A(NameOID.COMMON_NAME, "#lead")],
    [_A(NameOID.COMMON_NAME, 'say "hi" \\ bye')],
    [_A(NameOID.COMMON_NAME, " lead")],
    [_A(NameOID.COMMON_NAME, "trail ")],
    [_A(NameOID.COMMON_NAME, "two  spaces")],
    [_A(NameOID.COMMON_NAME, '"quoted"')],
    # a quote at one end only, and a lone quote (mutation testing, issue 19)
    [_A(NameOID.COMMON_NAME, '"half')],
    [_A(NameOID.COMMON_NAME, 'half"')],
    [_A(NameOID.COMMON_NAME, '"')],
    [_A(NameOID.COMMON_NAME, "a@b_c&d*e, @f")],
    [_A(NameOID.LOCALITY_NAME, "Zürich"), _A(NameOID.COMMON_NAME, "東京")],
    [_A(NameOID.COMMON_NAME, "line\nbreak")],
    [
        _A(NameOID.EMAIL_ADDRESS, "ca@example.com"),
        _A(NameOID.DOMAIN_COMPONENT, "com"),
        _A(NameOID.USER_ID, "u1"),
        _A(NameOID.SERIAL_NUMBER, "1234"),
        _A(NameOID.STATE_OR_PROVINCE_NAME, "Texas"),
        _A(NameOID.STREET_ADDRESS, "1 Main St"),
        _A(NameOID.TITLE, "Dr"),
        _A(NameOID.GIVEN_NAME, "Ann"),
        _A(NameOID.SURNAME, "Lee"),
        _A(NameOID.INITIALS, "AL"),
        _A(NameOID.GENERATION_QUALIFIER, "III"),
        _A(NameOID.DN_QUALIFIER, "q"),
        _A(NameOID.POSTAL_CODE, "77001"),
        _A(NameOID.BUSINESS_CATEGORY, "Private Organization"),
        _A(NameOID.JURISDICTION_COUNTRY_NAME, "US"),
        _A(ObjectIdentifier("1.2.3.4"), "custom"),
    ],
    [_A(NameOID.COMMON_NAME, "printable", _ASN1Type.PrintableString)],
    [_A(NameOID.ORGANIZATIONAL_UNIT_NAME, "bmp", _ASN1Type.BMPString)],
]


def test_jdk_subjects(oracle: Oracle) -> None:
    """pinaudit prints a subject in a JVM failure text the way the JDK does:
    each name's getSubjectDN().getName() from the real JDK."""
    pki = PKI(NOW)
    names = [x509.Name(attrs) for attrs in _TRICKY_NAMES]
    names.append(
        x509.Name(
            [
                x509.RelativeDistinguishedName(
                    [_A(NameOID.COMMON_NAME, "multi"), _A(NameOID.USER_ID, "u2")]
                ),
                x509.RelativeDistinguishedName([_A(NameOID.ORGANIZATION_NAME, "O1")]),
            ]
        )
    )
    certs = [pki.issue("x", subject=name) for name in names]
    spec = oracle.tmp / "subjects.json"
    spec.write_text(json.dumps({"certs": [c.pem.decode() for c in certs]}), encoding="utf-8")
    done = subprocess.run(
        [oracle.java, "-cp", str(oracle.classes), "OkHttpOracle", "--subjects", str(spec)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    jdk = [json.loads(line) for line in done.stdout.splitlines()]
    assert [jdk_subject(c.cert.subject) for c in certs] == jdk
