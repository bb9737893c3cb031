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
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import trio
from oracle.okhttp_cases import Case, build_cases
from peers import free_port, require_program, running

from scanner.chain import analyze_chain
from scanner.clients import assess_clients
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


def pinaudit_outcome(case: Case, served: tuple[bytes, ...], port: int, directory: Path) -> Outcome:
    """pinaudit's verdict and failure text for one case, through its public API:
    an inventory naming the Kotlin file, the chain its probe received, the
    case's roots as the trust store. The only code here that knows that API."""
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


@pytest.fixture(scope="module")
def observed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Observed]]:
    java = require_program("java")
    javac = require_program("javac")
    openssl = require_program("openssl")
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
    results: dict[str, Observed] = {}
    for start in range(0, len(CASES), BATCH):
        results.update(_run_batch(CASES[start : start + BATCH], tmp, classes, openssl, java))
    yield results


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_pinaudit_agrees_with_okhttp(
    case: Case, observed: dict[str, Observed], tmp_path: Path
) -> None:
    seen = observed[case.id]
    assert seen.served == tuple(c.der for c in case.served), "s_server sent another chain"
    expected = okhttp_outcome(seen.okhttp)
    got = pinaudit_outcome(case, seen.served, seen.port, tmp_path)
    assert str(got) == str(expected), f"{case.id} ({case.seen})"
