"""`scan --serve` as it runs in production: a child process scanning the
simulated fleet periodically, scraped over real HTTP(S) while it scans,
reloaded with SIGHUP, stopped with SIGTERM/SIGINT. Every wait is bounded and
the exporter is always killed."""

from __future__ import annotations

import base64
import http.client
import io
import json
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import bcrypt
import pytest
import yaml
from peers import free_port
from prometheus_client.parser import text_string_to_metric_families

from scanner.cli import main
from scanner.fleet.pki import PKI
from scanner.fleet.scenarios import Fleet, build_fleet
from scanner.fleet.server import FleetProcess, write_config

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime.now(timezone.utc)
HEALTHY = 12
WAIT_SECONDS = 60.0
Samples = dict[str, list[tuple[dict[str, str], float]]]


@pytest.fixture(scope="module")
def fleet_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Fleet, Path]]:
    """Healthy endpoints and one that never answers: every scan lasts at least
    its 1 s timeout, so the exporter is scanning most of the time."""
    directory = tmp_path_factory.mktemp("fleet")
    names = ["healthy"] * HEALTHY + ["silent"]
    fleet = build_fleet(NOW, scenarios=names, base=4, timeout=1.0)
    with FleetProcess(write_config(fleet.sites, directory / "sites")) as served:
        yield fleet, fleet.write(directory, served.listening)


class Exporter:
    def __init__(self, process: subprocess.Popen[bytes], log: Path, context: ssl.SSLContext | None):
        self.process = process
        self.log = log
        self.context = context
        self.url = ""

    def records(self) -> list[dict[str, object]]:
        lines = self.log.read_text().splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")]

    def wait_for(self, what: str, predicate: Callable[[], bool]) -> None:
        deadline = time.monotonic() + WAIT_SECONDS
        while not predicate():
            if self.process.poll() is not None:
                pytest.fail(f"exporter exited ({self.process.returncode}): {self.log.read_text()}")
            if time.monotonic() > deadline:
                pytest.fail(f"no {what} within {WAIT_SECONDS}s: {self.log.read_text()[-3000:]}")
            time.sleep(0.05)

    def get(
        self, path: str = "/metrics", auth: str | None = None
    ) -> tuple[int, str, dict[str, str]]:
        request = urllib.request.Request(self.url + path)
        if auth is not None:
            request.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
        try:
            with urllib.request.urlopen(request, timeout=10, context=self.context) as response:
                return response.status, response.read().decode(), dict(response.headers)
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode(), dict(exc.headers)

    def scrape(self, auth: str | None = None) -> Samples:
        status, text, _ = self.get(auth=auth)
        assert status == 200, text
        samples: Samples = {}
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                samples.setdefault(s.name, []).append((s.labels, s.value))
        return samples

    def stop(self, signum: int) -> int:
        self.process.send_signal(signum)
        return self.process.wait(WAIT_SECONDS)


@contextmanager
def exporter(
    tmp_path: Path, *args: str, context: ssl.SSLContext | None = None
) -> Iterator[Exporter]:
    log = tmp_path / "exporter.log"
    with log.open("w") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "scanner", "scan", *args, "--log-format", "json"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=sink,
            cwd=ROOT,
        )
    running = Exporter(process, log, context)
    try:
        running.wait_for(
            "listening", lambda: any(r["msg"] == "exporter listening" for r in running.records())
        )
        listening = next(r for r in running.records() if r["msg"] == "exporter listening")
        running.url = str(listening["url"]).removesuffix("/metrics")
        yield running
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(WAIT_SECONDS)


def scan_timestamp(samples: Samples) -> float | None:
    found = samples.get("pinaudit_scan_timestamp_seconds", [])
    return found[0][1] if found else None


def one_scan(samples: Samples, endpoints: set[str]) -> float | None:
    """Check that a scrape shows exactly one complete scan; return its timestamp.

    Every endpoint read in a scan has that scan's finish time as its last
    success, so a view mixing two scans (some endpoints already from the
    new one, the scan metrics still from the old, or the reverse) fails."""
    scanned_at = scan_timestamp(samples)
    if scanned_at is None:  # before the first scan: nothing per endpoint yet
        assert {name for name in samples if name.startswith("pinaudit_")} == {
            "pinaudit_build_info",
            "pinaudit_inventory_reload_success",
            "pinaudit_inventory_reload_timestamp_seconds",
            "pinaudit_config_last_reload_successful",
            "pinaudit_config_last_reload_success_timestamp_seconds",
        }
        return None
    up = {labels["endpoint"]: value for labels, value in samples["pinaudit_endpoint_up"]}
    assert set(up) == endpoints
    last = {
        labels["endpoint"]: value
        for labels, value in samples.get("pinaudit_last_success_timestamp_seconds", [])
    }
    for name, value in up.items():
        if value == 1:
            assert last[name] == scanned_at, (name, last[name], scanned_at)
    outcomes = {labels["result"]: v for labels, v in samples["pinaudit_scan_endpoints"]}
    assert sum(outcomes.values()) == len(endpoints)
    assert outcomes["ok"] + outcomes["drift"] == sum(up.values())
    return scanned_at


def test_scrapes_during_scans_never_mix_two_scans(
    fleet_dir: tuple[Fleet, Path], tmp_path: Path
) -> None:
    fleet, inventory = fleet_dir
    endpoints = {e.name for e in fleet.endpoints}
    with exporter(
        tmp_path, "-i", str(inventory), "--serve", "127.0.0.1:0", "--interval", "100ms"
    ) as running:
        scans: list[float] = []
        deadline = time.monotonic() + WAIT_SECONDS
        while len(set(scans)) < 4:  # four complete scans, scraped throughout
            assert time.monotonic() < deadline, f"saw scans {sorted(set(scans))}"
            scanned_at = one_scan(running.scrape(), endpoints)
            if scanned_at is not None:
                assert not scans or scanned_at >= scans[-1]  # never back to an older scan
                scans.append(scanned_at)
        status, page, headers = running.get("/")
        assert status == 200 and 'href="/metrics"' in page
        assert headers["Content-Type"].startswith("text/html")
        assert running.get("/nothing-here")[0] == 404
        assert running.stop(signal.SIGTERM) == 0
    finished = [r for r in running.records() if r["msg"] == "scan finished"]
    assert len(finished) >= 4
    assert finished[0]["endpoints"] == len(endpoints) and finished[0]["error"] == 1
    assert running.records()[-1]["msg"] == "exporter stopped"


def test_sighup_reloads_and_a_broken_inventory_keeps_the_old_one(
    fleet_dir: tuple[Fleet, Path], tmp_path: Path
) -> None:
    fleet, inventory = fleet_dir
    live = inventory.parent / "live.yaml"  # beside trust.pem, which it names
    live.write_text(inventory.read_text())
    endpoints = {e.name for e in fleet.endpoints}
    with exporter(
        tmp_path, "-i", str(live), "--serve", "127.0.0.1:0", "--interval", "200ms"
    ) as running:

        def reload_state() -> tuple[float, float]:
            samples = running.scrape()
            return (
                samples["pinaudit_inventory_reload_success"][0][1],
                samples["pinaudit_inventory_reload_timestamp_seconds"][0][1],
            )

        def scan_after(when: float) -> Samples:
            found: list[Samples] = []

            def newer() -> bool:
                samples = running.scrape()
                found[:] = [samples]
                return (scan_timestamp(samples) or 0) > when

            running.wait_for("a new scan", newer)
            return found[0]

        running.wait_for("the first scan", lambda: scan_timestamp(running.scrape()) is not None)
        assert reload_state()[0] == 1

        live.write_text("version: 1\nendpoints:\n  - host: [unclosed\n")
        running.process.send_signal(signal.SIGHUP)
        running.wait_for("a failed reload", lambda: reload_state()[0] == 0)
        failed_at = reload_state()[1]
        samples = scan_after(failed_at)  # scans go on with the previous inventory
        assert one_scan(samples, endpoints) is not None
        assert samples["pinaudit_inventory_reload_success"][0][1] == 0
        [failure] = [r for r in running.records() if r["level"] == "error"]
        assert failure["msg"] == "inventory reload failed; still scanning the previous inventory"
        assert str(failure["error"]).startswith(f"{live}:4:1: invalid YAML")

        document = yaml.safe_load(inventory.read_text())
        document["endpoints"] = [e for e in document["endpoints"] if e["name"] != "healthy-0"]
        live.write_text(yaml.safe_dump(document))
        running.process.send_signal(signal.SIGHUP)
        running.wait_for("a good reload", lambda: reload_state()[0] == 1)
        # the scan in progress during the reload finishes with the old inventory; the next
        # one started after it
        in_progress = scan_timestamp(scan_after(reload_state()[1]))
        assert in_progress is not None
        assert one_scan(scan_after(in_progress), endpoints - {"healthy-0"}) is not None
        assert running.stop(signal.SIGINT) == 130


def _web_config(tmp_path: Path, password: bytes) -> tuple[Path, ssl.SSLContext]:
    pki = PKI(NOW)
    root = pki.root("Exporter Test Root")
    leaf = pki.leaf("localhost", root, ips=("127.0.0.1",))
    (tmp_path / "exporter.crt").write_bytes(leaf.pem)
    (tmp_path / "exporter.key").write_bytes(leaf.key_pem())
    hashed = bcrypt.hashpw(password, bcrypt.gensalt(rounds=4)).decode()
    config = tmp_path / "web.yml"
    config.write_text(
        "tls_server_config:\n"
        "  cert_file: exporter.crt\n"
        "  key_file: exporter.key\n"
        "basic_auth_users:\n"
        f"  prometheus: '{hashed}'\n"
    )
    return config, ssl.create_default_context(cadata=root.pem.decode())


def test_tls_and_basic_auth(fleet_dir: tuple[Fleet, Path], tmp_path: Path) -> None:
    _, inventory = fleet_dir
    config, context = _web_config(tmp_path, b"correct horse")
    args = ("-i", str(inventory), "--serve", "127.0.0.1:0", "--web-config", str(config))
    with exporter(tmp_path, *args, "--interval", "1h", context=context) as running:
        assert running.url.startswith("https://127.0.0.1:")
        for auth in (None, "prometheus:wrong", "nobody:correct horse", "prometheus:"):
            status, body, headers = running.get(auth=auth)
            assert (status, body) == (401, "Unauthorized\n"), auth
            assert headers["WWW-Authenticate"] == 'Basic realm="pinaudit"'
        assert running.get("/", auth=None)[0] == 401  # every path
        running.wait_for(
            "the first scan",
            lambda: scan_timestamp(running.scrape(auth="prometheus:correct horse")) is not None,
        )
        assert running.get("/", auth="prometheus:correct horse")[0] == 200
        plain = running.url.replace("https://", "http://")
        with pytest.raises((OSError, http.client.HTTPException)):
            urllib.request.urlopen(plain + "/metrics", timeout=10)
        assert running.stop(signal.SIGTERM) == 0


def _main(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = main(["scan", *args], stdout=out, stderr=err)
    return int(status), out.getvalue(), err.getvalue()


def test_bad_exporter_settings_exit_2_before_serving(
    fleet_dir: tuple[Fleet, Path], tmp_path: Path
) -> None:
    _, inventory = fleet_dir
    hashed = bcrypt.hashpw(b"x", bcrypt.gensalt(rounds=4)).decode()
    configs = {
        "unknown.yml": "tls_server_config:\n  cert_file: a\n  key_file: b\n  cipher_suites: [x]\n",
        "nohash.yml": "basic_auth_users:\n  prometheus: plaintext\n",
        "nokey.yml": "tls_server_config:\n  cert_file: a.crt\n",
        "missing.yml": "tls_server_config:\n  cert_file: a.crt\n  key_file: a.key\n",
        "yaml.yml": "basic_auth_users: [\n",
        "ok.yml": f"basic_auth_users:\n  prometheus: '{hashed}'\n",
    }
    for name, text in configs.items():
        (tmp_path / name).write_text(text)
    busy = free_port()
    serve = ("-i", str(inventory), "--serve")
    cases = [
        ((*serve, "127.0.0.1:0", "--web-config", str(tmp_path / "unknown.yml")), "'cipher_suites'"),
        ((*serve, "127.0.0.1:0", "--web-config", str(tmp_path / "nohash.yml")), "bcrypt hash"),
        ((*serve, "127.0.0.1:0", "--web-config", str(tmp_path / "nokey.yml")), "key_file is req"),
        ((*serve, "127.0.0.1:0", "--web-config", str(tmp_path / "missing.yml")), "cannot load"),
        ((*serve, "127.0.0.1:0", "--web-config", str(tmp_path / "yaml.yml")), "yaml.yml:2:1"),
        ((*serve, "127.0.0.1:0", "--web-config", str(tmp_path / "nope.yml")), "cannot read"),
        ((*serve, "127.0.0.1", "--interval", "5m"), "expected HOST:PORT"),
        ((*serve, "::1:9918"), "in brackets"),
        ((*serve, ":0", "--now", "2026-01-01"), "--now cannot be combined with --serve"),
        ((*serve, ":0", "--textfile", "x.prom"), "--textfile cannot be combined with --serve"),
        ((*serve, ":0", "--interval", "soon"), "--interval 'soon'"),
        ((*serve, ":0", "--interval", "0s"), "--interval '0s': must be greater than 0"),
        ((*serve, ":0", "--retention", "99999999999d"), "--retention '99999999999d': must be at"),
        ((*serve, "127.0.0.1:0", "--retention", "1 week"), "--retention '1 week'"),
    ]
    for args, message in cases:
        status, out, err = _main(*args)
        assert status == 2, (args, err)
        assert out == "" and err.count("\n") == 1 and message in err, (args, err)
    with exporter(tmp_path, *serve, f"127.0.0.1:{busy}", "--interval", "1h") as holder:
        assert holder.url.endswith(str(busy))
        status, _, err = _main(
            *serve, f"127.0.0.1:{busy}", "--web-config", str(tmp_path / "ok.yml")
        )
        assert status == 2
        assert err.splitlines()[-1] == (
            f"pinaudit scan: error: cannot listen on 127.0.0.1:{busy}: Address already in use"
        )


def test_state_follows_the_exporter_across_cycles(
    fleet_dir: tuple[Fleet, Path], tmp_path: Path
) -> None:
    """--state in exporter mode: the state file is written after each complete
    scan, rotation readiness is exported, and no key changes are invented."""
    _fleet, inventory = fleet_dir
    state = tmp_path / "state.json"
    state.write_text("{corrupt")
    with exporter(
        tmp_path,
        "-i",
        str(inventory),
        "--serve",
        "127.0.0.1:0",
        "--interval",
        "200ms",
        "--state",
        str(state),
    ) as running:
        running.wait_for("the first scan", lambda: scan_timestamp(running.scrape()) is not None)
        first = scan_timestamp(running.scrape()) or 0

        def second_scan() -> bool:
            return (scan_timestamp(running.scrape()) or 0) > first

        running.wait_for("a second scan", second_scan)
        samples = running.scrape()
        assert running.stop(signal.SIGTERM) == 0
    warnings = [r for r in running.records() if r["level"] == "warning"]
    assert [str(r["msg"]).split(": ")[0] for r in warnings] == [str(state)]
    saved = json.loads(state.read_text())
    assert saved["version"] == 1
    assert set(saved["endpoints"]) == {f"healthy-{n}" for n in range(HEALTHY)}
    ready = {
        (labels["endpoint"], labels["kind"]): value
        for labels, value in samples["pinaudit_rotation_ready"]
    }
    assert ready == {
        (f"healthy-{n}", kind): 1.0
        for n in range(HEALTHY)
        for kind in ("leaf_renewal", "ca_switch")
    }
    assert "pinaudit_leaf_key_changed_timestamp_seconds" not in samples
    assert not any(labels["check"] == "key_changed" for labels, _ in samples["pinaudit_findings"])
