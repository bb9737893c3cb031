"""OCSP stapling end to end: a real responder (`openssl ocsp`) answering from
an index file, a real server stapling its answers (`openssl s_server
-status_url`, fetched live per handshake), the probe asking for the staple,
and `scanner.ocsp.judge_staple` judging it: good, revoked, unknown, absent,
invalid (a responder the issuer never authorised, one without the OCSP
signing usage), stale, and a must-staple leaf without a staple."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import trio
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID
from protocol_peers import ocsp_index_line, ocsp_responder, s_server_stapling, server_directory

from scanner.fleet.pki import PKI, Issued
from scanner.ocsp import OcspStatus, StapleReport, judge_staple, must_staple
from scanner.probe import Observation, make_client_context, probe_address

NOW = datetime.now(timezone.utc).replace(microsecond=0)
pytestmark = pytest.mark.peers


@dataclass(frozen=True)
class Ca:
    pki: PKI
    root: Issued
    issuer: Issued


@pytest.fixture(scope="module")
def ca() -> Ca:
    pki = PKI(NOW)
    root = pki.root("OCSP Root")
    return Ca(pki, root, pki.intermediate("OCSP Issuing CA", root))


@pytest.fixture
def directory() -> Iterator[Path]:
    with server_directory("ocsp") as path:
        yield path


def fetch_staple(port: int) -> bytes:
    ctx = make_client_context()
    result = trio.run(
        lambda: probe_address("127.90.30.1", port, "a.test", ctx, timeout=10, ocsp=True)
    )
    assert isinstance(result, Observation), result
    assert result.ocsp_response is not None
    return result.ocsp_response


def staple_report(
    directory: Path,
    ca: Ca,
    leaf: Issued,
    *,
    index: str | None = None,
    signer: Issued | None = None,
    minutes: int = 10,
    now: datetime | None = None,
) -> StapleReport:
    if index is None:  # no stapling at all
        with s_server_stapling(directory, "127.90.30.1", leaf, ca.issuer, responder=None) as port:
            staple = fetch_staple(port)
    else:
        with (
            ocsp_responder(
                directory, issuer=ca.issuer, signer=signer or ca.issuer, index=index,
                minutes=minutes,
            ) as responder,
            s_server_stapling(
                directory, "127.90.30.1", leaf, ca.issuer, responder=responder
            ) as port,
        ):  # fmt: skip
            staple = fetch_staple(port)
    report = judge_staple(staple, leaf.der, ca.issuer.der, now or datetime.now(timezone.utc))
    assert report is not None
    return report


def test_good(ca: Ca, directory: Path) -> None:
    leaf = ca.pki.leaf("a.test", ca.issuer)
    report = staple_report(directory, ca, leaf, index=ocsp_index_line(leaf, "V"))
    assert (report.status, report.stale, report.error, report.responder) == (
        OcspStatus.GOOD, False, None, "issuer",
    )  # fmt: skip
    assert report.this_update is not None and report.next_update is not None
    assert report.next_update - report.this_update == timedelta(minutes=10)


def test_revoked(ca: Ca, directory: Path) -> None:
    leaf = ca.pki.leaf("a.test", ca.issuer)
    revoked_at = NOW - timedelta(days=2)
    index = ocsp_index_line(leaf, "R", revoked=revoked_at)
    report = staple_report(directory, ca, leaf, index=index)
    assert report.status is OcspStatus.REVOKED
    assert (report.revocation_time, report.revocation_reason) == (revoked_at, "key_compromise")


def test_unknown(ca: Ca, directory: Path) -> None:
    leaf = ca.pki.leaf("a.test", ca.issuer)
    other = ca.pki.leaf("other.test", ca.issuer)  # the index knows only this one
    report = staple_report(directory, ca, leaf, index=ocsp_index_line(other, "V"))
    assert (report.status, report.error) == (OcspStatus.UNKNOWN, None)


def test_absent(ca: Ca, directory: Path) -> None:
    leaf = ca.pki.leaf("a.test", ca.issuer)
    report = staple_report(directory, ca, leaf, index=None)
    assert (report.status, report.must_staple) == (OcspStatus.ABSENT, False)


def test_must_staple_leaf_without_a_staple(ca: Ca, directory: Path) -> None:
    """The pattern of certbot's --must-staple (TLS Feature status_request)
    behind a server that does not staple: Firefox refuses the connection."""
    feature = x509.TLSFeature([x509.TLSFeatureType.status_request])
    leaf = ca.pki.leaf("a.test", ca.issuer, extra_extensions=[(feature, False)])
    assert must_staple(leaf.cert)
    report = staple_report(directory, ca, leaf, index=None)
    assert (report.status, report.must_staple) == (OcspStatus.ABSENT, True)


def test_delegated_responder(ca: Ca, directory: Path) -> None:
    leaf = ca.pki.leaf("a.test", ca.issuer)
    delegate = ca.pki.issue(
        "OCSP Responder",
        issuer=ca.issuer,
        eku_server=False,
        extra_extensions=[(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING]), False)],
    )
    report = staple_report(directory, ca, leaf, index=ocsp_index_line(leaf, "V"), signer=delegate)
    assert (report.status, report.responder) == (OcspStatus.GOOD, delegate.subject)


def test_invalid_responder_without_ocsp_signing(ca: Ca, directory: Path) -> None:
    leaf = ca.pki.leaf("a.test", ca.issuer)
    delegate = ca.pki.issue("Not A Responder", issuer=ca.issuer)  # serverAuth only
    report = staple_report(directory, ca, leaf, index=ocsp_index_line(leaf, "V"), signer=delegate)
    assert report.status is OcspStatus.INVALID
    assert report.error == f"the responder {delegate.subject!r} is not authorised for OCSP signing"


def test_invalid_responder_of_another_ca(ca: Ca, directory: Path) -> None:
    leaf = ca.pki.leaf("a.test", ca.issuer)
    stranger = ca.pki.root("Stranger OCSP")
    report = staple_report(directory, ca, leaf, index=ocsp_index_line(leaf, "V"), signer=stranger)
    assert report.status is OcspStatus.INVALID
    assert report.error == (
        f"the responder {stranger.subject!r} is not a certificate of the leaf's issuer"
    )


def test_stale(ca: Ca, directory: Path) -> None:
    """A staple the server keeps serving past its nextUpdate (a stapling cache
    that stopped refreshing): judged two minutes after a one-minute response."""
    leaf = ca.pki.leaf("a.test", ca.issuer)
    later = datetime.now(timezone.utc) + timedelta(minutes=2)
    report = staple_report(
        directory, ca, leaf, index=ocsp_index_line(leaf, "V"), minutes=1, now=later
    )
    assert (report.status, report.stale) == (OcspStatus.GOOD, True)


# --------------------------------------------------------------------------- pure cases


def test_not_requested_is_no_report(ca: Ca) -> None:
    leaf = ca.pki.leaf("a.test", ca.issuer)
    assert judge_staple(None, leaf.der, ca.issuer.der, NOW) is None


@pytest.mark.parametrize(
    ("staple", "error"),
    [
        (b"\x30\x03\x0a\x01\x01", "the responder answered malformed_request"),
        (b"not der", "not an OCSP response: "),
        (b"\x30" * 70_000, "a staple of 70000 bytes (over 65536)"),
    ],
)
def test_garbage_staples_are_invalid(ca: Ca, staple: bytes, error: str) -> None:
    leaf = ca.pki.leaf("a.test", ca.issuer)
    report = judge_staple(staple, leaf.der, ca.issuer.der, NOW)
    assert report is not None
    assert report.status is OcspStatus.INVALID
    assert report.error is not None and report.error.startswith(error)


def test_unknown_issuer_cannot_verify(ca: Ca, directory: Path) -> None:
    leaf = ca.pki.leaf("a.test", ca.issuer)
    with (
        ocsp_responder(
            directory, issuer=ca.issuer, signer=ca.issuer, index=ocsp_index_line(leaf, "V")
        ) as responder,
        s_server_stapling(directory, "127.90.30.1", leaf, ca.issuer, responder=responder) as port,
    ):
        staple = fetch_staple(port)
    report = judge_staple(staple, leaf.der, None, NOW)
    assert report is not None
    assert (report.status, report.error) == (
        OcspStatus.INVALID,
        "the leaf's issuer is unknown: the staple cannot be verified",
    )
    other = ca.pki.leaf("other.test", ca.issuer)
    about_other = judge_staple(staple, other.der, ca.issuer.der, NOW)
    assert about_other is not None and about_other.status is OcspStatus.INVALID
    assert about_other.error == (
        f"the staple is about another certificate (serial {leaf.cert.serial_number:x})"
    )
