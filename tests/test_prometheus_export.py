"""The one-shot exports of `scan` end to end: the simulated fleet served by a
child process at a fixed `now`, the real `scan` command writing a textfile
(golden, compared as data), checked by the real promtool, and pushed to a
real Pushgateway."""

from __future__ import annotations

import io
import json
import os
import platform
import signal
import subprocess
import sys
import urllib.request
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, time, timezone
from pathlib import Path

import bcrypt
import pytest
import yaml
from cryptography import x509
from peers import free_port, require_program, running
from peers import pushgateway as running_pushgateway
from prometheus_client.parser import text_string_to_metric_families

from scanner.cli import main
from scanner.exporters.web import load_web_config
from scanner.fleet.scenarios import Fleet, FleetEndpoint, build_fleet
from scanner.fleet.server import FleetProcess, write_config
from scanner.pins import pin_of_certificate

ROOT = Path(__file__).resolve().parent.parent
PYTHON = platform.python_version()  # the python_version label of pinaudit_build_info
NOW = datetime(2026, 6, 1, tzinfo=timezone.utc)
SCENARIOS = (
    "healthy",
    "rotated",
    "backup",
    "leafpin",
    "expired",
    "untrusted",
    "nointermediate",
    "extracert",
    "reversed",
    "pinsetexpiring",
    "pinsetexpired",
    "silent",
    "tarpit",
    "reset",
    "http",
    "refused",
)
# Where each scenario's path comes from: served positions (s0, s1, …) or the
# fleet's CAs; then chain_valid, pin_match, backup_pins, pins_enforced.
GOLDEN: dict[str, tuple[tuple[str, ...], int, int, int, int]] = {
    "healthy": (("s0", "s1", "root_a"), 1, 1, 1, 1),
    "rotated": (("s0", "s1", "root_a"), 1, 0, 2, 1),  # the old leaf key is pinned
    "backup": (("s0", "s1", "root_b"), 1, 1, 1, 1),  # only the backup pin matches
    "leafpin": (("s0", "s1", "root_a"), 1, 1, 1, 1),
    "expired": (("s0", "s1", "root_a"), 0, 1, 1, 1),
    "untrusted": (("s0", "s1", "s2"), 0, 0, 2, 1),  # no path: the chain as served
    "nointermediate": (("s0", "inter_a", "root_a"), 0, 1, 1, 1),  # found at other endpoints
    "extracert": (("s0", "s1", "root_a"), 1, 1, 1, 1),
    "reversed": (("s0", "root_a"), 0, 1, 1, 1),  # the intermediate sent first is taken as leaf
    "pinsetexpiring": (("s0", "s1", "root_a"), 1, 1, 1, 1),
    "pinsetexpired": (("s0", "s1", "root_a"), 1, 0, 2, 0),
}
# (leaf_renewal, ca_switch) readiness where it is not (1, 1); None: no path, no series.
# Every pin-set has a backup pin on Root B, a CA the trust bundle holds.
ROTATION: dict[str, tuple[int, int] | None] = {
    "leafpin": (0, 1),  # only the leaf key and Root B: a new leaf key breaks it
    "reversed": (0, 1),  # the intermediate taken as the leaf is the only key matched
    "untrusted": None,
    # no pin matches today: pinned clients fail already, no rotation is "ready"
    "rotated": (0, 0),
    "pinsetexpired": (0, 0),
}
# Values that depend on the clock of the run: compared by (name, labels), and checked apart.
CLOCKED = {
    "pinaudit_handshake_duration_seconds",
    "pinaudit_last_success_timestamp_seconds",
    "pinaudit_scan_duration_seconds",
    "pinaudit_scan_timestamp_seconds",
}
Sample = tuple[str, frozenset[tuple[str, str]], float]


@pytest.fixture(scope="module")
def fleet_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Fleet, Path]]:
    directory = tmp_path_factory.mktemp("fleet")
    fleet = build_fleet(NOW, scenarios=SCENARIOS, base=3, timeout=1.0)
    with FleetProcess(write_config(fleet.sites, directory / "sites")) as served:
        yield fleet, fleet.write(directory, served.listening)


def _scan(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = main(["scan", *args], stdout=out, stderr=err)
    return int(status), out.getvalue(), err.getvalue()


def parse(text: str) -> set[Sample]:
    return {
        (s.name, frozenset(s.labels.items()), s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _ts(when: datetime) -> float:
    return when.timestamp()


def _role(cert: x509.Certificate, position: int) -> str:
    if position == 0:
        return "leaf"
    constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    if constraints.ca and cert.subject == cert.issuer:
        return "root"
    return "intermediate" if constraints.ca else "other"


# What the probe negotiates with the fleet's servers (pyOpenSSL on cryptography's
# OpenSSL against the fleet's stdlib ssl servers, none of which caps the version).
TLS13 = {"version": "TLSv1.3", "cipher": "TLS_AES_256_GCM_SHA384", "alpn": ""}


def expected_samples(fleet: Fleet) -> set[Sample]:
    """What the scan of the fleet at NOW must export, from the fleet's own PKI."""
    root_a, root_b = (a.cert for a in fleet.anchors)
    served: dict[str, list[x509.Certificate]] = {}
    for ep in fleet.endpoints:
        if ep.site is not None and ep.site.tls is not None:
            served[ep.name] = x509.load_pem_x509_certificates(ep.site.tls.credential.chain_pem)
    inter_a = served["healthy-0"][1]
    named = {"root_a": root_a, "root_b": root_b, "inter_a": inter_a}
    expected: set[Sample] = set()

    def add(name: str, ep: FleetEndpoint, value: float, **labels: str) -> None:
        base = {"endpoint": ep.name, "env": "fleet", "scenario": ep.scenario.name}
        expected.add((name, frozenset({**base, **labels}.items()), value))

    outcomes: Counter[str] = Counter()
    for ep in fleet.endpoints:
        scenario = ep.scenario
        if scenario.reason is not None:  # unreachable by design
            add("pinaudit_endpoint_up", ep, 0)
            add("pinaudit_probe_error", ep, 1, reason=scenario.reason)
            outcomes["error"] += 1
        else:
            path_spec, valid, match, backups, _ = GOLDEN[scenario.name]
            chain = served[ep.name]
            path = [chain[int(p[1:])] if p.startswith("s") else named[p] for p in path_spec]
            leaf = chain[0]
            add("pinaudit_endpoint_up", ep, 1)
            add("pinaudit_handshake_duration_seconds", ep, 0)
            add("pinaudit_tls_info", ep, 1, **TLS13)
            add("pinaudit_last_success_timestamp_seconds", ep, 0)
            add("pinaudit_chain_valid", ep, valid)
            add("pinaudit_pin_match", ep, match)
            # one path each (no cross-signs in this fleet), none for a chain with no path
            has_path = scenario.name != "untrusted"
            add("pinaudit_pin_paths", ep, match, result="match")
            add("pinaudit_pin_paths", ep, (1 - match) if has_path else 0, result="mismatch")
            add("pinaudit_backup_pins", ep, backups)
            for position, cert in enumerate(chain):
                if has_path and f"s{position}" not in path_spec:  # served, off the path
                    add(
                        "pinaudit_offpath_cert_not_after_timestamp_seconds",
                        ep,
                        _ts(cert.not_valid_after_utc),
                        position=str(position),
                        role=_role(cert, position),
                    )
            add("pinaudit_chain_divergence", ep, 1)
            ready = ROTATION.get(scenario.name, (1, 1))
            if ready is not None:
                add("pinaudit_rotation_ready", ep, ready[0], kind="leaf_renewal")
                add("pinaudit_rotation_ready", ep, ready[1], kind="ca_switch")
            for position, cert in enumerate(path):
                add(
                    "pinaudit_cert_not_after_timestamp_seconds",
                    ep,
                    _ts(cert.not_valid_after_utc),
                    position=str(position),
                    role=_role(cert, position),
                )
            add(
                "pinaudit_chain_expiry_timestamp_seconds",
                ep,
                min(_ts(c.not_valid_after_utc) for c in path),
            )
            add(
                "pinaudit_leaf_info",
                ep,
                1,
                subject=leaf.subject.rfc4514_string(),
                issuer=leaf.issuer.rfc4514_string(),
                spki_sha256=str(pin_of_certificate(leaf)),
                serial=format(leaf.serial_number, "x"),
            )
            blocking = [sev for _, sev, _ in scenario.expected if sev != "info"]
            outcomes["drift" if blocking else "ok"] += 1
        enforced = GOLDEN[scenario.name][4] if scenario.name in GOLDEN else 1
        add("pinaudit_pins_enforced", ep, enforced)
        if ep.expires is not None:
            expiry = datetime.combine(ep.expires, time(0), tzinfo=timezone.utc)
            add("pinaudit_pinset_expiry_timestamp_seconds", ep, _ts(expiry), pinset=ep.name)
        for (check, severity), count in Counter((c, s) for c, s, _ in scenario.expected).items():
            add("pinaudit_findings", ep, count, check=check, severity=severity)
    for result in ("ok", "drift", "error"):
        expected.add(("pinaudit_scan_endpoints", frozenset({("result", result)}), outcomes[result]))
    build = {("version", "0.1.0"), ("revision", "unknown"), ("python_version", PYTHON)}
    expected.add(("pinaudit_build_info", frozenset(build), 1))
    expected.add(("pinaudit_scan_duration_seconds", frozenset(), 0))
    expected.add(("pinaudit_scan_timestamp_seconds", frozenset(), 0))
    return expected


def _clocked_zeroed(samples: set[Sample]) -> set[Sample]:
    return {(n, labels, 0.0 if n in CLOCKED else v) for n, labels, v in samples}


def test_golden_textfile_of_the_fleet_at_a_fixed_now(
    fleet_dir: tuple[Fleet, Path], tmp_path: Path
) -> None:
    fleet, inventory = fleet_dir
    target = tmp_path / "pinaudit.prom"
    before = datetime.now(timezone.utc).timestamp()
    status, out, err = _scan(
        "-i", str(inventory), "--now", "2026-06-01", "--format", "json", "--textfile", str(target)
    )
    after = datetime.now(timezone.utc).timestamp()
    assert status == 1, err  # critical findings by design; the export itself succeeded
    assert json.loads(out)["summary"]["endpoints"] == len(SCENARIOS)  # the report is intact
    got = parse(target.read_text())
    assert _clocked_zeroed(got) == expected_samples(fleet)

    clocked = {(n, labels): v for n, labels, v in got if n in CLOCKED}
    scanned_at = clocked["pinaudit_scan_timestamp_seconds", frozenset()]
    assert before <= scanned_at <= after
    assert 0 < clocked["pinaudit_scan_duration_seconds", frozenset()] <= after - before
    for (name, labels), value in clocked.items():
        if name == "pinaudit_last_success_timestamp_seconds":
            assert value == scanned_at, dict(labels)
        elif name == "pinaudit_handshake_duration_seconds":
            assert 0 < value <= after - before, dict(labels)


def test_textfile_passes_promtool_without_a_warning(
    fleet_dir: tuple[Fleet, Path], tmp_path: Path
) -> None:
    promtool = require_program("promtool")
    _, inventory = fleet_dir
    target = tmp_path / "pinaudit.prom"
    status, _, err = _scan("-i", str(inventory), "--fail-on", "never", "--textfile", str(target))
    assert status == 0, err
    checked = subprocess.run(
        [promtool, "check", "metrics"],
        input=target.read_bytes(),
        capture_output=True,
        check=False,
        timeout=60,
    )
    assert (checked.returncode, checked.stdout, checked.stderr) == (0, b"", b"")


def test_an_interrupted_scan_keeps_the_previous_textfile(
    fleet_dir: tuple[Fleet, Path], tmp_path: Path
) -> None:
    _, inventory = fleet_dir
    target = tmp_path / "pinaudit.prom"
    target.write_text("# the last good export\n")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "scanner",
            "scan",
            "-i",
            str(inventory),
            "--format",
            "jsonl",
            "--concurrency",
            "1",
            "--textfile",
            str(target),
            *("--only", "scenario=healthy", "--only", "scenario=silent"),
            *("--only", "scenario=tarpit"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()  # healthy-0 is done; silent and tarpit hold the scan
        assert json.loads(first)["name"] == "healthy-0"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)
    assert proc.returncode == 130, err
    assert target.read_text() == "# the last good export\n"
    assert list(tmp_path.iterdir()) == [target]  # no temporary file left behind


def test_a_failed_textfile_write_exits_3_after_the_report(
    fleet_dir: tuple[Fleet, Path], tmp_path: Path
) -> None:
    _, inventory = fleet_dir
    target = tmp_path / "taken.prom"
    os.mkfifo(target)  # a pipe nobody reads: written in place, it fails at once
    status, out, err = _scan(
        "-i",
        str(inventory),
        "--only",
        "scenario=healthy",
        "--now",
        "2026-06-01",
        "--format",
        "json",
        "--textfile",
        str(target),
    )
    assert status == 3
    assert json.loads(out)["summary"]["ok"] == 1
    assert err == f"scan: error: --textfile {target}: cannot write: No such device or address\n"
    assert [p.name for p in tmp_path.iterdir()] == ["taken.prom"]  # no temporary file left


def test_bad_export_flags_exit_2_before_scanning(
    fleet_dir: tuple[Fleet, Path], tmp_path: Path
) -> None:
    _, inventory = fleet_dir
    cases = [
        (("--textfile", str(tmp_path / "missing" / "x.prom")), "directory"),
        (("--grouping", "shard=0"), "--push-job and --grouping need --push-gateway"),
        (("--push-gateway", "ftp://gw:9091"), "expected http(s)://HOST[:PORT][/PATH]"),
        (("--push-gateway", "gw:9091", "--grouping", "env=x"), "'env' is also an inventory label"),
        (("--push-gateway", "gw:9091", "--grouping", "check=x"), "a label pinaudit sets itself"),
        (("--push-gateway", "gw:9091", "--grouping", "job=x"), "the job is set with --push-job"),
        (("--interval", "5m"), "--interval needs --serve"),
    ]
    for args, message in cases:
        status, out, err = _scan("-i", str(inventory), *args)
        assert status == 2, (args, err)
        assert out == ""
        assert err.count("\n") == 1 and message in err, (args, err)


# --- the Pushgateway --------------------------------------------------------------


def _gateway_samples(url: str) -> set[Sample]:
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as response:
        text = response.read().decode()
    return {s for s in parse(text) if s[0].startswith("pinaudit_")}


def _without(samples: set[Sample], *names: str) -> set[Sample]:
    return {
        (n, frozenset((k, v) for k, v in labels if k not in names), v) for n, labels, v in samples
    }


@pytest.fixture
def pushgateway(tmp_path: Path) -> Iterator[str]:
    with running_pushgateway(tmp_path) as url:
        yield url


def test_push_replaces_the_group(
    fleet_dir: tuple[Fleet, Path], tmp_path: Path, pushgateway: str
) -> None:
    _, inventory = fleet_dir
    only = ("--only", "scenario=healthy", "--only", "scenario=rotated", "--only", "scenario=http")
    textfile = tmp_path / "first.prom"
    push = ("--push-gateway", pushgateway, "--grouping", "shard=0", "--now", "2026-06-01")
    push = (*push, "--fail-on", "never")
    status, _, err = _scan("-i", str(inventory), *only, *push, "--textfile", str(textfile))
    assert status == 0, err
    pushed = _gateway_samples(pushgateway)
    for _, labels, _ in pushed:
        assert {("job", "pinaudit"), ("shard", "0")} <= labels
    # the group holds exactly the series of the scan (the textfile of the same run)
    assert _without(pushed, "job", "instance", "shard") == parse(textfile.read_text())
    endpoints = {dict(labels)["endpoint"] for n, labels, _ in pushed if n == "pinaudit_endpoint_up"}
    assert endpoints == {"healthy-0", "rotated-1", "http-14"}

    # the same group again, from an inventory without rotated-1: its series are gone
    document = yaml.safe_load(inventory.read_text())
    document["endpoints"] = [e for e in document["endpoints"] if e["name"] != "rotated-1"]
    smaller = inventory.parent / "without-rotated.yaml"
    smaller.write_text(yaml.safe_dump(document))
    status, _, err = _scan("-i", str(smaller), *only, *push)
    assert status == 0, err
    pushed = _gateway_samples(pushgateway)
    endpoints = {dict(labels).get("endpoint") for _, labels, _ in pushed} - {None}
    assert endpoints == {"healthy-0", "http-14"}
    scan_endpoints = {
        dict(labels)["result"]: v for n, labels, v in pushed if n == "pinaudit_scan_endpoints"
    }
    assert scan_endpoints == {"ok": 1, "drift": 0, "error": 1}


def test_push_to_a_gateway_that_is_down_exits_3_and_still_prints_the_report(
    fleet_dir: tuple[Fleet, Path],
) -> None:
    _, inventory = fleet_dir
    port = free_port()
    status, out, err = _scan(
        "-i",
        str(inventory),
        "--only",
        "scenario=healthy",
        "--now",
        "2026-06-01",
        "--format",
        "json",
        "--push-gateway",
        f"http://127.0.0.1:{port}",
    )
    assert status == 3
    assert json.loads(out)["summary"] == {"endpoints": 1, "ok": 1, "drift": 0, "error": 0}
    assert err == (
        f"scan: error: push to http://127.0.0.1:{port}/metrics/job/pinaudit failed after "
        "3 attempts: connection refused\n"
    )


def test_push_with_basic_auth_from_the_environment(
    fleet_dir: tuple[Fleet, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    binary = require_program("prometheus-pushgateway")
    _, inventory = fleet_dir
    hashed = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=4)).decode()
    web = tmp_path / "web.yml"
    web.write_text(f"basic_auth_users:\n  pusher: {hashed}\n")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    assert dict(load_web_config(str(web)).users) == {"pusher": hashed.encode()}  # one format
    command = [
        binary,
        f"--web.listen-address=127.0.0.1:{port}",
        f"--web.config.file={web}",
        f"--persistence.file={tmp_path / 'pushgateway.data'}",  # not the system's file
    ]
    with running(command, host="127.0.0.1", port=port):
        args = ("-i", str(inventory), "--only", "scenario=healthy", "--now", "2026-06-01")
        args = (*args, "--push-gateway", url)
        status, out, err = _scan(*args)
        assert status == 3
        assert "1 endpoint: 1 ok" in out  # the report was printed
        assert (
            err
            == f"scan: error: push to {url}/metrics/job/pinaudit failed: HTTP 401 Unauthorized\n"
        )

        monkeypatch.setenv("PINAUDIT_PUSH_USERNAME", "pusher")
        monkeypatch.setenv("PINAUDIT_PUSH_PASSWORD", "s3cret")
        status, _, err = _scan(*args)
        assert status == 0, err
        request = urllib.request.Request(f"{url}/metrics")
        request.add_header("Authorization", "Basic cHVzaGVyOnMzY3JldA==")  # pusher:s3cret
        with urllib.request.urlopen(request, timeout=10) as response:
            pushed = parse(response.read().decode())
        assert (
            "pinaudit_build_info",
            frozenset(
                {
                    ("version", "0.1.0"),
                    ("revision", "unknown"),
                    ("python_version", PYTHON),
                    ("job", "pinaudit"),
                    ("instance", ""),
                }
            ),
            1.0,
        ) in pushed
