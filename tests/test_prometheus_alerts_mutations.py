"""The promtool cases of the TLS-version, OCSP, CT and CAA alerts can fail.

Each mutation below is a plausible mistake in one alert's expression (an
off-by-one comparison, a forgotten status, the wrong direction of time); the
alert's cases in deploy/prometheus/tests/protocols.yml must catch every one,
with the real promtool. A mutation that the cases let through means they do
not pin the alert down.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from peers import require_program

pytestmark = [pytest.mark.peers, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "deploy" / "prometheus" / "pinaudit-rules.yml"
CASES = ROOT / "deploy" / "prometheus" / "tests" / "protocols.yml"

# (alert, what its expression says, the mistake, what the cases must notice)
MUTATIONS = (
    (
        "PinauditOldTlsVersion",
        "< scalar(pinaudit:tls_minimum_version)",
        "<= scalar(pinaudit:tls_minimum_version)",
        "TLS 1.2 itself would warn",
    ),
    (
        "PinauditOldTlsVersion",
        'pinaudit_tls_info{version="TLSv1.1"} * 1.1',
        'pinaudit_tls_info{version="TLSv1.1"} * 1.2',
        "TLS 1.1 ranked as 1.2",
    ),
    (
        "PinauditOldTlsVersion",
        '\n  or\n    pinaudit_tls_info{version!~"SSLv3|TLSv1|TLSv1\\\\.[123]"} * 0',
        "",
        "a version without a name is not judged",
    ),
    ("PinauditOcspRevoked", '"revoked"', '"good"', "the wrong status"),
    ("PinauditOcspStapleInvalid", '"invalid|unknown"', '"invalid"', "unknown forgotten"),
    (
        "PinauditOcspStapleStale",
        "time() - pinaudit_ocsp_next_update_timestamp_seconds > 0",
        "pinaudit_ocsp_next_update_timestamp_seconds - time() > 0",
        "time the wrong way round",
    ),
    (
        "PinauditMustStapleMissing",
        'check="must_staple_missing"',
        'check=~"must_staple_missing|ocsp_.+"',
        "every OCSP finding",
    ),
    ("PinauditCtNonCompliant", "== 0", "== 1", "compliant taken for not"),
    (
        "PinauditCaaUnauthorized",
        'caa_outcome="not_authorized"',
        'caa_outcome!="authorized"',
        "every outcome but authorized",
    ),
)


def _mutated_rules(alert: str, old: str, new: str) -> dict[str, Any]:
    doc = yaml.safe_load(RULES.read_text())
    (rule,) = (r for g in doc["groups"] for r in g["rules"] if r.get("alert") == alert)
    assert rule["expr"].count(old) == 1, (alert, old, rule["expr"])
    rule["expr"] = rule["expr"].replace(old, new)
    return dict(doc)


def _cases_of(alert: str, rules_file: Path) -> dict[str, Any]:
    """protocols.yml reduced to the tests that check `alert`, on `rules_file`."""
    doc = yaml.safe_load(CASES.read_text())
    tests = [
        t
        for t in doc["tests"]
        if any(case["alertname"] == alert for case in t.get("alert_rule_test", []))
    ]
    assert tests, alert
    return {**doc, "rule_files": [str(rules_file)], "tests": tests}


def test_every_new_alert_has_a_mutation() -> None:
    shipped = {r["alert"] for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]
               if "alert" in r}  # fmt: skip
    checked = {
        case["alertname"]
        for t in yaml.safe_load(CASES.read_text())["tests"]
        for case in t.get("alert_rule_test", [])
    }
    assert checked <= shipped
    assert {alert for alert, *_ in MUTATIONS} == checked


def test_the_cases_catch_every_mutation(tmp_path: Path) -> None:
    promtool = require_program("promtool")
    files = []
    for n, (alert, old, new, _) in enumerate(MUTATIONS):
        rules = tmp_path / f"rules-{n}.yml"
        rules.write_text(yaml.safe_dump(_mutated_rules(alert, old, new), sort_keys=False))
        cases = tmp_path / f"mutant-{n}.yml"
        cases.write_text(yaml.safe_dump(_cases_of(alert, rules), sort_keys=False))
        files.append(cases)
    # the unmutated rules pass the same reduced cases (a mutant fails for its mutation)
    rules = tmp_path / "rules-shipped.yml"
    rules.write_text(RULES.read_text())
    shipped = tmp_path / "shipped.yml"
    shipped.write_text(yaml.safe_dump(_cases_of("PinauditOldTlsVersion", rules)))
    done = subprocess.run(  # one process; its failures (stderr) in order with the files
        [promtool, "test", "rules", str(shipped), *(str(f) for f in files)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        check=False,
        timeout=300,
    )
    output = done.stdout
    sections = dict(
        re.findall(r"Unit Testing:\s+(\S+)\n(.*?)(?=Unit Testing:|\Z)", output, re.DOTALL)
    )
    assert sections[str(shipped)].strip() == "SUCCESS", output
    for n, (alert, _, _, mistake) in enumerate(MUTATIONS):
        section = sections[str(files[n])]
        assert "FAILED" in section, f"{alert}: the cases miss {mistake!r}"
        assert f"alertname: {alert}," in section, (alert, section)
