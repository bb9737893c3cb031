"""The OkHttp oracle's cases: a pinner, a trust store and a served chain each.

Every case is one ``CertificatePinner.Builder().add(...)`` list, the roots of
the client's trust store, the chain a loopback ``openssl s_server`` sends
(leaf first, in that order) and the URL the app requests. The real OkHttp
(tests/oracle/OkHttpOracle.java) and pinaudit judge the same case; the test
(tests/test_okhttp_oracle.py) says they must agree.

Where a case reproduces a pattern seen in real code or a real report, `seen`
names it: OkHttp's own tests (``CertificatePinnerTest``,
``CertificatePinnerChainValidationTest``), its issue tracker, and apps'
published pinning code. The certificates are generated here, never copied.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime

from cryptography import x509
from cryptography.x509.oid import NameOID

from scanner.fleet.pki import PKI, Issued, make_key

BLOCK = "127.60"  # this suite's loopback block (one address per case)
DOMAIN = "oracle.test"


@dataclass(frozen=True)
class Case:
    id: str
    host: str  # the name in the inventory (what pinaudit is told to scan)
    address: str  # where the case's s_server listens (loopback)
    pins: tuple[tuple[str, tuple[str, ...]], ...]  # CertificatePinner.Builder().add() calls
    served: tuple[Issued, ...]  # leaf first, in the order the server sends them
    roots: tuple[Issued, ...]  # the client's trust store, exactly
    seen: str  # where this shape was seen, or what it stands for
    url_host: str = ""  # how the app spells the host in its URL ("" = host)

    @property
    def leaf(self) -> Issued:
        return self.served[0]

    def url(self, port: int) -> str:
        host = self.url_host or self.host
        if ":" in host:
            host = f"[{host}]"
        return f"https://{host}:{port}/"


def pin(cert: Issued) -> str:
    return str(cert.pin)


def sha1_pin(cert: Issued) -> str:
    return str(cert.sha1_pin)


@dataclass
class _Builder:
    pki: PKI
    cases: list[Case] = field(default_factory=list)

    def __post_init__(self) -> None:
        pki = self.pki
        self.root_a = pki.root("Oracle Root A")
        self.int_a = pki.intermediate("Oracle Issuing CA A", self.root_a)
        self.root_b = pki.root("Oracle Root B")  # a backup root nobody serves
        self.int_b = pki.intermediate("Oracle Issuing CA B", self.root_b)
        self.untrusted = pki.root("Oracle Untrusted Root")

    def address(self) -> str:
        n = len(self.cases)
        return f"{BLOCK}.{n // 200}.{n % 200 + 10}"

    def leaf(self, host: str, issuer: Issued | None = None, **kw: object) -> Issued:
        return self.pki.leaf(host.rstrip(".").lower(), issuer or self.int_a, **kw)

    def add(
        self,
        id: str,
        host: str,
        pins: dict[str, list[str]] | list[tuple[str, list[str]]],
        *,
        served: list[Issued] | None = None,
        roots: list[Issued] | None = None,
        seen: str,
        url_host: str = "",
        address: str | None = None,
    ) -> None:
        items = list(pins.items()) if isinstance(pins, dict) else list(pins)
        chain = served if served is not None else [self.leaf(host), self.int_a]
        self.cases.append(
            Case(
                id=id,
                host=host,
                address=address or self.address(),
                pins=tuple((p, tuple(v)) for p, v in items),
                served=tuple(chain),
                roots=tuple(roots if roots is not None else [self.root_a]),
                seen=seen,
                url_host=url_host,
            )
        )


def _key_with_pin_char(chars: str) -> Iterator[object]:
    """EC keys until one's SHA-256 pin has one of `chars` in its base64."""
    from cryptography.hazmat.primitives import serialization

    while True:
        key = make_key("ec256")
        spki = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        text = base64.b64encode(hashlib.sha256(spki).digest()).decode()
        if any(c in text for c in chars):
            yield key


def build_cases(now: datetime) -> list[Case]:
    """Every case, certificates generated relative to `now`."""
    pki = PKI(now, org="pinaudit oracle")
    b = _Builder(pki)
    ra, ia, rb, ib, ru = b.root_a, b.int_a, b.root_b, b.int_b, b.untrusted
    d = DOMAIN
    tests = "OkHttp CertificatePinnerTest"
    chain_tests = "OkHttp CertificatePinnerChainValidationTest"

    # --- where the pin sits on the chain -------------------------------------------
    h = f"leaf.{d}"
    leaf = b.leaf(h)
    b.add("leaf-pin", h, {h: [pin(leaf)]}, served=[leaf, ia], seen=f"{tests}: pin of the leaf")
    h = f"int.{d}"
    b.add(
        "intermediate-pin", h, {h: [pin(ia)]}, seen=f"{chain_tests}.pinIntermediatePresentInChain"
    )
    h = f"root.{d}"
    b.add("root-pin-not-sent", h, {h: [pin(ra)]}, seen=f"{chain_tests}.pinRootNotPresentInChain")
    h = f"root-sent.{d}"
    b.add(
        "root-pin-sent",
        h,
        {h: [pin(ra)]},
        served=[b.leaf(h), ia, ra],
        seen="servers that send their root along (nginx ssl_certificate with the full bundle)",
    )
    h = f"unrelated.{d}"
    b.add("unrelated-pin", h, {h: [pin(rb)]}, seen=f"{tests}.unsuccessfulCheck")
    h = f"backup.{d}"
    b.add(
        "backup-pin-first",
        h,
        {h: [pin(rb), pin(ia)]},
        seen="a backup root listed before the live CA (Swiss CovidCertificate SDK pins)",
    )
    h = f"rogue-leaf.{d}"
    good = b.leaf(h)
    rogue = b.leaf(h)
    b.add(
        "unrelated-pinned-leaf-served",
        h,
        {h: [pin(good)]},
        served=[rogue, ia, good],
        seen=f"{chain_tests}.unrelatedPinnedLeafCertificateInChain",
    )
    h = f"rogue-int.{d}"
    b.add(
        "unrelated-pinned-intermediate-served",
        h,
        {h: [pin(ib)]},
        served=[b.leaf(h), ia, ib],
        seen=f"{chain_tests}.unrelatedPinnedIntermediateCertificateInChain",
    )
    h = f"extra.{d}"
    b.add(
        "unrelated-certificate-first",
        h,
        {h: [pin(ia)]},
        served=[b.leaf(h), ib, ia],
        seen="a stale intermediate left in the server's bundle before the right one",
    )

    h = f"order.{d}"
    b.add(
        "served-out-of-order",
        h,
        {h: [pin(ia)]},
        served=[b.leaf(h), ra, ia],
        seen="a bundle concatenated root first (cleaner: 'it could be any element')",
    )
    for suffix, pinned in (("pass", None), ("fail", rb)):
        h = f"self-signed-{suffix}.{d}"
        own = pki.issue(h, dns=(h,), days_after=365)
        b.add(
            f"self-signed-leaf-trusted-{suffix}",
            h,
            {h: [pin(pinned or own)]},
            served=[own],
            roots=[own],
            seen="an internal API with a self-signed certificate in the client's trust store",
        )

    # --- host patterns ----------------------------------------------------------------
    w = f"w.{d}"
    b.add("wildcard-one-label", f"api.{w}", {f"*.{w}": [pin(rb)]}, seen=f"{tests}: *.example.com")
    b.add("wildcard-apex", w, {f"*.{w}": [pin(rb)]}, seen="KDoc: *.example.com not example.com")
    b.add(
        "wildcard-two-labels",
        f"a.b.{w}",
        {f"*.{w}": [pin(rb)]},
        seen="KDoc: *.example.com not a.b.example.com",
    )
    dd = f"dd.{d}"
    covid = "COVIDSafe (covidsafewatch/covidsafe-android-decompiled): **.aws.covidsafe.gov.au"
    b.add("double-wildcard-apex", dd, {f"**.{dd}": [pin(rb)]}, seen=covid)
    b.add("double-wildcard-deep", f"a.b.{dd}", {f"**.{dd}": [pin(rb)]}, seen=covid)
    b.add("double-wildcard-pass", f"x.{dd}", {f"**.{dd}": [pin(ia)]}, seen=covid)
    m = f"m.{d}"
    b.add(
        "union-pass",
        f"api.{m}",
        [(f"*.{m}", [pin(rb)]), (f"api.{m}", [pin(ia)])],
        seen=f"{tests}.successfulCheckForOneHostnameWithWildcardAndDirectCertificate",
    )
    m2 = f"m2.{d}"
    b.add(
        "union-fail",
        f"api.{m2}",
        [(f"*.{m2}", [pin(rb)]), (f"api.{m2}", [pin(ib)])],
        seen="pinning-semantics §9 case 9: both patterns' pins in the message",
    )
    m3 = f"m3.{d}"
    b.add(
        "same-pin-two-patterns",
        f"api.{m3}",
        [(f"*.{m3}", [pin(rb)]), (f"api.{m3}", [pin(rb)])],
        seen="one backup pin under a wildcard and an exact rule (issue 18, failure text)",
    )
    h = f"api.m4.{d}"
    b.add(
        "same-pin-twice-one-pattern",
        h,
        {h: [pin(rb), pin(rb)]},
        seen="a pin repeated in one add() call",
    )
    h = f"api.u.{d}"
    b.add(
        "pattern-upper-case",
        h,
        {h.upper(): [pin(rb)]},
        seen=f"{tests}.successfulFindMatchingPinsIgnoresCase (issue #2609)",
    )
    h = f"api.u2.{d}"
    b.add(
        "url-upper-case",
        h.upper(),
        {h: [pin(rb)]},
        seen="a URL written in capitals",
    )
    h = f"t.{d}"
    b.add(
        "url-trailing-dot",
        f"{h}.",
        {h: [pin(rb)]},
        seen="lysine-dev/okhttp #9724: the absolute name bypasses the pins",
    )
    h = f"t2.{d}"
    b.add(
        "pattern-trailing-dot",
        h,
        {f"{h}.": [pin(rb)]},
        seen="a pattern copied from a DNS zone file, with its trailing dot",
    )
    h = f"t3.{d}"
    b.add(
        "both-trailing-dot",
        f"{h}.",
        {f"{h}.": [pin(rb)]},
        seen="lysine-dev/okhttp #9724 (pin the absolute name too)",
    )
    ip = b.address()
    b.add(
        "ip-literal-fail",
        ip,
        {ip: [pin(rb)]},
        served=[b.leaf(ip, dns=(), ips=(ip,)), ia],
        seen="apps pinning a backend by IP address (pinning-semantics §9 case 37)",
        address=ip,
    )
    ip = b.address()
    b.add(
        "ip-literal-pass",
        ip,
        {ip: [pin(ia)]},
        served=[b.leaf(ip, dns=(), ips=(ip,)), ia],
        seen="apps pinning a backend by IP address",
        address=ip,
    )
    h = f"port.{d}"
    b.add(
        "pattern-with-port",
        h,
        {f"{h}:8443": [pin(rb)]},
        seen="square/okhttp #5781: host:port given as the pattern",
    )
    b.add(
        "dotless-wildcard",
        "oracle-intranet",
        {"*.oracle-intranet": [pin(rb)]},
        seen="single-label intranet names (*.localhost style patterns)",
    )
    h = f"star.{d}"
    b.add(
        "pattern-star-last",
        h,
        {"star.oracle.*": [pin(rb)]},
        seen=f"{tests}.testBadHost: example.*",
    )
    h = f"url.{d}"
    b.add(
        "pattern-is-url",
        h,
        {f"https://{h}/": [pin(rb)]},
        seen="square/okhttp #6681: a URL given as the pattern",
    )

    # --- pin spellings --------------------------------------------------------------
    h = f"sha1.{d}"
    b.add("sha1-pin-pass", h, {h: [sha1_pin(ia)]}, seen=f"{tests}.successfulCheckSha1Pin")
    h = f"sha1-fail.{d}"
    b.add("sha1-pin-fail", h, {h: [sha1_pin(rb)]}, seen="sha1/ pins kept from OkHttp 2 era apps")
    h = f"urlsafe.{d}"
    key = next(_key_with_pin_char("+/"))
    ca = pki.intermediate("Oracle Issuing CA URL-safe", ra, key=key)
    body = ca.pin.b64.replace("+", "-").replace("/", "_").rstrip("=")
    urlsafe = f"sha256/{body}"
    b.add(
        "urlsafe-unpadded-pin",
        h,
        {h: [urlsafe]},
        served=[b.leaf(h, ca), ca],
        seen="okio decodeBase64 accepts the URL-safe alphabet without padding",
    )
    h = f"prefix.{d}"
    b.add(
        "upper-case-prefix",
        h,
        {h: ["SHA256/" + pin(ia).split("/", 1)[1]]},
        seen='lovely-bear laboratory https sample: add(pattern, "SHA256/...")',
    )
    h = f"sha512.{d}"
    b.add(
        "sha512-prefix",
        h,
        {h: ["sha512/" + pin(ia).split("/", 1)[1]]},
        seen=f"{tests}.testBadAlgorithm",
    )
    h = f"badb64.{d}"
    b.add("bad-base64", h, {h: ["sha256/a"]}, seen=f"{tests}.testBadPin")
    h = f"short.{d}"
    b.add(
        "dead-short-pin",
        h,
        {h: ["sha256/AAAA"]},
        seen="a placeholder pin left in (decodes to 3 bytes, never matches)",
    )
    h = f"hex.{d}"
    hexpin = "sha256/" + ia.pin.digest.hex()
    b.add(
        "dead-hex-pin",
        h,
        {h: [hexpin, pin(rb)]},
        seen="cashapp/certifikit #88: a hex digest written as sha256/<hex>",
    )

    # --- chains the client refuses whatever the pins ---------------------------------
    h = f"expired.{d}"
    old = b.leaf(h, days_before=100, days_after=-10)
    b.add("expired-leaf", h, {h: [pin(ia)]}, served=[old, ia], seen="a leaf not renewed in time")
    h = f"wrong-host.{d}"
    b.add(
        "wrong-host",
        h,
        {h: [pin(ia)]},
        served=[b.leaf(f"other.{d}"), ia],
        seen="a certificate for another name (virtual host misrouted)",
    )
    h = f"incomplete.{d}"
    b.add(
        "incomplete-chain",
        h,
        {h: [pin(ia)]},
        served=[b.leaf(h)],
        seen="a server that sends the leaf only",
    )
    h = f"untrusted.{d}"
    iu = pki.intermediate("Oracle Untrusted Issuing CA", ru)
    b.add(
        "untrusted-root",
        h,
        {h: [pin(iu)]},
        served=[b.leaf(h, iu), iu],
        seen="a private CA the client does not trust",
    )

    # --- internationalised names ----------------------------------------------------
    idn = f"idn.{d}"
    b.add(
        "idn-sharp-s",
        f"strasse.{idn}",
        {f"straße.{idn}": [pin(rb)]},
        url_host=f"straße.{idn}",
        seen="issue 18: IDNA 2003 (OkHttp 3/4) maps ß to ss, UTS #46 keeps it",
    )
    b.add(
        "idn-punycode-pattern",
        f"strasse2.{idn}",
        {f"xn--strae2-lva.{idn}": [pin(rb)]},
        url_host=f"straße2.{idn}",
        seen="a pattern written in punycode, the URL in Unicode",
    )
    b.add(
        "idn-umlaut",
        f"xn--bcher-kva.{idn}",
        {f"bücher.{idn}": [pin(rb)]},
        url_host=f"bücher.{idn}",
        seen=f"{tests}.successfulFindMatchingPinPunycode",
    )

    # --- the chain OkHttp cleans on a JVM (BasicCertificateChainCleaner) ---------------
    h = f"int-anchor.{d}"
    b.add(
        "intermediate-trusted-root-sent-pin-root",
        h,
        {h: [pin(ra)]},
        served=[b.leaf(h), ia, ra],
        roots=[ia],
        seen="issue 18: a trust store holding only the issuing CA, the server sending the root",
    )
    h = f"int-anchor2.{d}"
    b.add(
        "intermediate-trusted-root-sent-pin-int",
        h,
        {h: [pin(ia)]},
        served=[b.leaf(h), ia, ra],
        roots=[ia],
        seen="a trust store holding only the issuing CA",
    )
    h = f"int-anchor3.{d}"
    b.add(
        "intermediate-trusted-root-not-sent-pin-root",
        h,
        {h: [pin(ra)]},
        roots=[ia],
        seen="a trust store holding only the issuing CA",
    )
    ia_by_untrusted = pki.cross_sign(ia, ru)
    h = f"two-versions.{d}"
    b.add(
        "two-intermediates-untrusted-first",
        h,
        {h: [pin(ia)]},
        served=[b.leaf(h), ia_by_untrusted, ia],
        seen="issue 18: the intermediate re-issued by an untrusted root, served first",
    )
    h = f"two-versions2.{d}"
    b.add(
        "two-intermediates-trusted-first",
        h,
        {h: [pin(ia)]},
        served=[b.leaf(h), ia, ia_by_untrusted],
        seen="the same two intermediates, trusted one first",
    )
    not_ca = pki.issue(
        "",
        subject=ia.cert.subject,
        key=ia.key,
        issuer=ru,
        ca=False,
        eku_server=False,
    )
    h = f"not-ca.{d}"
    b.add(
        "non-ca-copy-of-intermediate-first",
        h,
        {h: [pin(ia)]},
        served=[b.leaf(h), not_ca, ia],
        seen=f"{chain_tests}.signersMustHaveCaBitSet (cleaner check added after 3.x)",
    )

    # --- cross-signed roots (X1/X2 shape) --------------------------------------------
    old_root = pki.root("Oracle Old Root")
    new_root = pki.root("Oracle New Root")
    new_by_old = pki.cross_sign(new_root, old_root)
    int_new = pki.intermediate("Oracle Issuing CA N", new_root)
    lobsters = "msfjarvis/compose-lobsters #1187 (pinned ISRG Root X1, chain via X2)"
    for suffix, roots, order, pinned, seen in (
        ("both-trusted-pin-old", [old_root, new_root], "int-first", old_root, lobsters),
        ("both-trusted-pin-new", [old_root, new_root], "int-first", new_root, lobsters),
        ("old-trusted-pin-old", [old_root], "int-first", old_root, "old devices: X1 only"),
        ("new-trusted-pin-old", [new_root], "int-first", old_root, lobsters),
        ("both-trusted-pin-old-reversed", [old_root, new_root], "cross-first", old_root, lobsters),
    ):
        h = f"xroot-{suffix}.{d}"
        leaf = b.leaf(h, int_new)
        served = (
            [leaf, int_new, new_by_old] if order == "int-first" else [leaf, new_by_old, int_new]
        )
        b.add(f"cross-root-{suffix}", h, {h: [pin(pinned)]}, served=served, roots=roots, seen=seen)

    # --- a cross-signed intermediate (same key, two issuers) ------------------------
    ix_a = pki.intermediate("Oracle Cross CA", ra)
    ix_b = pki.cross_sign(ix_a, rb)
    for suffix, roots, first, pinned in (
        ("both-trusted-a-first-pin-a", [ra, rb], "a", ra),
        ("both-trusted-b-first-pin-a", [ra, rb], "b", ra),
        ("b-trusted-a-first-pin-b", [rb], "a", rb),
        ("a-trusted-a-first-pin-a", [ra], "a", ra),
        ("both-trusted-pin-intermediate", [ra, rb], "b", ix_a),
    ):
        h = f"xint-{suffix}.{d}"
        leaf = b.leaf(h, ix_a)
        served = [leaf, ix_a, ix_b] if first == "a" else [leaf, ix_b, ix_a]
        b.add(
            f"cross-intermediate-{suffix}",
            h,
            {h: [pin(pinned)]},
            served=served,
            roots=roots,
            seen="one intermediate key signed by two roots (Let's Encrypt R3: ISRG X1, DST X3)",
        )

    # --- how the subject is printed -------------------------------------------------
    comma = pki.intermediate(
        "",
        ra,
        subject=x509.Name(
            [
                x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Oracle Trust, Inc."),
                x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "See oracle.test/legal-terms"),
                x509.NameAttribute(NameOID.COMMON_NAME, "Oracle Certification Authority - L1K"),
            ]
        ),
    )
    h = f"dn.{d}"
    b.add(
        "subject-with-comma",
        h,
        {h: [pin(rb)]},
        served=[b.leaf(h, comma), comma],
        seen="Entrust-style names (O=Entrust, Inc.) in the failure text",
    )
    return b.cases
