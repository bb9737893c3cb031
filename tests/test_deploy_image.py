"""deploy/Dockerfile built for real and run: a base image made from Debian's
packages (mmdebstrap: python3 and pip, no registry needed), the Dockerfile
built on it with `buildah bud --isolation chroot` (`podman run` cannot create
containers on machines without cgroup delegation; chroot isolation can), then
`scan` and the exporter run from the image's own filesystem and config (user,
environment, entrypoint, working directory) the way the manifests run it:
as uid/gid 10001, on a read-only root filesystem, with a tmpfs on /tmp, the
inventory mounted read-only and one writable volume, against the simulated
fleet on loopback.

The image is built once per test session, in a temporary directory (buildah's
storage included); the build prints how long each step took. It needs root,
buildah and mmdebstrap (.ci/install-peers installs them), and Debian's package
mirror and PyPI, which this project's machines reach.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from peers import free_port, peers_required, require_program, wait_for_port
from test_deploy import DOCKERFILE, ROOT, _container, _one

from scanner.fleet.scenarios import build_fleet
from scanner.fleet.server import FleetProcess, write_config

pytestmark = pytest.mark.peers

SUITE = "bookworm"  # Debian 12: Python 3.11, as the default python:3.11-slim-bookworm
MIRRORS = (
    f"deb http://deb.debian.org/debian {SUITE} main",
    f"deb http://deb.debian.org/debian-security {SUITE}-security main",
)
# what the Dockerfile needs of its base: python3 with pip (the build stage),
# groupadd/useradd (passwd), CA certificates (pip's downloads)
BASE_PACKAGES = ("python3", "python3-pip", "ca-certificates", "passwd")
BASE_IMAGE = "localhost/pinaudit-test-base:" + SUITE
IMAGE = "localhost/pinaudit:test"
REVISION = "0123456789abcdef"  # as `--build-arg REVISION=$(git rev-parse HEAD)` would
BUILD_SECONDS = 1500  # each step's bound: a stuck download fails instead of hanging CI


@dataclass(frozen=True)
class Built:
    buildah: tuple[str, ...]  # buildah with this session's private storage
    work: Path
    seconds: dict[str, float]

    def run(self, *args: str, timeout: float = 300) -> str:
        done = subprocess.run(
            [*self.buildah, *args], capture_output=True, text=True, check=False, timeout=timeout
        )
        assert done.returncode == 0, f"buildah {' '.join(args)}: {done.stderr[-3000:]}"
        return done.stdout.strip()


def _host_ca_bundle() -> str | None:
    """The CA bundle this machine trusts, for pip inside the build: where
    egress passes a TLS-inspecting proxy, PyPI's certificate chains to a CA
    only this bundle holds (docs/deploy.md, "Behind a TLS-intercepting proxy")."""
    for candidate in (os.environ.get("SSL_CERT_FILE"), "/etc/ssl/certs/ca-certificates.crt"):
        if candidate and Path(candidate).is_file():
            return str(Path(candidate).resolve())
    return None


def _timed(seconds: dict[str, float], step: str, command: list[str], **kw: Any) -> None:
    started = time.monotonic()
    done = subprocess.run(
        command, capture_output=True, text=True, check=False, timeout=BUILD_SECONDS, **kw
    )
    seconds[step] = round(time.monotonic() - started, 1)
    assert done.returncode == 0, f"{step}: {' '.join(command)}\n{done.stderr[-4000:]}"


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    buildah_bin = require_program("buildah")
    mmdebstrap = require_program("mmdebstrap")
    if os.geteuid() != 0:
        message = "building the image needs root (buildah storage, mmdebstrap, chroot)"
        if peers_required():
            pytest.fail(message)
        pytest.skip(message)
    work = tmp_path_factory.mktemp("image")
    buildah = (
        buildah_bin,
        "--root",
        str(work / "storage"),
        "--runroot",
        str(work / "run"),
        "--storage-driver",
        "vfs",
    )
    seconds: dict[str, float] = {}
    image = Built(buildah, work, seconds)
    try:
        tarball = work / "base.tar"
        _timed(
            seconds,
            "mmdebstrap",
            [
                mmdebstrap,
                "--quiet",
                "--variant=essential",
                f"--include={','.join(BASE_PACKAGES)}",
                "--dpkgopt=path-exclude=/usr/share/doc/*",
                "--dpkgopt=path-exclude=/usr/share/man/*",
                "--dpkgopt=path-exclude=/usr/share/locale/*",
                SUITE,
                str(tarball),
                *MIRRORS,
            ],
        )
        started = time.monotonic()
        container = image.run("from", "scratch")
        image.run("add", container, str(tarball), "/")
        path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"  # Debian's
        image.run("config", "--env", f"PATH={path}", container)
        image.run("commit", "--quiet", container, BASE_IMAGE)
        image.run("rm", container)
        tarball.unlink()
        seconds["import"] = round(time.monotonic() - started, 1)
        ca = _host_ca_bundle()
        volume = ["--volume", f"{ca}:/etc/ssl/certs/ca-certificates.crt:ro"] if ca else []
        _timed(
            seconds,
            "buildah bud",
            [
                *buildah,
                "bud",
                "--isolation",
                "chroot",
                "--pull-never",
                "--layers=false",
                *volume,
                "--file",
                str(DOCKERFILE),
                "--build-arg",
                f"PYTHON_IMAGE={BASE_IMAGE}",
                "--build-arg",
                f"REVISION={REVISION}",
                "--tag",
                IMAGE,
                str(ROOT),
            ],
        )
        print(f"\nimage built in {sum(seconds.values()):.0f} s: {seconds}", file=sys.stderr)
        yield image
    finally:
        subprocess.run([*buildah, "rm", "--all"], capture_output=True, check=False, timeout=120)
        shutil.rmtree(work, ignore_errors=True)


def image_config(image: Built) -> dict[str, Any]:
    inspected = json.loads(image.run("inspect", "--type", "image", IMAGE))
    return dict(inspected["OCIv1"]["config"])


def test_the_image_config_matches_the_manifests(built: Built) -> None:
    config = image_config(built)
    deployment = _one("exporter/deployment.yaml")
    template = deployment["spec"]["template"]
    pod = template["spec"]["securityContext"]
    assert config["User"] == f"{pod['runAsUser']}:{pod['runAsGroup']}"
    assert config["Entrypoint"] == ["scan"]
    assert config["WorkingDir"] == "/tmp"
    env = dict(item.split("=", 1) for item in config["Env"])
    assert env["HOME"] == env["TMPDIR"] == "/tmp"
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    (port,) = _container(template)["ports"]
    assert set(config["ExposedPorts"]) == {f"{port['containerPort']}/tcp"}
    # the final image holds the environment, not the build's wheels and sources
    container = built.run("from", "--pull-never", IMAGE)
    try:
        listing = built.run(
            "run",
            "--isolation",
            "chroot",
            container,
            "--",
            "sh",
            "-c",
            "ls -d /wheels /src /opt/pinaudit/bin/scan 2>&1; id -u; id -g",
        )
    finally:
        built.run("rm", container)
    assert "/opt/pinaudit/bin/scan" in listing
    assert "'/wheels': No such file" in listing and "'/src': No such file" in listing
    assert listing.splitlines()[-2:] == [str(pod["runAsUser"]), str(pod["runAsGroup"])]


@dataclass(frozen=True)
class Rootfs:
    path: Path
    user: str
    env: tuple[str, ...]
    workdir: str
    entrypoint: tuple[str, ...]


@pytest.fixture
def rootfs(built: Built) -> Iterator[Rootfs]:
    config = image_config(built)
    container = built.run("from", "--pull-never", IMAGE)
    try:
        path = Path(built.run("mount", container))
        for mountpoint in ("etc/pinaudit", "var/lib/pinaudit"):  # the manifests' volumes
            (path / mountpoint).mkdir(parents=True, exist_ok=True)
        yield Rootfs(
            path,
            config["User"],
            tuple(config["Env"]),
            config["WorkingDir"],
            tuple(config["Entrypoint"]),
        )
    finally:
        built.run("umount", container)
        built.run("rm", container)


def container_command(root: Rootfs, data: Path, volume: Path, args: list[str]) -> list[str]:
    """What `docker run --read-only --tmpfs /tmp -v DATA:/etc/pinaudit:ro
    -v VOLUME:/var/lib/pinaudit IMAGE ARGS` does, with util-linux and
    coreutils: a private mount namespace, the image's root bind-mounted and
    remounted read-only, then chroot as the image's user with the image's
    environment, working directory and entrypoint. The network is the host's
    (the fleet listens on loopback)."""
    r = root.path
    env = " ".join(f"'{item}'" for item in root.env)
    command = " ".join(f"'{part}'" for part in (*root.entrypoint, *args))
    script = f"""
set -e
mount --make-rprivate /
mount --bind {r} {r}
mount --bind {data} {r}/etc/pinaudit
mount -o remount,bind,ro {r}/etc/pinaudit
mount --bind {volume} {r}/var/lib/pinaudit
mount -t tmpfs -o size=64m,mode=1777 tmpfs {r}/tmp
mount --rbind /dev {r}/dev
mount -t proc proc {r}/proc
mount -o remount,bind,ro {r}
if touch {r}/.writable 2>/dev/null; then echo "the root file system is writable" >&2; exit 99; fi
exec chroot --userspec={root.user} {r} /usr/bin/env -i -C {root.workdir} {env} {command}
"""
    return ["unshare", "--mount", "sh", "-c", script]


def test_scan_and_the_exporter_run_from_the_image_as_its_user_on_a_read_only_root(
    rootfs: Rootfs, tmp_path: Path
) -> None:
    for tool in ("unshare", "chroot", "mount"):
        require_program(tool)
    data, volume = tmp_path / "etc", tmp_path / "volume"
    volume.mkdir()
    uid, gid = (int(part) for part in rootfs.user.split(":"))
    os.chown(volume, uid, gid)  # what fsGroup does for the pod's volumes
    tmp_path.chmod(0o755)
    fleet = build_fleet(datetime.now(timezone.utc), scenarios=["healthy", "rotated"], base=80)
    with FleetProcess(write_config(fleet.sites, tmp_path / "sites")) as served:
        fleet.write(data, served.listening)
        for path in (data, *data.iterdir()):
            path.chmod(0o755 if path.is_dir() else 0o644)
        inventory = "/etc/pinaudit/inventory.yaml"

        # `scan`, as the CronJob runs it, writing to the volume only
        scan = container_command(
            rootfs,
            data,
            volume,
            [
                *("--inventory", inventory, "--fail-on", "never", "--no-progress"),
                *("--format", "json", "-o", "/var/lib/pinaudit/report.json"),
                *("--textfile", "/var/lib/pinaudit/pinaudit.prom"),
                *("--state", "/var/lib/pinaudit/state.json"),
            ],
        )
        done = subprocess.run(scan, capture_output=True, text=True, check=False, timeout=180)
        assert done.returncode == 0, done.stdout + done.stderr
        report = json.loads((volume / "report.json").read_text())
        assert report["summary"] == {"endpoints": 2, "ok": 1, "drift": 1, "error": 0}
        assert 'pinaudit_pin_match{endpoint="rotated-1"' in (volume / "pinaudit.prom").read_text()
        written = {p.name: p.stat() for p in volume.iterdir()}
        assert set(written) == {"report.json", "pinaudit.prom", "state.json"}
        assert {(s.st_uid, s.st_gid) for s in written.values()} == {(uid, gid)}

        # the exporter, as the Deployment runs it
        port = free_port()
        exporter = container_command(
            rootfs,
            data,
            volume,
            [
                *("--inventory", inventory, "--serve", f"127.0.0.1:{port}"),
                *("--interval", "1h", "--log-format", "json"),
            ],
        )
        process = subprocess.Popen(
            exporter, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        try:
            wait_for_port("127.0.0.1", port, process, timeout=60)  # type: ignore[arg-type]
            deadline = time.monotonic() + 60
            while True:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/metrics", timeout=10
                ) as response:
                    scrape = response.read().decode()
                if "pinaudit_scan_timestamp_seconds " in scrape:
                    break
                assert time.monotonic() < deadline, scrape[-2000:]
                time.sleep(0.2)
            process.send_signal(signal.SIGTERM)
            _out, err = process.communicate(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate(timeout=10)
    assert process.returncode == 0, err
    assert 'pinaudit_pin_match{endpoint="rotated-1",env="fleet",scenario="rotated"} 0.0' in scrape
    assert 'pinaudit_pin_match{endpoint="healthy-0",env="fleet",scenario="healthy"} 1.0' in scrape
    assert f'revision="{REVISION}"' in scrape  # pinaudit_build_info: the image's revision
    logged = [json.loads(line) for line in err.splitlines()]
    assert [entry["msg"] for entry in logged][-1] == "exporter stopped"
    assert "scan finished" in {entry["msg"] for entry in logged}
    # nothing else was written: the volume holds what `scan` wrote, no more
    assert {p.name for p in volume.iterdir()} == {"report.json", "pinaudit.prom", "state.json"}
