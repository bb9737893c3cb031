"""The commands that need no network: `pinaudit pin FILE` and `pinaudit validate`,
exit codes and error lines exactly as a user sees them."""

from __future__ import annotations

import io
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import certifi
import pytest
from peers import require_program

from scanner.cli import main
from scanner.fleet.pki import PKI, Issued
from scanner.trust import load_certificate, split_pem

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = main(list(argv), stdout=out, stderr=err)
    return int(status), out.getvalue(), err.getvalue()


def openssl_pin(pem: bytes) -> str:
    """The documented openssl pipeline, run for real."""
    openssl = require_program("openssl")
    pubkey = subprocess.run(
        [openssl, "x509", "-pubkey", "-noout"], input=pem, capture_output=True, check=True
    ).stdout
    der = subprocess.run(
        [openssl, "pkey", "-pubin", "-outform", "DER"],
        input=pubkey,
        capture_output=True,
        check=True,
    ).stdout
    digest = subprocess.run(
        [openssl, "dgst", "-sha256", "-binary"], input=der, capture_output=True, check=True
    ).stdout
    return (
        subprocess.run([openssl, "base64"], input=digest, capture_output=True, check=True)
        .stdout.decode()
        .strip()
    )


@pytest.fixture(scope="module")
def pki() -> PKI:
    return PKI(NOW)


@pytest.mark.parametrize("key_type", ["rsa2048", "ec256", "ec384", "ed25519"])
def test_pin_command_equals_the_openssl_pipeline(pki: PKI, key_type: str, tmp_path: Path) -> None:
    root = pki.root(f"Root {key_type}", key_type=key_type)
    path = tmp_path / "cert.pem"
    path.write_bytes(root.pem)
    status, out, err = run("pin", str(path))
    assert (status, err) == (0, "")
    assert out.splitlines()[-1] == f"   pin:     sha256/{openssl_pin(root.pem)}"


def _certifi_root(cn: str) -> bytes:
    for der in split_pem(Path(certifi.where()).read_bytes()):
        assert isinstance(der, bytes)
        cert, _ = load_certificate(der)
        if cert.subject.rfc4514_string().startswith(f"CN={cn},"):
            return der
    raise AssertionError(f"{cn} not in certifi")


@pytest.mark.parametrize(
    ("cn", "pin"),
    [
        ("ISRG Root X1", "C5+lpZ7tcVwmwQIMcRtPbsQtWLABXhQzejna0wHFr8M="),
        ("ISRG Root X2", "diGVwiVYbubAI3RW4hB9xU8e/CH2GnkuvVFZE8zmgzI="),
    ],
)
def test_pin_command_gives_the_published_isrg_pins(cn: str, pin: str, tmp_path: Path) -> None:
    path = tmp_path / "root.der"
    path.write_bytes(_certifi_root(cn))  # DER input
    status, out, _ = run("pin", str(path))
    assert status == 0
    lines = out.splitlines()
    assert lines[0] == f"0  CN={cn},O=Internet Security Research Group,C=US"
    assert lines[3] == f"   pin:     sha256/{pin}"
    status, out, _ = run("pin", "--format", "hpkp", str(path))
    assert out.splitlines()[3] == f'   pin:     pin-sha256="{pin}"'


def test_pin_command_lists_a_chain_in_file_order(pki: PKI, tmp_path: Path) -> None:
    root = pki.root("Chain Root")
    inter = pki.intermediate("Chain Intermediate", root)
    leaf = pki.leaf("www.example.com", inter)
    path = tmp_path / "chain.pem"
    path.write_bytes(leaf.pem + inter.pem)
    status, out, _ = run("pin", "-f", "plain", str(path))
    assert status == 0
    assert out == (
        "0  O=pinaudit test PKI,CN=www.example.com\n"
        "   issuer:  O=pinaudit test PKI,CN=Chain Intermediate\n"
        f"   expires: {leaf.cert.not_valid_after_utc:%Y-%m-%dT%H:%M:%SZ}\n"
        f"   pin:     {leaf.pin.b64}\n"
        "1  O=pinaudit test PKI,CN=Chain Intermediate\n"
        "   issuer:  O=pinaudit test PKI,CN=Chain Root\n"
        f"   expires: {inter.cert.not_valid_after_utc:%Y-%m-%dT%H:%M:%SZ}\n"
        f"   pin:     {inter.pin.b64}\n"
    )


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        ("okhttp", "sha256/{b64}"),
        ("hpkp", 'pin-sha256="{b64}"'),
        ("android", '<pin digest="SHA-256">{b64}</pin>'),
        ("plain", "{b64}"),
        ("hex", "{hex}"),
    ],
)
def test_pin_formats(pki: PKI, tmp_path: Path, fmt: str, expected: str) -> None:
    cert: Issued = pki.root("Format Root")
    path = tmp_path / "c.pem"
    path.write_bytes(cert.pem)
    _, out, _ = run("pin", "--format", fmt, str(path))
    want = expected.format(b64=cert.pin.b64, hex=cert.pin.digest.hex())
    assert out.splitlines()[3] == f"   pin:     {want}"


def test_pin_command_errors(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.pem"
    garbage.write_bytes(b"hello, not a certificate\n")
    assert run("pin", str(garbage)) == (
        2,
        "",
        f"pinaudit pin: error: {garbage}: neither PEM nor DER certificate data\n",
    )
    broken = tmp_path / "broken.pem"
    broken.write_bytes(b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    status, out, err = run("pin", str(broken))
    assert status == 1
    assert out.startswith("0  <certificate does not parse: ")
    status, _, err = run("pin", "--format", "nonsense", str(broken))
    assert status == 2
    assert "argument --format/-f: invalid choice: 'nonsense'" in err


def test_validate_example_inventory() -> None:
    status, out, err = run("validate", "--inventory", "inventories/example.yaml")
    assert (status, err) == (0, "")
    assert out.startswith("inventories/example.yaml: OK: ")


def test_validate_reports_every_problem_with_its_position(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(
        "version: 1\n"
        "pinsets:\n"
        "  letsencrypt:\n"
        "    pins: [sha256/C5+lpZ7tcVwmwQIMcRtPbsQtWLABXhQzejna0wHFr8M=]\n"
        "endpoints:\n"
        "  - host: a.example.com\n"
        "    port: 70000\n"
        "  - host: b.example.com\n"
        "    pinset: letsencrpyt\n"
        "    tmeout: 5s\n"
        "  - host: c.example.com\n"
        "    pins: [sha256/AAAA]\n"
    )
    status, out, err = run("validate", "--inventory", str(path))
    assert (status, out) == (2, "")
    assert err.splitlines() == [
        f"pinaudit validate: error: {path}:7:11: endpoints[0].port: "
        "port must be 1..65535, got 70000",
        f"pinaudit validate: error: {path}:9:13: endpoints[1].pinset: "
        "unknown pinset 'letsencrpyt' (did you mean 'letsencrypt'?)",
        f"pinaudit validate: error: {path}:10:5: endpoints[1].tmeout: "
        "unknown key 'tmeout' (did you mean 'timeout'?)",
        f"pinaudit validate: error: {path}:12:12: endpoints[2].pins[0]: "
        "invalid pin 'sha256/AAAA': a sha256 digest is 32 bytes, this decodes to 3",
        "pinaudit validate: 4 problems; nothing scanned",
    ]


BILLION_LAUGHS = "\n".join(
    ["version: 1", 'a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    + [f"a{n}: &a{n} [" + ",".join([f"*a{n - 1}"] * 9) + "]" for n in range(1, 10)]
    + ["endpoints: [*a9]", ""]
)


def test_billion_laughs_is_rejected_at_once(tmp_path: Path) -> None:
    path = tmp_path / "laughs.yaml"
    path.write_text(BILLION_LAUGHS)
    started = time.perf_counter()
    # A real process: an unbounded expansion would eat memory for minutes;
    # the timeout only guards against that, it is not a performance assertion.
    result = subprocess.run(
        [sys.executable, "-m", "scanner", "validate", "--inventory", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        check=False,
    )
    elapsed = time.perf_counter() - started
    print(f"billion laughs rejected by a fresh process in {elapsed:.3f} s")
    assert result.returncode == 2
    assert result.stdout == ""
    first = result.stderr.splitlines()[0]
    assert first.startswith(f"pinaudit validate: error: {path}:")
    assert "alias" in first


def test_usage_errors_exit_2() -> None:
    status, _, err = run("frobnicate")
    assert status == 2
    assert "invalid choice: 'frobnicate'" in err
    status, _, err = run("validate")
    assert status == 2
    assert "the following arguments are required: --inventory/-i" in err
    status, _, err = run("validate", "--inventory", "/nonexistent/inv.yaml")
    assert status == 2
    assert err.startswith("pinaudit validate: error: /nonexistent/inv.yaml: cannot read")


def test_python_dash_m_scanner_version() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "scanner", "--version"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    assert result.stdout == "pinaudit 0.1.0\n"


def test_interrupts_grouped_by_trio_exit_130_without_a_trace() -> None:
    from scanner.cli import dispatch as cli

    if sys.version_info >= (3, 11):
        from builtins import BaseExceptionGroup
    else:  # trio's dependency on older Pythons
        from exceptiongroup import BaseExceptionGroup

    grouped = BaseExceptionGroup("nursery", [KeyboardInterrupt(), KeyboardInterrupt()])
    assert cli._only_interrupts(grouped)
    assert cli._only_interrupts(BaseExceptionGroup("outer", [grouped]))
    assert not cli._only_interrupts(
        BaseExceptionGroup("mixed", [KeyboardInterrupt(), ValueError()])
    )
