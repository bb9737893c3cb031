"""Certificate Transparency: SCTs read from the TLS extension of a real server
(openssl s_server -serverinfo, TLS 1.2 and 1.3) and from leaves with embedded
SCTs served by the fleet, judged against the Chrome and Apple CT policies
with the shipped log list snapshot."""

from __future__ import annotations

import base64
import struct
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import trio
from cryptography import x509
from peers import free_port, require_program, running, with_fleet

from scanner.ct import (
    CtPolicy,
    LogState,
    Sct,
    SctSource,
    all_scts,
    bundled_log_list,
    embedded_scts,
    judge_ct,
    lifetime_days,
    load_log_list,
    parse_sct_list,
    tls_extension_scts,
)
from scanner.fleet.pki import PKI, Issued, standard_chain
from scanner.fleet.server import Behaviour, Credential, Site, TlsConfig
from scanner.probe import Observation, make_client_context, probe_address

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)
LOGS = bundled_log_list()
# Real logs of the snapshot (log ids as Chrome's list gives them), by operator.
ARGON_2026H2 = "1219ENGn9XfCx+lf1wC/+YLJM1pl4dCzAXMXwMjFaXc="  # Google
XENON_2026H2 = "2AlVO5RPev/IFhlvlE+Fq7D4/F6HVSYPFdEucrtFSxQ="  # Google
NIMBUS_2026 = "yzj3FYl8hKFEX1vB3fvJbvKaWc1HCmkFhbDLFMMUWOc="  # Cloudflare
SPHINX_2026H2 = "lE5Dh/rswe+B8xkkJqgYZQHH0184AgE/cmd9VTcuGdg="  # DigiCert
OAK_2026H2 = "rKswcGzr7IQx9BPS9JFfER5CJEOx8qaMTzwrO6ceAsM="  # Let's Encrypt, retired 2026-02-28
NOT_A_LOG = base64.b64encode(bytes(range(32))).decode()


def sct(log_id: str, when: datetime) -> bytes:
    """One v1 SCT as logs issue them: ECDSA-SHA256 signature (not verified here)."""
    body = b"\x00" + base64.b64decode(log_id) + struct.pack("!Q", int(when.timestamp() * 1000))
    body += b"\x00\x00" + b"\x04\x03" + struct.pack("!H", 71) + b"\x30" * 71
    return struct.pack("!H", len(body)) + body


def sct_list(*items: bytes) -> bytes:
    inner = b"".join(items)
    return struct.pack("!H", len(inner)) + inner


def embedding(data: bytes) -> x509.UnrecognizedExtension:
    """The precertificate SCT extension: an OCTET STRING around the TLS list."""
    oid = x509.ObjectIdentifier("1.3.6.1.4.1.11129.2.4.2")
    return x509.UnrecognizedExtension(oid, b"\x04\x82" + struct.pack("!H", len(data)) + data)


def leaf_with_scts(pki: PKI, issuer: Issued, days: int, *log_ids: str) -> Issued:
    when = NOW - timedelta(days=1)
    data = sct_list(*(sct(i, when) for i in log_ids))
    return pki.leaf(
        "a.test",
        issuer,
        days_before=1,
        days_after=days - 1,
        extra_extensions=[(embedding(data), False)],
    )


# --------------------------------------------------------------------------- the wire


def serverinfo_pem(data: bytes) -> bytes:
    """s_server's -serverinfo file: extension 18 for the ClientHello, the TLS
    1.2 ServerHello and the TLS 1.3 Certificate message (SERVERINFOV2)."""
    context = 0x0080 | 0x0100 | 0x1000 | 0x0040
    blob = struct.pack("!IHH", context, 18, len(data)) + data
    text = base64.encodebytes(blob).decode()
    label = "SERVERINFOV2 FOR signed_certificate_timestamp"
    return f"-----BEGIN {label}-----\n{text}-----END {label}-----\n".encode()


@pytest.mark.peers
@pytest.mark.parametrize("version", ["-tls1_2", "-tls1_3"])
def test_tls_extension_scts_from_openssl_s_server(tmp_path: Path, version: str) -> None:
    """How HAProxy (.sctl files), nginx-ct and Apache mod_ssl_ct deliver SCTs:
    in the TLS extension, here served by s_server from a serverinfo file."""
    openssl = require_program("openssl")
    pki = PKI(NOW)
    chain = standard_chain(pki, "a.test")
    data = sct_list(sct(ARGON_2026H2, NOW), sct(NIMBUS_2026, NOW))
    (tmp_path / "si.pem").write_bytes(serverinfo_pem(data))
    (tmp_path / "leaf.pem").write_bytes(chain.leaf.pem)
    (tmp_path / "key.pem").write_bytes(chain.leaf.key_pem())
    port = free_port("127.90.40.1")
    command = [openssl, "s_server", "-quiet", "-www", "-accept", f"127.90.40.1:{port}", version,
               "-cert", str(tmp_path / "leaf.pem"), "-key", str(tmp_path / "key.pem"),
               "-serverinfo", str(tmp_path / "si.pem")]  # fmt: skip
    ctx = make_client_context()
    with running(command, host="127.90.40.1", port=port):
        asked = trio.run(
            lambda: probe_address("127.90.40.1", port, "a.test", ctx, timeout=10, scts=True)
        )
        not_asked = trio.run(lambda: probe_address("127.90.40.1", port, "a.test", ctx, timeout=10))
    assert isinstance(asked, Observation) and isinstance(not_asked, Observation)
    assert asked.tls_scts == data
    assert not_asked.tls_scts is None
    scts = parse_sct_list(asked.tls_scts, SctSource.TLS)
    assert [s.log_id for s in scts] == [
        base64.b64decode(ARGON_2026H2),
        base64.b64decode(NIMBUS_2026),
    ]
    verdict = judge_ct(
        chain.leaf.cert.not_valid_before_utc, chain.leaf.cert.not_valid_after_utc, scts, LOGS,
        CtPolicy.CHROME,
    )  # fmt: skip
    assert (verdict.compliant, verdict.tls, verdict.operators) == (
        True, 2, ("Cloudflare", "Google"),
    )  # fmt: skip


def test_embedded_scts_read_from_a_served_leaf() -> None:
    pki = PKI(NOW)
    chain = standard_chain(pki, "a.test")
    leaf = leaf_with_scts(pki, chain.intermediate, 90, ARGON_2026H2, NIMBUS_2026, SPHINX_2026H2)
    site = Site("127.90.40.2", 0, Behaviour.TLS, TlsConfig(Credential.of(leaf, chain.intermediate)))
    ctx = make_client_context()

    async def body(bound: list[tuple[str, int]]) -> object:
        address, port = bound[0]
        return await probe_address(address, port, "a.test", ctx, timeout=10, scts=True)

    result = with_fleet([site], body)
    assert isinstance(result, Observation)
    assert result.tls_scts == b""  # asked; the fleet server sends none
    served_leaf = x509.load_der_x509_certificate(result.served[0])
    scts = embedded_scts(served_leaf)
    assert [s.source for s in scts] == [SctSource.EMBEDDED] * 3
    verdict = judge_ct(
        served_leaf.not_valid_before_utc, served_leaf.not_valid_after_utc, scts, LOGS,
        CtPolicy.CHROME,
    )  # fmt: skip
    assert (verdict.compliant, verdict.embedded, verdict.reason) == (True, 3, "")


# --------------------------------------------------------------------------- policies


def scts_of(*log_ids: str, source: SctSource = SctSource.EMBEDDED,
            when: datetime = NOW) -> list[Sct]:  # fmt: skip
    return [Sct(base64.b64decode(i), when, source) for i in log_ids]


def judge(days: int, scts: list[Sct], policy: CtPolicy) -> tuple[bool, str]:
    start = NOW - timedelta(days=1)
    end = start + timedelta(days=days) - timedelta(seconds=1)
    verdict = judge_ct(start, end, scts, LOGS, policy)
    return verdict.compliant, verdict.reason


def test_lifetime_counts_any_part_of_a_day() -> None:
    start = NOW
    assert lifetime_days(start, start + timedelta(days=90) - timedelta(seconds=1)) == 90
    assert lifetime_days(start, start + timedelta(days=90)) == 91
    assert lifetime_days(start, start + timedelta(days=398) - timedelta(seconds=1)) == 398


@pytest.mark.parametrize(
    ("days", "logs", "chrome", "apple"),
    [
        # a 90-day leaf (Let's Encrypt's shape): two logs of two operators
        (90, (ARGON_2026H2, NIMBUS_2026), True, True),
        # two logs of one operator: Chrome needs two operators, Apple caps one per operator
        (90, (ARGON_2026H2, XENON_2026H2), False, False),
        # a 397-day leaf (the common commercial shape) needs three
        (397, (ARGON_2026H2, NIMBUS_2026), False, False),
        (397, (ARGON_2026H2, NIMBUS_2026, SPHINX_2026H2), True, True),
        # 397 days, two Google logs and one Cloudflare: Apple counts up to 2 per operator
        (397, (ARGON_2026H2, XENON_2026H2, NIMBUS_2026), True, True),
    ],
)
def test_embedded_policy_by_lifetime(
    days: int, logs: tuple[str, ...], chrome: bool, apple: bool
) -> None:
    assert judge(days, scts_of(*logs), CtPolicy.CHROME)[0] is chrome
    assert judge(days, scts_of(*logs), CtPolicy.APPLE)[0] is apple


def test_chrome_reason_names_the_shortfall() -> None:
    ok, reason = judge(397, scts_of(ARGON_2026H2, NIMBUS_2026), CtPolicy.CHROME)
    assert not ok
    assert reason == (
        "2 embedded SCT(s) from distinct qualifying logs (2 operator(s)) where a 397-day "
        "certificate needs 3 from 2 operators, and 0 delivered by TLS or OCSP where 2 from 2 "
        "operators would do"
    )


def test_retired_log_counts_only_for_scts_issued_before_retirement() -> None:
    retired = LOGS.logs[base64.b64decode(OAK_2026H2)]
    assert retired.state is LogState.RETIRED
    before = scts_of(OAK_2026H2, when=retired.state_since - timedelta(days=1))
    after = scts_of(OAK_2026H2, when=retired.state_since + timedelta(days=1))
    others = scts_of(ARGON_2026H2, NIMBUS_2026)
    assert judge(397, [*others, *before], CtPolicy.CHROME)[0] is True
    assert judge(397, [*others, *after], CtPolicy.CHROME)[0] is False


def test_delivered_scts_alone() -> None:
    tls = scts_of(ARGON_2026H2, NIMBUS_2026, source=SctSource.TLS)
    assert judge(397, tls, CtPolicy.CHROME)[0] is True
    assert judge(397, tls, CtPolicy.APPLE)[0] is True
    one = scts_of(ARGON_2026H2, source=SctSource.OCSP)
    assert judge(90, one, CtPolicy.CHROME)[0] is False


def test_unknown_logs_are_named_in_the_reason() -> None:
    ok, reason = judge(90, scts_of(ARGON_2026H2, NOT_A_LOG), CtPolicy.CHROME)
    assert not ok
    assert reason.endswith("; 1 SCT(s) from logs not in the log list of 2026-08-29")


def test_no_scts_at_all() -> None:
    verdict = judge_ct(NOW, NOW + timedelta(days=90), [], LOGS, CtPolicy.APPLE)
    assert (verdict.compliant, verdict.embedded, verdict.tls, verdict.ocsp) == (False, 0, 0, 0)


# --------------------------------------------------------------------------- parsing, bounds


def test_parse_bounds_and_garbage() -> None:
    good = sct(ARGON_2026H2, NOW)
    assert len(parse_sct_list(sct_list(*[good] * 100), SctSource.TLS)) == 64  # capped
    assert parse_sct_list(b"\x00\x05\x00\x03abc", SctSource.TLS) == ()  # truncated
    assert parse_sct_list(b"", SctSource.TLS) == ()
    v2 = b"\x01" + good[3:]
    assert parse_sct_list(sct_list(struct.pack("!H", len(v2)) + v2, good), SctSource.TLS)[
        0
    ].log_id == base64.b64decode(ARGON_2026H2)
    assert tls_extension_scts(b"\x02\x00\x00\x01", None, tls13=False) == b""
    assert all_scts([(sct_list(good), SctSource.OCSP)])[0].source is SctSource.OCSP


def test_log_list_snapshot_is_dated_and_named() -> None:
    assert (LOGS.version, LOGS.date) == ("89.34", "2026-08-29")
    assert len(LOGS.logs) == 48
    google = [log for log in LOGS.logs.values() if log.operator == "Google"]
    assert len(google) == 10


def test_chrome_v3_schema_loads_as_well() -> None:
    chrome = {
        "version": "1.0",
        "log_list_timestamp": "2026-01-01T00:00:00Z",
        "operators": [
            {
                "name": "Example",
                "logs": [
                    {
                        "description": "Example 'Log'",
                        "log_id": ARGON_2026H2,
                        "state": {"usable": {"timestamp": "2025-01-01T00:00:00Z"}},
                    }
                ],
                "tiled_logs": [],
            }
        ],
    }
    import json

    loaded = load_log_list(json.dumps(chrome))
    (log,) = loaded.logs.values()
    assert (log.operator, log.state) == ("Example", LogState.USABLE)
