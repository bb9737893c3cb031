"""Rough edges of the command line a first-time user hits (issue 14, items
5 and 8-14; issue 15 items 2 and 5-9), each as the user sees it: exit
status, the exact line on stderr, what was (not) written."""

from __future__ import annotations

import io
import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest
from rich.console import Console

from scanner import __version__
from scanner.cli import main
from scanner.exporters import table
from scanner.exporters.files import write_atomic
from scanner.fleet.pki import PKI
from scanner.fleet.server import Behaviour, Credential, FleetProcess, Site, TlsConfig, write_config
from scanner.model import Check, Endpoint, Finding, Severity
from scanner.results import EndpointResult, ResultStatus
from scanner.safetext import printable

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime.now(timezone.utc)
ESC = "\x1b"


def run(*args: str, prog: str = "pinaudit") -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = main(list(args), prog=prog, stdout=out, stderr=err)
    return int(status), out.getvalue(), err.getvalue()


def subprocess_scan(
    *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from scanner.cli import scan_entry; scan_entry()", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
        env={**os.environ, **(env or {})},
    )


# --- the scan command on its own (item 9) ------------------------------------------


def test_scan_help_names_scan_once() -> None:
    done = subprocess_scan("--help")
    assert done.returncode == 0
    assert done.stdout.startswith("usage: scan [-h] [--version] [--traceback] --inventory FILE")
    assert "scan scan" not in done.stdout


def test_scan_version_needs_no_inventory() -> None:
    done = subprocess_scan("--version")
    assert (done.returncode, done.stdout, done.stderr) == (0, f"pinaudit {__version__}\n", "")


def test_scan_accepts_traceback(tmp_path: Path) -> None:
    done = subprocess_scan("--traceback", "-i", str(tmp_path / "nope.yaml"))
    assert done.returncode == 2
    assert done.stderr == (
        f"scan: error: {tmp_path / 'nope.yaml'}: cannot read inventory: No such file or "
        "directory\nscan: 1 problem; nothing scanned\n"
    )


# --- flags checked before anything is scanned (items 11, 12; issue 15 item 9) --------


@pytest.fixture
def one_endpoint(tmp_path: Path) -> Path:
    path = tmp_path / "inv.yaml"
    path.write_text("version: 1\nendpoints:\n  - host: 127.0.0.1\n    port: 9\n    timeout: 1s\n")
    return path


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (("--concurrency", "0"), "--concurrency 0: must be 1..65536"),
        (("--concurrency", "-5"), "--concurrency -5: must be 1..65536"),
        (("--retries", "1000"), "--retries 1000: must be 0..100"),
        (("--deadline", "99999999999d"), "--deadline '99999999999d': must be at most 36500d"),
        (("--deadline", "1y"), "--deadline '1y': expected seconds, or a duration like 500ms"),
        (("--now", "0001-01-01T00:00:00+01:00"), "--now '0001-01-01T00:00:00+01:00': too far"),
        (("--shard", "0/0"), "--shard '0/0': N must be 1..256"),
        (("--output", "/nonexistent-dir/x.json"), "--output /nonexistent-dir/x.json: directory"),
        (("--state", "/nonexistent-dir/s.json"), "--state /nonexistent-dir/s.json: directory"),
    ],
)
def test_bad_flags_exit_2_before_scanning(
    one_endpoint: Path, flags: tuple[str, ...], message: str
) -> None:
    status, out, err = run("scan", "-i", str(one_endpoint), *flags)
    assert (status, out) == (2, "")
    assert err.startswith(f"pinaudit scan: error: {message}"), err
    assert err.count("\n") == 1


def test_deadline_takes_the_same_durations_as_interval(one_endpoint: Path) -> None:
    """Before, --deadline 1h was refused while --interval 1h worked."""
    status, _, err = run("scan", "-i", str(one_endpoint), "--deadline", "1h", "-f", "json")
    assert status == 1, err  # the endpoint is refused: a finding, not a usage error


def test_an_output_that_is_a_directory_is_refused_before_scanning(
    one_endpoint: Path, tmp_path: Path
) -> None:
    status, out, err = run("scan", "-i", str(one_endpoint), "-o", str(tmp_path))
    assert (status, out) == (2, "")
    assert err == f"pinaudit scan: error: --output {tmp_path}: a directory\n"


def test_an_empty_inventory_is_refused_unless_allowed(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("version: 1\nendpoints: []\n")
    status, out, err = run("validate", "-i", str(path))
    assert status == 0
    assert out == f"{path}: OK: 0 endpoints, 0 pin-sets, 1 file\n"
    assert err == (
        f"pinaudit validate: warning: {path}: the inventory has no endpoints: scan refuses it "
        "(exit 2) unless --allow-empty\n"
    )
    status, out, err = run("scan", "-i", str(path))
    assert (status, out) == (2, "")
    assert err == (
        f"pinaudit scan: error: {path}: the inventory has no endpoints: nothing to scan "
        "(--allow-empty scans it anyway)\n"
    )
    status, out, err = run("scan", "-i", str(path), "--allow-empty", "-f", "json")
    assert status == 0, err
    assert json.loads(out)["summary"] == {"endpoints": 0, "ok": 0, "drift": 0, "error": 0}


# --- errors that name the right thing (items 10, 14) ---------------------------------


def test_pin_of_a_missing_file_is_a_file_error_not_a_dns_lookup(tmp_path: Path) -> None:
    for name in ("nope.pem", str(tmp_path / "certs" / "server.crt"), "leaf.DER"):
        status, out, err = run("pin", name)
        assert (status, out) == (2, "")
        assert err == f"pinaudit pin: error: {name}: no such file\n"


def test_a_missing_inventory_has_no_line_and_column(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    status, _, err = run("validate", "-i", str(missing))
    assert status == 2
    assert err.splitlines()[0] == (
        f"pinaudit validate: error: {missing}: cannot read inventory: No such file or directory"
    )


def test_a_colon_instead_of_a_slash_in_a_pin_gets_a_hint(tmp_path: Path) -> None:
    path = tmp_path / "inv.yaml"
    path.write_text(
        "version: 1\nendpoints:\n  - host: example.com\n"
        "    pins: ['sha256:C5+lpZ7tcVwmwQIMcRtPbsQtWLABXhQzejna0wHFr8M=']\n"
    )
    status, _, err = run("validate", "-i", str(path))
    assert status == 2
    assert err.splitlines()[0] == (
        f"pinaudit validate: error: {path}:4:12: endpoints[0].pins[0]: invalid pin "
        "'sha256:C5+lpZ7tcVwmwQIMcRtPbsQtWLABXhQzejna0wHFr8M=': write the prefix with a "
        'slash, sha256/..., or as pin-sha256="..."'
    )


# --- the table (item 8; issue 15 item 2) ---------------------------------------------


def _result(name: str, *findings: Finding) -> EndpointResult:
    endpoint = Endpoint(name, "h", 443, None, None)
    return EndpointResult(endpoint, ResultStatus.ERROR, findings)


def _render(results: list[EndpointResult], width: int) -> str:
    out = io.StringIO()
    console = Console(file=out, width=width, highlight=False, soft_wrap=False, no_color=True)
    table.render(results, console)
    return out.getvalue()


def test_the_table_at_80_columns_keeps_status_and_checks_and_wraps_the_detail() -> None:
    refused = Finding(
        Check.UNREACHABLE,
        Severity.CRITICAL,
        "refused (10.20.30.40): [Errno 111] Connect call failed ('10.20.30.40', 8443)",
    )
    expiring = Finding(Check.CERT_EXPIRING, Severity.CRITICAL, "expires in 2.0 days")
    text = _render(
        [_result("api-gateway.payments.internal.example.com:8443", refused, expiring)], 80
    )
    assert all(len(line.rstrip()) <= 80 for line in text.splitlines())
    header = text.splitlines()[1].split()
    assert header == ["endpoint", "status", "checks", "detail"]
    assert " error " in text  # whole, never "e…"
    assert "cert_expiring" in text and "unreachable" in text
    joined = " ".join(line.strip() for line in text.splitlines())
    assert "8443)" in joined  # the end of the detail (the port) is not cut off
    assert "…" not in text


def test_markup_and_control_codes_from_the_wire_are_shown_as_text() -> None:
    hostile = Finding(
        Check.HOSTNAME_MISMATCH,
        Severity.CRITICAL,
        f"certificate is not valid for 'x' (it names: [/x], [bold]{ESC}[31mred{ESC}]0;owned\a)",
    )
    text = _render([_result(f"evil[/x]{ESC}[2J", hostile)], 160)
    assert ESC not in text and "\a" not in text
    assert "[/x]" in text and "[bold]" in text  # shown, not parsed as markup
    assert "\\x1b[31mred" in text and "\\x1b]0;owned\\x07" in text
    assert "evil[/x]\\x1b[2J" in text


def test_printable_escapes_controls_and_bidi_but_keeps_text() -> None:
    assert printable("CN=Straße, O=例え") == "CN=Straße, O=例え"
    assert printable("a\nb\rc\td") == "a\\x0ab\\x0dc\\x09d"
    assert printable("\u202eelgoog.com") == "\\u202eelgoog.com"
    assert printable("\x9b31m") == "\\x9b31m"


@pytest.fixture
def hostile_server(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """A server whose leaf carries markup and ANSI escapes in its subject and SAN."""
    pki = PKI(NOW)
    root = pki.root("Hostile Root")
    leaf = pki.leaf(f"[/x]{ESC}[31mevil", root, dns=(f"[/x].{ESC}[2J.example",))
    trust = tmp_path / "trust.pem"
    trust.write_bytes(root.pem)
    (tmp_path / "leaf.pem").write_bytes(leaf.pem)
    site = Site("127.0.0.1", 0, Behaviour.TLS, TlsConfig(Credential.of(leaf)))
    with FleetProcess(write_config([site], tmp_path / "site")) as served:
        (address, port) = served.listening[0]
        inventory = tmp_path / "inv.yaml"
        inventory.write_text(
            f"version: 1\nendpoints:\n  - host: {address}\n    port: {port}\n"
            "    sni: hostile.example\n    trust: trust.pem\n    timeout: 30s\n"
        )
        yield inventory, tmp_path / "leaf.pem"


def test_a_hostile_subject_neither_crashes_the_table_nor_reaches_the_terminal(
    hostile_server: tuple[Path, Path],
) -> None:
    inventory, leaf = hostile_server
    done = subprocess_scan("-i", str(inventory), env={"NO_COLOR": "1"})
    assert done.returncode == 1, done.stderr  # hostname_mismatch, not an internal error (70)
    assert "hostname_mismatch" in done.stdout
    assert ESC not in done.stdout and ESC not in done.stderr
    assert "[/x].\\x1b[2J.example" in done.stdout
    status, out, _ = run("pin", str(leaf))
    assert status == 0
    assert ESC not in out
    assert out.splitlines()[0] == "0  O=pinaudit test PKI,CN=[/x]\\x1b[31mevil"


# --- every output on its own, none destroyed (issue 15 items 5, 7, 8) --------------------


def test_a_pipe_and_a_character_device_are_written_in_place(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        write_atomic(fifo, "report\n")
        assert os.read(reader, 100) == b"report\n"
    finally:
        os.close(reader)
    assert stat.S_ISFIFO(fifo.stat().st_mode)  # still the pipe, not a file renamed over it
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipe"]


def test_a_character_device_is_written_in_place_not_renamed_over(tmp_path: Path) -> None:
    """A private copy of /dev/null's node in a temp dir (never the system's):
    before, write_atomic renamed a regular file over it, as it did over the
    real /dev/null with --state /dev/null as root."""
    node = tmp_path / "null"
    try:
        os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("creating a device node needs CAP_MKNOD")
    write_atomic(node, "report\n")
    assert stat.S_ISCHR(node.stat().st_mode)
    assert node.stat().st_rdev == os.makedev(1, 3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["null"]


def test_a_replaced_file_keeps_its_mode_and_a_new_one_follows_the_umask(tmp_path: Path) -> None:
    private = tmp_path / "state.json"
    private.write_text("old")
    private.chmod(0o600)
    write_atomic(private, "new")
    assert private.read_text() == "new"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    old = os.umask(0o027)
    try:
        write_atomic(tmp_path / "fresh.json", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "fresh.json").stat().st_mode) == 0o640


def test_a_state_that_cannot_be_saved_costs_no_other_output(
    one_endpoint: Path, tmp_path: Path
) -> None:
    """Before, a failed --state write aborted the report and the exports."""
    state = tmp_path / "state.json"
    os.mkfifo(state)  # nobody reads it: saving fails when the scan is done
    report = tmp_path / "report.json"
    textfile = tmp_path / "m.prom"
    status, _, err = run(
        "scan", "-i", str(one_endpoint), "--state", str(state), "-f", "json",
        "-o", str(report), "--textfile", str(textfile),
    )  # fmt: skip
    assert status == 3
    assert f"pinaudit scan: error: --state {state}: cannot write" not in err
    assert f"scan: error: --state {state}: cannot write: No such device or address\n" in err
    assert json.loads(report.read_text())["summary"]["endpoints"] == 1
    assert "pinaudit_endpoint_up" in textfile.read_text()


# --- a bug in one endpoint's judgement (item 5) -----------------------------------------


def test_a_bug_judging_one_endpoint_is_its_finding_and_the_scan_completes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from scanner import engine

    real = engine.evaluate

    def buggy(endpoint: Endpoint, *args: object, **kwargs: object) -> EndpointResult:
        if endpoint.name == "second":
            raise ZeroDivisionError("division by zero")
        return real(endpoint, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(engine, "evaluate", buggy)
    path = tmp_path / "inv.yaml"
    path.write_text(
        "version: 1\ndefaults: {timeout: 1s}\nendpoints:\n"
        "  - {name: first, host: 127.0.0.1, port: 9}\n"
        "  - {name: second, host: 127.0.0.1, port: 9}\n"
        "  - {name: third, host: 127.0.0.1, port: 9}\n"
    )
    status, out, err = run("scan", "-i", str(path), "-f", "json")
    assert status == 70
    report = json.loads(out)
    entries = {e["name"]: e for e in report["endpoints"]}
    assert [f["check"] for f in entries["second"]["findings"]] == ["internal_error"]
    assert entries["second"]["error"] == {
        "reason": "internal_error",
        "detail": "internal error while judging this endpoint: ZeroDivisionError: division by zero",
        "alert": None,
    }
    assert [f["check"] for f in entries["first"]["findings"]] == ["unreachable"]
    assert [f["check"] for f in entries["third"]["findings"]] == ["unreachable"]
    assert err == (
        "scan: internal error (a bug) while judging 1 endpoint(s): second; the rest "
        "of the scan is complete; run again with --traceback for details\n"
    )
    status, _, err = run("scan", "-i", str(path), "-f", "json", "--traceback")
    assert status == 70
    assert "scan: internal error while judging second:\nTraceback" in err
    assert "ZeroDivisionError: division by zero" in err


def test_not_scanned_endpoints_give_their_reason_in_json_as_in_the_metrics() -> None:
    from scanner.exporters.jsonreport import endpoint_entry
    from scanner.results import not_scanned

    result = not_scanned(Endpoint("late", "h", 443, None, None), "global deadline passed")
    assert endpoint_entry(result, NOW)["error"] == {
        "reason": "not_scanned",
        "detail": "global deadline passed",
        "alert": None,
    }
