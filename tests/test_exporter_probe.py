"""``/probe?target=HOST:PORT&module=NAME`` (issue 13 #6): the probe config
and its allow-list, the answers to good and bad requests, and a real
Prometheus (the distribution's package) that discovers the targets from a
file_sd file and scrapes them through the exporter with the shipped scrape
config (deploy/prometheus/probe-scrape-config.yml), relabelling and all."""

from __future__ import annotations

import json
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml
from peers import free_port, require_program, running
from prometheus_client.parser import text_string_to_metric_families

from scanner.errors import ConfigError
from scanner.fleet.scenarios import Fleet, build_fleet
from scanner.fleet.server import FleetProcess, write_config
from scanner.targets import load_probe_config, parse_target

ROOT = Path(__file__).resolve().parent.parent
SCRAPE_CONFIG = ROOT / "deploy" / "prometheus" / "probe-scrape-config.yml"
EXAMPLE = ROOT / "deploy" / "prometheus" / "probe-config.example.yml"
NOW = datetime.now(timezone.utc)
WAIT = 90.0
BASE = 80  # 127.80.x.y: the deploy helper's loopback block
OUTSIDE = "127.79.0.1"  # a loopback address the allow-list leaves out


Fixture = tuple[Fleet, Path, Path, list[tuple[str, str]]]


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fixture]:
    """healthy and rotated endpoints (the rotated leaf has a key no pin names),
    and a probe config with a module per endpoint kind: the fleet's roots
    trusted, the endpoint's pins as the apps enforce them."""
    directory = tmp_path_factory.mktemp("fleet")
    built = build_fleet(NOW, scenarios=["healthy", "rotated", "healthy"], base=BASE)
    with FleetProcess(write_config(built.sites, directory / "sites")) as served:
        inventory = built.write(directory, served.listening)
        pins = {e.scenario.name: [str(p) for p in e.pins] for e in built.endpoints}
        config = directory / "probe.yml"
        config.write_text(
            yaml.safe_dump(
                {
                    "allow": {"networks": [f"127.{BASE}.0.0/16"], "hosts": ["*.example.test"]},
                    "modules": {
                        "fleet": {"trust": "trust.pem", "timeout": "5s", "pins": pins["healthy"]},
                        "rotated": {"trust": "trust.pem", "pins": pins["rotated"]},
                        "default": {},
                    },
                }
            )
        )
        # (address:port, sni) of each endpoint, as file_sd would list them
        targets = [
            (f"{address}:{port}", endpoint.sni)
            for (address, port), endpoint in zip(served.listening, built.endpoints, strict=True)
        ]
        yield built, inventory, config, targets


def test_the_example_probe_config_loads_and_its_allow_list_holds() -> None:
    config = load_probe_config(str(EXAMPLE))
    assert set(config.modules) == {"default", "payments"}
    for host, allowed in (
        ("api.example.com", True),
        ("deep.api.example.com", True),  # * matches across dots
        ("API.Example.Com.", True),  # case and a trailing dot do not matter
        ("example.com", False),
        ("api.example.com.evil.net", False),
        ("api.example.org", True),
        ("www.example.org", False),
        ("10.20.255.1", True),
        ("10.21.0.1", False),
        ("127.0.0.1", False),  # loopback is not implied
        ("::1", False),
    ):
        assert config.allows(host) is allowed, host
    endpoint = config.endpoint("payments", "api.example.com", 8443)
    assert (endpoint.name, endpoint.port, endpoint.timeout, endpoint.warn_days) == (
        "api.example.com:8443",
        8443,
        10.0,
        21,
    )
    assert endpoint.pinset is not None and len(endpoint.pinset.pins) == 2


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("modules: {default: {}}\n", "allow: list the hosts and/or networks"),
        ("allow: {hosts: []}\nmodules: {default: {}}\n", "allow: list the hosts"),
        ("allow: {hosts: [a.example]}\n", "modules: define at least one module"),
        ("allow: {hosts: [a.example]}\nmodules: {m: {host: x}}\n", "'host' comes from the target"),
        ("allow: {networks: [10.0.0.0/33]}\nmodules: {m: {}}\n", "allow.networks: "),
        ("allow: {hosts: [a]}\nmodules: {m: {timeout: soon}}\n", "modules.m: "),
        ("allow: {hosts: [a]}\nmodules: {m: {pinset: nope}}\n", "modules.m: "),
        ("allow: {hosts: [a]}\nmodules: {m: {}}\nextra: 1\n", "unknown key 'extra'"),
        ("allow: {hosts: [a], ports: [1]}\nmodules: {m: {}}\n", "allow: unknown key 'ports'"),
    ],
)
def test_a_bad_probe_config_is_refused_at_start(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "probe.yml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_probe_config(str(path))
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("api.example.com:8443", ("api.example.com", 8443)),
        ("api.example.com", ("api.example.com", 443)),
        ("[2001:db8::1]:443", ("2001:db8::1", 443)),
        ("[2001:db8::1]", ("2001:db8::1", 443)),
        ("10.0.0.1:0", None),
        ("2001:db8::1:443", None),
        ("https://api.example.com", None),
        ("a b:443", None),
        ("user@host:443", None),
        ("x" * 400, None),
    ],
)
def test_targets_are_host_and_port(text: str, parsed: tuple[str, int] | None) -> None:
    if parsed is None:
        with pytest.raises(ValueError):
            parse_target(text)
    else:
        assert parse_target(text) == parsed


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _samples(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    found: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            found.setdefault(s.name, []).append((s.labels, s.value))
    return found


def _exporter(inventory: Path, config: Path, port: int) -> list[str]:
    return [
        sys.executable,
        *("-m", "scanner", "scan", "-i", str(inventory)),
        *("--web.listen-address", f"127.0.0.1:{port}", "--probe.config", str(config)),
        *("--interval", "1h", "--log-format", "json"),
    ]


def test_probe_answers(fleet: Fixture) -> None:
    _, inventory, config, targets = fleet
    port = free_port()
    (healthy, healthy_sni), (rotated, rotated_sni), _ = targets
    with running(_exporter(inventory, config, port), host="127.0.0.1", port=port, cwd=str(ROOT)):
        base = f"http://127.0.0.1:{port}/probe?"

        def probe(**params: str) -> tuple[int, str]:
            return _get(base + urllib.parse.urlencode(params))

        status, text = probe(target=healthy, module="fleet", sni=healthy_sni)
        assert status == 200, text
        samples = _samples(text)
        labels = {"endpoint": healthy}
        assert samples["pinaudit_endpoint_up"] == [(labels, 1.0)]
        assert samples["pinaudit_chain_valid"] == [(labels, 1.0)]
        assert samples["pinaudit_pin_match"] == [(labels, 1.0)]
        status, text = probe(target=rotated, module="rotated", sni=rotated_sni)
        assert _samples(text)["pinaudit_pin_match"] == [({"endpoint": rotated}, 0.0)]
        # without the sni the address is the name: the chain is not valid for it
        status, text = probe(target=healthy, module="fleet")
        assert _samples(text)["pinaudit_chain_valid"] == [(labels, 0.0)]
        # what is refused, before any packet is sent
        target_port = healthy.rpartition(":")[2]
        assert probe(target=f"{OUTSIDE}:{target_port}", module="fleet") == (
            403,
            f"target '{OUTSIDE}' is not in the probe allow-list\n",
        )
        assert probe(target="api.elsewhere.test:443", module="fleet")[0] == 403
        assert probe(target=healthy, module="nope") == (
            400,
            "unknown module 'nope' (configured: default, fleet, rotated)\n",
        )
        assert probe(module="fleet")[0] == 400
        assert probe(target="https://x.example.test/", module="fleet")[0] == 400
        assert _get(f"http://127.0.0.1:{port}/-/healthy")[0] == 200


def _api(base: str, path: str, **params: str) -> Any:
    query = f"?{urllib.parse.urlencode(params)}" if params else ""
    with urllib.request.urlopen(f"{base}/api/v1/{path}{query}", timeout=10) as response:
        body = json.loads(response.read())
    assert body["status"] == "success", body
    return body["data"]


def test_a_real_prometheus_with_file_sd_drives_the_probes(fleet: Fixture, tmp_path: Path) -> None:
    prometheus = require_program("prometheus")
    _, inventory, config, targets = fleet
    exporter_port, prometheus_port = free_port(), free_port()
    outside = f"{OUTSIDE}:443"
    modules = ["fleet", "rotated", "fleet"]  # the endpoints' kinds, in fleet order
    groups = [
        {"targets": [target], "labels": {"module": module, "sni": sni}}
        for (target, sni), module in zip(targets, modules, strict=True)
    ]
    groups.append({"targets": [outside], "labels": {"module": "fleet"}})
    (tmp_path / "targets").mkdir()
    (tmp_path / "targets" / "fleet.json").write_text(json.dumps(groups))
    # the shipped job, pointed at this test's exporter and targets directory
    (job,) = yaml.safe_load(SCRAPE_CONFIG.read_text())["scrape_configs"]
    job["scrape_interval"], job["scrape_timeout"] = "1s", "1s"
    job["file_sd_configs"][0]["files"] = [str(tmp_path / "targets" / "*.json")]
    (address,) = [r for r in job["relabel_configs"] if r.get("target_label") == "__address__"]
    assert re.fullmatch(r"[a-z.-]+:9918", address["replacement"])
    address["replacement"] = f"127.0.0.1:{exporter_port}"
    (tmp_path / "prometheus.yml").write_text(
        yaml.safe_dump({"global": {"evaluation_interval": "1s"}, "scrape_configs": [job]})
    )
    server = [
        prometheus,
        f"--config.file={tmp_path / 'prometheus.yml'}",
        f"--storage.tsdb.path={tmp_path / 'data'}",
        f"--web.listen-address=127.0.0.1:{prometheus_port}",
        "--log.level=warn",
    ]
    base = f"http://127.0.0.1:{prometheus_port}"
    with (
        running(
            _exporter(inventory, config, exporter_port),
            host="127.0.0.1",
            port=exporter_port,
            cwd=str(ROOT),
        ),
        running(server, host="127.0.0.1", port=prometheus_port),
    ):
        deadline = time.monotonic() + WAIT
        while True:
            try:
                up = {
                    r["metric"]["instance"]: r["value"][1]
                    for r in _api(base, "query", query='up{job="pinaudit-probe"}')["result"]
                }
                matched = {
                    r["metric"]["instance"]: r["value"][1]
                    for r in _api(base, "query", query="pinaudit_pin_match")["result"]
                }
            except (urllib.error.URLError, OSError):
                up, matched = {}, {}
            if len(up) == len(targets) + 1 and len(matched) == len(targets):
                break
            assert time.monotonic() < deadline, (up, matched)
            time.sleep(0.5)
        valid = {
            r["metric"]["instance"]: (r["metric"]["endpoint"], r["value"][1])
            for r in _api(base, "query", query="pinaudit_chain_valid")["result"]
        }
    # every discovered target was probed through the exporter, labelled with its
    # own address as `instance` (the relabelling) and as `endpoint` (the probe)
    assert up == {**{target: "1" for target, _ in targets}, outside: "0"}  # 403: not allowed
    rotated = targets[1][0]
    assert matched == {target: ("0" if target == rotated else "1") for target, _ in targets}
    assert valid == {target: (target, "1") for target, _ in targets}
