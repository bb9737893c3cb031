"""Real servers from Debian's packages, each started by a test on loopback
(the 127.90/16 block) with its own configuration in a temporary directory.

Every launcher is a context manager yielding the port it listens on; it
stops the server (and its children) when the block ends. Servers that drop
privileges get a directory they can read (mode 0755), created with
`server_directory` under the system temp directory, removed afterwards.
"""

from __future__ import annotations

import os
import pwd
import select
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from peers import free_port, require_program, running, stop_process, wait_for_port

from scanner.fleet.pki import Issued


@dataclass(frozen=True)
class Tls:
    """Files of one server credential: the chain to send (leaf first) and its key."""

    chain: Path
    key: Path
    leaf: Path


def write_tls(directory: Path, leaf: Issued, *rest: Issued, owner: str | None = None) -> Tls:
    chain = directory / "chain.pem"
    chain.write_bytes(b"".join(c.pem for c in (leaf, *rest)))
    leaf_file = directory / "leaf.pem"
    leaf_file.write_bytes(leaf.pem)
    key = directory / "key.pem"
    key.write_bytes(leaf.key_pem())
    key.chmod(0o600)
    if owner is not None:
        user = pwd.getpwnam(owner)
        for path in (chain, leaf_file, key):
            os.chown(path, user.pw_uid, user.pw_gid)
    return Tls(chain, key, leaf_file)


@contextmanager
def server_directory(name: str) -> Iterator[Path]:
    """A temporary directory other users can enter (servers drop privileges)."""
    directory = Path(tempfile.mkdtemp(prefix=f"pinaudit-{name}-"))
    directory.chmod(0o755)
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@contextmanager
def running_as(
    user: str, command: list[str], *, host: str, port: int
) -> Iterator[subprocess.Popen[bytes]]:
    """`peers.running` for a server that refuses to run as root (PostgreSQL)."""
    process = subprocess.Popen(
        command, user=user, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        try:
            wait_for_port(host, port, process, timeout=30)
        except RuntimeError as exc:
            process.kill()
            _, err = process.communicate(timeout=5)
            raise RuntimeError(f"{exc}: {err.decode(errors='replace')[-2000:]}") from None
        yield process
    finally:
        stop_process(process, grace=10)


def _chown(path: Path, owner: str) -> None:
    user = pwd.getpwnam(owner)
    os.chown(path, user.pw_uid, user.pw_gid)


# --------------------------------------------------------------------------- mail


@contextmanager
def postfix(directory: Path, host: str, tls: Tls | None) -> Iterator[int]:
    """Postfix's smtpd under its own master (foreground, `master -s`), with a
    configuration directory of its own: `postfix -c DIR check` lays out the
    queue, then master runs only smtpd and the services smtpd calls."""
    postfix_command = require_program("postfix")
    master = "/usr/lib/postfix/sbin/master"
    port = free_port(host)
    queue, data = directory / "queue", directory / "data"
    queue.mkdir()
    data.mkdir()
    _chown(data, "postfix")
    lines = [
        "compatibility_level = 3.6",
        f"queue_directory = {queue}",
        f"data_directory = {data}",
        "mail_owner = postfix",
        # 127.90.x.y answers without being configured, so postfix does not
        # find it among the interfaces: the listener's address is in master.cf.
        "inet_interfaces = loopback-only",
        "inet_protocols = ipv4",
        "myhostname = mail.test",
        "mydestination =",
        "local_recipient_maps =",
        "alias_maps =",
        "alias_database =",
        "maillog_file = /dev/stdout",
    ]
    if tls is not None:
        lines += [
            f"smtpd_tls_chain_files = {tls.key}, {tls.chain}",
            "smtpd_tls_security_level = may",
        ]
    (directory / "main.cf").write_text("\n".join(lines) + "\n")
    (directory / "master.cf").write_text(
        f"{host}:{port} inet n - n - - smtpd\n"
        "proxymap unix - - n - - proxymap\n"
        "tlsmgr unix - - n 1000? 1 tlsmgr\n"
        "anvil unix - - n - 1 anvil\n"
        "postlog unix-dgram n - n - 1 postlogd\n"
    )
    check = subprocess.run(
        [postfix_command, "-c", str(directory), "check"],
        capture_output=True,
        timeout=60,
        check=False,
    )
    if check.returncode != 0:
        raise RuntimeError(f"postfix check: {check.stdout!r} {check.stderr!r}")
    with running([master, "-c", str(directory), "-s"], host=host, port=port):
        yield port


_DOVECOT = """\
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
protocols = imap pop3
listen = {host}
ssl = {ssl}
{credential}
auth_mechanisms = plain
passdb {{
  driver = static
  args = nopassword=y
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home={d}/home
}}
service imap-login {{
  inet_listener imap {{
    address = {host}
    port = {imap}
  }}
  inet_listener imaps {{
    port = 0
  }}
  chroot =
}}
service pop3-login {{
  inet_listener pop3 {{
    address = {host}
    port = {pop3}
  }}
  inet_listener pop3s {{
    port = 0
  }}
  chroot =
}}
service anvil {{
  chroot =
}}
"""


@contextmanager
def dovecot(directory: Path, host: str, tls: Tls | None) -> Iterator[tuple[int, int]]:
    """Dovecot in the foreground (-F), IMAP and POP3; yields (imap, pop3) ports."""
    binary = require_program("dovecot")
    imap, pop3 = free_port(host), free_port(host)
    (directory / "run").mkdir()
    (directory / "state").mkdir()
    credential = f"ssl_cert = <{tls.chain}\nssl_key = <{tls.key}" if tls else ""
    config = directory / "dovecot.conf"
    config.write_text(
        _DOVECOT.format(
            d=directory,
            host=host,
            ssl="yes" if tls else "no",
            credential=credential,
            imap=imap,
            pop3=pop3,
        )
    )
    with running([binary, "-F", "-c", str(config)], host=host, port=imap):
        yield imap, pop3


# --------------------------------------------------------------------------- ftp, ldap


@contextmanager
def vsftpd(directory: Path, host: str, tls: Tls | None) -> Iterator[int]:
    binary = require_program("vsftpd")
    port = free_port(host)
    empty = directory / "empty"
    empty.mkdir()
    lines = [
        "listen=YES",
        "listen_ipv6=NO",
        f"listen_address={host}",
        f"listen_port={port}",
        "background=NO",
        "anonymous_enable=YES",
        f"anon_root={empty}",
        "no_anon_password=YES",
        "local_enable=NO",
        f"secure_chroot_dir={empty}",
        "seccomp_sandbox=NO",
        f"vsftpd_log_file={directory / 'vsftpd.log'}",
        "xferlog_enable=NO",
    ]
    if tls is not None:
        lines += ["ssl_enable=YES", f"rsa_cert_file={tls.chain}", f"rsa_private_key_file={tls.key}"]
    else:
        lines += ["ssl_enable=NO"]
    config = directory / "vsftpd.conf"
    config.write_text("\n".join(lines) + "\n")
    with running([binary, str(config)], host=host, port=port):
        yield port


@contextmanager
def slapd(directory: Path, host: str, tls: Tls | None) -> Iterator[int]:
    """OpenLDAP's slapd in the foreground (-d), one empty mdb database."""
    binary = require_program("slapd")
    port = free_port(host)
    (directory / "db").mkdir()
    lines = [
        "include /etc/ldap/schema/core.schema",
        f"pidfile {directory / 'slapd.pid'}",
        f"argsfile {directory / 'slapd.args'}",
        "modulepath /usr/lib/ldap",
        "moduleload back_mdb",
    ]
    if tls is not None:
        lines += [f"TLSCertificateFile {tls.chain}", f"TLSCertificateKeyFile {tls.key}"]
    lines += ["database mdb", 'suffix "dc=test"', f"directory {directory / 'db'}"]
    config = directory / "slapd.conf"
    config.write_text("\n".join(lines) + "\n")
    command = [binary, "-d", "0", "-h", f"ldap://{host}:{port}/", "-f", str(config)]
    with running(command, host=host, port=port):
        yield port


# --------------------------------------------------------------------------- databases


def _postgres_bin(name: str) -> str:
    found = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    if not found:
        return require_program(name)
    return str(found[-1])


@contextmanager
def postgres_cluster(directory: Path) -> Iterator[Path]:
    """A fresh cluster made by initdb as the postgres user (it refuses root)."""
    initdb = _postgres_bin("initdb")
    data = directory / "data"
    data.mkdir()
    _chown(data, "postgres")
    subprocess.run(
        [initdb, "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync"],
        check=True,
        capture_output=True,
        timeout=120,
        user="postgres",
    )
    yield data


@contextmanager
def postgres(directory: Path, data: Path, host: str, tls: Tls | None) -> Iterator[int]:
    binary = _postgres_bin("postgres")
    port = free_port(host)
    sockets = directory / f"sockets-{port}"
    sockets.mkdir()
    _chown(sockets, "postgres")
    command = [binary, "-D", str(data), "-p", str(port), "-k", str(sockets)]
    command += ["-c", f"listen_addresses={host}", "-c", f"ssl={'on' if tls else 'off'}"]
    if tls is not None:
        command += ["-c", f"ssl_cert_file={tls.chain}", "-c", f"ssl_key_file={tls.key}"]
    with running_as("postgres", command, host=host, port=port):
        yield port


@contextmanager
def mariadb_datadir(directory: Path) -> Iterator[Path]:
    install = require_program("mariadb-install-db")
    data = directory / "data"
    data.mkdir()
    subprocess.run(
        [install, "--no-defaults", f"--datadir={data}", "--user=root", "--skip-test-db",
         "--auth-root-authentication-method=normal"],
        check=True,
        capture_output=True,
        timeout=180,
    )  # fmt: skip
    yield data


@contextmanager
def mariadb(directory: Path, data: Path, host: str, tls: Tls | None) -> Iterator[int]:
    binary = require_program("mariadbd")
    port = free_port(host)
    command = [
        binary, "--no-defaults", f"--datadir={data}", "--user=root", f"--bind-address={host}",
        f"--port={port}", f"--socket={directory / f'mysql-{port}.sock'}",
        f"--pid-file={directory / f'mysql-{port}.pid'}", "--skip-grant-tables",
        f"--log-error={directory / f'mysql-{port}.err'}", "--innodb-buffer-pool-size=8M",
    ]  # fmt: skip
    if tls is not None:
        command += [f"--ssl-cert={tls.chain}", f"--ssl-key={tls.key}"]
    with running(command, host=host, port=port):
        yield port


# --------------------------------------------------------------------------- xmpp

_PROSODY = """\
run_as_root = true
daemonize = false
pidfile = "{d}/prosody.pid"
data_path = "{d}/data"
log = {{ {{ levels = {{ min = "info" }}, to = "file", filename = "{d}/prosody.log" }} }}
interfaces = {{ "{host}" }}
c2s_ports = {{ {port} }}
c2s_direct_tls_ports = {{}}
s2s_ports = {{}}
http_ports = {{}}
https_ports = {{}}
c2s_require_encryption = false
modules_enabled = {{ {tls_module}"saslauth", "disco" }}
modules_disabled = {{ "s2s", "admin_shell", "posix"{no_tls} }}
certificates = "{d}/no-certs"
{ssl}
VirtualHost "{domain}"
"""


@contextmanager
def prosody(directory: Path, host: str, tls: Tls | None, *, domain: str) -> Iterator[int]:
    binary = require_program("prosody")
    port = free_port(host)
    (directory / "data").mkdir()
    ssl = f'ssl = {{ certificate = "{tls.chain}", key = "{tls.key}" }}' if tls else ""
    if tls is not None:
        tls.key.chmod(0o644)  # prosody reads its key after dropping nothing: root
    config = directory / "prosody.cfg.lua"
    config.write_text(
        _PROSODY.format(
            d=directory,
            host=host,
            port=port,
            ssl=ssl,
            domain=domain,
            tls_module='"tls", ' if tls else "",
            no_tls="" if tls else ', "tls"',
        )
    )
    with running([binary, "--config", str(config), "-F"], host=host, port=port):
        yield port


# --------------------------------------------------------------------------- proxies


@contextmanager
def tinyproxy(
    directory: Path, host: str, *, connect_ports: tuple[int, ...], auth: tuple[str, str] | None
) -> Iterator[int]:
    """tinyproxy in the foreground (-d): CONNECT only to `connect_ports`
    (its ConnectPort list), optionally with Basic authentication."""
    binary = require_program("tinyproxy")
    port = free_port(host)
    lines = [
        "User root",
        "Group root",
        f"Port {port}",
        f"Listen {host}",
        "Timeout 10",
        "MaxClients 20",
        f'LogFile "{directory / "tinyproxy.log"}"',
        "LogLevel Info",
        f'PidFile "{directory / "tinyproxy.pid"}"',
        "Allow 127.0.0.0/8",
        *(f"ConnectPort {p}" for p in connect_ports),
    ]
    if auth is not None:
        lines.append(f"BasicAuth {auth[0]} {auth[1]}")
    config = directory / "tinyproxy.conf"
    config.write_text("\n".join(lines) + "\n")
    with running([binary, "-d", "-c", str(config)], host=host, port=port):
        yield port


@contextmanager
def dante(directory: Path, host: str, *, blocked_port: int) -> Iterator[int]:
    """Dante's SOCKS server (danted), no authentication, refusing one port."""
    binary = require_program("danted")
    port = free_port(host)
    config = directory / "sockd.conf"
    config.write_text(
        f"logoutput: {directory / 'sockd.log'}\n"
        f"internal: {host} port = {port}\n"
        "external: 127.0.0.1\n"
        "socksmethod: none\n"
        "clientmethod: none\n"
        "user.privileged: root\n"
        "user.unprivileged: nobody\n"
        "client pass { from: 127.0.0.0/8 to: 0.0.0.0/0 }\n"
        f"socks block {{ from: 0.0.0.0/0 to: 0.0.0.0/0 port = {blocked_port} }}\n"
        "socks pass { from: 127.0.0.0/8 to: 0.0.0.0/0 }\n"
    )
    command = [binary, "-f", str(config), "-p", str(directory / "sockd.pid")]
    with running(command, host=host, port=port):
        yield port


# --------------------------------------------------------------------------- OCSP


def ocsp_index_line(cert: Issued, status: str, *, revoked: datetime | None = None) -> str:
    """One line of `openssl ca`'s index.txt, which `openssl ocsp -index` answers from:
    V (valid) or R (revoked, with the time and a reason)."""
    expires = cert.cert.not_valid_after_utc.strftime("%y%m%d%H%M%SZ")
    revocation = ""
    if status == "R" and revoked is not None:
        revocation = revoked.strftime("%y%m%d%H%M%SZ") + ",keyCompromise"
    subject = "/CN=" + cert.cert.subject.rfc4514_string()
    return f"{status}\t{expires}\t{revocation}\t{cert.cert.serial_number:X}\tunknown\t{subject}\n"


@contextmanager
def ocsp_responder(
    directory: Path,
    *,
    issuer: Issued,
    signer: Issued,
    index: str,
    minutes: int = 10,
) -> Iterator[int]:
    """`openssl ocsp` as a real responder for `issuer`'s certificates, signing
    with `signer` (the issuer itself or a delegate), nextUpdate `minutes` on."""
    openssl = require_program("openssl")
    port = free_port("127.0.0.1")  # openssl ocsp binds every address: a kernel port
    files = {name: directory / f"ocsp-{port}-{name}.pem" for name in ("ca", "signer", "key")}
    files["ca"].write_bytes(issuer.pem)
    files["signer"].write_bytes(signer.pem)
    files["key"].write_bytes(signer.key_pem())
    index_file = directory / f"ocsp-{port}-index.txt"
    index_file.write_text(index)
    command = [
        openssl, "ocsp", "-index", str(index_file), "-port", str(port),
        "-CA", str(files["ca"]), "-rsigner", str(files["signer"]), "-rkey", str(files["key"]),
        "-nmin", str(minutes),
    ]  # fmt: skip
    # Not `running`: its connect-and-close readiness probe would be served as
    # a request by this single-threaded responder, which then waits on it.
    process = subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        _wait_for_line(process, b"waiting for OCSP client connections", timeout=10)
        yield port
    finally:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        if process.stdout is not None:
            process.stdout.close()


def _wait_for_line(process: subprocess.Popen[bytes], marker: bytes, *, timeout: float) -> None:
    assert process.stdout is not None
    seen = b""
    deadline = time.monotonic() + timeout
    while marker not in seen:
        left = deadline - time.monotonic()
        if left <= 0 or process.poll() is not None:
            raise RuntimeError(f"{process.args!r} did not say {marker!r}: {seen[-2000:]!r}")
        ready, _, _ = select.select([process.stdout], [], [], left)
        if ready:
            seen += os.read(process.stdout.fileno(), 4096)


@contextmanager
def s_server_stapling(
    directory: Path,
    host: str,
    leaf: Issued,
    issuer: Issued,
    *,
    responder: int | None,
    extra: tuple[str, ...] = (),
) -> Iterator[int]:
    """`openssl s_server` stapling what the responder on port `responder`
    answers, fetched live for each handshake (-status_url); no stapling when
    `responder` is None."""
    openssl = require_program("openssl")
    port = free_port(host)
    leaf_file, issuer_file, key_file = (
        directory / f"s-{port}-{n}.pem" for n in ("leaf", "issuer", "key")
    )
    leaf_file.write_bytes(leaf.pem)
    issuer_file.write_bytes(issuer.pem)
    key_file.write_bytes(leaf.key_pem())
    command = [
        openssl, "s_server", "-quiet", "-www", "-accept", f"{host}:{port}",
        "-cert", str(leaf_file), "-key", str(key_file), "-cert_chain", str(issuer_file),
        "-CAfile", str(issuer_file),
    ]  # fmt: skip
    if responder is not None:
        command += ["-status", "-status_url", f"http://127.0.0.1:{responder}/"]
    command += extra
    with running(command, host=host, port=port):
        yield port


# --------------------------------------------------------------------------- DNS


@contextmanager
def unbound(directory: Path, host: str, statements: list[str]) -> Iterator[int]:
    """Unbound in the foreground (-d) answering only from its local zones
    (`statements`: local-zone / local-data lines); yields its UDP/TCP port."""
    binary = require_program("unbound")
    port = free_port(host)
    lines = [
        "server:",
        f"  interface: {host}",
        f"  port: {port}",
        "  do-daemonize: no",
        '  chroot: ""',
        '  username: ""',
        f'  directory: "{directory}"',
        f'  pidfile: "{directory / "unbound.pid"}"',
        "  use-syslog: no",
        '  logfile: ""',
        "  do-ip6: no",
        "  access-control: 127.0.0.0/8 allow",
        *(f"  {s}" for s in statements),
        "remote-control:",
        "  control-enable: no",
    ]
    config = directory / "unbound.conf"
    config.write_text("\n".join(lines) + "\n")
    with running([binary, "-d", "-c", str(config)], host=host, port=port):
        yield port
