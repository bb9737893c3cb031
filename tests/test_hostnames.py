"""Host names as each client compares them (scanner/hostnames.py): the IPv6
and IDN forms OkHttp gives a pattern, and the punycode form the other
clients compare.

The facts come from OkHttp's own ``toCanonicalHost`` (okhttp3.internal,
HostnamesJvm.kt for 3 and 4: an IPv6 literal with or without brackets in
RFC 5952 form, else ``IDN.toASCII`` lower-cased; OkHttp 5's UTS #46 table and
its label-length check), from ``HttpUrl`` for OkHttp 3's patterns (any number
of slashes after the scheme are skipped), and from ``java.net.IDN``
(IDNA 2003 on Unicode 3.2, unassigned code points refused).
"""

from __future__ import annotations

import pytest

from scanner.clients import canonical_host
from scanner.hostnames import PatternError, idna_ascii, parse_okhttp_pattern
from scanner.model import Client, ClientPolicy, HostMode, Platform


@pytest.mark.parametrize("version", [3, 4, 5])
@pytest.mark.parametrize(
    "pattern",
    [
        "[2001:DB8::1]",  # the URL form of an address, as in HttpUrl
        "[2001:db8:0:0:0:0:0:1]",
    ],
)
def test_a_bracketed_ipv6_pattern_pins_the_address_in_its_short_form(
    pattern: str, version: int
) -> None:
    """OkHttp compares ``HttpUrl.host``, which for an IPv6 address is the
    RFC 5952 text without brackets: the pattern must canonicalise to it."""
    assert parse_okhttp_pattern(pattern, version) == ("2001:db8::1", HostMode.EXACT)


@pytest.mark.parametrize("version", [4, 5])
def test_an_unbracketed_ipv6_pattern_is_an_address_too_from_okhttp_4(version: int) -> None:
    """From 4.3 the pattern goes straight to toCanonicalHost, which reads a
    name with a colon as an IPv6 address, brackets or not."""
    assert parse_okhttp_pattern("2001:DB8:0:0:0:0:0:1", version) == (
        "2001:db8::1",
        HostMode.EXACT,
    )


@pytest.mark.parametrize("version", [3, 4, 5])
def test_an_ipv4_mapped_ipv6_pattern_pins_the_ipv4_address(version: int) -> None:
    """toCanonicalHost decodes the literal to 16 bytes, and Java's
    ``InetAddress.getByAddress`` makes an IPv4-mapped address an
    ``Inet4Address``: OkHttp compares ``192.0.2.1``, so the pattern must pin
    that, not ``::ffff:c000:201`` (which no host OkHttp compares can be)."""
    assert parse_okhttp_pattern("[::ffff:192.0.2.1]", version) == ("192.0.2.1", HostMode.EXACT)


@pytest.mark.parametrize("version", [3, 4, 5])
def test_an_ipv6_zone_index_is_refused(version: int) -> None:
    """OkHttp's IPv6 decoder takes hex digits, colons and a trailing dotted
    quad only: ``%eth0`` makes it fail, the pattern is refused (Python's
    ``IPv6Address`` would accept the scope id since 3.9)."""
    with pytest.raises(PatternError):
        parse_okhttp_pattern("[fe80::1%eth0]", version)


@pytest.mark.parametrize(
    ("version", "message"),
    [
        (3, 'Invalid URL host: "[::1"'),
        (4, "Invalid pattern: [::1"),
        (5, "Invalid pattern: [::1"),
    ],
)
def test_an_unclosed_bracket_is_refused_not_read_as_an_address(version: int, message: str) -> None:
    """``[::1`` without its ``]``: OkHttp decodes the whole text, bracket
    included, as IPv6 and fails; it must not become the address ``::``."""
    with pytest.raises(PatternError) as caught:
        parse_okhttp_pattern("[::1", version)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("version", "message"),
    [
        (3, 'Invalid URL host: "👍.ws"'),
        (4, "Invalid pattern: 👍.ws"),
    ],
)
def test_okhttp_3_and_4_refuse_a_name_unassigned_in_unicode_3_2(version: int, message: str) -> None:
    """Emoji domains under .ws are sold and used; U+1F44D came with Unicode
    6.0, and java.net.IDN (Unicode 3.2, no ALLOW_UNASSIGNED) throws on it, so
    OkHttp 3 and 4 refuse the pattern (the app crashes building its pinner)
    rather than pin its punycode form."""
    with pytest.raises(PatternError) as caught:
        parse_okhttp_pattern("👍.ws", version)
    assert str(caught.value) == message


@pytest.mark.parametrize("version", [3, 4, 5])
def test_a_code_point_no_unicode_version_assigns_is_refused(version: int) -> None:
    """U+0378 is unassigned in every Unicode version: Java's IDN and OkHttp
    5's UTS #46 table both refuse it (hostile input: a PatternError, never
    another exception)."""
    with pytest.raises(PatternError):
        parse_okhttp_pattern("\u0378.example", version)


def test_okhttp_5_maps_capitals_of_an_idn_pattern_to_lower_case() -> None:
    """UTS #46 maps ``S`` and ``E`` to lower case before punycode: the pattern
    ``Straße.Example`` pins xn--strae-oqa.example, as ``straße.example`` does."""
    assert parse_okhttp_pattern("Straße.Example", 5) == ("xn--strae-oqa.example", HostMode.EXACT)
    assert parse_okhttp_pattern("Straße.Example", 4) == ("strasse.example", HostMode.EXACT)


def test_okhttp_5_refuses_an_empty_label() -> None:
    """A doubled dot (a typo seen in hand-written pinners): OkHttp 5's
    label-length check (1 to 63 per label) refuses it."""
    with pytest.raises(PatternError) as caught:
        parse_okhttp_pattern("api..example.com", 5)
    assert str(caught.value) == "Invalid pattern: api..example.com"


def test_okhttp_3_skips_the_slashes_before_the_host() -> None:
    """OkHttp 3 reads a pattern as ``http://`` + pattern; HttpUrl skips every
    slash and backslash after the scheme, so ``//api.example.com`` pins
    api.example.com."""
    assert parse_okhttp_pattern("//api.example.com", 3) == ("api.example.com", HostMode.EXACT)
    assert parse_okhttp_pattern("\\\\api.example.com", 3) == ("api.example.com", HostMode.EXACT)


def test_other_clients_compare_an_idn_host_in_punycode() -> None:
    """HPKP, Chromium and TrustKit on Android compare the ASCII form: a
    policy for xn--bcher-kva.example covers the host ``Bücher.Example``."""
    assert idna_ascii("Bücher.Example") == "xn--bcher-kva.example"
    assert idna_ascii("API.Example.COM") == "api.example.com"
    policy = ClientPolicy(name="app", client=Client.TRUSTKIT, platform=Platform.ANDROID, rules=())
    assert canonical_host(policy, "Bücher.Example.") == "xn--bcher-kva.example"
