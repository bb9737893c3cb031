"""Property tests of the inventory loader: whatever the input, it returns an
Inventory or raises InventoryError with well-formed problems; and valid
generated inventories load to exactly the endpoints they describe."""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scanner.errors import InventoryError
from scanner.exporters.contract import RESERVED_LABELS
from scanner.inventory import load_inventory, load_inventory_text, yamlnodes
from scanner.model import Inventory

SETTINGS = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

X1 = "sha256/C5+lpZ7tcVwmwQIMcRtPbsQtWLABXhQzejna0wHFr8M="
G2_B64 = "i7WTqTvh0OioIruIfFR4kMPnBqrS2rdiVPl/s2uC/CY="
KEYS = [
    "version",
    "defaults",
    "include",
    "pinsets",
    "endpoints",
    "port",
    "timeout",
    "warn_days",
    "critical_days",
    "pinset_warn_days",
    "trust",
    "labels",
    "host",
    "name",
    "sni",
    "pinset",
    "pins",
    "expires",
    "digest",
    "<<",
    "env",
    "team",
    "letsencrypt",
]


@pytest.fixture(
    autouse=True,
    params=yamlnodes._LOADERS,
    ids=lambda loader: "libyaml" if "CLoader" in loader.__name__ else "pyyaml",
)
def yaml_parser(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every property holds with libyaml's parser (when PyYAML has it) and PyYAML's own."""
    monkeypatch.setattr(yamlnodes, "_Loader", request.param)


@pytest.fixture(scope="module")
def empty_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Includes and trust paths resolve here: nothing to find, nothing to scan."""
    yield tmp_path_factory.mktemp("inventory-props")


def load_or_problems(text: str, base_dir: Path) -> Inventory | InventoryError:
    try:
        return load_inventory_text(text, "gen.yaml", base_dir=base_dir)
    except InventoryError as exc:
        return exc


def check_outcome(outcome: Inventory | InventoryError, root: str) -> None:
    if isinstance(outcome, Inventory):
        assert outcome.files[0] == root
        return
    assert outcome.problems, "an InventoryError always carries its problems"
    for problem in outcome.problems:
        assert problem.location.line >= 1
        assert problem.location.column >= 1
        assert problem.message
        assert str(problem).startswith(f"{problem.location.file}:")
    own = [
        (p.location.line, p.location.column) for p in outcome.problems if p.location.file == root
    ]
    assert own == sorted(own), "problems come in file order"


# --- (1) arbitrary input ---------------------------------------------------------------

yaml_tokens = st.sampled_from(
    [
        "version: 1\n",
        "endpoints:\n",
        "  - ",
        "host: ",
        "a.example",
        "port: ",
        "443",
        "pinsets:",
        " {a: {pins: [",
        X1,
        "]}}",
        "pinset: a",
        "labels: {env: x}",
        "include: ['*.yaml']",
        "&a ",
        "*a",
        "<<: *a",
        "!!python/object:os.system ",
        "!!int ",
        "!!binary ",
        "!x ",
        "[",
        "]",
        "{",
        "}",
        ":",
        ",",
        "-",
        "? ",
        "---\n",
        "...\n",
        "\n",
        "  ",
        "\t",
        "'",
        '"',
        "#",
        "~",
        "2027-02-30",
        "1.5s",
        "\x00",
        "\ufeff",
        "\u2028",
    ]
)


@SETTINGS
@given(text=st.text())
def test_arbitrary_text_never_escapes_as_another_exception(text: str, empty_dir: Path) -> None:
    check_outcome(load_or_problems(text, empty_dir), "gen.yaml")


@SETTINGS
@given(tokens=st.lists(yaml_tokens, max_size=40))
def test_yaml_token_soup_never_escapes(tokens: list[str], empty_dir: Path) -> None:
    check_outcome(load_or_problems("".join(tokens), empty_dir), "gen.yaml")


@SETTINGS
@given(data=st.binary(max_size=400))
def test_arbitrary_bytes_in_a_file(data: bytes, empty_dir: Path) -> None:
    path = empty_dir / "bytes.yaml"
    path.write_bytes(data)
    try:
        outcome: Inventory | InventoryError = load_inventory(path)
    except InventoryError as exc:
        outcome = exc
    check_outcome(outcome, str(path))


# --- (2) structured documents ------------------------------------------------------------

texts = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),
    texts,
    st.sampled_from([X1, G2_B64, "5s", "500ms", "2027-06-01", "::1", "10.0.0.1", "certifi"]),
    st.dates(),
    st.datetimes(),
)
keys = st.one_of(st.sampled_from(KEYS), texts)
values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=4),
    max_leaves=20,
)
# include patterns stay inside the (empty) base directory
include_patterns = st.lists(
    st.one_of(
        st.sampled_from(["*.yaml", "teams/*.yaml", "**/*.yaml", "x.yaml", ""]),
        texts.filter(lambda t: not t.startswith(("/", "~")) and ".." not in t),
    ),
    max_size=3,
)
documents = st.fixed_dictionaries(
    {},
    optional={
        "version": st.one_of(st.just(1), scalars),
        "defaults": st.one_of(st.dictionaries(keys, values, max_size=6), values),
        "include": st.one_of(include_patterns, scalars),
        "pinsets": st.one_of(
            st.dictionaries(
                texts,
                st.one_of(st.dictionaries(st.sampled_from(KEYS), values, max_size=4), values),
                max_size=3,
            ),
            values,
        ),
        "endpoints": st.one_of(
            st.lists(st.one_of(st.dictionaries(keys, values, max_size=6), values), max_size=4),
            values,
        ),
    },
)


@SETTINGS
@given(document=documents, extra=st.dictionaries(texts, values, max_size=2))
def test_structured_documents_never_escape(
    document: dict[str, Any], extra: dict[str, Any], empty_dir: Path
) -> None:
    text = yaml.safe_dump({**document, **extra}, allow_unicode=True)
    check_outcome(load_or_problems(text, empty_dir), "gen.yaml")


# --- (3) valid inventories load to exactly what they say ---------------------------------

dns_labels = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True)
tlds = st.from_regex(r"[a-z][a-z0-9]{0,5}", fullmatch=True)
dns_names = st.builds(
    lambda labels, tld: ".".join([*labels, tld]), st.lists(dns_labels, max_size=3), tlds
)
hosts = st.one_of(
    dns_names,
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map(str),
)
label_names = st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_]{0,8}", fullmatch=True).filter(
    lambda n: not n.startswith("__") and n not in RESERVED_LABELS
)
label_sets = st.dictionaries(label_names, texts, max_size=3)


@st.composite
def endpoint_specs(draw: st.DrawFn) -> dict[str, Any]:
    spec: dict[str, Any] = {"host": draw(hosts)}
    if draw(st.booleans()):
        spec["port"] = draw(st.integers(1, 65535))
    sni = draw(st.one_of(st.none(), st.just(False), dns_names))
    if sni is not None:
        spec["sni"] = sni
    if draw(st.booleans()):
        spec["labels"] = draw(label_sets)
    if draw(st.booleans()):
        spec["name"] = draw(st.text(min_size=1, max_size=10).filter(str.strip))
    return spec


def expected_name(spec: dict[str, Any], port: int) -> str:
    """DESIGN §3: host:port ([v6]:port), or sni@host:port when the SNI differs."""
    if "name" in spec:
        return str(spec["name"])
    host = spec["host"]
    shown = f"[{host}]" if ":" in host else host
    sni = spec.get("sni")
    return f"{sni}@{shown}:{port}" if sni and sni != host else f"{shown}:{port}"


def expected_sni(spec: dict[str, Any]) -> str | None:
    if "sni" in spec:
        return spec["sni"] or None
    try:
        ipaddress.ip_address(spec["host"])
    except ValueError:
        return str(spec["host"])
    return None


@SETTINGS
@given(
    specs=st.lists(endpoint_specs(), max_size=6),
    default_port=st.integers(1, 65535),
    default_labels=label_sets,
)
def test_valid_generated_inventories_load_exactly(
    specs: list[dict[str, Any]],
    default_port: int,
    default_labels: dict[str, str],
    empty_dir: Path,
) -> None:
    names = [expected_name(s, s.get("port", default_port)) for s in specs]
    if len(set(names)) != len(names):
        return  # duplicates are covered by the example tests
    document = {
        "version": 1,
        "defaults": {"port": default_port, "labels": default_labels},
        "endpoints": specs,
    }
    inventory = load_inventory_text(yaml.safe_dump(document), "gen.yaml", base_dir=empty_dir)
    assert [e.name for e in inventory.endpoints] == names
    for endpoint, spec in zip(inventory.endpoints, specs, strict=True):
        assert endpoint.host == spec["host"]
        assert endpoint.port == spec.get("port", default_port)
        assert endpoint.sni == expected_sni(spec)
        assert endpoint.labels == tuple(
            sorted({**default_labels, **spec.get("labels", {})}.items())
        )
        assert endpoint.pinset is None


@SETTINGS
@given(day=st.dates(min_value=datetime.date(1, 1, 1)), quoted=st.booleans())
def test_any_real_date_is_an_expiry(day: datetime.date, quoted: bool, empty_dir: Path) -> None:
    written = f"'{day.isoformat()}'" if quoted else day.isoformat()
    if len(day.isoformat()) != 10:
        return  # years before 1000 are not written YYYY by isoformat
    text = f"version: 1\npinsets:\n  a:\n    expires: {written}\n    pins: []\n"
    inventory = load_inventory_text(text, "gen.yaml", base_dir=empty_dir)
    assert inventory.pinsets["a"].expires == day
