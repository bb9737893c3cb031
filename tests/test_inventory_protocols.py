"""Inventory keys for how an endpoint is reached and judged beyond its chain:
starttls (with each protocol's default port), proxy, ocsp, ct, caa,
tls_min_version and tls_version_severity; every mistake with file:line:col."""

from __future__ import annotations

import textwrap

import pytest

from scanner.errors import InventoryError
from scanner.inventory import load_inventory_text
from scanner.model import Endpoint, Severity


def endpoints(text: str) -> dict[str, Endpoint]:
    inventory = load_inventory_text(textwrap.dedent(text), "inv.yaml")
    return {e.name: e for e in inventory.endpoints}


def problems(text: str) -> list[str]:
    with pytest.raises(InventoryError) as caught:
        load_inventory_text(textwrap.dedent(text), "inv.yaml")
    return [str(p) for p in caught.value.problems]


def test_starttls_brings_its_default_port() -> None:
    found = endpoints(
        """\
        version: 1
        endpoints:
          - {host: mx.example.com, starttls: smtp}
          - {host: mail.example.com, starttls: imap}
          - {host: submission.example.com, starttls: smtp, port: 587}
          - {host: db.example.com, starttls: postgres}
          - {host: www.example.com}
        """
    )
    assert {name: (e.port, e.starttls) for name, e in found.items()} == {
        "mx.example.com:25": (25, "smtp"),
        "mail.example.com:143": (143, "imap"),
        "submission.example.com:587": (587, "smtp"),
        "db.example.com:5432": (5432, "postgres"),
        "www.example.com:443": (443, None),
    }


def test_a_port_in_defaults_wins_over_the_protocol_default() -> None:
    found = endpoints(
        """\
        version: 1
        defaults: {port: 8443, starttls: ldap}
        endpoints:
          - host: ldap.example.com
        """
    )
    (endpoint,) = found.values()
    assert (endpoint.port, endpoint.starttls) == (8443, "ldap")


def test_proxy_defaults_and_opting_out() -> None:
    found = endpoints(
        """\
        version: 1
        defaults:
          proxy: http://user:secret@proxy.corp:3128
        endpoints:
          - host: a.example.com
          - {host: b.example.com, proxy: "socks5h://10.0.0.9:1080"}
          - {host: c.example.com, proxy: false}
        """
    )
    a, b, c = (found[f"{x}.example.com:443"] for x in "abc")
    assert (a.proxy, a.direct) == ("http://user:secret@proxy.corp:3128", False)
    assert (b.proxy, b.direct) == ("socks5h://10.0.0.9:1080", False)
    assert (c.proxy, c.direct) == (None, True)


def test_judging_switches() -> None:
    found = endpoints(
        """\
        version: 1
        defaults: {ocsp: true, ct: chrome}
        endpoints:
          - host: a.example.com
          - {host: b.example.com, ct: [apple, chrome], caa: true, tls_min_version: TLSv1.3,
             tls_version_severity: critical}
          - {host: c.example.com, ct: false, ocsp: false}
          - {host: d.example.com, ct: true}
        """
    )
    a, b, c, d = (found[f"{x}.example.com:443"] for x in "abcd")
    assert (a.ocsp, a.ct, a.caa, a.tls_min_version, a.tls_version_severity) == (
        True, ("chrome",), False, "TLSv1.2", Severity.WARNING,
    )  # fmt: skip
    assert (b.ct, b.caa, b.tls_min_version, b.tls_version_severity) == (
        ("apple", "chrome"), True, "TLSv1.3", Severity.CRITICAL,
    )  # fmt: skip
    assert (c.ocsp, c.ct) == (False, ())
    assert d.ct == ("chrome", "apple")


def test_mistakes_are_reported_where_they_are() -> None:
    assert problems(
        """\
        version: 1
        defaults:
          starttls: smtps
          proxy: https://proxy.corp:3128
        endpoints:
          - host: a.example.com
            ct: [chrome, firefox]
            tls_min_version: TLS1.2
            tls_version_severity: fatal
            proxy: true
            ocsp: yes please
        """
    ) == [
        "inv.yaml:3:13: defaults.starttls: unknown STARTTLS protocol 'smtps' (one of smtp, "
        "imap, pop3, ftp, ldap, postgres, mysql, xmpp)",
        "inv.yaml:4:10: defaults.proxy: proxy: unsupported proxy scheme 'https://' (use "
        "http://, socks5://, socks5h://)",
        "inv.yaml:7:18: endpoints[0].ct[1]: unknown CT policy 'firefox' (one of chrome, "
        "apple, or false)",
        "inv.yaml:8:22: endpoints[0].tls_min_version: unknown TLS version 'TLS1.2' (one of "
        "SSLv3, TLSv1, TLSv1.1, TLSv1.2, TLSv1.3)",
        "inv.yaml:9:27: endpoints[0].tls_version_severity: severity must be info, warning or "
        "critical, got 'fatal'",
        "inv.yaml:10:12: endpoints[0].proxy: proxy must be a URL (http://, socks5://, "
        "socks5h://) or false",
        "inv.yaml:11:11: endpoints[0].ocsp: expected true or false, got a string",
    ]


def test_a_proxy_password_never_reaches_a_message() -> None:
    found = problems(
        """\
        version: 1
        endpoints:
          - {host: a.example.com, proxy: "http://u:hunter2@proxy.corp:99999"}
        """
    )
    assert found == [
        "inv.yaml:3:34: endpoints[0].proxy: proxy: the proxy port is not a number in 1-65535"
    ]
    assert "hunter2" not in found[0]
