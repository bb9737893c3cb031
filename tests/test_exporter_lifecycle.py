"""The exporter's lifecycle endpoints and its HTTP side under abuse, over real
HTTP(S) against the simulated fleet:

- /-/ready answers 503 until the first scan completed, then 200;
- /-/healthy fails while the current scan runs past its bound and while the
  scan's trio loop is blocked (CPU-bound work that never yields), and
  recovers after;
- POST /-/reload applies a new inventory, and reports a broken one (500 and
  the file:line:column) while the old one stays in use; the reload metrics
  are named as Prometheus names its own;
- the health paths need no basic auth, everything else does;
- the conventional flag spellings (--web.listen-address, --web.config.file,
  --log.format=logfmt, --log.level) and logfmt lines as Prometheus writes them;
- idle and trickling connections, hundreds of them, at a 100-descriptor limit,
  never starve the scan: every healthy endpoint is exported up (issue 15 #10);
- a client that resets its connection costs one log line (issue 15 #11);
- the web config's certificate is re-read when the files change, and client
  certificates are required when the web config says so.

The lifecycle tests run the exporter in this process (the trio loop in the
main thread, the HTTP side in its thread, as in production) so that they can
block the scan loop on purpose; the others run `scan` as a child process.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import resource
import signal
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import bcrypt
import pytest
import trio
from peers import free_port, require_program
from prometheus_client.parser import text_string_to_metric_families

from scanner.exporters.web import MetricsServer
from scanner.fleet.pki import PKI
from scanner.fleet.scenarios import Fleet, build_fleet
from scanner.fleet.server import FleetProcess, write_config
from scanner.logs import configure
from scanner.plan import load_plan
from scanner.serve import Exporter, live_collectors
from scanner.settings import ExporterSettings, ScanSettings

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime.now(timezone.utc)
WAIT = 60.0
BASE = 80  # 127.80.x.y: the deploy helper's loopback block


@pytest.fixture(scope="module")
def fleet_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Fleet, Path]]:
    """Twelve healthy endpoints and one that accepts and never answers: every
    scan lasts at least the silent one's timeout (2 s)."""
    directory = tmp_path_factory.mktemp("fleet")
    fleet = build_fleet(NOW, scenarios=["healthy"] * 12 + ["silent"], base=BASE, timeout=2.0)
    with FleetProcess(write_config(fleet.sites, directory / "sites")) as served:
        yield fleet, fleet.write(directory, served.listening)


def _get(url: str, *, method: str = "GET", auth: str | None = None, **kw: Any) -> tuple[int, str]:
    request = urllib.request.Request(url, method=method)
    if auth is not None:
        request.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=10, **kw) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _wait(what: str, predicate: Callable[[], bool], timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"no {what} within {timeout} s"
        time.sleep(0.05)


# --- lifecycle, in process -----------------------------------------------------------


class _Watcher(threading.Thread):
    """Polls a URL from its own thread and records every (status, body) change,
    so that what the endpoint said while the scan loop was blocked is kept."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.seen: list[tuple[int, str]] = []
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            answer = _get(self.url)
            if not self.seen or self.seen[-1] != answer:
                self.seen.append(answer)
            time.sleep(0.05)


def _in_process(
    inventory: Path, body: Callable[[Exporter, str], Any], **exporter_kw: Any
) -> list[dict[str, Any]]:
    """Run an exporter in this process (scan loop in the main thread, HTTP in
    its own) while `body(exporter, base_url)` runs in a worker thread; return
    the JSON log lines."""
    settings = ScanSettings(
        inventory=str(inventory),
        exporter=ExporterSettings(host="127.0.0.1", port=0, interval=3600.0),
    )
    stream = io.StringIO()
    log = configure(stream, "json")
    exporter = Exporter(settings, load_plan(settings), log, **exporter_kw)
    server = MetricsServer(
        "127.0.0.1", 0, exporter.collector, lifecycle=exporter, live=live_collectors()
    )
    server.start()
    host, port = server.address
    base = f"http://{host}:{port}"
    failure: list[BaseException] = []

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(exporter.run)

            def checks() -> None:
                try:
                    body(exporter, base)
                except BaseException as exc:  # reported after the loop ends
                    failure.append(exc)

            with trio.fail_after(WAIT * 2):
                await trio.to_thread.run_sync(checks)
            nursery.cancel_scope.cancel()

    try:
        trio.run(main)
    finally:
        server.stop()
    if failure:
        raise failure[0]
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_ready_after_the_first_scan_and_unhealthy_while_a_scan_overruns(
    fleet_dir: tuple[Fleet, Path],
) -> None:
    _, inventory = fleet_dir

    def body(exporter: Exporter, base: str) -> None:
        ready, healthy = _Watcher(base + "/-/ready"), _Watcher(base + "/-/healthy")
        ready.start()
        healthy.start()
        _wait("the first scan", lambda: exporter.scans == 1)
        time.sleep(0.3)
        ready.done.set()
        healthy.done.set()
        ready.join()
        healthy.join()
        assert ready.seen == [
            (503, "not ready: the first scan has not completed yet\n"),
            (200, "pinaudit exporter is ready.\n"),
        ]
        # the first scan lasts over 2 s (the silent endpoint's timeout); its bound here is
        # 1 s: unhealthy from then until it completed
        assert healthy.seen[0] == (200, "pinaudit exporter is healthy.\n")
        assert healthy.seen[-1] == (200, "pinaudit exporter is healthy.\n")
        middle = [text for status, text in healthy.seen[1:-1] if status == 503]
        assert middle and all(
            re.fullmatch(r"unhealthy: the current scan has run for \d+ s \(limit 1 s\)\n", t)
            for t in middle
        ), healthy.seen

    _in_process(inventory, body, stuck_after_seconds=1.0)


def test_healthy_fails_while_the_scan_loop_is_blocked(fleet_dir: tuple[Fleet, Path]) -> None:
    _, inventory = fleet_dir

    def body(exporter: Exporter, base: str) -> None:
        _wait("the first scan", lambda: exporter.scans == 1)
        assert _get(base + "/-/healthy") == (200, "pinaudit exporter is healthy.\n")
        watcher = _Watcher(base + "/-/healthy")
        watcher.start()
        token = exporter.token
        assert token is not None
        # what a CPU-bound step that never yields does to the loop: 4 s without a checkpoint
        token.run_sync_soon(time.sleep, 4.0)
        time.sleep(5.0)
        watcher.done.set()
        watcher.join()
        statuses = [status for status, _ in watcher.seen]
        assert statuses[0] == 200 and statuses[-1] == 200 and 503 in statuses, watcher.seen
        blocked = [text for status, text in watcher.seen if status == 503]
        assert all(
            re.fullmatch(r"unhealthy: the scan loop has not run for \d+ s \(limit 2 s\)\n", text)
            for text in blocked
        ), blocked
        # the HTTP side kept answering meanwhile: scrapes never wait for the scan loop
        assert len(watcher.seen) >= 3

    _in_process(inventory, body, unresponsive_after=2.0)


def _metric(text: str, name: str) -> float | None:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                return float(sample.value)
    return None


# --- the CLI exporter, as a child process -------------------------------------------


class Running:
    def __init__(self, process: subprocess.Popen[bytes], log: Path) -> None:
        self.process = process
        self.log = log
        self.url = ""

    def lines(self) -> list[str]:
        return self.log.read_text().splitlines()

    def wait_for(self, what: str, predicate: Callable[[], bool]) -> None:
        deadline = time.monotonic() + WAIT
        while not predicate():
            if self.process.poll() is not None:
                pytest.fail(f"exporter exited ({self.process.returncode}): {self.log.read_text()}")
            assert time.monotonic() < deadline, f"no {what}: {self.log.read_text()[-3000:]}"
            time.sleep(0.05)


@contextmanager
def cli_exporter(
    tmp_path: Path, *args: str, nofile: int | None = None, listening: str = "exporter listening"
) -> Iterator[Running]:
    log = tmp_path / "exporter.log"

    def limit() -> None:
        if nofile is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

    with log.open("w") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "scanner", "scan", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=sink,
            cwd=ROOT,
            preexec_fn=limit,  # noqa: PLW1509 (single-threaded test process here)
        )
    running = Running(process, log)
    try:
        running.wait_for("listening", lambda: listening in log.read_text())
        line = next(line for line in running.lines() if listening in line)
        url = re.search(r'url=(?:"|)(https?://[^" ]+)/metrics', line) or re.search(
            r'"url": "(https?://[^"]+)/metrics"', line
        )
        assert url is not None, line
        running.url = url.group(1)
        yield running
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(WAIT)


_LOGFMT = re.compile(
    r"ts=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z caller=[\w.]+:\d+ level=(debug|info|warn|error) "
    r'msg=("(?:[^"\\]|\\.)*"|\S+)( [\w.]+=("(?:[^"\\]|\\.)*"|\S+))*'
)


def test_reload_over_http_with_the_conventional_flags_and_logfmt(
    fleet_dir: tuple[Fleet, Path], tmp_path: Path
) -> None:
    """POST /-/reload applies a new inventory and reports a broken one; health
    paths need no password, the rest does; every log line is logfmt."""
    fleet, inventory = fleet_dir
    mine = tmp_path / "inventory.yaml"
    text = inventory.read_text()
    mine.write_text(text)
    (tmp_path / "trust.pem").write_bytes((inventory.parent / "trust.pem").read_bytes())
    hashed = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=4)).decode()
    web = tmp_path / "web.yml"
    web.write_text(f"basic_auth_users:\n  prometheus: '{hashed}'\n")
    auth = "prometheus:s3cret"
    args = (
        *("-i", str(mine), "--web.listen-address", "127.0.0.1:0"),
        *("--web.config.file", str(web), "--interval", "1h"),
        *("--log.format", "logfmt", "--log.level", "info"),
    )
    with cli_exporter(tmp_path, *args) as running:
        base = running.url
        # the kubelet's probes: no password needed
        assert _get(base + "/-/healthy")[0] == 200
        running.wait_for("readiness", lambda: _get(base + "/-/ready")[0] == 200)
        # everything else needs it, /-/reload included
        assert _get(base + "/metrics")[0] == 401
        assert _get(base + "/-/reload", method="POST")[0] == 401
        assert _get(base + "/-/reload", auth=auth) == (405, "Only POST or PUT requests allowed.\n")
        status, scrape = _get(base + "/metrics", auth=auth)
        assert status == 200
        assert _metric(scrape, "pinaudit_config_last_reload_successful") == 1.0
        started = _metric(scrape, "pinaudit_config_last_reload_success_timestamp_seconds")
        assert started is not None
        names = {s.name for f in text_string_to_metric_families(scrape) for s in f.samples}
        assert {"process_open_fds", "process_resident_memory_bytes", "python_info"} <= names
        (build,) = [
            s.labels
            for f in text_string_to_metric_families(scrape)
            for s in f.samples
            if s.name == "pinaudit_build_info"
        ]
        assert build["python_version"] and build["revision"] == "unknown"

        # a good inventory: one endpoint fewer, applied at once
        removed = fleet.endpoints[0].name
        kept = re.sub(rf"  - name: {removed}\n(    .*\n)+", "", text)
        assert kept != text
        mine.write_text(kept)
        assert _get(base + "/-/reload", method="POST", auth=auth) == (
            200,
            f"inventory reloaded: {len(fleet.endpoints) - 1} endpoints\n",
        )
        # a broken one: reported, the previous one kept
        mine.write_text(kept + "  - name: broken\n    port: 70000\n")
        status, answer = _get(base + "/-/reload", method="PUT", auth=auth)
        assert status == 500
        assert answer.startswith("failed to reload the inventory: ")
        assert re.search(rf"{re.escape(str(mine))}:\d+:\d+: ", answer), answer
        status, scrape = _get(base + "/metrics", auth=auth)
        assert _metric(scrape, "pinaudit_config_last_reload_successful") == 0.0
        assert _metric(scrape, "pinaudit_inventory_reload_success") == 0.0
        last_good = _metric(scrape, "pinaudit_config_last_reload_success_timestamp_seconds")
        assert last_good is not None and last_good > started
        promtool = require_program("promtool")
        checked = subprocess.run(
            [promtool, "check", "metrics"],
            input=scrape,
            capture_output=True,
            text=True,
            check=False,
        )
        assert checked.returncode == 0, checked.stdout + checked.stderr
        running.process.send_signal(signal.SIGTERM)
        assert running.process.wait(WAIT) == 0
    lines = running.lines()
    assert lines and all(_LOGFMT.fullmatch(line) for line in lines), lines
    assert any("level=error" in line and 'msg="inventory reload failed' in line for line in lines)


def _rst(sock: socket.socket) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def test_idle_and_trickling_connections_never_starve_the_scan(
    fleet_dir: tuple[Fleet, Path], tmp_path: Path
) -> None:
    """Issue 15 #10: at a 100-descriptor limit, 300 idle connections and a
    few trickling a request one byte at a time while the exporter scans. The
    scan keeps its sockets: every healthy endpoint is exported up; the extra
    connections are refused or timed out, each logged in one line."""
    fleet, inventory = fleet_dir
    healthy = {e.name for e in fleet.endpoints if e.scenario.name == "healthy"}
    port = free_port()
    args = ("-i", str(inventory), "--serve", f"127.0.0.1:{port}", "--interval", "2s")
    held: list[socket.socket] = []
    with cli_exporter(tmp_path, *args, "--log-format", "json", nofile=100) as running:
        try:
            # three clients trickling a request, first: they get in under the cap
            trickle = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(3)]
            held += trickle
            refused = 0
            for _ in range(300):
                try:
                    held.append(socket.create_connection(("127.0.0.1", port), timeout=5))
                except OSError:  # reset at once: over the cap
                    refused += 1
            for sock in trickle:
                sock.settimeout(0.5)
            # two scans finish while the connections are held open ...
            finished = lambda: sum('"scan finished"' in line for line in running.lines())  # noqa: E731
            before = finished()
            deadline = time.monotonic() + WAIT
            sent = 0
            # ... and the trickling ones outlast their 10 s for a request head
            slow = lambda: "client too slow" in running.log.read_text()  # noqa: E731
            descriptors = []  # the exporter's open descriptors, sampled during the flood
            while finished() < before + 2 or not slow():
                assert time.monotonic() < deadline, running.log.read_text()[-3000:]
                descriptors.append(len(os.listdir(f"/proc/{running.process.pid}/fd")))
                for sock in trickle:
                    with suppress(OSError):
                        sock.send(b"GET /metrics HTTP/1.1\r\n"[sent % 24 : sent % 24 + 1])
                sent += 1
                time.sleep(0.5)
        finally:
            for sock in held:
                sock.close()
        running.wait_for("a scrape", lambda: _get(running.url + "/metrics")[0] == 200)
        _, scrape = _get(running.url + "/metrics")
        up = {
            s.labels["endpoint"]: s.value
            for f in text_string_to_metric_families(scrape)
            for s in f.samples
            if s.name == "pinaudit_endpoint_up"
        }
        assert {name for name, value in up.items() if value == 1.0} == healthy
        assert _metric(scrape, "process_max_fds") == 100.0
        # the HTTP side never took the descriptors the scan needs (13 endpoints at once)
        assert max(descriptors) <= 100 - len(fleet.endpoints), descriptors
        running.process.send_signal(signal.SIGTERM)
        assert running.process.wait(WAIT) == 0
    records = [json.loads(line) for line in running.lines()]
    messages = [r["msg"] for r in records]
    assert "http: connection limit reached; refusing connections" in messages
    slow = [r for r in records if r["msg"] == "http: client too slow, connection closed"]
    assert slow and {r["phase"] for r in slow} <= {"request head"}
    assert all(r["level"] in ("info", "warning", "warn") for r in records if "http" in r["msg"])
    assert not [r for r in records if "Traceback" in json.dumps(r)]


def test_a_reset_connection_is_one_log_line(fleet_dir: tuple[Fleet, Path], tmp_path: Path) -> None:
    """Issue 15 #11: a client that resets its connection in the middle of a
    request costs one structured line, not a traceback."""
    _, inventory = fleet_dir
    port = free_port()
    args = ("-i", str(inventory), "--serve", f"127.0.0.1:{port}", "--interval", "1h")
    with cli_exporter(tmp_path, *args, "--log-format", "json") as running:
        for _ in range(5):
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")  # and never the blank line
            time.sleep(0.2)
            _rst(sock)
        running.wait_for(
            "the reset lines",
            lambda: running.log.read_text().count('"http: connection reset"') >= 5,
        )
        running.process.send_signal(signal.SIGTERM)
        assert running.process.wait(WAIT) == 0
    lines = running.lines()
    assert all(line.startswith("{") and line.endswith("}") for line in lines), lines
    resets = [json.loads(line) for line in lines if '"http: connection reset"' in line]
    assert len(resets) == 5
    for record in resets:
        assert record["phase"] == "request"
        assert record["error"].startswith(("ConnectionResetError", "BrokenResourceError"))
        assert re.fullmatch(r"127\.0\.0\.1:\d+", record["client"])


def _issue(pki: PKI, root: Any, directory: Path, name: str) -> Any:
    leaf = pki.leaf("localhost", root, ips=("127.0.0.1",))
    for suffix, data in ((".crt", leaf.pem), (".key", leaf.key_pem())):
        staged = directory / f".{name}{suffix}"
        staged.write_bytes(data)
        os.replace(staged, directory / f"exporter{suffix}")  # as a renewal replaces them
    return leaf


def test_the_certificate_is_reread_and_client_certificates_are_required(
    fleet_dir: tuple[Fleet, Path], tmp_path: Path
) -> None:
    _, inventory = fleet_dir
    pki = PKI(NOW)
    root = pki.root("Exporter Test Root")
    clients = pki.root("Scraper Client CA")
    scraper = pki.leaf("prometheus", clients, eku_server=False)  # no EKU: any purpose
    (tmp_path / "clients.pem").write_bytes(clients.pem)
    (tmp_path / "scraper.crt").write_bytes(scraper.pem)
    (tmp_path / "scraper.key").write_bytes(scraper.key_pem())
    first = _issue(pki, root, tmp_path, "first")
    web = tmp_path / "web.yml"
    web.write_text(
        "tls_server_config:\n"
        "  cert_file: exporter.crt\n"
        "  key_file: exporter.key\n"
        "  client_ca_file: clients.pem\n"
        "  client_auth_type: RequireAndVerifyClientCert\n"
    )
    trusting = ssl.create_default_context(cadata=root.pem.decode())
    with_cert = ssl.create_default_context(cadata=root.pem.decode())
    with_cert.load_cert_chain(tmp_path / "scraper.crt", tmp_path / "scraper.key")
    args = ("-i", str(inventory), "--serve", "127.0.0.1:0", "--web-config", str(web))
    with cli_exporter(tmp_path, *args, "--interval", "1h", "--log-format", "json") as running:
        base = running.url
        assert base.startswith("https://")

        def served_serial() -> int:
            host, port = base.removeprefix("https://").rsplit(":", 1)
            with (
                socket.create_connection((host, int(port)), timeout=10) as raw,
                with_cert.wrap_socket(raw, server_hostname="localhost") as tls,
            ):
                der = tls.getpeercert(binary_form=True)
            from cryptography import x509

            assert der is not None
            return x509.load_der_x509_certificate(der).serial_number

        assert _get(base + "/-/healthy", context=with_cert) == (
            200,
            "pinaudit exporter is healthy.\n",
        )
        # no client certificate: the handshake (or the first read) fails
        with pytest.raises((ssl.SSLError, urllib.error.URLError, ConnectionError)):
            _get(base + "/-/healthy", context=trusting)
        assert served_serial() == first.cert.serial_number
        second = _issue(pki, root, tmp_path, "second")
        running.wait_for(
            "the renewed certificate", lambda: served_serial() == second.cert.serial_number
        )
        # a renewal half-written (a key that does not match the certificate) keeps the last good
        (tmp_path / "exporter.key").write_bytes(pki.leaf("x", root).key_pem())
        time.sleep(1.5)
        assert served_serial() == second.cert.serial_number
        running.process.send_signal(signal.SIGTERM)
        assert running.process.wait(WAIT) == 0
    records = [json.loads(line) for line in running.lines()]
    assert any(r["msg"] == "web TLS certificate reloaded" for r in records)
    assert any(
        r["msg"].startswith("web TLS files changed but do not load") and r["level"] == "error"
        for r in records
    )
