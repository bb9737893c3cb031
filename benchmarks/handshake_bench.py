"""Which TLS client handshake is cheapest for the probe, measured in one run.

Three ways to complete a client handshake and read the served chain (DER, in
order) from a real nginx on loopback, under trio, at the same concurrency:

- ``sslstream``: trio's ``SSLStream`` over stdlib ``ssl`` (OpenSSL of the
  Python build) -- what the probe used until now;
- ``lean-ssl``: a non-blocking stdlib ``SSLSocket`` whose ``do_handshake`` is
  driven by ``trio.lowlevel.wait_readable`` / ``wait_writable`` (no memory
  BIOs, no copies through Python);
- ``pyopenssl``: pyOpenSSL's ``Connection`` on the same non-blocking socket,
  driven the same way, on the OpenSSL that ``cryptography`` bundles;
- ``probe``: ``scanner.probe.probe_address`` itself, whatever it adopted;
- ``probe+ocsp+sct``: the same, also asking for the OCSP staple and SCTs.

Rounds are interleaved (A B C D, A B C D, ...) so that machine load hits every
client alike; the table shows the median per client and every round's figure.
CPU is this process's CPU time (user + system) divided by the handshakes;
nginx runs in its own process and is not counted.

    python benchmarks/handshake_bench.py [--n 2000] [--concurrency 100] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from pathlib import Path

import trio
from OpenSSL import SSL
from OpenSSL._util import ffi as _ffi
from OpenSSL._util import lib as _lib

from scanner.fleet.pki import PKI
from scanner.probe import make_client_context, probe_address, tls_library

HOST = "127.90.250.1"  # the protocols helper's loopback block
SNI = "bench.test"
Client = Callable[[str, int], Awaitable[int]]


# --------------------------------------------------------------------------- clients


def _stdlib_context() -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    return ctx


def _pyopenssl_context() -> SSL.Context:
    ctx = SSL.Context(SSL.TLS_CLIENT_METHOD)
    ctx.set_verify(SSL.VERIFY_NONE)
    ctx.set_cipher_list(b"DEFAULT:@SECLEVEL=0")
    ctx.set_alpn_protos([b"h2", b"http/1.1"])
    return ctx


async def _connected(address: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    err = sock.connect_ex((address, port))
    if err not in (0, 115):  # EINPROGRESS
        sock.close()
        raise OSError(err, os.strerror(err))
    await trio.lowlevel.wait_writable(sock)
    err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    if err:
        sock.close()
        raise OSError(err, os.strerror(err))
    return sock


def sslstream_client() -> Client:
    ctx = _stdlib_context()

    async def one(address: str, port: int) -> int:
        tcp = await trio.open_tcp_stream(address, port)
        stream = trio.SSLStream(tcp, ctx, server_hostname=SNI, https_compatible=True)
        await stream.do_handshake()
        n = len(stream._ssl_object._sslobj.get_unverified_chain() or ())  # type: ignore[attr-defined]
        await trio.aclose_forcefully(stream)
        return n

    return one


def lean_ssl_client() -> Client:
    ctx = _stdlib_context()

    async def one(address: str, port: int) -> int:
        sock = await _connected(address, port)
        tls = ctx.wrap_socket(sock, server_hostname=SNI, do_handshake_on_connect=False)
        try:
            while True:
                try:
                    tls.do_handshake()
                    break
                except ssl.SSLWantReadError:
                    await trio.lowlevel.wait_readable(tls)
                except ssl.SSLWantWriteError:
                    await trio.lowlevel.wait_writable(tls)
            chain = tls._sslobj.get_unverified_chain()  # type: ignore[union-attr]
            return len(chain or ())
        finally:
            tls.close()

    return one


def _peer_chain_der(conn: SSL.Connection) -> tuple[bytes, ...]:
    stack = _lib.SSL_get_peer_cert_chain(conn._ssl)
    if stack == _ffi.NULL:
        return ()
    out = []
    bio = _lib.BIO_new(_lib.BIO_s_mem())
    try:
        data = _ffi.new("char **")
        for i in range(_lib.sk_X509_num(stack)):
            _lib.i2d_X509_bio(bio, _lib.sk_X509_value(stack, i))
            size = _lib.BIO_get_mem_data(bio, data)
            buf = _ffi.new("char[]", size)
            _lib.BIO_read(bio, buf, size)  # drains the BIO for the next one
            out.append(_ffi.buffer(buf, size)[:])
    finally:
        _lib.BIO_free(bio)
    return tuple(out)


def pyopenssl_client() -> Client:
    ctx = _pyopenssl_context()

    async def one(address: str, port: int) -> int:
        sock = await _connected(address, port)
        conn = SSL.Connection(ctx, sock)
        conn.set_connect_state()
        conn.set_tlsext_host_name(SNI.encode())
        try:
            while True:
                try:
                    conn.do_handshake()
                    break
                except SSL.WantReadError:
                    await trio.lowlevel.wait_readable(sock)
                except SSL.WantWriteError:
                    await trio.lowlevel.wait_writable(sock)
            return len(_peer_chain_der(conn))
        finally:
            sock.close()

    return one


def probe_client(*, staple: bool = False) -> Client:
    ctx = make_client_context()

    async def one(address: str, port: int) -> int:
        result = await probe_address(address, port, SNI, ctx, timeout=10, ocsp=staple, scts=staple)
        served = getattr(result, "served", None)
        if served is None:
            raise OSError(f"probe failed: {result}")
        return len(served)

    return one


CLIENTS: dict[str, Callable[[], Client]] = {
    "sslstream": sslstream_client,
    "lean-ssl": lean_ssl_client,
    "pyopenssl": pyopenssl_client,
    "probe": probe_client,
    "probe+ocsp+sct": lambda: probe_client(staple=True),
}
VERSIONS = {
    "sslstream": f"stdlib ssl, {ssl.OPENSSL_VERSION}",
    "lean-ssl": f"stdlib ssl, {ssl.OPENSSL_VERSION}",
    "pyopenssl": SSL.OpenSSL_version(SSL.OPENSSL_VERSION).decode(),
    "probe": f"scanner.probe.probe_address, {tls_library()}",
    "probe+ocsp+sct": "the same, asking for an OCSP staple and TLS-extension SCTs",
}


# --------------------------------------------------------------------------- run


async def _round(client: Client, port: int, n: int, concurrency: int) -> tuple[float, float, int]:
    queue = iter(range(n))
    failures = 0
    certs = 0

    async def worker() -> None:
        nonlocal failures, certs
        for _ in queue:
            try:
                with trio.fail_after(10):
                    got = await client(HOST, port)
                certs += got  # not `certs += await ...`: that reads certs before awaiting
            except (OSError, SSL.Error, trio.TooSlowError, trio.BrokenResourceError) as exc:
                if not failures:
                    print(f"first failure: {exc!r}", file=sys.stderr)
                failures += 1

    cpu0, wall0 = time.process_time(), time.perf_counter()
    async with trio.open_nursery() as nursery:
        for _ in range(concurrency):
            nursery.start_soon(worker)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    if certs != 2 * (n - failures):
        raise SystemExit(f"chain not read in full: {certs} certificates for {n} handshakes")
    return cpu, wall, failures


def _nginx(directory: Path, port: int, protocols: str) -> subprocess.Popen[bytes]:
    nginx = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/sbin")
    if nginx is None:
        raise SystemExit("nginx is not installed (.ci/install-peers installs it)")
    pki = PKI(datetime.now(timezone.utc))
    root = pki.root("Bench Root", key_type="ec384")
    inter = pki.intermediate("Bench Intermediate", root, key_type="ec384")
    leaf = pki.leaf(SNI, inter)
    (directory / "chain.pem").write_bytes(leaf.pem + inter.pem)
    (directory / "key.pem").write_bytes(leaf.key_pem())
    user = "user root;\n" if os.geteuid() == 0 else ""
    conf = directory / "nginx.conf"
    conf.write_text(
        f"{user}worker_processes 1;\npid {directory}/nginx.pid;\n"
        f"error_log {directory}/error.log;\nevents {{ worker_connections 1024; }}\n"
        f"http {{ access_log off; client_body_temp_path {directory}/cb;\n"
        f"  proxy_temp_path {directory}/p; fastcgi_temp_path {directory}/f;\n"
        f"  uwsgi_temp_path {directory}/u; scgi_temp_path {directory}/s;\n"
        f"  ssl_session_cache off; ssl_session_tickets off;\n"
        f"  server {{ listen {HOST}:{port} ssl backlog=1024; server_name {SNI};\n"
        f"    ssl_certificate {directory}/chain.pem; ssl_certificate_key {directory}/key.pem;\n"
        f"    ssl_protocols {protocols}; location / {{ return 200; }} }} }}\n"
    )
    process = subprocess.Popen(
        [nginx, "-p", str(directory), "-c", str(conf), "-e", str(directory / "error.log"),
         "-g", "daemon off;"],
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection((HOST, port), timeout=0.5).close()
            return process
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise SystemExit("nginx did not start")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="handshakes per client per round")
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--protocols", default="TLSv1.3", help="nginx ssl_protocols")
    parser.add_argument("--clients", default=",".join(CLIENTS))
    args = parser.parse_args()
    names = args.clients.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        port = _free_port()
        process = _nginx(Path(tmp), port, args.protocols)
        try:
            figures: dict[str, list[tuple[float, float, int]]] = {name: [] for name in names}
            for _ in range(args.rounds):
                for name in names:
                    client = CLIENTS[name]()
                    figures[name].append(trio.run(_round, client, port, args.n, args.concurrency))
        finally:
            process.terminate()
            process.wait(10)
    print(
        f"# handshakes: n={args.n} per round, concurrency {args.concurrency}, "
        f"{args.rounds} interleaved rounds, nginx {args.protocols}, EC P-256 leaf + "
        f"P-384 intermediate, {os.cpu_count()} CPUs"
    )
    header = f"{'client':<15} {'CPU ms/hs':>10} {'hs/s':>8} {'failed':>6}"
    print(f"{header}  rounds (CPU ms/hs)  TLS library")
    medians: dict[str, float] = {}
    for name in names:
        rows = figures[name]
        per = [cpu * 1000 / args.n for cpu, _, _ in rows]
        rate = statistics.median(args.n / wall for _, wall, _ in rows)
        medians[name] = statistics.median(per)
        rounds = " ".join(f"{p:.3f}" for p in per)
        failed = sum(f for _, _, f in rows)
        row = f"{name:<15} {medians[name]:>10.3f} {rate:>8.0f} {failed:>6}"
        print(f"{row}  {rounds:<19} {VERSIONS[name]}")
    base = medians.get("sslstream")
    if base:
        print("ratios to sslstream (CPU): " + ", ".join(
            f"{name} {value / base:.2f}" for name, value in medians.items()
        ))  # fmt: skip
    sys.stdout.flush()


if __name__ == "__main__":
    main()
