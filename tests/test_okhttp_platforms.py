"""OkHttp pin-sets that say where the app runs (``platform: android|jvm``) and
which OkHttp it is (``okhttp_version: 3|4|5``): the inventory keys, their
defaults, and what each choice changes in the verdict and the failure text.

The same behaviours are proven against the real OkHttp 3.13.1 by
tests/test_okhttp_oracle.py (which needs java); these run anywhere, on chains
built here and analysed by pinaudit's own chain code.
"""

from __future__ import annotations

import io
from dataclasses import FrozenInstanceError, replace
from datetime import datetime, timezone
from pathlib import Path

import pytest

from scanner.chain import analyze_chain
from scanner.cli import main
from scanner.clients import assess_clients, canonical_host
from scanner.clients.okhttp_jvm import clean_chain
from scanner.errors import InventoryError
from scanner.fleet.pki import PKI, Issued
from scanner.hostnames import PatternError, parse_okhttp_pattern
from scanner.inventory import load_inventory, load_inventory_text
from scanner.inventory.copy import inventory_text
from scanner.model import ClientPolicy, ClientVerdict, HostMode, Platform, Verdict
from scanner.trust import store_from_pem

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)


def _pinning(directory: Path, kotlin: str, keys: str = "") -> ClientPolicy:
    (directory / "Pinning.kt").write_text(
        "val pinner = CertificatePinner.Builder()\n" + kotlin + "    .build()\n", encoding="utf-8"
    )
    (directory / "inv.yaml").write_text(
        f"version: 1\npinsets:\n  app:\n    from: {{okhttp: Pinning.kt}}\n{keys}",
        encoding="utf-8",
    )
    return load_inventory(directory / "inv.yaml").policies["app"]


def _judge(
    policy: ClientPolicy, host: str, served: list[Issued], roots: list[Issued]
) -> ClientVerdict:
    store = store_from_pem(b"".join(r.pem for r in roots), "roots.pem")
    from scanner.model import Endpoint

    endpoint = Endpoint(name=host, host=host, port=443, sni=host, pinset=None)
    endpoint = replace(endpoint, client_policies=(policy,))
    report = analyze_chain([c.der for c in served], store, host, NOW)
    verdicts, _ = assess_clients(endpoint, report, store, NOW)
    return verdicts[0]


# --- the inventory keys -------------------------------------------------------------


def test_platform_and_version_beside_from(tmp_path: Path) -> None:
    policy = _pinning(
        tmp_path,
        '    .add("api.example.com", "sha256/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")\n',
        "    platform: jvm\n    okhttp_version: 3\n",
    )
    assert (policy.platform, policy.okhttp_version) == (Platform.JVM, 3)
    assert (policy.okhttp_platform, policy.okhttp_major) == (Platform.JVM, 3)


def test_defaults_android_and_okhttp_4(tmp_path: Path) -> None:
    """Not said: Android (the platform's chain) and OkHttp 4 (IDNA 2003)."""
    policy = _pinning(
        tmp_path,
        '    .add("straße.example", "sha256/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")\n',
    )
    assert (policy.platform, policy.okhttp_version) == (None, None)
    assert (policy.okhttp_platform, policy.okhttp_major) == (Platform.ANDROID, 4)
    assert policy.rules[0].host == "strasse.example"
    assert canonical_host(policy, "STRASSE.example") == "strasse.example"


def test_copy_keeps_platform_version_and_pin_order(tmp_path: Path) -> None:
    policy = _pinning(
        tmp_path,
        '    .add("api.example.com", "sha256/AAAA", '
        '"sha256/BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBA=")\n',
        "    platform: jvm\n    okhttp_version: 5\n",
    )
    assert policy.rules[0].written_pins == (
        "sha256/AAAA",
        "sha256/BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBA=",
    )
    text = inventory_text(policy, command="pinaudit import okhttp Pinning.kt")
    assert "    platform: jvm\n    okhttp_version: 5\n" in text
    copy = load_inventory_text(text, "copy.yaml").policies["app"]
    assert replace(copy, source=None, location=None) == replace(policy, source=None)


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        (
            "    from: {okhttp: Pinning.kt}\n    platform: ios\n",
            "inv.yaml:6:15: pinsets.app.platform: unknown okhttp platform 'ios' (android, jvm)",
        ),
        (
            "    from: {okhttp: Pinning.kt}\n    okhttp_version: 6\n",
            "inv.yaml:6:21: pinsets.app.okhttp_version: okhttp_version must be one of 3, 4, 5; "
            "got 6",
        ),
        (
            "    from: {android: Pinning.kt}\n    okhttp_version: 4\n",
            "inv.yaml:6:21: pinsets.app.okhttp_version: okhttp_version beside from: is for "
            "okhttp only",
        ),
        (
            "    client: android\n    platform: jvm\n",
            "inv.yaml:6:15: pinsets.app.platform: platform is for okhttp and trustkit pin-sets "
            "only",
        ),
        (
            "    client: trustkit\n    platform: jvm\n",
            "inv.yaml:6:15: pinsets.app.platform: unknown trustkit platform 'jvm' "
            "(ios, macos, android)",
        ),
        (
            "    client: hpkp\n    okhttp_version: 4\n",
            "inv.yaml:6:21: pinsets.app.okhttp_version: okhttp_version is for okhttp pin-sets only",
        ),
        (
            "    client: okhttp\n    okhttp_version: four\n",
            "inv.yaml:6:21: pinsets.app.okhttp_version: expected an integer, got a string",
        ),
    ],
)
def test_bad_platform_or_version_is_an_inventory_problem_with_its_line(
    tmp_path: Path, keys: str, message: str
) -> None:
    (tmp_path / "Pinning.kt").write_text("// no pins\n", encoding="utf-8")
    with pytest.raises(InventoryError) as caught:
        load_inventory_text(
            "version: 1\n# OkHttp app\npinsets:\n  app:\n" + keys,
            "inv.yaml",
            base_dir=str(tmp_path),
        )
    assert [str(p) for p in caught.value.problems] == [message]


# --- host and pattern rules per OkHttp version ------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "version", "expected"),
    [
        ("straße.example", 3, ("strasse.example", HostMode.EXACT)),
        ("straße.example", 4, ("strasse.example", HostMode.EXACT)),
        ("straße.example", 5, ("xn--strae-oqa.example", HostMode.EXACT)),
        ("ς.example", 4, ("xn--4xa.example", HostMode.EXACT)),  # IDNA 2003: final sigma mapped
        ("ς.example", 5, ("xn--3xa.example", HostMode.EXACT)),
        ("**.example.com", 3, ("**.example.com", HostMode.EXACT)),  # no ** before 4.3
        ("**.example.com", 4, ("example.com", HostMode.ANY_DEPTH)),
        ("api.example.com:8443", 3, ("api.example.com", HostMode.EXACT)),  # okhttp #5781
        ("https://api.example.com/", 3, ("https", HostMode.EXACT)),  # okhttp #6681
        ("*.Example.COM", 3, ("example.com", HostMode.ONE_LABEL)),
    ],
)
def test_patterns_per_version(pattern: str, version: int, expected: tuple[str, HostMode]) -> None:
    assert parse_okhttp_pattern(pattern, version) == expected


@pytest.mark.parametrize(
    ("pattern", "version", "message"),
    [
        ("api.example.com:8443", 4, "Invalid pattern: api.example.com:8443"),
        ("example.*", 4, "Unexpected pattern: example.*"),
        ("api.example.com:http", 3, 'Invalid URL port: "http"'),
        ("exa mple.com", 3, 'Invalid URL host: "exa mple.com"'),
    ],
)
def test_pattern_errors_per_version(pattern: str, version: int, message: str) -> None:
    with pytest.raises(PatternError) as caught:
        parse_okhttp_pattern(pattern, version)
    assert str(caught.value) == message


def test_idn_host_is_pinned_by_okhttp_4_not_5(tmp_path: Path) -> None:
    """Issue 18 §4: an app pinning straße.example requests strasse.example with
    OkHttp 3/4 (IDNA 2003), and the pins apply; OkHttp 5 maps the pattern to
    xn--strae-oqa.example, so strasse.example is not pinned."""
    pki = PKI(NOW)
    root = pki.root("Root")
    inter = pki.intermediate("CA", root)
    leaf = pki.leaf("strasse.example", inter)
    pins = '    .add("straße.example", "sha256/' + "B" * 43 + '=")\n'
    old = _judge(_pinning(tmp_path, pins), "strasse.example", [leaf, inter], [root])
    new = _judge(
        _pinning(tmp_path, pins, "    okhttp_version: 5\n"),
        "strasse.example",
        [leaf, inter],
        [root],
    )
    assert (old.verdict, new.verdict) == (Verdict.FAIL_ENFORCED, Verdict.NOT_PINNED)


# --- the chain OkHttp pins against on a JVM ---------------------------------------------


def test_jvm_takes_the_first_served_signer_and_never_backtracks(tmp_path: Path) -> None:
    """Issue 18 §1: two copies of the intermediate, the one from an untrusted
    root served first. The platform validates through the trusted copy (pass);
    OkHttp's cleaner on a JVM follows the first copy and gives up."""
    pki = PKI(NOW)
    root = pki.root("Root A")
    other = pki.root("Untrusted Root")
    inter = pki.intermediate("Issuing CA", root)
    copy = pki.cross_sign(inter, other)
    leaf = pki.leaf("api.example.com", inter)
    pins = f'    .add("api.example.com", "{inter.pin}")\n'
    android = _judge(_pinning(tmp_path, pins), "api.example.com", [leaf, copy, inter], [root])
    jvm = _judge(
        _pinning(tmp_path, pins, "    platform: jvm\n"),
        "api.example.com",
        [leaf, copy, inter],
        [root],
    )
    assert android.verdict is Verdict.PASS
    assert jvm.verdict is Verdict.FAIL_ENFORCED
    message = "Failed to find a trusted cert that signed O=pinaudit test PKI, CN=Issuing CA"
    assert jvm.failure == {"message": message}
    assert jvm.detail == f"OkHttp's chain cleaner (JVM) refuses the served chain: {message}"


def test_jvm_goes_past_a_trusted_intermediate_to_the_served_root(tmp_path: Path) -> None:
    """A trust store holding only the intermediate, the server sending the root:
    the cleaner does not stop at a trusted certificate that is not self-signed,
    so a pin on the (untrusted) root passes on a JVM and fails on Android."""
    pki = PKI(NOW)
    root = pki.root("Root A")
    inter = pki.intermediate("Issuing CA", root)
    leaf = pki.leaf("api.example.com", inter)
    pins = f'    .add("api.example.com", "{root.pin}")\n'
    served = [leaf, inter, root]
    android = _judge(_pinning(tmp_path, pins), "api.example.com", served, [inter])
    jvm = _judge(
        _pinning(tmp_path, pins, "    platform: jvm\n"), "api.example.com", served, [inter]
    )
    assert (android.verdict, jvm.verdict) == (Verdict.FAIL_ENFORCED, Verdict.PASS)
    org = "O=pinaudit test PKI"
    assert jvm.detail == (
        f"{root.pin} is on the path (the chain OkHttp's cleaner builds on a JVM); it differs "
        f"from the validated path: {org},CN=api.example.com → {org},CN=Issuing CA → "
        f"{org},CN=Root A instead of {org},CN=api.example.com → {org},CN=Issuing CA"
    )


@pytest.mark.parametrize(("version", "verdict"), [(4, "fail_enforced"), (5, "pass")])
def test_okhttp_5_skips_a_signer_without_the_ca_bit(
    tmp_path: Path, version: int, verdict: str
) -> None:
    """A non-CA copy of the intermediate served first: OkHttp 5's cleaner checks
    basicConstraints and skips it; 3.x and 4.x (proven on 3.13.1) follow it."""
    pki = PKI(NOW)
    root = pki.root("Root A")
    other = pki.root("Untrusted Root")
    inter = pki.intermediate("Issuing CA", root)
    not_ca = pki.issue("", subject=inter.cert.subject, key=inter.key, issuer=other)
    leaf = pki.leaf("api.example.com", inter)
    pins = f'    .add("api.example.com", "{inter.pin}")\n'
    keys = f"    platform: jvm\n    okhttp_version: {version}\n"
    got = _judge(_pinning(tmp_path, pins, keys), "api.example.com", [leaf, not_ca, inter], [root])
    assert got.verdict.value == verdict


def test_cross_sign_is_deterministic_on_a_jvm_and_path_dependent_on_android(
    tmp_path: Path,
) -> None:
    """Issue 18 §2 (the compose-lobsters #1187 shape): both roots trusted, the new
    root's cross-sign by the old one served, the old root pinned. OkHttp's
    cleaner stops at the trusted new root: a failure, not a maybe. On Android
    the chain is the platform's choice: PATH_DEPENDENT, and it says so."""
    pki = PKI(NOW)
    old = pki.root("Old Root")
    new = pki.root("New Root")
    cross = pki.cross_sign(new, old)
    inter = pki.intermediate("Issuing CA", new)
    leaf = pki.leaf("api.example.com", inter)
    pins = f'    .add("api.example.com", "{old.pin}")\n'
    served = [leaf, inter, cross]
    android = _judge(_pinning(tmp_path, pins), "api.example.com", served, [old, new])
    jvm = _judge(
        _pinning(tmp_path, pins, "    platform: jvm\n"), "api.example.com", served, [old, new]
    )
    assert jvm.verdict is Verdict.FAIL_ENFORCED and not jvm.paths
    assert android.verdict is Verdict.PATH_DEPENDENT
    assert "the platform's trust manager builds" in android.detail
    assert [p.verdict for p in android.paths] == [Verdict.FAIL_ENFORCED, Verdict.PASS]


# --- the failure text ---------------------------------------------------------------------


def test_a_pin_under_two_patterns_is_listed_twice_and_subjects_as_each_platform_prints(
    tmp_path: Path,
) -> None:
    """Issue 18 §3: OkHttp keeps a set of (pattern, pin), so one backup pin under
    *.example.com and api.example.com is listed twice; the same pin twice under
    one pattern once. Subjects: the JDK's form on a JVM, RFC 2253 on Android."""
    pki = PKI(NOW)
    root = pki.root("Root A")
    inter = pki.intermediate("Issuing CA", root)
    leaf = pki.leaf("api.example.com", inter)
    backup = str(pki.root("Backup Root").pin)
    pins = (
        f'    .add("*.example.com", "{backup}")\n'
        f'    .add("api.example.com", "{backup}", "{backup}")\n'
    )
    chain = [leaf, inter]
    jvm = _judge(_pinning(tmp_path, pins, "    platform: jvm\n"), "api.example.com", chain, [root])
    android = _judge(_pinning(tmp_path, pins), "api.example.com", chain, [root])
    assert jvm.failure is not None and android.failure is not None
    assert jvm.failure["message"] == (
        "Certificate pinning failure!\n"
        "  Peer certificate chain:\n"
        f"    {leaf.pin}: O=pinaudit test PKI, CN=api.example.com\n"
        f"    {inter.pin}: O=pinaudit test PKI, CN=Issuing CA\n"
        f"    {root.pin}: O=pinaudit test PKI, CN=Root A\n"
        "  Pinned certificates for api.example.com:\n"
        f"    {backup}\n"
        f"    {backup}"
    )
    assert android.failure["message"] == jvm.failure["message"].replace(
        "O=pinaudit test PKI, CN=", "O=pinaudit test PKI,CN="
    )


# --- pinaudit import ------------------------------------------------------------------


def _run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = main(list(argv), stdout=out, stderr=err)
    return int(status), out.getvalue(), err.getvalue()


def test_import_reads_the_file_as_the_okhttp_version_given(tmp_path: Path) -> None:
    """okhttp #5781's host:port pattern: OkHttp 4 refuses it (an error in the
    copy), OkHttp 3 pins the host; the copy says the version and platform."""
    source = tmp_path / "Pinning.kt"
    source.write_text(
        "val pinner = CertificatePinner.Builder()\n"
        f'    .add("api.example.com:8443", "sha256/{"D" * 42}A=")\n'
        "    .build()\n",
        encoding="utf-8",
    )
    status, out4, err4 = _run("import", "okhttp", str(source))
    assert "errors:" in out4
    assert status == 0
    assert "Invalid pattern: api.example.com:8443" in err4
    status, out3, err3 = _run(
        "import", "okhttp", str(source), "--okhttp-version", "3", "--platform", "jvm"
    )
    assert (status, err3) == (0, "")
    assert "    platform: jvm\n    okhttp_version: 3\n" in out3
    assert '      - host: "api.example.com"\n' in out3
    copy = load_inventory_text(out3, "copy.yaml").policies["Pinning"]
    assert (copy.okhttp_platform, copy.okhttp_major) == (Platform.JVM, 3)
    status, _, err = _run("import", "android", str(source), "--platform", "jvm")
    assert status == 2 and "--platform is for the okhttp kind only" in err


# --- found unasserted by mutation testing (issue 19, docs/mutation.md) -----------------


def test_okhttp_5_on_a_jvm_trusts_a_self_signed_leaf_without_basic_constraints() -> None:
    """An internal service with a self-signed certificate, trusted as itself
    (no BasicConstraints, as such certificates often are): OkHttp 5's
    constraint check does not apply to the trusted certificate itself."""
    pki = PKI(NOW)
    leaf = pki.issue("internal.example", dns=("internal.example",), basic_constraints=False)
    chain = clean_chain([leaf.der], [leaf.cert], check_constraints=True)
    assert chain.error is None
    assert [c.subject for c in chain.certs] == ["O=pinaudit test PKI, CN=internal.example"]
    with pytest.raises(FrozenInstanceError):
        chain.certs[0].subject = "x"  # type: ignore[misc]
