"""Properties of the importers, over generated configurations:

* no pin is dropped silently: every pin literal written in an OkHttp source,
  a TrustKit dictionary in Swift or Objective-C, a network-security-config or
  a property list is either imported (in a rule's pins or, as written, its dead
  pins) or reported — as the client's problem, a note, or "pins computed at
  run time: not imported" — on the line where it is written;
* hostile input (any bytes, any cut of a corpus fixture) gives a policy or a
  ClientConfigError, never another exception.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scanner.errors import ClientConfigError
from scanner.importers import KINDS, parse_policy
from scanner.model import ClientPolicy

DATA = Path(__file__).resolve().parent / "data" / "importers"
PROPS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@dataclass
class Written:
    """A generated file: its lines, and each pin literal with its line."""

    lines: list[str] = field(default_factory=list)
    pins: list[tuple[int, str]] = field(default_factory=list)  # (line, the pin as written)

    def add(self, line: str, *pins: str) -> None:
        self.lines.append(line)
        self.pins += [(len(self.lines), p) for p in pins]

    @property
    def data(self) -> bytes:
        return ("\n".join(self.lines) + "\n").encode()


def b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode()


def _digest(text: str) -> bytes | None:
    body = text.split("/", 1)[1] if text.startswith(("sha256/", "sha1/")) else text
    body = body.strip().rstrip("=")
    try:
        return base64.b64decode(body + "=" * (-len(body) % 4), validate=True)
    except ValueError:
        return None


def check_no_pin_dropped(policy: ClientPolicy, written: Written) -> None:
    """Each pin as written: imported (its digest in a rule), kept as a dead pin
    (its spelling), or reported on its own line."""
    imported = {p.digest for r in policy.rules for p in (*r.pins, *r.leaf_pins, *r.bad_pins)}
    dead = {d for r in policy.rules for d in r.dead_pins}
    reported = {p.location.line for p in (*policy.problems, *policy.notes, *policy.unresolved)} | {
        p.location.line for r in policy.rules for p in r.problems
    }
    for line, pin in written.pins:
        assert _digest(pin) in imported or pin in dead or line in reported, (
            f"line {line}: {pin} neither imported nor reported\n"
            + "\n".join(f"{n + 1:3} {t}" for n, t in enumerate(written.lines))
        )


digests = st.binary(min_size=32, max_size=32)

# --- OkHttp: Kotlin ------------------------------------------------------------------

PIN_FORMS = ("literal", "const", "template", "concat", "buildconfig", "call", "short", "junk")
HOST_FORMS = ("literal", "const", "alias", "buildconfig", "call")


@st.composite
def kotlin_sources(draw: st.DrawFn) -> Written:
    w = Written()
    w.add("import okhttp3.CertificatePinner")
    w.add("")
    counter = iter(range(10_000))
    later: list[tuple[str, tuple[str, ...]]] = []  # declarations written after the pinner

    def new_pin() -> str:
        return "sha256/" + b64(draw(digests))

    def pin_arg() -> tuple[str, tuple[str, ...]]:
        form = draw(st.sampled_from(PIN_FORMS))
        n = next(counter)
        if form == "literal":
            p = new_pin()
            return f'"{p}"', (p,)
        if form == "const":
            p = new_pin()
            later.append((f'private const val PIN{n} = "{p}"', (p,)))
            return f"PIN{n}", ()
        if form == "template":
            key = b64(draw(digests))
            later.append((f'private const val KEY{n} = "{key}"', ()))
            return f'"sha256/${{KEY{n}}}"', (f"sha256/{key}",)
        if form == "concat":
            p = new_pin()
            return f'"sha256/" + "{p[7:]}"', (p,)
        if form == "buildconfig":
            return f"BuildConfig.PIN{n}", ()
        if form == "call":
            return f'remote.getString("pin{n}")', ()
        if form == "short":
            return '"sha256/AAAA"', ("sha256/AAAA",)
        return '"sha256/not*base64"', ("sha256/not*base64",)

    def host_arg() -> str:
        form = draw(st.sampled_from(HOST_FORMS))
        n = next(counter)
        if form == "literal":
            return f'"h{n}.example.com"'
        if form == "const":
            later.append((f'private const val HOST{n} = "*.h{n}.example.com"', ()))
            return f"HOST{n}"
        if form == "alias":
            later.append((f'private const val BASE{n} = "h{n}.example.net"', ()))
            later.append((f"private val ALIAS{n} = BASE{n}", ()))
            return f"ALIAS{n}"
        if form == "buildconfig":
            return "BuildConfig.HOST"
        return "config.host()"

    style = draw(st.sampled_from(("chain", "apply", "var")))
    w.add("object Pinning {")
    if style == "chain":
        w.add("    val pinner = CertificatePinner.Builder()")
    elif style == "apply":
        w.add("    val pinner = CertificatePinner.Builder().apply {")
    else:
        w.add("    val builder = CertificatePinner.Builder()")
    for _ in range(draw(st.integers(1, 4))):
        host = host_arg()
        args = [pin_arg() for _ in range(draw(st.integers(1, 3)))]
        split = draw(st.booleans())
        head = {
            "chain": "        .add(",
            "apply": "        add(",
            "var": "    fun a() = builder.add(",
        }
        if not split:
            text = ", ".join([host] + [a for a, _ in args])
            w.add(f"{head[style]}{text})", *(p for _, ps in args for p in ps))
        else:
            w.add(f"{head[style]}{host},")
            for n, (a, ps) in enumerate(args):
                end = ")" if n == len(args) - 1 else ","
                w.add(f"            {a}{end}", *ps)
    if draw(st.booleans()):  # a loop over a list, known or not
        n = next(counter)
        p1, p2 = new_pin(), new_pin()
        known = draw(st.booleans())
        source = f"LIST{n}" if known else f"remote.pins{n}"
        if style == "var":
            w.add(f'    fun b() = {source}.forEach {{ builder.add("l{n}.example.com", it) }}')
        elif style == "apply":
            w.add(f'        {source}.forEach {{ pin -> add("l{n}.example.com", pin) }}')
        later.append((f'private val LIST{n} = listOf("{p1}",', (p1,)))
        later.append((f'    "{p2}")', (p2,)))
    if style == "chain":
        w.add("        .build()")
    elif style == "apply":
        w.add("    }.build()")
    w.add("}")
    if draw(st.booleans()):  # a pin nobody uses
        p = new_pin()
        later.append((f'private val UNUSED = "{p}"', (p,)))
    for line, pins in later:
        w.add(line, *pins)
    return w


@PROPS
@given(kotlin_sources())
def test_okhttp_never_drops_a_pin_silently(written: Written) -> None:
    policy = parse_policy("okhttp", written.data, "Pinning.kt")
    check_no_pin_dropped(policy, written)


# --- TrustKit: Swift and Objective-C ----------------------------------------------------


@st.composite
def trustkit_sources(draw: st.DrawFn) -> tuple[Written, str]:
    objc = draw(st.booleans())
    w = Written()
    s = (lambda t: f'@"{t}"') if objc else (lambda t: f'"{t}"')
    yes = "@YES" if objc else "true"
    no = "@NO" if objc else "false"
    opened, closed = ("@{", "}") if objc else ("[", "]")
    arr_open = "@[" if objc else "["
    decls: list[tuple[str, tuple[str, ...]]] = []
    counter = iter(range(10_000))

    def decl(name: str, value: str, *pins: str) -> None:
        if objc:
            decls.append((f"static NSString *const {name} = {value};", pins))
        else:
            decls.append((f"let {name} = {value}", pins))

    w.add("#import <TrustKit/TrustKit.h>" if objc else "import TrustKit")
    w.add("NSDictionary *config = @{" if objc else "let config: [String: Any] = [")
    w.add(f"    kTSKSwizzleNetworkDelegates: {no},")
    w.add(f"    kTSKPinnedDomains: {opened}")
    for _ in range(draw(st.integers(1, 3))):
        host_form = draw(st.sampled_from(("literal", "const", "unknown")))
        n = next(counter)
        if host_form == "literal":
            host = s(f"d{n}.example.com")
        elif host_form == "const":
            host = f"kHost{n}"
            decl(host, s(f"c{n}.example.org"))
        else:
            host = f"remoteHost{n}"
        w.add(f"        {host}: {opened}")
        if draw(st.booleans()):
            w.add(f"            kTSKIncludeSubdomains: {yes},")
        enforce = draw(st.sampled_from((yes, no, "runtimeFlag")))
        w.add(f"            kTSKEnforcePinning: {enforce},")
        if draw(st.booleans()):
            w.add(f"            kTSKExpirationDate: {s('2027-06-30')},")
        w.add(f"            kTSKPublicKeyHashes: {arr_open}")
        for _ in range(draw(st.integers(0, 3))):
            form = draw(st.sampled_from(("literal", "const", "unknown", "short")))
            m = next(counter)
            pin = b64(draw(digests))
            if form == "literal":
                w.add(f"                {s(pin)},", pin)
            elif form == "const":
                w.add(f"                kPin{m},")
                decl(f"kPin{m}", s(pin), pin)
            elif form == "unknown":
                w.add(f"                Secrets.pin{m},")
            else:
                w.add(f"                {s('AAAA')},", "AAAA")
        w.add("            ],")
        w.add(f"        {closed},")
    w.add(f"    {closed}")
    w.add("};" if objc else "]")
    if draw(st.booleans()):
        pin = b64(draw(digests))
        decl("kUnused", s(pin), pin)
    for line, pins in decls:
        w.add(line, *pins)
    return w, "Config.m" if objc else "Config.swift"


@PROPS
@given(trustkit_sources())
def test_trustkit_code_never_drops_a_pin_silently(source: tuple[Written, str]) -> None:
    written, name = source
    policy = parse_policy("trustkit", written.data, name)
    check_no_pin_dropped(policy, written)


# --- network-security-config ------------------------------------------------------------


@st.composite
def nsc_files(draw: st.DrawFn) -> Written:
    w = Written()
    w.add('<?xml version="1.0" encoding="utf-8"?>')
    w.add("<network-security-config>")
    counter = iter(range(10_000))

    def config(depth: int) -> None:
        n = next(counter)
        w.add("  " * depth + "<domain-config>")
        sub = draw(st.sampled_from(("true", "false")))
        w.add("  " * depth + f'  <domain includeSubdomains="{sub}">n{n}.example.com</domain>')
        if draw(st.booleans()):
            w.add("  " * depth + "  <pin-set>")
            for _ in range(draw(st.integers(0, 3))):
                form = draw(st.sampled_from(("canonical", "unpadded", "short", "junk", "sha1")))
                digest = draw(digests)
                text = {
                    "canonical": b64(digest),
                    "unpadded": b64(digest).rstrip("="),
                    "short": b64(digest[:20]),
                    "junk": "not base64!",
                    "sha1": b64(digest),
                }[form]
                algo = "SHA-1" if form == "sha1" else "SHA-256"
                w.add("  " * depth + f'    <pin digest="{algo}">{text}</pin>', text)
            w.add("  " * depth + "  </pin-set>")
        if draw(st.booleans()):
            w.add("  " * depth + '  <trustkit-config enforcePinning="true"/>')
        if depth < 2 and draw(st.booleans()):
            config(depth + 1)
        w.add("  " * depth + "</domain-config>")

    for _ in range(draw(st.integers(1, 3))):
        config(1)
    w.add("</network-security-config>")
    return w


@PROPS
@given(nsc_files(), st.sampled_from(("android", "trustkit-android")))
def test_nsc_never_drops_a_pin_silently(written: Written, kind: str) -> None:
    policy = parse_policy(kind, written.data, "nsc.xml")
    check_no_pin_dropped(policy, written)


# --- property lists ----------------------------------------------------------------


@st.composite
def plists(draw: st.DrawFn) -> tuple[Written, list[tuple[int, str, str]]]:
    """An Info.plist with a TSKConfiguration, ATS pins and app-defined pin arrays;
    each pin with the subtree it is in."""
    w = Written()
    where: list[tuple[int, str, str]] = []
    lead = draw(st.sampled_from(("", "\n", "  \n\t", "\ufeff\n")))
    *before, last = lead.split("\n")
    for part in before:
        w.add(part)
    w.add(last + '<?xml version="1.0" encoding="UTF-8"?>')
    w.add('<plist version="1.0">')
    w.add("<dict>")

    def pin_line(indent: str, subtree: str, dicted: bool = False) -> None:
        digest = draw(digests)
        text = draw(st.sampled_from((b64(digest), b64(digest[:20]), "junk")))
        if dicted:
            w.add(f"{indent}<dict><key>SPKI-SHA256-BASE64</key><string>{text}</string></dict>")
        else:
            w.add(f"{indent}<string>{text}</string>")
        if len(text) > 40:
            where.append((len(w.lines), text, subtree))

    counter = iter(range(10_000))
    w.add("  <key>TSKConfiguration</key>")
    w.add("  <dict>")
    w.add("    <key>TSKPinnedDomains</key>")
    w.add("    <dict>")
    for _ in range(draw(st.integers(1, 3))):
        w.add(f"      <key>t{next(counter)}.example.com</key>")
        w.add("      <dict>")
        w.add("        <key>TSKEnforcePinning</key>")
        w.add(f"        <{draw(st.sampled_from(('true', 'false')))}/>")
        w.add("        <key>TSKPublicKeyHashes</key>")
        w.add("        <array>")
        for _ in range(draw(st.integers(0, 3))):
            pin_line("          ", "TSKConfiguration")
        w.add("        </array>")
        w.add("      </dict>")
    w.add("    </dict>")
    w.add("  </dict>")
    w.add("  <key>NSAppTransportSecurity</key>")
    w.add("  <dict>")
    w.add("    <key>NSPinnedDomains</key>")
    w.add("    <dict>")
    for _ in range(draw(st.integers(1, 2))):
        w.add(f"      <key>a{next(counter)}.example.com</key>")
        w.add("      <dict>")
        w.add("        <key>NSPinnedCAIdentities</key>")
        w.add("        <array>")
        for _ in range(draw(st.integers(0, 2))):
            pin_line("          ", "NSAppTransportSecurity", dicted=True)
        w.add("        </array>")
        w.add("      </dict>")
    w.add("    </dict>")
    w.add("  </dict>")
    if draw(st.booleans()):
        w.add("  <key>AppPinnedKeys</key>")
        w.add("  <array>")
        for _ in range(draw(st.integers(1, 2))):
            pin_line("    ", "app")
        w.add("  </array>")
    w.add("</dict>")
    w.add("</plist>")
    return w, where


@PROPS
@given(plists(), st.sampled_from(("trustkit", "ios")))
def test_plist_never_drops_a_pin_silently(
    generated: tuple[Written, list[tuple[int, str, str]]], kind: str
) -> None:
    written, where = generated
    other = "NSAppTransportSecurity" if kind == "trustkit" else "TSKConfiguration"
    written.pins = [(line, text) for line, text, subtree in where if subtree != other]
    policy = parse_policy(kind, written.data, "Info.plist")
    check_no_pin_dropped(policy, written)


# --- hostile input ------------------------------------------------------------------

FIXTURES = sorted(p for p in DATA.iterdir())


def _parse_or_input_error(kind: str, data: bytes, name: str) -> None:
    try:
        policy = parse_policy(kind, data, name)
    except ClientConfigError:
        return
    assert isinstance(policy, ClientPolicy)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(FIXTURES),
    st.sampled_from(KINDS),
    st.integers(0, 4000),
    st.integers(0, 400),
    st.binary(max_size=40),
)
def test_cut_fixtures_give_a_policy_or_an_input_error(
    path: Path, kind: str, at: int, length: int, insert: bytes
) -> None:
    data = path.read_bytes()
    at = at % (len(data) + 1)
    mutated = data[:at] + insert + data[at + length :]
    _parse_or_input_error(kind, mutated, path.name)


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(KINDS),
    st.binary(max_size=3000),
    st.sampled_from(("x.kt", "x.swift", "x.m", "x.java", "x.xml", "x.plist", "x.json", "x.txt")),
)
def test_any_bytes_give_a_policy_or_an_input_error(kind: str, data: bytes, name: str) -> None:
    _parse_or_input_error(kind, data, name)


def test_fuzz_target_runs_clean(tmp_path: Path) -> None:
    """fuzz/fuzz_importers.py for a bounded number of inputs (coverage-guided with
    atheris, random mutation without); longer runs: README, "Fuzzing"."""
    import os
    import subprocess
    import sys

    root = DATA.parent.parent.parent
    done = subprocess.run(
        [
            sys.executable,
            str(root / "fuzz" / "fuzz_importers.py"),
            str(tmp_path / "corpus"),
            "-runs=1500",
            "-max_total_time=20",
            "-seed=1",
            "-timeout=30",
            "-max_len=65536",
            f"-artifact_prefix={tmp_path}/",
        ],
        capture_output=True,
        text=True,
        cwd=root,
        env=dict(os.environ),
        timeout=300,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-6000:]
    assert "Done " in output
    assert not list(tmp_path.glob("crash-*"))
