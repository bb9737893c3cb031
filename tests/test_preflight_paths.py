"""`pinaudit preflight` as a client would decide (issue 12, items 1 and 4).

- `--chain`: a chain with a cross-signed intermediate is judged on every path
  a client could build, as `scan` judges it once served;
- `--chain` without `--endpoint`/`--host` judges the endpoints whose names the
  new leaf covers, not every endpoint of the inventory;
- `--key-only` learns the issuing intermediates, so a pin-set on the issuing
  CA plus a backup does not make today's own key "BREAKS": from the last
  scan's `--state`, or from `--ca` (the issuing CA, or the chain served today).
"""

from __future__ import annotations

import io
from datetime import datetime, timezone
from pathlib import Path

import pytest

from scanner.cli import main
from scanner.fleet.pki import PKI, Issued
from scanner.inventory import load_inventory
from scanner.model import HashAlg, Observation, Pin
from scanner.results import evaluate
from scanner.state import advance, save_state
from scanner.trust import store_from_pem

NOW = datetime(2026, 6, 1, tzinfo=timezone.utc)
PAY, API = "pay.example.com", "api.example.com"
SPARE = Pin(HashAlg.SHA256, b"\x07" * 32)  # a backup key nobody serves


class CA:
    def __init__(self) -> None:
        self.pki = PKI(NOW)
        self.root_a = self.pki.root("Root A")
        self.root_b = self.pki.root("Root B")
        self.inter = self.pki.intermediate("Issuing CA", self.root_a)
        self.inter_by_b = self.pki.cross_sign(self.inter, self.root_b)
        self.leaf = self.pki.leaf(PAY, self.inter)
        self.other_root = self.pki.root("Backup Root")


@pytest.fixture(scope="module")
def ca() -> CA:
    return CA()


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = main(list(argv), stdout=out, stderr=err)
    return int(status), out.getvalue(), err.getvalue()


def inventory(tmp_path: Path, ca: CA, endpoints: dict[str, tuple[str, list[Pin]]]) -> Path:
    (tmp_path / "trust.pem").write_bytes(ca.root_a.pem + ca.root_b.pem + ca.other_root.pem)
    lines = ["version: 1", "defaults: {trust: trust.pem}", "endpoints:"]
    for name, (host, pins) in endpoints.items():
        quoted = ", ".join(f'"{p}"' for p in pins)
        lines += [f"  - name: {name}", f"    host: {host}", f"    pins: [{quoted}]"]
    path = tmp_path / "inventory.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def pem_file(tmp_path: Path, name: str, *certs: Issued) -> str:
    path = tmp_path / name
    path.write_bytes(b"".join(c.pem for c in certs))
    return str(path)


def key_file(tmp_path: Path, issued: Issued) -> str:
    path = tmp_path / "next.key"
    path.write_bytes(issued.key_pem())
    return str(path)


# --- --chain ------------------------------------------------------------------------------


def test_a_cross_signed_chain_is_judged_on_every_path(ca: CA, tmp_path: Path) -> None:
    inv = inventory(
        tmp_path,
        ca,
        {
            "on-root-a": (PAY, [ca.root_a.pin, ca.other_root.pin]),
            "on-root-b": (PAY, [ca.root_b.pin, ca.other_root.pin]),
            "on-issuing": (PAY, [ca.inter.pin, ca.other_root.pin]),
        },
    )
    chain = pem_file(tmp_path, "new.pem", ca.leaf, ca.inter, ca.inter_by_b)
    status, out, err = run("preflight", "-i", str(inv), "--chain", chain, "--now", "2026-06-01")
    assert (status, err) == (1, "")
    lines = out.splitlines()
    path_a = f"{ca.leaf.subject} → {ca.inter.subject} → {ca.root_a.subject}"
    path_b = f"{ca.leaf.subject} → {ca.inter.subject} → {ca.root_b.subject}"
    assert lines[0].startswith(
        "DEPENDS     on-root-a   pin_path_dependent: pin-set 'inline' matches 1 of the 2 paths "
        f"a client can build. It fails on {path_b}:"
    )
    assert lines[1].startswith(
        "DEPENDS     on-root-b   pin_path_dependent: pin-set 'inline' matches 1 of the 2 paths "
        f"a client can build. It fails on {path_a}:"
    )
    assert lines[2] == f"SAFE        on-issuing  {ca.inter.pin} matches {ca.inter.subject}"
    assert lines[3] == "3 endpoints: 1 safe, 0 would break, 2 depend on the path, 0 not pinned"


def test_chain_without_endpoint_judges_only_the_names_the_leaf_covers(
    ca: CA, tmp_path: Path
) -> None:
    inv = inventory(
        tmp_path,
        ca,
        {"pay": (PAY, [ca.inter.pin, ca.other_root.pin]), "api": (API, [ca.inter.pin])},
    )
    chain = pem_file(tmp_path, "pay.pem", ca.leaf, ca.inter)
    status, out, err = run("preflight", "-i", str(inv), "--chain", chain, "--now", "2026-06-01")
    assert (status, err) == (0, "")
    assert out.splitlines() == [
        f"SAFE        pay  {ca.inter.pin} matches {ca.inter.subject}",
        f"(1 endpoint not named by the new leaf, which names {PAY}: not judged; "
        "--endpoint or --host judges it anyway)",
        "1 endpoint: 1 safe, 0 would break, 0 not pinned",
    ]
    status, out, _ = run(
        "preflight", "-i", str(inv), "--chain", chain, "--endpoint", "api", "--now", "2026-06-01"
    )
    assert status == 1
    assert out.splitlines()[0].startswith("BREAKS      api  hostname_mismatch:")


def test_chain_naming_no_endpoint_is_a_usage_error(ca: CA, tmp_path: Path) -> None:
    inv = inventory(tmp_path, ca, {"api": (API, [ca.inter.pin, ca.other_root.pin])})
    chain = pem_file(tmp_path, "pay.pem", ca.leaf, ca.inter)
    assert run("preflight", "-i", str(inv), "--chain", chain) == (
        2,
        "",
        f"pinaudit preflight: error: the new leaf names no endpoint of the inventory (it names "
        f"{PAY}; endpoints: api for {API}): pick one with --endpoint or --host\n",
    )


# --- --key-only -------------------------------------------------------------------------------


def test_key_only_learns_the_pinned_issuing_ca_from_the_last_scan(ca: CA, tmp_path: Path) -> None:
    """The pin-set pins the issuing intermediate, with a backup: today's own key
    is safe (scan says ok), and preflight must say so too."""
    inv = inventory(tmp_path, ca, {"pay": (PAY, [ca.inter.pin, SPARE])})
    key = key_file(tmp_path, ca.leaf)  # the key being served today
    status, out, _ = run("preflight", "-i", str(inv), "--key-only", key)
    assert status == 1  # nothing says which CA issues the new leaf: the pin names no CA known
    assert out.splitlines()[0] == (
        "BREAKS      pay  neither the new key nor a known CA key is pinned: pinned clients "
        f"would fail (no CA pinaudit knows has the key {ca.inter.pin} names: if it is the "
        "issuing CA's, give the last scan's --state, or that CA with --ca)"
    )
    # the last scan, as `scan --state` records it
    endpoint = load_inventory(inv).endpoints[0]
    store = store_from_pem(ca.root_a.pem + ca.root_b.pem + ca.other_root.pem, "t")
    served = Observation("127.0.0.1", 443, (ca.leaf.der, ca.inter.der), "TLSv1.3", "X", None, 0, 0)
    result = evaluate(endpoint, [served], store, NOW)
    assert [f.check.value for f in result.findings] == ["unresolved_pin"]  # info: scan says ok
    state, _ = advance({}, [result], NOW)
    save_state(tmp_path / "state.json", state)
    status, out, err = run(
        "preflight", "-i", str(inv), "--key-only", key, "--state", str(tmp_path / "state.json")
    )
    assert (status, err) == (0, "")
    assert out.splitlines() == [
        "SAFE        pay  safe if the new leaf is issued by the CA that issues it today: "
        f"{ca.inter.pin} pins {ca.inter.subject} (from --state)",
        "1 endpoint: 1 safe, 0 would break, 0 not pinned",
    ]


def test_key_only_learns_the_issuing_ca_from_a_bundle(ca: CA, tmp_path: Path) -> None:
    inv = inventory(tmp_path, ca, {"pay": (PAY, [ca.inter.pin, SPARE])})
    key = key_file(tmp_path, ca.pki.leaf(PAY, ca.inter))  # a new key
    bundle = pem_file(tmp_path, "served.pem", ca.leaf, ca.inter)  # the chain served today
    status, out, err = run("preflight", "-i", str(inv), "--key-only", key, "--ca", bundle)
    assert (status, err) == (0, "")
    assert out.splitlines()[0] == (
        f"SAFE        pay  safe if the new leaf is issued under {ca.inter.subject} "
        f"(pinned: {ca.inter.pin})"
    )


def test_ca_goes_with_key_only_or_alone(ca: CA, tmp_path: Path) -> None:
    inv = inventory(tmp_path, ca, {"pay": (PAY, [ca.inter.pin, ca.other_root.pin])})
    chain = pem_file(tmp_path, "pay.pem", ca.leaf, ca.inter)
    status, _, err = run("preflight", "-i", str(inv), "--chain", chain, "--ca", chain)
    assert status == 2
    assert err.splitlines()[-1] == (
        "pinaudit: error: --ca goes alone (what if we switch CA?) or with --key-only "
        "(the CA the new key's leaf will be issued under), not with --chain"
    )
    status, _, err = run("preflight", "-i", str(inv), "--state", "s.json", "--chain", chain)
    assert status == 2
    assert err.splitlines()[-1] == "pinaudit: error: --state goes with --key-only"


def test_the_state_file_remembers_the_issuing_cas_and_older_files_still_load(
    ca: CA, tmp_path: Path
) -> None:
    from scanner.state import dumps, loads

    inv = inventory(tmp_path, ca, {"pay": (PAY, [ca.root_a.pin, ca.root_b.pin])})
    endpoint = load_inventory(inv).endpoints[0]
    store = store_from_pem(ca.root_a.pem + ca.root_b.pem, "t")
    chain = (ca.leaf.der, ca.inter.der, ca.inter_by_b.der)
    served = Observation("127.0.0.1", 443, chain, "TLSv1.3", "X", None, 0, 0)
    state, _ = advance({}, [evaluate(endpoint, [served], store, NOW)], NOW)
    # both paths' CAs: the issuing CA once (one key), then each root
    assert state["pay"].issuing == (
        (str(ca.inter.pin), ca.inter.subject),
        (str(ca.root_a.pin), ca.root_a.subject),
        (str(ca.root_b.pin), ca.root_b.subject),
    ) or state["pay"].issuing == (
        (str(ca.inter.pin), ca.inter.subject),
        (str(ca.root_b.pin), ca.root_b.subject),
        (str(ca.root_a.pin), ca.root_a.subject),
    )
    assert loads(dumps(state)) == state
    old = dumps(state).replace('"issuing"', '"ignored_by_old_readers"')
    assert loads(old)["pay"].issuing == ()
