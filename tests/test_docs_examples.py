"""The examples in README.md and docs/*.md stay true.

Every ``console`` block of those pages is run for real and its output compared
with what the page shows; every relative link must point at a file (and a
heading) that exists. How to write an example so that it is tested is in
docs/development.md, "Examples in the docs"; in short:

- A fenced block whose language is ``console`` is run. A line starting with
  ``$ `` is a command; it continues on the next line while the line ends with
  ``\\`` or a here-document (``<<EOF``) is open. The lines after it, up to the
  next command, are its output: stdout and stderr together, as a terminal
  shows them. Commands with no output shown must print nothing.
- Output is compared line by line, exactly, apart from trailing spaces and
  these placeholders for what changes from run to run:
  ``{{date}}`` (``2027-02-27``, ``2027-02-27T15:41:48Z``, ``2027-02-27 15:41:48Z``),
  ``{{number}}`` (``3``, ``0.25``, ``1.79e+09``), ``{{port}}``, ``{{path}}`` (no spaces),
  ``{{pin}}`` (the base64 of a SHA-256 digest), ``{{...}}`` (any text within
  the line), and a line that is only ``...`` (any number of lines, none too).
- A block with ``file=NAME`` after its language (```` ```yaml file=broken.yaml ````)
  is written to NAME before the blocks after it run.
- The blocks of one page run in order, in one fresh temporary directory, each
  block in one ``bash`` (so ``echo $?`` reports the command before it). The
  ``pinaudit`` and ``scan`` of this installation come first on PATH.

What every page's examples can use (the "your own endpoint" of the quickstart):

- ``$HOST:$PORT``: a TLS server on loopback (127.100.0.1, the docs tests'
  block) serving ``CN=api.example.com`` (subjectAltName ``api.example.com``
  and its address), issued by ``CN=Example Issuing CA`` under
  ``CN=Example Root CA``. Its keys are derived from fixed seeds, so its pins
  never change; its dates follow the clock.
- ``$SSL_CERT_FILE``: certifi's bundle plus ``CN=Example Root CA``: the
  machine's CA bundle (``trust: system``) of a company with a private root.
- ``chain.pem``: the chain that server sends (leaf, then issuing CA).
- ``inventories/``: a copy of the repository's.
- ``$TMPDIR``: the page's directory, so temporary files go away with it.

Programs the examples call besides bash (``openssl``) are peers: missing, the
page is skipped locally and fails under ``PINAUDIT_REQUIRE_PEERS=1``.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import certifi
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from peers import require_program

from scanner.fleet.pki import PKI, Issued
from scanner.fleet.server import Behaviour, Credential, FleetProcess, Site, TlsConfig, write_config

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
STAND_IN_ADDRESS = "127.100.0.1"  # the docs tests' own loopback block
BLOCK_SECONDS = 120.0  # a hung example fails instead of stalling the suite

# --- reading the pages ------------------------------------------------------------------

FENCE = re.compile(r"^(?P<indent> *)(?P<fence>```+|~~~+)(?P<info>.*)$")


@dataclass(frozen=True)
class Block:
    page: Path
    line: int  # 1-based line of the opening fence
    end: int  # 1-based line of the closing fence
    language: str
    options: dict[str, str]
    text: str

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def fenced_blocks(page: Path) -> list[Block]:
    lines = page.read_text().splitlines()
    blocks: list[Block] = []
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if not opening:
            index += 1
            continue
        fence, indent = opening["fence"], len(opening["indent"])
        words = opening["info"].split()
        language = words[0] if words else ""
        options = dict(word.split("=", 1) for word in words[1:] if "=" in word)
        body: list[str] = []
        end = index + 1
        while end < len(lines) and not (
            lines[end].strip().startswith(fence[0] * len(fence))
            and not lines[end].strip().strip(fence[0])
        ):
            body.append(lines[end][indent:] if lines[end][:indent].isspace() else lines[end])
            end += 1
        blocks.append(Block(page, index + 1, end + 1, language, options, "\n".join(body)))
        index = end + 1
    return blocks


@dataclass(frozen=True)
class Example:
    command: str
    expected: list[str]


HEREDOC = re.compile(r"<<-?\s*(['\"]?)([A-Za-z_][A-Za-z0-9_]*)\1")


def console_examples(block: Block) -> list[Example]:
    lines = block.text.splitlines()
    examples: list[Example] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        if not line.startswith("$ "):
            raise AssertionError(f"{block.where}: output before the first command: {line!r}")
        command = [line[2:]]
        index += 1
        terminators = [m[2] for m in HEREDOC.finditer(line)]
        while index < len(lines) and (command[-1].endswith("\\") or terminators):
            command.append(lines[index])
            if terminators and lines[index].strip() == terminators[0]:
                terminators.pop(0)
            index += 1
        expected: list[str] = []
        while index < len(lines) and not lines[index].startswith("$ "):
            expected.append(lines[index])
            index += 1
        examples.append(Example("\n".join(command), expected))
    return examples


# --- comparing ------------------------------------------------------------------------

PLACEHOLDERS = {
    "date": r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?Z?)?",
    "number": r"-?\d+(?:\.\d+)?(?:e[+-]?\d+)?",
    "port": r"\d{1,5}",
    "path": r"\S+",
    "pin": r"[A-Za-z0-9+/]{43}=",
    "...": r".*?",
}
PLACEHOLDER = re.compile(r"\{\{(" + "|".join(re.escape(p) for p in PLACEHOLDERS) + r")\}\}")


def expected_pattern(expected: list[str]) -> re.Pattern[str]:
    parts = []
    for line in expected:
        if line.strip() == "...":
            parts.append(r"(?:[^\n]*\n)*?")
            continue
        pieces = PLACEHOLDER.split(line.rstrip())
        regex = "".join(
            PLACEHOLDERS[piece] if n % 2 else re.escape(piece) for n, piece in enumerate(pieces)
        )
        parts.append(regex + r"[ \t]*\n")
    return re.compile("".join(parts))


def normalised(output: str) -> str:
    lines = [line.rstrip() for line in output.splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    return "".join(line + "\n" for line in lines)


def matches(expected: list[str], output: str) -> bool:
    while expected and not expected[-1].strip():
        expected = expected[:-1]
    return expected_pattern(expected).fullmatch(normalised(output)) is not None


# --- the world the examples run in ------------------------------------------------------


def seeded_key(seed: str) -> ec.EllipticCurvePrivateKey:
    """A P-256 key that is the same on every run: its pin can be printed in the docs."""
    order = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
    value = int.from_bytes(hashlib.sha256(f"pinaudit docs: {seed}".encode()).digest(), "big")
    return ec.derive_private_key(value % (order - 1) + 1, ec.SECP256R1())


@dataclass(frozen=True)
class World:
    env: dict[str, str]
    chain_pem: bytes


def stand_in_chain() -> tuple[Issued, Issued, Issued]:
    pki = PKI(datetime.now(timezone.utc), org=None)
    root = pki.root("Example Root CA", key=seeded_key("root"))
    issuing = pki.intermediate("Example Issuing CA", root, key=seeded_key("issuing"))
    leaf = pki.leaf(
        "api.example.com",
        issuing,
        key=seeded_key("leaf"),
        dns=("api.example.com",),
        ips=(STAND_IN_ADDRESS,),
    )
    return root, issuing, leaf


def scripts_directory() -> Path:
    here = Path(sys.executable).parent
    if (here / "pinaudit").exists():
        return here
    found = shutil.which("pinaudit")
    assert found, "pinaudit is not installed (pip install -e .)"
    return Path(found).parent


@contextmanager
def serving_the_world(directory: Path) -> Iterator[World]:
    root, issuing, leaf = stand_in_chain()
    bundle = directory / "ca-bundle.pem"
    bundle.write_bytes(Path(certifi.where()).read_bytes() + b"\n" + root.pem)
    site = Site(STAND_IN_ADDRESS, 0, Behaviour.TLS, TlsConfig(Credential.of(leaf, issuing)))
    with FleetProcess(write_config([site], directory / "site")) as served:
        (address, port), *_ = served.listening
        env = {
            "PATH": f"{scripts_directory()}{os.pathsep}{os.environ.get('PATH', os.defpath)}",
            "HOME": str(directory),
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            "NO_COLOR": "1",
            "TERM": "dumb",
            "PYTHONUNBUFFERED": "1",  # stdout and stderr interleave as on a terminal
            "HOST": address,
            "PORT": str(port),
            "SSL_CERT_FILE": str(bundle),
        }
        for name in ("PINAUDIT_REQUIRE_PEERS",):
            if name in os.environ:
                env[name] = os.environ[name]
        yield World(env, leaf.pem + issuing.pem)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with serving_the_world(tmp_path_factory.mktemp("docs-world")) as served:
        yield served


MARK = "\x1e{}\x1e\n"
MARK_SPLIT = re.compile("\x1e[0-9]+\x1e\n")


def run_block(examples: list[Example], cwd: Path, env: dict[str, str]) -> list[str]:
    """Run the commands in one bash; return each command's output."""
    script = []
    for number, example in enumerate(examples):
        script.append(f"__status=$?; printf '{MARK.format(number)!s}'; (exit $__status)")
        script.append(example.command)
    completed = subprocess.run(
        ["bash", "--noprofile", "--norc", "-c", "\n".join(script).replace("\x1e", "\\036")],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        timeout=BLOCK_SECONDS,
        check=False,
    )
    outputs = MARK_SPLIT.split(completed.stdout.decode(errors="replace"))
    assert len(outputs) == len(examples) + 1, outputs
    return outputs[1:]


def programs_of(examples: list[Example]) -> set[str]:
    """The first word of each command and of each stage of its pipelines."""
    names = set()
    for example in examples:
        for stage in re.split(r"\||&&|;", example.command.split("\n", 1)[0]):
            words = stage.split()
            if words and re.fullmatch(r"[a-z][a-z0-9_.-]*", words[0]):
                names.add(words[0])
    return names


def check_page(page: Path, world: World, directory: Path) -> int:
    """Run every example of `page`; return how many commands ran."""
    (directory / "chain.pem").write_bytes(world.chain_pem)
    shutil.copytree(ROOT / "inventories", directory / "inventories")
    env = {**world.env, "TMPDIR": str(directory)}  # what examples leave behind goes too
    blocks = fenced_blocks(page)
    ran = 0
    for block in blocks:
        if "file" in block.options:
            target = directory / block.options["file"]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(block.text + "\n")
        if block.language != "console":
            continue
        examples = console_examples(block)
        for program in sorted(programs_of(examples)):
            if shutil.which(program, path=world.env["PATH"]) is None:
                require_program(program)
        outputs = run_block(examples, directory, env)
        for example, output in zip(examples, outputs, strict=True):
            if not matches(example.expected, output):
                diff = "\n".join(
                    difflib.unified_diff(
                        example.expected,
                        normalised(output).splitlines(),
                        "shown",
                        "printed",
                        lineterm="",
                    )
                )
                pytest.fail(f"{block.where}: $ {example.command}\n{diff}", pytrace=False)
            ran += 1
    return ran


PEER_PROGRAMS = {"openssl", "jq"}  # installed by .ci/install-peers


def pages_to_run() -> list[object]:
    """Every page; those whose examples call a peer program are marked `peers`."""
    params: list[object] = []
    for page in PAGES:
        programs = {
            program
            for block in fenced_blocks(page)
            if block.language == "console"
            for program in programs_of(console_examples(block))
        }
        marks = [pytest.mark.peers] if programs & PEER_PROGRAMS else []
        params.append(pytest.param(page, marks=marks, id=str(page.relative_to(ROOT))))
    return params


@pytest.mark.parametrize("page", pages_to_run())
def test_every_shown_output_is_what_the_command_prints(
    page: Path, world: World, tmp_path: Path
) -> None:
    check_page(page, world, tmp_path)


def test_the_readme_shows_the_demo_and_the_quickstart_for_real(
    world: World, tmp_path: Path
) -> None:
    commands = [
        example.command
        for block in fenced_blocks(ROOT / "README.md")
        if block.language == "console"
        for example in console_examples(block)
    ]
    for needle in ("pinaudit demo", "pinaudit pin", "pinaudit validate", "scan "):
        assert any(c.startswith(needle) for c in commands), needle


# --- links ----------------------------------------------------------------------------

LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
INLINE_CODE = re.compile(r"`+[^`]*`+")


def outside_fences(page: Path) -> list[str]:
    """The lines of `page` that are not in a fenced block."""
    inside = {n for b in fenced_blocks(page) for n in range(b.line, b.end + 1)}
    return [line for n, line in enumerate(page.read_text().splitlines(), 1) if n not in inside]


def anchors(page: Path) -> set[str]:
    """GitHub's anchors for the headings of `page`: lower case, punctuation dropped,
    spaces as hyphens (a repeated heading's -1, -2 … are not needed here)."""
    found = set()
    for line in outside_fences(page):
        heading = re.match(r"#{1,6} (.+)$", line)
        if heading:
            found.add(re.sub(r"[^\w\- ]", "", heading[1].strip().lower()).replace(" ", "-"))
    return found


def links(page: Path) -> list[str]:
    return LINK.findall("\n".join(INLINE_CODE.sub("", line) for line in outside_fences(page)))


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_every_relative_link_points_at_something_that_exists(page: Path) -> None:
    broken = []
    for target in links(page):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
            continue
        path, _, fragment = target.partition("#")
        destination = (page.parent / path).resolve() if path else page
        if not destination.is_relative_to(ROOT):
            broken.append(f"{target}: outside the repository")
        elif not destination.exists():
            broken.append(f"{target}: no such file")
        elif fragment and destination.suffix == ".md" and fragment not in anchors(destination):
            broken.append(f"{target}: no heading #{fragment} in {destination.name}")
    assert not broken, f"{page.relative_to(ROOT)}: {broken}"


# --- dependencies -----------------------------------------------------------------------


def declared(array: str) -> list[str]:
    """Package names of a list in pyproject.toml (`dependencies`, or an extra)."""
    text = (ROOT / "pyproject.toml").read_text()
    found = re.search(rf"^{array} = \[\n(.*?)^\]", text, flags=re.MULTILINE | re.DOTALL)
    assert found, array
    return re.findall(r'^\s*"([A-Za-z0-9_.-]+)', found[1], flags=re.MULTILINE)


def reasons(page: Path) -> dict[str, str]:
    """The `| package | why |` tables of `page`: each package named → why."""
    rows: dict[str, str] = {}
    in_table = False
    for line in outside_fences(page):
        if re.fullmatch(r"\| package \| why \|", line.strip()):
            in_table = True
        elif not line.startswith("|"):
            in_table = False
        elif in_table:
            first, *_, why = (cell.strip() for cell in line.strip().strip("|").split("|"))
            for name in re.findall(r"`([A-Za-z0-9_.-]+)`", first):
                rows[name.lower()] = why
    return rows


@pytest.mark.parametrize(
    ("array", "page"),
    [("dependencies", "README.md"), ("test", "docs/development.md")],
)
def test_every_dependency_is_listed_with_why(array: str, page: str) -> None:
    listed = reasons(ROOT / page)
    for name in declared(array):
        assert len(listed.get(name.lower(), "")) > 10, f"{page} does not say why {name} is needed"
