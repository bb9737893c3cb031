"""Offline backup pins (issue 12, item 2).

Every pinning guide asks for a backup key kept offline and never served:
RFC 7469 §4.3 requires a backup pin, OWASP's pinning cheat sheet and
Android's network-security-config documentation ("include a backup key")
recommend one, and TrustKit refuses a policy with fewer than two pins. Such
a key names no certificate anybody can see, so `unresolved_pin` fired on
every endpoint forever. An inventory can now say which pins are offline
backup keys, and where the key (or its CSR) is, so that the pin is checked
against the key when the inventory loads.
"""

from __future__ import annotations

import io
import json
import textwrap
from datetime import datetime, timezone
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from scanner.cli import main
from scanner.errors import InventoryError
from scanner.exporters.jsonreport import endpoint_entry
from scanner.fleet.pki import PKI, Issued, make_key
from scanner.inventory import load_inventory, load_inventory_text
from scanner.model import Observation
from scanner.pins import pins_of_spki
from scanner.results import evaluate
from scanner.trust import store_from_pem

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)
HOST = "pay.example.com"
C, W, INFO = "critical", "warning", "info"


class Keys:
    def __init__(self) -> None:
        self.pki = PKI(NOW)
        self.root = self.pki.root("Root")
        self.inter = self.pki.intermediate("Issuing CA", self.root)
        self.leaf = self.pki.leaf(HOST, self.inter)
        self.spare = make_key()  # the offline backup key
        spki = self.spare.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.spare_pin = pins_of_spki(spki)[0]

    def write(self, directory: Path) -> None:
        public = self.spare.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        (directory / "next.pub.pem").write_bytes(public)
        csr = (
            x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)]))
            .sign(self.spare, hashes.SHA256())  # type: ignore[arg-type]
        )
        (directory / "next.csr").write_bytes(csr.public_bytes(serialization.Encoding.PEM))
        private = self.spare.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        (directory / "next.key").write_bytes(private)
        (directory / "trust.pem").write_bytes(self.root.pem)


@pytest.fixture(scope="module")
def keys() -> Keys:
    return Keys()


def write(directory: Path, text: str) -> Path:
    path = directory / "inventory.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(InventoryError) as caught:
        load_inventory(path)
    return [str(p) for p in caught.value.problems]


def judge(inventory_path: Path, keys: Keys, *served: Issued) -> object:
    inventory = load_inventory(inventory_path)
    store = store_from_pem(keys.root.pem, "root")
    observation = Observation(
        "127.0.0.1", 443, tuple(s.der for s in served), "TLSv1.3", "X", None, 0, 0
    )
    return evaluate(inventory.endpoints[0], [observation], store, NOW)


# --- the inventory ---------------------------------------------------------------------


def test_a_pin_set_says_which_pin_is_an_offline_backup_and_where_its_key_is(
    keys: Keys, tmp_path: Path
) -> None:
    keys.write(tmp_path)
    inventory = load_inventory(
        write(
            tmp_path,
            f"""\
            version: 1
            pinsets:
              pay:
                pins:
                  - {keys.leaf.pin}
                  - pin: {keys.spare_pin}
                    offline: true
                    key: next.pub.pem
            endpoints:
              - host: {HOST}
                pinset: pay
            """,
        )
    )
    pinset = inventory.pinsets["pay"]
    assert pinset.pins == (keys.leaf.pin, keys.spare_pin)
    assert pinset.offline == frozenset({keys.spare_pin})
    assert inventory.endpoints[0].pinset == pinset


@pytest.mark.parametrize("key_file", ["next.pub.pem", "next.csr"])
def test_the_pin_may_be_left_to_the_key_or_csr(keys: Keys, tmp_path: Path, key_file: str) -> None:
    keys.write(tmp_path)
    inventory = load_inventory(
        write(
            tmp_path,
            f"""\
            version: 1
            endpoints:
              - host: {HOST}
                pins:
                  - {keys.leaf.pin}
                  - {{key: {key_file}, offline: true}}
            """,
        )
    )
    pinset = inventory.endpoints[0].pinset
    assert pinset is not None
    assert pinset.pins == (keys.leaf.pin, keys.spare_pin)
    assert pinset.offline == frozenset({keys.spare_pin})


def test_a_pin_that_is_not_the_key_named_beside_it_is_an_inventory_error(
    keys: Keys, tmp_path: Path
) -> None:
    keys.write(tmp_path)
    path = write(
        tmp_path,
        f"""\
        version: 1
        pinsets:
          pay:
            pins:
              - {keys.leaf.pin}
              - pin: {keys.inter.pin}
                offline: true
                key: next.csr
        endpoints:
          - host: {HOST}
            pinset: pay
        """,
    )
    assert problems(path) == [
        f"{path}:6:14: pinsets.pay.pins[1].pin: {keys.inter.pin} is not the key in next.csr "
        f"(a certificate request whose key's pin is {keys.spare_pin})",
    ]


def test_mistakes_in_a_backup_pin_are_reported_where_they_are(keys: Keys, tmp_path: Path) -> None:
    keys.write(tmp_path)
    (tmp_path / "junk.pem").write_text("not a key\n")
    path = write(
        tmp_path,
        f"""\
        version: 1
        endpoints:
          - host: {HOST}
            pins:
              - {keys.leaf.pin}
              - {{key: next.key, offline: true}}
              - {{key: missing.pem, offline: true}}
              - {{key: junk.pem}}
              - {{offline: true}}
              - {{pin: {keys.spare_pin}, offline: yes please}}
              - {{pin: {keys.spare_pin}, backup: true}}
        """,
    )
    missing = tmp_path / "missing.pem"
    assert problems(path) == [
        f"{path}:6:15: endpoints[0].pins[1].key: next.key is a private key: name its public "
        "key or a certificate request instead (the private key of an offline backup belongs "
        "offline; openssl pkey -in next.key -pubout prints the public key)",
        f"{path}:7:15: endpoints[0].pins[2].key: file 'missing.pem' not found (looked for "
        f"{missing})",
        f"{path}:8:15: endpoints[0].pins[3].key: junk.pem: no public key, private key, "
        "certificate request or certificate found",
        f"{path}:9:9: endpoints[0].pins[4]: a pin mapping needs pin:, key: or both",
        f"{path}:10:77: endpoints[0].pins[5].offline: expected true or false, got a string",
        f"{path}:11:68: endpoints[0].pins[6].backup: unknown key 'backup' (allowed: key, "
        "offline, pin)",
    ]


def test_validate_checks_the_backup_pin_against_its_key(keys: Keys, tmp_path: Path) -> None:
    keys.write(tmp_path)
    other = (
        make_key()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    (tmp_path / "rotated.pub.pem").write_bytes(other)
    path = write(
        tmp_path,
        f"""\
        version: 1
        endpoints:
          - host: {HOST}
            pins:
              - {keys.leaf.pin}
              - {{pin: {keys.spare_pin}, offline: true, key: rotated.pub.pem}}
        """,
    )
    out, err = io.StringIO(), io.StringIO()
    status = main(["validate", "-i", str(path)], stdout=out, stderr=err)
    assert int(status) == 2
    [line, summary] = err.getvalue().splitlines()
    assert line.startswith(
        f"pinaudit validate: error: {path}:6:15: endpoints[0].pins[1].pin: "
        f"{keys.spare_pin} is not the key in rotated.pub.pem (a public key whose key's pin is "
    )
    assert summary == "pinaudit validate: 1 problem; nothing scanned"


# --- the verdict ------------------------------------------------------------------------


def _inventory(tmp_path: Path, keys: Keys, backup: str) -> Path:
    keys.write(tmp_path)
    return write(
        tmp_path,
        f"""\
        version: 1
        defaults: {{trust: trust.pem}}
        endpoints:
          - host: {HOST}
            pins:
              - {keys.inter.pin}
              - {backup}
        """,
    )


def test_an_offline_backup_pin_is_not_unresolved(keys: Keys, tmp_path: Path) -> None:
    plain = judge(_inventory(tmp_path, keys, str(keys.spare_pin)), keys, keys.leaf, keys.inter)
    assert [f.key for f in plain.findings] == [("unresolved_pin", INFO, None)]  # type: ignore[attr-defined]
    offline = f"{{pin: {keys.spare_pin}, offline: true}}"
    result = judge(_inventory(tmp_path, keys, offline), keys, keys.leaf, keys.inter)
    assert result.findings == ()  # type: ignore[attr-defined]
    entry = endpoint_entry(result, NOW)  # type: ignore[arg-type]
    assert entry["pinset"]["offline"] == [str(keys.spare_pin)]
    json.dumps(entry)


def test_an_offline_backup_key_that_is_served_is_no_backup(keys: Keys, tmp_path: Path) -> None:
    """The backup key went live (a leaf was issued for it) and nobody updated
    the inventory: the pin-set has no backup left."""
    leaf = keys.pki.leaf(HOST, keys.inter, key=keys.spare)
    offline = f"{{pin: {keys.spare_pin}, offline: true}}"
    result = judge(_inventory(tmp_path, keys, offline), keys, leaf, keys.inter)
    findings = result.findings  # type: ignore[attr-defined]
    assert [f.key for f in findings] == [("no_backup_pin", W, None)]
    assert findings[0].pin == keys.spare_pin
    assert findings[0].message == (
        f"{keys.spare_pin} is declared an offline backup key, but it is the key of "
        f"{leaf.subject}, served at position 0: a key in use is no backup"
    )


def test_rotation_counts_the_offline_key_as_the_next_leaf_key(keys: Keys, tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"""\
        version: 1
        defaults: {{trust: trust.pem}}
        endpoints:
          - host: {HOST}
            pins:
              - {keys.leaf.pin}
              - {{pin: {keys.spare_pin}, offline: true}}
        """,
    )
    keys.write(tmp_path)
    result = judge(path, keys, keys.leaf, keys.inter)
    assert [f.key for f in result.findings] == [("leaf_only_pin", W, 0)]  # type: ignore[attr-defined]
    rotation = result.rotation  # type: ignore[attr-defined]
    assert rotation.leaf_renewal is True
    assert rotation.leaf_renewal_reason == (
        f"only if the new leaf uses the offline backup key {keys.spare_pin}"
    )


def test_a_leaf_due_for_renewal_with_an_offline_backup_says_which_key_to_use(
    keys: Keys, tmp_path: Path
) -> None:
    leaf = keys.pki.leaf(HOST, keys.inter, days_after=20)
    path = write(
        tmp_path,
        f"""\
        version: 1
        defaults: {{trust: trust.pem}}
        endpoints:
          - host: {HOST}
            pins:
              - {leaf.pin}
              - {{pin: {keys.spare_pin}, offline: true}}
        """,
    )
    keys.write(tmp_path)
    result = judge(path, keys, leaf, keys.inter)
    [finding] = result.findings  # type: ignore[attr-defined]
    assert finding.key == ("leaf_only_pin", W, 0)
    assert finding.message == (
        "only the leaf's key is pinned and the leaf expires "
        f"{leaf.cert.not_valid_after_utc:%Y-%m-%d %H:%M:%S}Z (in 20 days): renew it with the "
        f"offline backup key pinned in advance ({keys.spare_pin}) or reuse the key; a renewal "
        "with any other key breaks every pinned client"
    )


def test_inline_text_inventories_take_the_same_form(keys: Keys) -> None:
    inventory = load_inventory_text(
        f"""\
version: 1
pinsets:
  pay:
    pins: [{keys.leaf.pin}, {{pin: {keys.spare_pin}, offline: true}}]
endpoints:
  - {{host: {HOST}, pinset: pay, pins: [{{pin: {keys.inter.pin}, offline: false}}]}}
""",
        "inline.yaml",
    )
    pinset = inventory.endpoints[0].pinset
    assert pinset is not None
    assert pinset.name == "pay+inline"
    assert pinset.pins == (keys.leaf.pin, keys.spare_pin, keys.inter.pin)
    assert pinset.offline == frozenset({keys.spare_pin})


def test_the_json_schema_for_editors_takes_the_same_forms(keys: Keys) -> None:
    import jsonschema
    import yaml

    root = Path(__file__).resolve().parent.parent
    schema = json.loads((root / "inventories" / "schema.json").read_text())
    validator = jsonschema.Draft202012Validator(schema)
    good = {
        "version": 1,
        "pinsets": {
            "pay": {
                "pins": [
                    str(keys.leaf.pin),
                    {"pin": str(keys.spare_pin), "offline": True, "key": "next.csr"},
                    {"key": "other.pub.pem"},
                ]
            }
        },
        "endpoints": [{"host": HOST, "pins": [{"pin": str(keys.inter.pin), "offline": False}]}],
    }
    validator.validate(good)
    for bad in ({"offline": True}, {"pin": str(keys.spare_pin), "backup": True}, {}):
        document = yaml.safe_load(json.dumps(good))
        document["pinsets"]["pay"]["pins"].append(bad)
        assert not validator.is_valid(document), bad


def test_key_files_are_bounded_like_every_file_the_inventory_reads(
    keys: Keys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Hostile by default: a pseudo file is refused before it is read, a key
    file named a thousand times is read once, and the number of distinct key
    files is capped."""
    from scanner.inventory import schema

    keys.write(tmp_path)
    path = write(
        tmp_path,
        f"""\
        version: 1
        endpoints:
          - host: {HOST}
            pins: [{keys.leaf.pin}, {{key: /proc/self/status}}]
        """,
    )
    [problem] = problems(path)
    assert problem.startswith(
        f"{path}:4:71: endpoints[0].pins[1].key: refused: '/proc/self/status' is on a pseudo "
        "filesystem (/proc/"
    )
    reads: list[str] = []
    real_read = schema.read_file

    def counting(name: str) -> bytes:
        reads.append(name)
        return real_read(name)

    monkeypatch.setattr(schema, "read_file", counting)
    many = ", ".join(["{key: next.csr, offline: true}"] * 1000)
    inventory = load_inventory(
        write(tmp_path, f"version: 1\nendpoints:\n  - {{host: {HOST}, pins: [{many}]}}\n")
    )
    assert inventory.endpoints[0].pinset is not None
    assert inventory.endpoints[0].pinset.pins == (keys.spare_pin,)
    assert [r for r in reads if r.endswith("next.csr")] == [str(tmp_path / "next.csr")]
    monkeypatch.setattr(schema, "MAX_KEY_FILES", 1)
    path = write(
        tmp_path,
        f"version: 1\nendpoints:\n  - {{host: {HOST}, pins: [{{key: next.csr}}, "
        "{key: next.pub.pem}]}\n",
    )
    assert problems(path) == [
        f"{path}:3:59: endpoints[0].pins[1].key: refused: more than 1 key files named"
    ]
