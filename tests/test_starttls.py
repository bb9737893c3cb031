"""STARTTLS against the real servers from Debian's packages, each started here
on loopback with its own configuration and the test PKI: the chain is read
byte for byte after each protocol's opening, and a server that does not offer
or refuses STARTTLS is the ``starttls_refused`` reason with its words.

Server flags worth knowing (they make each one run unprivileged-ish from a
temporary directory on a high port): postfix ``master -c DIR -s`` after
``postfix -c DIR check``; ``dovecot -F -c FILE``; ``vsftpd FILE`` with
``background=NO``; ``slapd -d 0 -h ldap://ADDR:PORT/ -f FILE``; ``initdb``
then ``postgres -D DIR`` as the postgres user; ``mariadb-install-db`` then
``mariadbd --no-defaults``; ``prosody --config FILE -F`` with
``run_as_root = true``. See tests/protocol_peers.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pytest
import trio
from peers import with_fleet
from protocol_peers import (
    Tls,
    dovecot,
    mariadb,
    mariadb_datadir,
    postfix,
    postgres,
    postgres_cluster,
    prosody,
    server_directory,
    slapd,
    vsftpd,
    write_tls,
)

from scanner.dialogue import Ended, Refused, Unexpected, run_on_bytes
from scanner.fleet.pki import PKI, StandardChain, standard_chain
from scanner.fleet.server import Behaviour, Credential, Site, TlsConfig
from scanner.probe import (
    Observation,
    Phase,
    ProbeErrorKind,
    ProbeFailure,
    ProbeResult,
    make_client_context,
    probe,
    probe_address,
)
from scanner.starttls import DEFAULT_PORTS, Starttls, dialogue, smtp

NOW = datetime.now(timezone.utc)
TIMEOUT = 15.0
pytestmark = pytest.mark.peers


@pytest.fixture(scope="module")
def pki() -> PKI:
    return PKI(NOW)


def chain_for(pki: PKI, name: str) -> StandardChain:
    return standard_chain(pki, name, prefix=name.split(".", maxsplit=1)[0].upper())


def served(chain: StandardChain) -> tuple[bytes, ...]:
    return (chain.leaf.der, chain.intermediate.der)


def run_probe(address: str, port: int, protocol: Starttls | str, *, sni: str | None) -> ProbeResult:
    ctx = make_client_context()
    return trio.run(
        lambda: probe_address(address, port, sni, ctx, timeout=TIMEOUT, starttls=protocol)
    )


def observed(result: ProbeResult) -> Observation:
    assert isinstance(result, Observation), result
    return result


def refused(result: ProbeResult) -> ProbeFailure:
    assert isinstance(result, ProbeFailure), result
    assert (result.kind, result.phase) == (ProbeErrorKind.STARTTLS_REFUSED, Phase.STARTTLS)
    return result


@dataclass(frozen=True)
class Case:
    directory: Path
    tls: Tls
    chain: StandardChain


@pytest.fixture
def case(pki: PKI, request: pytest.FixtureRequest) -> Iterator[Case]:
    name = request.node.originalname.removeprefix("test_").split("_")[0]
    chain = chain_for(pki, f"{name}.test")
    with server_directory(name) as directory:
        tls_dir = directory / "tls"
        tls_dir.mkdir()
        yield Case(directory, write_tls(tls_dir, chain.leaf, chain.intermediate), chain)


# --------------------------------------------------------------------------- SMTP


def test_smtp_postfix(case: Case) -> None:
    with postfix(case.directory, "127.90.1.1", case.tls) as port:
        result = observed(run_probe("127.90.1.1", port, "smtp", sni="smtp.test"))
    assert result.served == served(case.chain)
    assert (result.starttls, result.tls_version) == ("smtp", "TLSv1.3")


def test_smtp_postfix_without_tls_refuses(case: Case) -> None:
    with postfix(case.directory, "127.90.1.2", None) as port:
        failure = refused(run_probe("127.90.1.2", port, Starttls.SMTP, sni="smtp.test"))
    # Postfix's EHLO keywords, STARTTLS missing from them
    assert failure.detail.startswith("smtp: the server does not offer STARTTLS (EHLO keywords: ")
    assert "PIPELINING" in failure.detail
    assert "STARTTLS'" not in failure.detail


# --------------------------------------------------------------------------- IMAP / POP3


def test_imap_and_pop3_dovecot(case: Case) -> None:
    with dovecot(case.directory, "127.90.2.1", case.tls) as (imap, pop3):
        by_imap = observed(run_probe("127.90.2.1", imap, "imap", sni="imap.test"))
        by_pop3 = observed(run_probe("127.90.2.1", pop3, "pop3", sni="imap.test"))
    assert by_imap.served == by_pop3.served == served(case.chain)
    assert (by_imap.starttls, by_pop3.starttls) == ("imap", "pop3")


def test_imap_and_pop3_dovecot_without_tls_refuse(case: Case) -> None:
    with dovecot(case.directory, "127.90.2.2", None) as (imap, pop3):
        by_imap = refused(run_probe("127.90.2.2", imap, "imap", sni=None))
        by_pop3 = refused(run_probe("127.90.2.2", pop3, "pop3", sni=None))
    assert by_imap.detail == 'imap: STARTTLS was answered "A1 BAD TLS support isn\'t enabled."'
    assert by_pop3.detail == 'pop3: STLS was answered "-ERR TLS support isn\'t enabled."'


def test_imap_client_against_smtp_server_is_a_protocol_error(case: Case) -> None:
    with postfix(case.directory, "127.90.2.3", case.tls) as port:
        failure = run_probe("127.90.2.3", port, "imap", sni=None)
    assert isinstance(failure, ProbeFailure)
    assert (failure.kind, failure.phase) == (ProbeErrorKind.PROTOCOL_ERROR, Phase.STARTTLS)
    assert failure.detail == "imap: not an IMAP greeting: '220 mail.test ESMTP Postfix'"


# --------------------------------------------------------------------------- FTP / LDAP


def test_ftp_vsftpd(case: Case) -> None:
    with vsftpd(case.directory, "127.90.3.1", case.tls) as port:
        result = observed(run_probe("127.90.3.1", port, "ftp", sni="ftp.test"))
    assert result.served == served(case.chain)


def test_ftp_vsftpd_without_tls_refuses(case: Case) -> None:
    with vsftpd(case.directory, "127.90.3.2", None) as port:
        failure = refused(run_probe("127.90.3.2", port, "ftp", sni=None))
    assert failure.detail.startswith("ftp: AUTH TLS was answered 5")


def test_ldap_slapd(case: Case) -> None:
    with slapd(case.directory, "127.90.4.1", case.tls) as port:
        result = observed(run_probe("127.90.4.1", port, "ldap", sni="ldap.test"))
    assert result.served == served(case.chain)


def test_ldap_slapd_without_tls_refuses(case: Case) -> None:
    with slapd(case.directory, "127.90.4.2", None) as port:
        failure = refused(run_probe("127.90.4.2", port, "ldap", sni=None))
    assert failure.detail == (
        "ldap: StartTLS was answered 2 (protocolError) 'unsupported extended operation'"
    )


# --------------------------------------------------------------------------- databases


@pytest.fixture(scope="module")
def postgres_data() -> Iterator[tuple[Path, Path]]:
    with server_directory("postgres") as directory, postgres_cluster(directory) as data:
        yield directory, data


def test_postgres(pki: PKI, postgres_data: tuple[Path, Path]) -> None:
    directory, data = postgres_data
    chain = chain_for(pki, "postgres.test")
    tls_dir = directory / "tls-on"
    tls_dir.mkdir()
    tls = write_tls(tls_dir, chain.leaf, chain.intermediate, owner="postgres")
    with postgres(directory, data, "127.90.5.1", tls) as port:
        result = observed(run_probe("127.90.5.1", port, "postgres", sni="postgres.test"))
    assert result.served == served(chain)


def test_postgres_without_ssl_refuses(postgres_data: tuple[Path, Path]) -> None:
    directory, data = postgres_data
    with postgres(directory, data, "127.90.5.2", None) as port:
        failure = refused(run_probe("127.90.5.2", port, "postgres", sni=None))
    assert failure.detail == "postgres: the server does not accept SSL (it answered 'N')"


@pytest.fixture(scope="module")
def mariadb_data() -> Iterator[tuple[Path, Path]]:
    with server_directory("mariadb") as directory, mariadb_datadir(directory) as data:
        yield directory, data


def test_mysql_mariadb(pki: PKI, mariadb_data: tuple[Path, Path]) -> None:
    directory, data = mariadb_data
    chain = chain_for(pki, "mysql.test")
    tls_dir = directory / "tls-on"
    tls_dir.mkdir()
    tls = write_tls(tls_dir, chain.leaf, chain.intermediate)
    with mariadb(directory, data, "127.90.6.1", tls) as port:
        result = observed(run_probe("127.90.6.1", port, "mysql", sni="mysql.test"))
    assert result.served == served(chain)


def test_mysql_mariadb_without_tls_refuses(mariadb_data: tuple[Path, Path]) -> None:
    directory, data = mariadb_data
    with mariadb(directory, data, "127.90.6.2", None) as port:
        failure = refused(run_probe("127.90.6.2", port, "mysql", sni=None))
    assert failure.detail.startswith("mysql: the server ('5.5.5-10.")
    assert failure.detail.endswith("') does not offer TLS (no CLIENT_SSL)")


# --------------------------------------------------------------------------- XMPP


def test_xmpp_prosody(case: Case) -> None:
    with prosody(case.directory, "127.90.7.1", case.tls, domain="xmpp.test") as port:
        result = observed(run_probe("127.90.7.1", port, "xmpp", sni="xmpp.test"))
    assert result.served == served(case.chain)


def test_xmpp_prosody_unknown_domain_is_refused(case: Case) -> None:
    with prosody(case.directory, "127.90.7.2", case.tls, domain="xmpp.test") as port:
        failure = refused(run_probe("127.90.7.2", port, "xmpp", sni="other.test"))
    assert (
        failure.detail
        == "xmpp: stream error: 'host-unknown: This server does not serve other.test'"
    )


def test_xmpp_prosody_without_tls_refuses(case: Case) -> None:
    with prosody(case.directory, "127.90.7.3", None, domain="xmpp.test") as port:
        failure = refused(run_probe("127.90.7.3", port, "xmpp", sni="xmpp.test"))
    assert failure.detail.startswith("xmpp: the server does not offer STARTTLS (features: ")


# --------------------------------------------------------------------------- faults


def test_starttls_against_a_tls_port_times_out_in_starttls(pki: PKI) -> None:
    chain = chain_for(pki, "tls.test")
    site = Site("127.90.11.1", 0, Behaviour.TLS, TlsConfig(Credential.of(chain.leaf)))
    ctx = make_client_context()

    async def body(bound: list[tuple[str, int]]) -> list[ProbeResult]:
        address, port = bound[0]
        return await probe(address, port, None, ctx, timeout=1.0, starttls="smtp")

    (failure,) = with_fleet([site], body)
    assert isinstance(failure, ProbeFailure)
    assert (failure.kind, failure.detail) == (ProbeErrorKind.TIMEOUT, "timed out during starttls")


def test_bytes_after_the_starttls_answer_are_refused() -> None:
    """A server (or a man in the middle) that sends data right after "220 ready"
    would have it read as the TLS answer: the STARTTLS injection class of bugs
    (seen in mail servers and clients alike, e.g. the 2011 Postfix advisory on
    plaintext command injection). The probe refuses to start TLS over it."""

    async def server(stream: trio.SocketStream) -> None:
        await stream.send_all(b"+OK POP3 ready\r\n")
        await stream.receive_some(100)
        await stream.send_all(b"+OK Begin TLS\r\n\x16\x03\x01injected")
        await trio.sleep(5)

    async def main() -> ProbeResult:
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(trio.serve_tcp, server, 0)
            port = listeners[0].socket.getsockname()[1]
            ctx = make_client_context()
            result = await probe_address("127.0.0.1", port, None, ctx, timeout=5, starttls="pop3")
            nursery.cancel_scope.cancel()
        return result

    failure = trio.run(main)
    assert isinstance(failure, ProbeFailure)
    assert (failure.kind, failure.phase) == (ProbeErrorKind.PROTOCOL_ERROR, Phase.STARTTLS)
    assert failure.detail.startswith("11 bytes arrived before the TLS handshake started")


# --------------------------------------------------------------------------- dialogues


def test_default_ports() -> None:
    assert {p.value: p.default_port for p in Starttls} == {
        "smtp": 25,
        "imap": 143,
        "pop3": 110,
        "ftp": 21,
        "ldap": 389,
        "postgres": 5432,
        "mysql": 3306,
        "xmpp": 5222,
    }
    assert DEFAULT_PORTS[Starttls.SMTP] == 25


def test_smtp_ehlo_names_the_client_by_address_literal() -> None:
    sent, rest = run_on_bytes(
        smtp("127.0.0.1"),
        b"220 mx ESMTP\r\n250-mx\r\n250 STARTTLS\r\n220 2.0.0 Ready to start TLS\r\n",
    )
    assert sent == b"EHLO [127.0.0.1]\r\nSTARTTLS\r\n"
    assert rest == b""
    sent, _ = run_on_bytes(smtp("::1"), b"220 a\r\n250-a\r\n250 STARTTLS\r\n220 go\r\n")
    assert sent.startswith(b"EHLO [IPv6:::1]\r\n")


@pytest.mark.parametrize(
    ("protocol", "incoming", "error", "message"),
    [
        (Starttls.SMTP, b"554 5.7.1 no service\r\n", Refused,
         "smtp: the greeting is 554 '5.7.1 no service', not 220"),
        (Starttls.SMTP, b"220 a\r\n250-a\r\n250 STARTTLS\r\n454 4.7.0 TLS not available\r\n",
         Refused, "smtp: STARTTLS was answered 454 '4.7.0 TLS not available'"),
        (Starttls.SMTP, b"HTTP/1.1 400 Bad Request\r\n", Unexpected,
         "smtp: not a SMTP reply: 'HTTP/1.1 400 Bad Request'"),
        (Starttls.SMTP, b"220 a\r\n", Ended, "the connection ended before the reply"),
        (Starttls.FTP, b"421 Too many connections\r\n", Refused,
         "ftp: the greeting is 421 'Too many connections', not 220"),
        (Starttls.IMAP, b"* BYE shutting down\r\n", Refused,
         "imap: the server said BYE: '* BYE shutting down'"),
        (Starttls.POSTGRES, b"E", Refused,
         "postgres: the server answered the SSLRequest with an error"),
        (Starttls.MYSQL, b"\x16\x00\x00\x00\xff\x69\x04Host is not allowed", Refused,
         "mysql: the server refused the connection: 1129 'Host is not allowed'"),
        (Starttls.XMPP, b"<?xml version='1.0'?><!DOCTYPE x [<!ENTITY a 'b'>]>", Unexpected,
         "xmpp: the server sent a DTD, comment or CDATA (RFC 6120 \u00a711.1)"),
    ],
)  # fmt: skip
def test_dialogue_failures(
    protocol: Starttls, incoming: bytes, error: type[Exception], message: str
) -> None:
    """Answers seen from real servers (Postfix's 554 when a client is blocked,
    Exim's 454 when its certificate fails to load, vsftpd's 421 at max_clients,
    Dovecot's BYE at shutdown, MySQL's 1129 "Host is blocked"), and hostile ones."""
    with pytest.raises(error) as raised:
        run_on_bytes(dialogue(protocol, server_name="x.test", client_address="127.0.0.1"), incoming)
    assert str(raised.value) == message


def test_overlong_line_is_bounded() -> None:
    with pytest.raises(Unexpected, match="a line longer than 8192 bytes"):
        run_on_bytes(smtp("127.0.0.1"), b"220-" + b"x" * 10_000)
