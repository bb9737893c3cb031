"""The protocol features through the real `scan` process: inventory keys in,
findings, report fields and metric samples out, against real servers
(openssl s_server stapling from openssl ocsp, postfix, tinyproxy, Unbound)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from peers import free_port, require_program, running
from protocol_peers import (
    ocsp_index_line,
    ocsp_responder,
    postfix,
    s_server_stapling,
    server_directory,
    tinyproxy,
    unbound,
    write_tls,
)

from scanner.caa import bundled_identifiers
from scanner.chain import analyze_chain
from scanner.ct import CtPolicy, bundled_log_list
from scanner.fleet.pki import PKI, standard_chain
from scanner.model import Check, Endpoint, Observation, Severity
from scanner.protocol_audit import protocol_findings
from scanner.trust import TrustKind, TrustSpec, TrustStores

ROOT = Path(__file__).resolve().parent.parent
REPORT_SCHEMA = json.loads((ROOT / "docs" / "report.schema.json").read_text())
NOW = datetime.now(timezone.utc).replace(microsecond=0)
pytestmark = pytest.mark.peers


def scan(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scanner", "--traceback", "scan", *args],
        capture_output=True, text=True, cwd=ROOT, timeout=120, check=False,
        env={**os.environ, **(env or {})},
    )  # fmt: skip


def report_of(directory: Path, inventory: str, *flags: str,
              env: dict[str, str] | None = None) -> tuple[dict[str, Any], str, int]:  # fmt: skip
    (directory / "inv.yaml").write_text(textwrap.dedent(inventory))
    out, prom = directory / "report.json", directory / "pinaudit.prom"
    done = scan(
        "-i", str(directory / "inv.yaml"), "--format", "json", "--output", str(out),
        "--textfile", str(prom), "--no-progress", *flags, env=env,
    )  # fmt: skip
    assert done.stderr == "" or "warning" in done.stderr, done.stderr
    report = json.loads(out.read_text())
    jsonschema.validate(report, REPORT_SCHEMA)
    return report, prom.read_text(), done.returncode


def promtool_clean(text: str) -> None:
    """The new families pass `promtool check metrics` without a word."""
    promtool = require_program("promtool")
    checked = subprocess.run(
        [promtool, "check", "metrics"], input=text.encode(), capture_output=True,
        check=False, timeout=60,
    )  # fmt: skip
    assert (checked.returncode, checked.stdout, checked.stderr) == (0, b"", b"")


def checks(entry: dict[str, Any]) -> set[tuple[str, str]]:
    return {(f["check"], f["severity"]) for f in entry["findings"]}


def test_revoked_staple_and_old_tls_version(tmp_path: Path) -> None:
    """ocsp: true against a server stapling a revoked answer, over TLS 1.0:
    two findings, the report's ocsp object and the metric families."""
    require_program("openssl")
    pki = PKI(NOW)
    chain = standard_chain(pki, "legacy.test")
    (tmp_path / "bundle.pem").write_bytes(chain.root.pem)
    index = ocsp_index_line(chain.leaf, "R", revoked=NOW - timedelta(days=1))
    with (
        server_directory("e2e-ocsp") as directory,
        ocsp_responder(directory, issuer=chain.intermediate, signer=chain.intermediate,
                       index=index) as responder,
        s_server_stapling(directory, "127.90.60.1", chain.leaf, chain.intermediate,
                          responder=responder,
                          extra=("-tls1", "-cipher", "DEFAULT:@SECLEVEL=0")) as port,
    ):  # fmt: skip
        report, prom, code = report_of(
            tmp_path,
            f"""\
            version: 1
            endpoints:
              - name: legacy
                host: 127.90.60.1
                port: {port}
                sni: legacy.test
                trust: bundle.pem
                ocsp: true
                tls_version_severity: critical
            """,
        )
    (entry,) = report["endpoints"]
    assert checks(entry) == {("ocsp_revoked", "critical"), ("old_tls_version", "critical")}
    assert entry["tls"]["version"] == "TLSv1"
    assert entry["ocsp"]["status"] == "revoked"
    assert entry["ocsp"]["revocation_reason"] == "key_compromise"
    assert code == 1
    assert 'pinaudit_ocsp_status{endpoint="legacy",ocsp_status="revoked"} 1.0' in prom
    assert 'pinaudit_ocsp_next_update_timestamp_seconds{endpoint="legacy"}' in prom
    assert 'pinaudit_tls_info{alpn="",cipher="ECDHE-ECDSA-AES256-SHA",endpoint="legacy",' in prom
    promtool_clean(prom)


def test_starttls_through_a_proxy_from_the_environment(tmp_path: Path) -> None:
    """starttls: smtp (port 25 unless written) reached through HTTPS_PROXY with
    --proxy-from-env, NO_PROXY exempting another endpoint."""
    pki = PKI(NOW)
    chain = standard_chain(pki, "mail.test")
    (tmp_path / "bundle.pem").write_bytes(chain.root.pem)
    with server_directory("e2e-smtp") as directory:
        (directory / "tls").mkdir()
        (directory / "pf").mkdir()
        (directory / "px").mkdir()
        tls = write_tls(directory / "tls", chain.leaf, chain.intermediate)
        with (
            postfix(directory / "pf", "127.90.60.2", tls) as smtp,
            tinyproxy(directory / "px", "127.90.60.3", connect_ports=(smtp,), auth=None) as proxy,
        ):
            report, _, code = report_of(
                tmp_path,
                f"""\
                version: 1
                defaults: {{trust: bundle.pem, starttls: smtp}}
                endpoints:
                  - {{name: via-proxy, host: 127.90.60.2, port: {smtp}, sni: mail.test}}
                  - {{name: exempt, host: 127.90.60.2, port: {smtp}, sni: mail.test,
                      labels: {{path: direct}}}}
                """,
                "--proxy-from-env",
                env={"HTTPS_PROXY": f"http://127.90.60.3:{proxy}", "NO_PROXY": "127.90.60.0/24"},
            )
    entries = {e["name"]: e for e in report["endpoints"]}
    # NO_PROXY's CIDR range covers both: neither goes through the proxy
    assert entries["via-proxy"]["tls"].get("proxy") is None
    assert {e["tls"]["starttls"] for e in entries.values()} == {"smtp"}
    assert entries["via-proxy"]["chain"][0]["subject"] == "O=pinaudit test PKI,CN=mail.test"
    assert code == 0, report
    with server_directory("e2e-smtp2") as directory:
        (directory / "tls").mkdir()
        (directory / "pf").mkdir()
        (directory / "px").mkdir()
        tls = write_tls(directory / "tls", chain.leaf, chain.intermediate)
        with (
            postfix(directory / "pf", "127.90.60.4", tls) as smtp,
            tinyproxy(directory / "px", "127.90.60.5", connect_ports=(smtp,), auth=None) as proxy,
        ):
            report, _, _ = report_of(
                tmp_path,
                f"""\
                version: 1
                defaults: {{trust: bundle.pem, starttls: smtp}}
                endpoints:
                  - {{name: via-proxy, host: 127.90.60.4, port: {smtp}, sni: mail.test}}
                  - {{name: direct, host: 127.90.60.4, port: {smtp}, sni: mail.test,
                      proxy: false}}
                """,
                "--proxy-from-env",
                env={"HTTPS_PROXY": f"http://127.90.60.5:{proxy}", "NO_PROXY": ""},
            )
    entries = {e["name"]: e for e in report["endpoints"]}
    assert entries["via-proxy"]["tls"]["proxy"] == f"http://127.90.60.5:{proxy}"
    assert "proxy" not in entries["direct"]["tls"]
    assert entries["via-proxy"]["status"] == entries["direct"]["status"] == "ok"


def test_refusals_are_their_own_reasons(tmp_path: Path) -> None:
    pki = PKI(NOW)
    chain = standard_chain(pki, "mail.test")
    (tmp_path / "bundle.pem").write_bytes(chain.root.pem)
    with server_directory("e2e-refuse") as directory:
        (directory / "pf").mkdir()
        (directory / "px").mkdir()
        with (
            postfix(directory / "pf", "127.90.60.6", None) as smtp,
            tinyproxy(directory / "px", "127.90.60.7", connect_ports=(443,), auth=None) as proxy,
        ):
            report, prom, code = report_of(
                tmp_path,
                f"""\
                version: 1
                defaults: {{trust: bundle.pem}}
                endpoints:
                  - {{name: plain-smtp, host: 127.90.60.6, port: {smtp}, starttls: smtp}}
                  - {{name: blocked, host: 127.90.60.6, port: {smtp},
                      proxy: "http://127.90.60.7:{proxy}"}}
                """,
            )
    entries = {e["name"]: e for e in report["endpoints"]}
    assert entries["plain-smtp"]["error"]["reason"] == "starttls_refused"
    assert entries["blocked"]["error"]["reason"] == "proxy_refused"
    assert entries["blocked"]["error"]["detail"].startswith(
        f"proxy http://127.90.60.7:{proxy} refused CONNECT 127.90.60.6:{smtp}: "
    )
    assert 'pinaudit_probe_error{endpoint="plain-smtp",reason="starttls_refused"} 1.0' in prom
    assert 'pinaudit_probe_error{endpoint="blocked",reason="proxy_refused"} 1.0' in prom
    assert code == 1


def test_caa_through_the_scan_with_a_dns_server(tmp_path: Path) -> None:
    """caa: true with --dns-server: a Let's Encrypt-issued leaf (by organisation)
    under a name whose CAA set names only Google Trust Services, and a pinned
    name without CAA."""
    pki = PKI(NOW, org="Let's Encrypt")
    root = pki.root("ISRG Root X1")
    inter = pki.intermediate("R13", root)
    leaf = pki.leaf("www.other.test", inter, dns=("www.other.test", "www.nocaa.test"))
    private = PKI(NOW, org="Example Private CA")
    private_root = private.root("Example Private Root")
    private_leaf = private.leaf("www.private.test", private_root)
    (tmp_path / "bundle.pem").write_bytes(root.pem + private_root.pem)
    zones = [
        'local-zone: "other.test." static',
        "local-data: 'other.test. 300 IN CAA 0 issue \"pki.goog\"'",
        'local-zone: "private.test." static',
        "local-data: 'private.test. 300 IN CAA 0 issue \"ca.example.test\"'",
        'local-zone: "nocaa.test." static',
        "local-data: 'www.nocaa.test. 300 IN A 192.0.2.9'",
    ]
    openssl = require_program("openssl")
    (tmp_path / "leaf.pem").write_bytes(leaf.pem)
    (tmp_path / "inter.pem").write_bytes(inter.pem)
    (tmp_path / "key.pem").write_bytes(leaf.key_pem())
    (tmp_path / "private.pem").write_bytes(private_leaf.pem)
    (tmp_path / "private.key").write_bytes(private_leaf.key_pem())
    port = free_port("127.90.60.8")
    command = [openssl, "s_server", "-quiet", "-www", "-accept", f"127.90.60.8:{port}",
               "-cert", str(tmp_path / "leaf.pem"), "-key", str(tmp_path / "key.pem"),
               "-cert_chain", str(tmp_path / "inter.pem")]  # fmt: skip
    private_port = free_port("127.90.60.10")
    private_server = [openssl, "s_server", "-quiet", "-www", "-accept",
                      f"127.90.60.10:{private_port}", "-cert", str(tmp_path / "private.pem"),
                      "-key", str(tmp_path / "private.key")]  # fmt: skip
    with (
        server_directory("e2e-caa") as directory,
        unbound(directory, "127.90.60.9", zones) as dns,
        running(command, host="127.90.60.8", port=port),
        running(private_server, host="127.90.60.10", port=private_port),
    ):
        report, prom, _ = report_of(
            tmp_path,
            f"""\
            version: 1
            defaults: {{trust: bundle.pem, caa: true}}
            endpoints:
              - {{name: other, host: 127.90.60.8, port: {port}, sni: www.other.test}}
              - {{name: nocaa, host: 127.90.60.8, port: {port}, sni: www.nocaa.test,
                  pins: ["{inter.pin}", "{root.pin}"]}}
              - {{name: private-unknown, host: 127.90.60.10, port: {private_port},
                  sni: www.private.test}}
              - {{name: private-declared, host: 127.90.60.10, port: {private_port},
                  sni: www.private.test,
                  caa_identifiers: {{"Example Private CA": [ca.example.test]}}}}
            """,
            "--dns-server",
            f"127.90.60.9:{dns}",
        )
    entries = {e["name"]: e for e in report["endpoints"]}
    assert ("caa_unauthorized", "warning") in checks(entries["other"])
    assert entries["other"]["caa"]["detail"] == (
        "issue at other.test authorises pki.goog, not the issuer (letsencrypt.org)"
    )
    assert ("caa_missing", "info") in checks(entries["nocaa"])
    assert entries["nocaa"]["caa"]["outcome"] == "no_caa"
    assert 'pinaudit_caa_result{caa_outcome="not_authorized",endpoint="other"} 1.0' in prom
    # A private CA: unknown to the bundled table, authorised once the inventory
    # declares its identifier.
    assert entries["private-unknown"]["caa"]["outcome"] == "issuer_unknown"
    assert entries["private-declared"]["caa"]["outcome"] == "authorized"
    assert not any(f["check"].startswith("caa_") for f in entries["private-declared"]["findings"])
    promtool_clean(prom)


def test_bad_flags_are_usage_errors(tmp_path: Path) -> None:
    (tmp_path / "inv.yaml").write_text("version: 1\nendpoints:\n  - host: a.example\n")
    bad_dns = scan("-i", str(tmp_path / "inv.yaml"), "--dns-server", "dns.google")
    assert bad_dns.returncode == 2
    assert "--dns-server: a DNS server is an IP address" in bad_dns.stderr
    bad_env = scan("-i", str(tmp_path / "inv.yaml"), "--proxy-from-env",
                   env={"HTTPS_PROXY": "ftp://proxy:21"})  # fmt: skip
    assert bad_env.returncode == 2
    assert "--proxy-from-env: HTTPS_PROXY: unsupported proxy scheme 'ftp://'" in bad_env.stderr


# --------------------------------------------------------------------------- CT, wired


def test_ct_findings_for_a_publicly_trusted_leaf() -> None:
    """ct: [chrome, apple] judges only a leaf whose endpoint trusts a public
    store; here the store is the test PKI's (a stand-in for the public one)."""
    pki = PKI(NOW)
    chain = standard_chain(pki, "a.test")
    stores = TrustStores()
    bundle = Path(server_bundle(chain.root.pem))
    store = stores.get(TrustSpec(TrustKind.BUNDLE, str(bundle)))
    report = analyze_chain(chain.served, store, "a.test", NOW)
    observation = Observation("192.0.2.1", 443, tuple(chain.served), "TLSv1.3", "x", None, 0, 0,
                              tls_scts=b"")  # fmt: skip
    public = Endpoint("a", "a.test", 443, "a.test", None, ct=("chrome", "apple"))
    private = Endpoint("b", "a.test", 443, "a.test", None, ct=("chrome",),
                       trust=TrustSpec(TrustKind.BUNDLE, str(bundle)))  # fmt: skip
    logs, ids = bundled_log_list(), bundled_identifiers()
    found, facts = protocol_findings(public, observation, report, NOW, logs=logs,
                                     identifiers=ids)  # fmt: skip
    assert [(f.check, f.severity) for f in found] == [
        (Check.CT_INSUFFICIENT, Severity.CRITICAL)
    ] * 2
    assert [v.policy for v in facts.ct] == [CtPolicy.CHROME, CtPolicy.APPLE]
    assert found[0].message.startswith("chrome CT policy: 0 embedded SCT(s)")
    none, facts = protocol_findings(private, observation, report, NOW, logs=logs,
                                    identifiers=ids)  # fmt: skip
    assert (none, facts.ct) == ((), ())
    bundle.unlink()


def server_bundle(pem: bytes) -> str:
    import tempfile

    handle, name = tempfile.mkstemp(suffix=".pem")
    os.write(handle, pem)
    os.close(handle)
    return name
