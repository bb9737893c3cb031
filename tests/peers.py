"""Test peers: external programs (openssl, nginx, ...) and the simulated fleet.

A test that needs a program calls `require_program`: it skips when the program
is missing, except under ``PINAUDIT_REQUIRE_PEERS=1`` (set by CI after
``.ci/install-peers``), where a missing peer fails the test instead.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import pytest
import trio

from scanner.fleet.server import Site, serve_sites

REQUIRE_PEERS_ENV = "PINAUDIT_REQUIRE_PEERS"
_SBIN = "/usr/local/sbin:/usr/sbin:/sbin"
# Upper bound for one fleet-backed test body: a hang fails instead of stalling CI.
FLEET_TEST_SECONDS = 30.0

T = TypeVar("T")


def peers_required() -> bool:
    return os.environ.get(REQUIRE_PEERS_ENV) == "1"


def require_program(name: str) -> str:
    """Path of `name`; skip the test when missing, or fail under PINAUDIT_REQUIRE_PEERS=1."""
    path = shutil.which(name) or shutil.which(name, path=_SBIN)
    if path is not None:
        return path
    message = f"{name} is not installed (.ci/install-peers installs it)"
    if peers_required():
        pytest.fail(f"{message}; {REQUIRE_PEERS_ENV}=1 requires it")
    pytest.skip(message)


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now (bound and released)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def wait_for_port(
    host: str, port: int, process: subprocess.Popen[bytes], *, timeout: float = 10.0
) -> None:
    """Wait until `process` accepts TCP connections on (host, port)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with status {process.returncode}")
        try:
            socket.create_connection((host, port), timeout=0.5).close()
        except OSError:
            time.sleep(0.05)
            continue
        return
    raise RuntimeError(f"{process.args!r} did not listen on {host}:{port} in {timeout}s")


@contextmanager
def running(
    command: Sequence[str], *, host: str, port: int, cwd: str | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """Run a server program until the block ends; wait until it listens first."""
    process = subprocess.Popen(
        list(command),
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        try:
            wait_for_port(host, port, process)
        except RuntimeError as exc:
            process.kill()
            _, err = process.communicate(timeout=5)
            raise RuntimeError(f"{exc}: {err.decode(errors='replace')[-2000:]}") from None
        yield process
    finally:
        stop_process(process)


def stop_process(process: subprocess.Popen[bytes], grace: float = 5) -> None:
    """Terminate a peer, kill it when it does not end within `grace` seconds."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
    if process.stderr is not None:
        process.stderr.close()


def with_fleet(sites: Sequence[Site], body: Callable[[list[tuple[str, int]]], Awaitable[T]]) -> T:
    """Serve `sites` in-process, run ``body(bound)`` against them, stop the fleet.

    `bound` lists the (address, port) of each site, in order (port-0 sites resolved).
    """

    async def main() -> T:
        with trio.fail_after(FLEET_TEST_SECONDS):
            async with trio.open_nursery() as nursery:
                bound = await nursery.start(serve_sites, sites)
                result = await body(bound)
                nursery.cancel_scope.cancel()
        return result

    return trio.run(main)


_NGINX_CONF = """\
{user}worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    server {{
        listen {host}:{port} ssl;
        server_name {name};
        ssl_certificate {chain};
        ssl_certificate_key {key};
        ssl_protocols {protocols};
        location / {{ return 200 "ok\\n"; }}
    }}
}}
"""


def nginx_command(
    directory: Path,
    *,
    port: int,
    chain: Path,
    key: Path,
    host: str = "127.0.0.1",
    name: str = "localhost",
    protocols: str = "TLSv1.2 TLSv1.3",
) -> list[str]:
    """A foreground nginx serving `chain` (the full chain file, in the order to
    send) with `key` on host:port, everything it writes kept in `directory`.
    nginx 1.22 leaves TLS 1.3 off unless `ssl_protocols` names it."""
    nginx = require_program("nginx")
    conf = directory / "nginx.conf"
    conf.write_text(
        _NGINX_CONF.format(
            user="user root;\n" if os.geteuid() == 0 else "",
            tmp=directory,
            host=host,
            port=port,
            name=name,
            chain=chain,
            key=key,
            protocols=protocols,
        )
    )
    command = [nginx, "-p", str(directory), "-c", str(conf), "-e", str(directory / "error.log")]
    return [*command, "-g", "daemon off;"]


@contextmanager
def pushgateway(directory: Path) -> Iterator[str]:
    """A real Pushgateway on a free loopback port; yields its URL. It keeps its
    own persistence file: Debian's default one is shared system-wide."""
    binary = require_program("prometheus-pushgateway")
    port = free_port()
    command = [
        binary,
        f"--web.listen-address=127.0.0.1:{port}",
        f"--persistence.file={directory / 'pushgateway.data'}",
    ]
    with running(command, host="127.0.0.1", port=port):
        yield f"http://127.0.0.1:{port}"
