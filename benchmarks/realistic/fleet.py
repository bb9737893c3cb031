"""The realistic fleet: ten distinct chains, N virtual hosts, pin-sets with
offline backups, a custom trust bundle and about 10 % drift.

Shape (issue 11), each piece modelled on what real estates look like:

- two roots, EC P-384 and RSA-3072 (like ISRG Root X2 / X1); three
  intermediates: one EC P-384 under the EC root, two RSA-2048 under the RSA
  root (like Let's Encrypt's E-, R10 and R11 issuers);
- ten served chains: EC and RSA leaves, wildcards (``*.a.bench.test``), one
  leaf with its apex name beside the wildcard, EC leaves under an RSA
  issuer, two chains that also send their root (a common nginx
  ``fullchain`` mistake that clients tolerate), and four drifted chains: an
  expired leaf, a leaf expiring in 5 days, a server that forgets its
  intermediate, and the default server a removed virtual host falls through
  to (wrong name);
- pin-sets as mobile apps ship them: issuer + root + an *offline backup key*
  that no server sends (RFC 7469 section 4.3, TrustKit's two-pin rule); one
  Android pin-set with an expiration two years out, one expired (protection
  lost), one still pinning a retired leaf key (pin mismatch), and inline
  HPKP-style pins on a few endpoints;
- a custom trust bundle: the two roots plus three unrelated corporate roots.

Every virtual host belongs to a `Group` (a chain + a pin-set) whose exact
findings are stated here; `verdicts.py` checks a pinaudit report against them.
nginx serves every chain from one ``server`` block per chain (wildcard
``server_name``), so the nginx config does not grow with N: N only changes the
inventory. The scanner connects to a handful of loopback addresses (the
4-tuple space of one address is enough, several spread the TIME_WAIT load)
and asks for each virtual host by SNI.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from scanner.fleet.pki import PKI, Issued, PrivateKey, make_key

DOMAIN = "bench.test"
C, W, INFO = "critical", "warning", "info"
Check = tuple[str, str]  # (check, severity)


def pin_of_key(key: PrivateKey) -> str:
    """OkHttp spelling of the SHA-256 SPKI pin of a key (``sha256/B64``)."""
    spki = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return "sha256/" + base64.b64encode(hashlib.sha256(spki).digest()).decode()


def pin_of(issued: Issued) -> str:
    return pin_of_key(issued.key)


@dataclass(frozen=True)
class Chain:
    """One chain nginx serves: a `server` block."""

    key: str  # short id, also the endpoints' `chain` label
    description: str
    server_names: tuple[str, ...]  # nginx server_name values
    served: tuple[Issued, ...]  # in the order sent
    default: bool = False  # nginx default_server: unknown SNI lands here

    @property
    def leaf(self) -> Issued:
        return self.served[0]


@dataclass(frozen=True)
class Pinset:
    name: str
    pins: tuple[str, ...]
    expires: str | None = None  # ISO date
    inline: bool = False  # written as the endpoint's own `pins:` instead of `pinset:`


@dataclass(frozen=True)
class Group:
    """Virtual hosts sharing a chain and a pin-set, with the findings each must get."""

    name: str
    chain: str
    pinset: str
    weight: int  # out of 100
    subdomain: str  # vhosts are <prefix>-<index>.<subdomain>.bench.test
    expected: tuple[Check, ...]  # sorted (check, severity) multiset, info included
    description: str

    @property
    def status(self) -> str:
        return "drift" if any(sev in (W, C) for _check, sev in self.expected) else "ok"


@dataclass(frozen=True)
class Endpoint:
    name: str
    address: str
    sni: str
    group: Group


@dataclass
class RealisticFleet:
    now: datetime
    chains: dict[str, Chain]
    pinsets: dict[str, Pinset]
    groups: tuple[Group, ...]
    anchors: tuple[Issued, ...]  # the custom trust bundle, in order
    addresses: tuple[str, ...]
    extra: dict[str, object] = field(default_factory=dict)

    # --- endpoints ---------------------------------------------------------

    def endpoints(self, n: int) -> list[Endpoint]:
        """N virtual hosts; every prefix of 100 has the groups' exact proportions."""
        slots = [g for g in self.groups for _ in range(g.weight)]
        random.Random(11).shuffle(slots)
        out = []
        for i in range(n):
            group = slots[i % len(slots)]
            prefix = "gone" if group.chain == "j-default" else "api"
            sni = f"{prefix}-{i:05d}.{group.subdomain}.{DOMAIN}"
            out.append(Endpoint(sni, self.addresses[i % len(self.addresses)], sni, group))
        return out

    # --- files -------------------------------------------------------------

    def write_trust(self, path: Path) -> Path:
        path.write_bytes(b"".join(a.pem for a in self.anchors))
        return path

    def write_inventory(
        self, path: Path, endpoints: Sequence[Endpoint], port: int, trust: Path, style: str
    ) -> Path:
        """The inventory pinaudit scans, block style (one key per line) or flow
        style (one ``{...}`` mapping per endpoint), as real inventories come."""
        lines = [
            "# Realistic benchmark fleet (benchmarks/realistic/fleet.py).",
            "version: 1",
            "defaults:",
            f"  port: {port}",
            "  timeout: 10s",
            f"  trust: {trust.name}",
            "  labels: {env: bench}",
            "pinsets:",
        ]
        for ps in self.pinsets.values():
            if ps.inline:
                continue
            lines.append(f"  {ps.name}:")
            if ps.expires:
                lines.append(f"    expires: {ps.expires}")
            lines.append("    pins:")
            lines += [f"      - {p}" for p in ps.pins]
        lines.append("endpoints:")
        teams = ("payments", "identity", "search", "media", "edge")
        for i, ep in enumerate(endpoints):
            ps = self.pinsets[ep.group.pinset]
            team = teams[i % len(teams)]
            if style == "flow":
                pins = f"pins: [{', '.join(ps.pins)}]" if ps.inline else f"pinset: {ps.name}"
                lines.append(
                    f"  - {{name: {ep.name}, host: {ep.address}, sni: {ep.sni}, {pins}, "
                    f"labels: {{team: {team}, chain: {ep.group.chain}}}}}"
                )
                continue
            lines += [
                f"  - name: {ep.name}",
                f"    host: {ep.address}",
                f"    sni: {ep.sni}",
            ]
            if ps.inline:
                lines.append("    pins:")
                lines += [f"      - {p}" for p in ps.pins]
            else:
                lines.append(f"    pinset: {ps.name}")
            lines += ["    labels:", f"      team: {team}", f"      chain: {ep.group.chain}"]
        path.write_text("\n".join(lines) + "\n")
        return path

    def write_targets(self, path: Path, endpoints: Sequence[Endpoint], port: int) -> Path:
        """What the floor client and the blackbox driver read: one endpoint a
        line, ``name address port sni pin,pin,...`` (tab-separated)."""
        rows = []
        for ep in endpoints:
            pins = ",".join(self.pinsets[ep.group.pinset].pins)
            rows.append(f"{ep.name}\t{ep.address}\t{port}\t{ep.sni}\t{pins}")
        path.write_text("\n".join(rows) + "\n")
        return path

    def write_server_files(self, directory: Path) -> dict[str, tuple[Path, Path]]:
        """One (chain PEM in served order, key PEM) per chain."""
        directory.mkdir(parents=True, exist_ok=True)
        files = {}
        for chain in self.chains.values():
            cert = directory / f"{chain.key}.pem"
            key = directory / f"{chain.key}.key"
            cert.write_bytes(b"".join(c.pem for c in chain.served))
            key.write_bytes(chain.leaf.key_pem())
            key.chmod(0o600)
            files[chain.key] = (cert, key)
        return files

    def describe(self) -> str:
        lines = ["chains served by nginx:"]
        for chain in self.chains.values():
            sent = " + ".join(_kind(c) for c in chain.served)
            lines.append(f"  {chain.key:<16} {sent:<58} {chain.description}")
        lines.append("groups (share of virtual hosts, expected status):")
        for g in self.groups:
            lines.append(
                f"  {g.name:<22} {g.weight:>3} %  {g.chain:<16} {g.pinset:<14} "
                f"{g.status:<5}  {g.description}"
            )
        return "\n".join(lines)


def _kind(issued: Issued) -> str:
    cn = str(issued.cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)
    return cn if len(cn) <= 20 else cn[:19] + "…"


def unresolved(n: int) -> tuple[Check, ...]:
    return tuple(("unresolved_pin", INFO) for _ in range(n))


def _expected(*checks: Check) -> tuple[Check, ...]:
    return tuple(sorted(checks))


def build(now: datetime, addresses: Sequence[str]) -> RealisticFleet:
    """The PKI, chains, pin-sets and groups, relative to `now`."""
    pki = PKI(now, org="pinaudit bench")
    root_ec = pki.root("Bench Root EC P-384", key_type="ec384", hash_alg="sha384")
    root_rsa = pki.root("Bench Root RSA 3072", key_type="rsa3072")
    inter_e = pki.intermediate("Bench Issuing E1", root_ec, key_type="ec384", hash_alg="sha384")
    inter_r1 = pki.intermediate("Bench Issuing R1", root_rsa, key_type="rsa2048")
    inter_r2 = pki.intermediate("Bench Issuing R2", root_rsa, key_type="rsa2048")
    others = tuple(pki.root(f"Corporate Root {n}", key_type="ec256") for n in (1, 2, 3))

    def leaf(sub: str, issuer: Issued, key_type: str, **kw: object) -> Issued:
        kw.setdefault("dns", (f"*.{sub}.{DOMAIN}",))
        return pki.leaf(f"*.{sub}.{DOMAIN}", issuer, key_type=key_type, **kw)

    def wild(*subs: str) -> tuple[str, ...]:
        return tuple(f"*.{sub}.{DOMAIN}" for sub in subs)

    # Chains a, c and d also serve the subdomains of their pin-set variants
    # (a2, a3, c3, d2): one multi-wildcard certificate each, as real ones are.

    chains = {
        c.key: c
        for c in (
            Chain("a-ec", "EC P-256 wildcard leaf, EC issuer", wild("a", "a2", "a3"),
                  (leaf("a", inter_e, "ec256", dns=wild("a", "a2", "a3")), inter_e)),
            Chain("b-ec-root", "EC wildcard leaf, EC issuer, root sent too", wild("b"),
                  (leaf("b", inter_e, "ec256"), inter_e, root_ec)),
            Chain("c-rsa", "RSA-2048 wildcard leaf, RSA issuer R1", wild("c", "c3"),
                  (leaf("c", inter_r1, "rsa2048", dns=wild("c", "c3")), inter_r1)),
            Chain("d-rsa-root", "RSA wildcard leaf, RSA issuer R2, root sent too",
                  wild("d", "d2"),
                  (leaf("d", inter_r2, "rsa2048", dns=wild("d", "d2")), inter_r2, root_rsa)),
            Chain("e-ec-under-rsa", "EC leaf, wildcard + apex, under RSA issuer R1",
                  (f"*.e.{DOMAIN}", f"e.{DOMAIN}"),
                  (leaf("e", inter_r1, "ec256", dns=(f"*.e.{DOMAIN}", f"e.{DOMAIN}")),
                   inter_r1)),
            Chain("f-rsa", "RSA-2048 wildcard leaf, RSA issuer R2", wild("f"),
                  (leaf("f", inter_r2, "rsa2048"), inter_r2)),
            Chain("g-expired", "EC wildcard leaf expired 3 days ago", wild("g"),
                  (leaf("g", inter_e, "ec256", days_before=93, days_after=-3), inter_e)),
            Chain("h-expiring", "RSA wildcard leaf expiring in 5 days", wild("h"),
                  (leaf("h", inter_r1, "rsa2048", days_before=85, days_after=5), inter_r1)),
            Chain("i-no-inter", "RSA wildcard leaf sent without its issuer R2", wild("i"),
                  (leaf("i", inter_r2, "rsa2048"),)),
            Chain("j-default", "default server: EC leaf for default.bench.test only",
                  (f"default.{DOMAIN}",),
                  (pki.leaf(f"default.{DOMAIN}", inter_e, key_type="ec256"), inter_e),
                  default=True),
        )
    }  # fmt: skip

    backup_ec1, backup_ec2 = make_key("ec384"), make_key("ec256")
    backup_rsa1, backup_rsa2 = make_key("rsa2048"), make_key("rsa2048")
    retired_c = make_key("rsa2048")  # chain c's leaf key before its last renewal
    pinsets = {
        p.name: p
        for p in (
            Pinset("ec-platform", (pin_of(inter_e), pin_of(root_ec), pin_of_key(backup_ec1))),
            Pinset("rsa-platform", (pin_of(inter_r1), pin_of(inter_r2), pin_of_key(backup_rsa1))),
            Pinset(
                "mobile-app",
                (
                    pin_of(root_ec),
                    pin_of(root_rsa),
                    pin_of_key(backup_ec2),
                    pin_of_key(backup_rsa2),
                ),
                expires=(now + timedelta(days=730)).date().isoformat(),
            ),
            Pinset("retired-leaf", (pin_of_key(retired_c), pin_of_key(backup_rsa1))),
            Pinset(
                "android-2024",
                (pin_of(inter_e), pin_of_key(backup_ec1)),
                expires=(now - timedelta(days=20)).date().isoformat(),
            ),
            Pinset("hpkp-inline", (pin_of(root_rsa), pin_of_key(backup_rsa2)), inline=True),
        )
    }
    groups = (
        Group("ec-a", "a-ec", "ec-platform", 18, "a", unresolved(1),
              "healthy: issuer pinned, offline EC backup"),
        Group("ec-a-mobile", "a-ec", "mobile-app", 4, "a2", unresolved(2),
              "healthy: both roots + two offline backups, Android expiration in 2 years"),
        Group("ec-b-root", "b-ec-root", "ec-platform", 12, "b", unresolved(1),
              "healthy, root sent too"),
        Group("rsa-c", "c-rsa", "rsa-platform", 16, "c", unresolved(1), "healthy"),
        Group("rsa-d-root", "d-rsa-root", "rsa-platform", 8, "d", unresolved(1),
              "healthy, root sent too"),
        Group("rsa-d-inline", "d-rsa-root", "hpkp-inline", 4, "d2", unresolved(1),
              "healthy: inline HPKP-style pins (root + offline backup)"),
        Group("ec-e", "e-ec-under-rsa", "rsa-platform", 12, "e", unresolved(1), "healthy"),
        Group("rsa-f-mobile", "f-rsa", "mobile-app", 16, "f", unresolved(2), "healthy"),
        Group("expired", "g-expired", "ec-platform", 2, "g",
              _expected(("cert_expired", C), *unresolved(1)), "drift: leaf expired"),
        Group("expiring", "h-expiring", "rsa-platform", 2, "h",
              _expected(("cert_expiring", C), *unresolved(1)), "drift: leaf expires in 5 days"),
        Group("no-intermediate", "i-no-inter", "rsa-platform", 2, "i",
              _expected(("chain_incomplete", C), *unresolved(1)),
              "drift: issuer not sent"),
        Group("wrong-host", "j-default", "ec-platform", 1, "j",
              _expected(("hostname_mismatch", C), *unresolved(1)),
              "drift: vhost removed from nginx, default server answers"),
        Group("wrong-pins", "c-rsa", "retired-leaf", 2, "c3",
              _expected(("pin_mismatch", C), *unresolved(2)),
              "drift: app still pins the retired leaf key"),
        Group("pinset-expired", "a-ec", "android-2024", 1, "a3",
              _expected(("pinset_expired", W), *unresolved(1)),
              "drift: Android pin-set expired, pins no longer enforced"),
    )  # fmt: skip
    anchors = (root_ec, root_rsa, *others)
    return RealisticFleet(now, chains, pinsets, groups, anchors, tuple(addresses))


def nginx_config(
    fleet: RealisticFleet,
    directory: Path,
    port: int,
    files: dict[str, tuple[Path, Path]],
    *,
    as_root: bool,
) -> str:
    """nginx.conf: one worker, every address on one port, one server block per chain."""
    listens = []
    for address in fleet.addresses:
        listens.append(f"{address}:{port}")
    blocks = []
    # Listen options (backlog) go on one listen per address only: the default server's.
    chains = sorted(fleet.chains.values(), key=lambda c: not c.default)
    for chain in chains:
        cert, key = files[chain.key]
        options = " default_server backlog=4096" if chain.default else ""
        listen = "".join(f"        listen {lst} ssl{options};\n" for lst in listens)
        blocks.append(
            "    server {\n"
            + listen
            + f"        server_name {' '.join(chain.server_names)};\n"
            + f"        ssl_certificate {cert};\n"
            + f"        ssl_certificate_key {key};\n"
            + '        location / { return 200 "ok\\n"; }\n'
            + "    }\n"
        )
    return (
        ("user root;\n" if as_root else "")
        + "worker_processes 1;\n"
        + "worker_rlimit_nofile 20000;\n"
        + f"pid {directory}/nginx.pid;\n"
        + f"error_log {directory}/error.log warn;\n"
        + "events { worker_connections 8192; }\n"
        + "http {\n"
        + "    access_log off;\n"
        + "".join(
            f"    {kind}_temp_path {directory}/{kind};\n"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        + "    ssl_protocols TLSv1.2 TLSv1.3;\n"
        + "".join(blocks)
        + "}\n"
    )


def summary_json(fleet: RealisticFleet, n: int) -> str:
    """Expected counts per group and status for N endpoints (for logs)."""
    counts: dict[str, int] = {}
    for ep in fleet.endpoints(n):
        counts[ep.group.name] = counts.get(ep.group.name, 0) + 1
    return json.dumps(counts, sort_keys=True)
