"""`scan --shard I/N`: the rendezvous hashing itself (pure), then the flag end
to end on the simulated fleet: each shard scans exactly its share, bad values
exit 2 before anything is scanned, shards pushing to a real Pushgateway keep
separate groups, and the exporter scans its shard."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from peers import free_port, running
from peers import pushgateway as running_pushgateway
from prometheus_client.parser import text_string_to_metric_families

from scanner.cli import main
from scanner.fleet.scenarios import Fleet, build_fleet
from scanner.fleet.server import FleetProcess, write_config
from scanner.shard import MAX_SHARDS, Shard, shard_of, weight

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime.now(timezone.utc)
NAMES = [f"endpoint-{n}.example.com:443" for n in range(2000)] + [
    "bücher.example:443",
    "api.example.com@10.0.0.5:8443",
    "edge-eu-1",
    "",
]


def _owners(names: list[str], count: int) -> list[set[str]]:
    return [{name for name in names if Shard(index, count).owns(name)} for index in range(count)]


# --- the pure function ------------------------------------------------------------


def test_for_1_to_8_shards_the_shards_partition_the_inventory() -> None:
    for count in range(1, 9):
        owned = _owners(NAMES, count)
        assert sum(len(s) for s in owned) == len(NAMES), count  # disjoint ...
        assert set().union(*owned) == set(NAMES), count  # ... and together everything
        for index, names in enumerate(owned):
            assert all(shard_of(name, count) == index for name in names)


def test_adding_an_endpoint_moves_only_that_endpoint() -> None:
    for count in range(1, 9):
        before = {name: shard_of(name, count) for name in NAMES}
        grown = [*NAMES, "new-endpoint.example.com:443"]
        after = {name: shard_of(name, count) for name in grown}
        moved = {name for name in grown if before.get(name) != after[name]}
        assert moved == {"new-endpoint.example.com:443"}, count
        shrunk = NAMES[: len(NAMES) // 2] + NAMES[len(NAMES) // 2 + 1 :]  # one removed
        assert all(shard_of(name, count) == before[name] for name in shrunk)


def test_adding_a_shard_moves_endpoints_only_to_the_new_shard() -> None:
    for count in range(1, 8):
        for name in NAMES:
            old, new = shard_of(name, count), shard_of(name, count + 1)
            assert new in (old, count), (name, count)
        moved = sum(1 for name in NAMES if shard_of(name, count + 1) == count)
        assert abs(moved - len(NAMES) / (count + 1)) < 0.2 * len(NAMES) / (count + 1)


def test_shards_are_balanced() -> None:
    for count in range(2, 9):
        sizes = [len(s) for s in _owners(NAMES, count)]
        mean = len(NAMES) / count
        assert all(abs(size - mean) < 0.15 * mean for size in sizes), (count, sizes)


def test_the_assignment_never_changes_between_processes_or_releases() -> None:
    """SHA-256, not Python's salted hash(): every pod gets the same split, and a
    new release must not reshuffle deployed shards (these values are frozen)."""
    golden = {
        "api.example.com:443": [1, 2, 2, 2, 224],
        "www.example.com:443": [1, 1, 1, 6, 118],
        "edge-eu-1": [0, 2, 2, 2, 51],
        "pay.example.com:8443": [0, 0, 0, 7, 127],
        "bücher.example:443": [0, 0, 3, 4, 65],
        "api.example.com@10.0.0.5:8443": [0, 0, 0, 0, 86],
    }
    counts = (2, 3, 4, 8, 256)
    assert {n: [shard_of(n, c) for c in counts] for n in golden} == golden
    program = (
        "import json, sys; from scanner.shard import shard_of; "
        "print(json.dumps([shard_of(n, 7) for n in json.load(sys.stdin)]))"
    )
    for seed in ("0", "12345", "random"):
        done = subprocess.run(
            [sys.executable, "-c", program],
            input=json.dumps(NAMES[:300]),
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
            env={**os.environ, "PYTHONHASHSEED": seed},
        )
        assert json.loads(done.stdout) == [shard_of(n, 7) for n in NAMES[:300]]


def test_the_weight_is_the_first_64_bits_of_sha256() -> None:
    """Other tools may compute the split themselves (a deploy script that
    checks a pod's share): the weight is a documented value, frozen here."""
    assert weight(0, "api.example.com:443") == 1066332935459760239
    assert weight(3, "bücher.example:443") == 10741976272551496685
    assert weight(255, "") == 3127759030303037755
    assert all(weight(s, "x") < 2**64 for s in range(256))


def test_a_shard_is_a_value() -> None:
    shard = Shard.parse("1/4")
    assert shard == Shard(1, 4) and {shard: "pod-1"}[Shard(1, 4)] == "pod-1"
    with pytest.raises(dataclasses.FrozenInstanceError):
        shard.index = 2  # type: ignore[misc]


def test_shard_parsing() -> None:
    assert Shard.parse("0/1") == Shard(0, 1)
    assert Shard.parse("3/4") == Shard(3, 4)
    assert Shard.parse(f"{MAX_SHARDS - 1}/{MAX_SHARDS}") == Shard(MAX_SHARDS - 1, MAX_SHARDS)
    assert str(Shard.parse("2/8")) == "2/8"
    for text in ("", "1", "a/b", "1/2/3", "-1/4", "1.0/4", "1 /4", "0x1/4"):
        with pytest.raises(ValueError, match="expected I/N"):
            Shard.parse(text)
    with pytest.raises(ValueError, match=r"N must be 1\.\.256"):
        Shard.parse("0/0")
    with pytest.raises(ValueError, match=r"N must be 1\.\.256"):
        Shard.parse("0/257")
    with pytest.raises(ValueError, match=r"I must be 0\.\.3"):
        Shard.parse("4/4")
    for index, count in ((2, 2), (0, 0), (-1, 4), (0, 257)):
        with pytest.raises(ValueError, match=f"not a shard: {index}/{count}"):
            Shard(index, count)


def test_a_sharded_scan_exports_its_shard_count_and_the_exporter_its_interval() -> None:
    from scanner.exporters.metrics import ScanRecord, scan_exposition

    def scan_samples(**extra: Any) -> set[tuple[str, float]]:
        record = ScanRecord((), NOW, NOW, 1.5, **extra)
        exposition, _ = scan_exposition(record)
        return {(name, value) for name, labels, value in exposition.samples() if not labels}

    plain = scan_samples()
    assert {name for name, _ in plain} == {
        "pinaudit_scan_duration_seconds",
        "pinaudit_scan_timestamp_seconds",
    }
    assert scan_samples(shards=4) == plain | {("pinaudit_scan_shards", 4.0)}
    assert scan_samples(shards=2, interval=300.0) == plain | {
        ("pinaudit_scan_shards", 2.0),
        ("pinaudit_scan_interval_seconds", 300.0),
    }


# --- end to end ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def fleet_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Fleet, Path]]:
    directory = tmp_path_factory.mktemp("fleet")
    names = ["healthy", "rotated", "expired", "leafpin", "refused"]
    fleet = build_fleet(NOW, 20, scenarios=names, base=12, timeout=1.0)
    with FleetProcess(write_config(fleet.sites, directory / "sites")) as served:
        yield fleet, fleet.write(directory, served.listening)


def _scan(*args: str, prog: str = "scan") -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    argv = list(args) if prog == "scan" else ["scan", *args]
    status = main(argv, prog=prog, stdout=out, stderr=err)
    return int(status), out.getvalue(), err.getvalue()


def _parse(text: str) -> list[tuple[str, dict[str, str], float]]:
    return [
        (s.name, dict(s.labels), s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
    ]


def test_each_shard_scans_exactly_its_share(fleet_dir: tuple[Fleet, Path], tmp_path: Path) -> None:
    fleet, inventory = fleet_dir
    everything = {e.name for e in fleet.endpoints}
    seen: list[set[str]] = []
    for index in range(3):
        textfile = tmp_path / f"shard{index}.prom"
        status, out, err = _scan(
            *("-i", str(inventory), "--shard", f"{index}/3", "--format", "json"),
            *("--fail-on", "never", "--textfile", str(textfile)),
        )
        assert status == 0, err
        names = {e["name"] for e in json.loads(out)["endpoints"]}
        assert names == {n for n in everything if shard_of(n, 3) == index}
        seen.append(names)
        samples = _parse(textfile.read_text())
        assert ("pinaudit_scan_shards", {}, 3.0) in samples
        up = {labels["endpoint"] for name, labels, _ in samples if name == "pinaudit_endpoint_up"}
        assert up == names
    assert sum(len(s) for s in seen) == len(everything)
    assert set().union(*seen) == everything
    assert all(seen)  # 20 endpoints over 3 shards: none empty here

    # --only filters first, then the shard takes its share of what is left
    status, out, err = _scan(
        "-i", str(inventory), "--only", "scenario=healthy", "--shard", "1/2", "--format", "json"
    )
    assert status == 0, err
    names = {e["name"] for e in json.loads(out)["endpoints"]}
    healthy = {e.name for e in fleet.endpoints if e.scenario.name == "healthy"}
    assert names == {n for n in healthy if shard_of(n, 2) == 1}


def test_without_shard_nothing_about_shards_is_exported(
    fleet_dir: tuple[Fleet, Path], tmp_path: Path
) -> None:
    _, inventory = fleet_dir
    textfile = tmp_path / "all.prom"
    args = ("-i", str(inventory), "--only", "scenario=healthy", "--textfile", str(textfile))
    status, _, err = _scan(*args)
    assert status == 0, err
    assert "pinaudit_scan_shards" not in textfile.read_text()


def test_bad_shard_values_exit_2_before_anything_is_scanned(
    fleet_dir: tuple[Fleet, Path],
) -> None:
    _, inventory = fleet_dir
    cases = {
        "4/4": "--shard '4/4': I must be 0..3 (shards are counted from 0)",
        "0/0": "--shard '0/0': N must be 1..256",
        "1/1000": "--shard '1/1000': N must be 1..256",
        "two": "--shard 'two': expected I/N, shard I of N counted from 0 (e.g. 0/4)",
        "-1/4": "--shard '-1/4': expected I/N, shard I of N counted from 0 (e.g. 0/4)",
        "1/2/3": "--shard '1/2/3': expected I/N, shard I of N counted from 0 (e.g. 0/4)",
    }
    for value, message in cases.items():
        status, out, err = _scan("-i", str(inventory), f"--shard={value}")
        assert (status, out, err) == (2, "", f"scan: error: {message}\n"), value
    status, out, err = _scan("-i", str(inventory), "--shard", "5/5", prog="pinaudit")
    assert (status, out, err) == (
        2,
        "",
        "pinaudit scan: error: --shard '5/5': I must be 0..4 (shards are counted from 0)\n",
    )
    # a grouping key that would make two shards share one Pushgateway group
    args = ("-i", str(inventory), "--shard", "1/2", "--push-gateway", "http://127.0.0.1:9")
    status, out, err = _scan(*args, "--grouping", "shard=0")
    assert (status, out) == (2, "")
    assert err == (
        "scan: error: --grouping shard=0 contradicts --shard 1/2: each shard pushes under "
        "shard=1 (leave --grouping shard out)\n"
    )


@pytest.fixture
def pushgateway(tmp_path: Path) -> Iterator[str]:
    with running_pushgateway(tmp_path) as url:
        yield url


def _gateway(url: str) -> list[tuple[str, dict[str, str], float]]:
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as response:
        return [s for s in _parse(response.read().decode()) if s[0].startswith("pinaudit_")]


def test_two_shards_push_to_separate_pushgateway_groups(
    fleet_dir: tuple[Fleet, Path], pushgateway: str
) -> None:
    fleet, inventory = fleet_dir
    everything = {e.name for e in fleet.endpoints}
    push = ("--push-gateway", pushgateway, "--fail-on", "never")
    for index in (0, 1):
        status, _, err = _scan("-i", str(inventory), "--shard", f"{index}/2", *push)
        assert status == 0, err
    samples = _gateway(pushgateway)
    groups: dict[str, set[str]] = {}
    for name, labels, value in samples:
        assert labels["job"] == "pinaudit", labels
        if name == "pinaudit_endpoint_up":
            groups.setdefault(labels["shard"], set()).add(labels["endpoint"])
        if name == "pinaudit_scan_shards":
            assert value == 2
    assert groups == {str(i): {n for n in everything if shard_of(n, 2) == i} for i in (0, 1)}
    stamps = {labels["shard"] for n, labels, _ in samples if n == "pinaudit_scan_timestamp_seconds"}
    assert stamps == {"0", "1"}

    # shard 0 pushes again, from a smaller selection: shard 1's group is untouched
    status, _, err = _scan(
        "-i", str(inventory), "--only", "scenario=healthy", "--shard", "0/2", *push
    )
    assert status == 0, err
    again = _gateway(pushgateway)
    up = {
        (labels["shard"], labels["endpoint"])
        for n, labels, _ in again
        if n == "pinaudit_endpoint_up"
    }
    healthy = {e.name for e in fleet.endpoints if e.scenario.name == "healthy"}
    assert {e for s, e in up if s == "0"} == {n for n in healthy if shard_of(n, 2) == 0}
    assert {e for s, e in up if s == "1"} == groups["1"]


def test_the_exporter_scans_its_shard(fleet_dir: tuple[Fleet, Path]) -> None:
    fleet, inventory = fleet_dir
    port = free_port()
    command = [
        sys.executable,
        *("-m", "scanner", "scan", "-i", str(inventory), "--shard", "1/3"),
        *("--serve", f"127.0.0.1:{port}", "--interval", "1h", "--log-format", "json"),
    ]
    with running(command, host="127.0.0.1", port=port, cwd=str(ROOT)):
        deadline = time.monotonic() + 60
        while True:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
                samples = _parse(r.read().decode())
            if any(name == "pinaudit_scan_timestamp_seconds" for name, _, _ in samples):
                break
            assert time.monotonic() < deadline, "no scan within 60 s"
            time.sleep(0.1)
    up = {labels["endpoint"] for name, labels, _ in samples if name == "pinaudit_endpoint_up"}
    assert up == {e.name for e in fleet.endpoints if shard_of(e.name, 3) == 1}
    assert ("pinaudit_scan_shards", {}, 3.0) in samples
    assert ("pinaudit_scan_interval_seconds", {}, 3600.0) in samples
