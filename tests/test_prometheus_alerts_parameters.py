"""The alert parameters (thresholds, the jobs' scan interval, the runbook base
URL, the exporter's scrape job) set the two documented ways, each checked by
the real promtool: alerts fire at the new thresholds and stay silent where
the shipped defaults would fire.

- plain rule files: ``deploy/prometheus/render-rules.py``;
- the PrometheusRule: ``deploy/kubernetes/components/alerting`` with a
  ``pinaudit-monitoring`` ConfigMap, rendered by Kustomize.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from peers import require_program
from test_deploy import K8S, RULES, _load_all, _render, _validate

pytestmark = pytest.mark.peers

SCRIPT = RULES.parent / "render-rules.py"
SETTINGS_EXAMPLE = K8S / "examples" / "kube-prometheus-stack" / "pinaudit-monitoring.yaml"


@dataclass(frozen=True)
class Parameters:
    certificate_warning_days: int = 30
    certificate_critical_days: int = 7
    pinset_warning_days: int = 60
    scan_interval_seconds: int = 3600
    tls_minimum_version: str = "1.2"
    runbook_base_url: str = "https://pinaudit.invalid/docs/runbook.md"
    exporter_job: str = "pinaudit-exporter"


DEFAULTS = Parameters()
# Chosen so that every alert below changes its mind compared with DEFAULTS.
CUSTOM = Parameters(
    certificate_warning_days=14,
    certificate_critical_days=3,
    pinset_warning_days=30,
    scan_interval_seconds=3 * 3600,  # a CronJob every 3 hours
    tls_minimum_version="1.3",
    runbook_base_url="https://wiki.example.com/sre/pinaudit-runbook.md",
    exporter_job="pinaudit-exporter-eu",
)
EVAL_MINUTES = 180  # promtool's clock starts at 0; every check is at 3h
DAY = 86400
# certificates / pin-sets expiring this many days after the evaluation
CERT_DAYS = (40, 20, 10, 5, 2)
PINSET_DAYS = (90, 45, 20)
# versions the probe reports (OpenSSL's names), as numbers the minimum is compared with
TLS_VERSIONS = {"TLSv1": 1.0, "TLSv1.1": 1.1, "TLSv1.2": 1.2, "TLSv1.3": 1.3}


def _series(name: str, labels: dict[str, str], value: float) -> dict[str, str]:
    text = ",".join(f'{k}="{v}"' for k, v in labels.items())
    return {"series": f"{name}{{{text}}}", "values": f"{value:.0f}x{EVAL_MINUTES + 30}"}


def promtool_tests(rules_file: Path, p: Parameters) -> dict[str, Any]:
    """A promtool test file whose expected alerts follow from `p`."""
    at = EVAL_MINUTES * 60
    inputs = []
    cert_soon, cert_critical, pinset_soon = [], [], []
    base = {"job": "pinaudit-exporter", "instance": "10.0.0.7:9918"}
    for days in CERT_DAYS:
        endpoint = {**base, "endpoint": f"cert-{days}d.example.com:443"}
        leaf = {**endpoint, "position": "0", "role": "leaf"}
        inputs.append(_series("pinaudit_cert_not_after_timestamp_seconds", leaf, at + days * DAY))
        inputs.append(_series("pinaudit_endpoint_up", endpoint, 1))
        if days < p.certificate_critical_days:
            cert_critical.append({"severity": "critical", **leaf})
        elif days < p.certificate_warning_days:
            cert_soon.append({"severity": "warning", **leaf})
    for days in PINSET_DAYS:
        endpoint = {**base, "endpoint": f"pins-{days}d.example.com:443"}
        inputs.append(_series("pinaudit_pins_enforced", endpoint, 1))
        pinset = {**endpoint, "pinset": f"app-{days}"}
        inputs.append(_series("pinaudit_pinset_expiry_timestamp_seconds", pinset, at + days * DAY))
        if days < p.pinset_warning_days:
            pinset_soon.append({"severity": "warning", **pinset})
    old_tls = []
    for version, number in TLS_VERSIONS.items():
        endpoint = {**base, "endpoint": f"{version.lower()}.example.com:443"}
        tls = {**endpoint, "version": version, "cipher": "ECDHE-RSA-AES128-SHA", "alpn": "h2"}
        inputs.append(_series("pinaudit_tls_info", tls, 1))
        if number < float(p.tls_minimum_version):
            old_tls.append({"severity": "warning", **tls})
    # a pushed job whose last scan finished at 0: 3 hours old at the evaluation
    inputs.append(_series("pinaudit_scan_timestamp_seconds", {"job": "pinaudit"}, 0))
    stale = (
        []
        if at - 300 <= 2 * p.scan_interval_seconds
        else [{"severity": "warning", "job": "pinaudit"}]
    )
    # two exporters whose scrapes fail: the default job name and another one
    down = []
    for job in ("pinaudit-exporter", "pinaudit-exporter-eu"):
        target = {"job": job, "instance": f"{job}:9918"}
        inputs.append({"series": f'up{{job="{job}",instance="{job}:9918"}}', "values": "0x240"})
        if job == p.exporter_job:
            down.append({"severity": "warning", **target})
    expected = {
        "PinauditCertificateExpiringSoon": cert_soon,
        "PinauditCertificateExpiringCritical": cert_critical,
        "PinauditPinsetExpiringSoon": pinset_soon,
        "PinauditScanStale": stale,
        "PinauditExporterDown": down,
        "PinauditOldTlsVersion": old_tls,
    }
    return {
        "rule_files": [str(rules_file)],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": inputs,
                "alert_rule_test": [
                    {
                        "eval_time": f"{EVAL_MINUTES}m",
                        "alertname": name,
                        "exp_alerts": [{"exp_labels": labels} for labels in alerts],
                    }
                    for name, alerts in expected.items()
                ],
                "promql_expr_test": [
                    {
                        "expr": f"pinaudit:{key}",
                        "eval_time": f"{EVAL_MINUTES}m",
                        "exp_samples": [{"labels": f"pinaudit:{key}", "value": value}],
                    }
                    for key, value in asdict(p).items()
                    if isinstance(value, int)
                ]
                + [
                    {
                        "expr": "pinaudit:tls_minimum_version",
                        "eval_time": f"{EVAL_MINUTES}m",
                        "exp_samples": [
                            {
                                "labels": "pinaudit:tls_minimum_version",
                                "value": float(p.tls_minimum_version),
                            }
                        ],
                    }
                ],
            }
        ],
    }


def _without_annotations(groups: list[dict[str, Any]]) -> dict[str, Any]:
    """The rules as they are, less the annotations (promtool compares them
    whole; the runbook URLs are checked on their own)."""
    stripped = []
    for group in groups:
        rules = [{k: v for k, v in rule.items() if k != "annotations"} for rule in group["rules"]]
        stripped.append({**group, "rules": rules})
    return {"groups": stripped}


def run_promtool_tests(groups: list[dict[str, Any]], p: Parameters, work: Path) -> str:
    """Runs the promtool test derived from `p` on `groups`; returns its output,
    failing the test when promtool fails."""
    promtool = require_program("promtool")
    work.mkdir(parents=True, exist_ok=True)
    rules = work / "rules.yml"
    rules.write_text(yaml.safe_dump(_without_annotations(groups), sort_keys=False))
    tests = work / "tests.yml"
    tests.write_text(yaml.safe_dump(promtool_tests(rules, p), sort_keys=False))
    done = subprocess.run(
        [promtool, "test", "rules", str(tests)],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    return f"exit {done.returncode}\n{done.stdout}{done.stderr}"


def check_parameters(groups: list[dict[str, Any]], p: Parameters, work: Path) -> None:
    output = run_promtool_tests(groups, p, work)
    assert output.startswith("exit 0") and "SUCCESS" in output, output
    alerts = [rule for group in groups for rule in group["rules"] if "alert" in rule]
    for rule in alerts:
        anchor = rule["alert"].lower()
        assert rule["annotations"]["runbook_url"] == f"{p.runbook_base_url}#{anchor}"
    (down,) = (rule for rule in alerts if rule["alert"] == "PinauditExporterDown")
    assert down["expr"].strip() == f'up{{job="{p.exporter_job}"}} == 0'


def _groups(path: Path) -> list[dict[str, Any]]:
    return list(yaml.safe_load(path.read_text())["groups"])


def render_rules(p: Parameters, *extra: str) -> subprocess.CompletedProcess[str]:
    flags = []
    for key, value in asdict(p).items():
        flags += [f"--{key.replace('_', '-')}", str(value)]
    return subprocess.run(
        [sys.executable, str(SCRIPT), *flags, *extra],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_the_shipped_rules_hold_the_defaults(tmp_path: Path) -> None:
    check_parameters(_groups(RULES), DEFAULTS, tmp_path)
    settings = yaml.safe_load(SETTINGS_EXAMPLE.read_text())["data"]
    example = {k: v for k, v in settings.items() if k != "release"}
    assert example == {k: str(v) for k, v in asdict(DEFAULTS).items()}


def test_the_custom_expectations_fail_on_the_shipped_rules(tmp_path: Path) -> None:
    """The check can fail: what CUSTOM expects is not what the defaults do."""
    output = run_promtool_tests(_groups(RULES), CUSTOM, tmp_path)
    assert not output.startswith("exit 0"), output
    for alert in (
        "PinauditCertificateExpiringSoon",
        "PinauditCertificateExpiringCritical",
        "PinauditPinsetExpiringSoon",
        "PinauditScanStale",
        "PinauditExporterDown",
        "PinauditOldTlsVersion",
    ):
        assert f"alertname: {alert}," in output, alert
    assert "pinaudit:tls_minimum_version" in output


def test_render_rules_sets_every_parameter_of_a_plain_rule_file(tmp_path: Path) -> None:
    done = render_rules(CUSTOM)
    assert done.returncode == 0, done.stderr
    rendered = tmp_path / "pinaudit.yml"
    rendered.write_text(done.stdout)
    promtool = require_program("promtool")
    checked = subprocess.run(
        [promtool, "check", "rules", str(rendered)], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    check_parameters(_groups(rendered), CUSTOM, tmp_path / "promtool")
    # only the parameters changed: comments, expressions and order are as shipped
    shipped = RULES.read_text().splitlines()
    lines = done.stdout.splitlines()
    assert len(lines) == len(shipped)
    changed = [(a, b) for a, b in zip(shipped, lines, strict=True) if a != b]
    alerts = sum(1 for rule in _groups(RULES)[0]["rules"] if "alert" in rule)
    assert len(changed) == 5 + alerts + 1  # constants, runbook URLs, the job
    number = r"\d+(?:\.\d+)?"
    for old, new in changed:  # a parameter's line, and nothing else on it
        kind = re.fullmatch(
            rf'\s*(expr: "{number}"|runbook_url: \S+|up\{{job="[^"]+"\}} == 0)', old
        )
        assert kind is not None, old
        assert re.sub(rf"{number}|https://\S+#|job=\"[^\"]+\"", "", old) == re.sub(
            rf"{number}|https://\S+#|job=\"[^\"]+\"", "", new
        ), (old, new)


def test_render_rules_without_flags_writes_the_rules_unchanged() -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT)], capture_output=True, text=True, check=False, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == RULES.read_text()


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (
            ["--certificate-critical-days", "40"],
            "certificate_critical_days must be less than certificate_warning_days (40 >= 30)",
        ),
        (["--certificate-warning-days", "0"], "certificate_warning_days 0: must be 1..3650"),
        (["--scan-interval-seconds", "99999999"], "scan_interval_seconds 99999999: must be"),
        (["--runbook-base-url", "https://x.example/rb.md#top"], "without '#'"),
        (["--runbook-base-url", "wiki/runbook"], "expected http(s)://"),
        (["--exporter-job", 'a"} or vector(1) #'], "no quotes, backslashes or newlines"),
        (["--pinset-warning-days", "ten"], "invalid int value: 'ten'"),
        (["--tls-minimum-version", "TLSv1.2"], "invalid choice: 'TLSv1.2'"),
    ],
)
def test_render_rules_refuses_bad_values(flags: list[str], message: str) -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), *flags], capture_output=True, text=True, check=False
    )
    assert done.returncode == 2
    assert message in done.stderr
    assert done.stdout == ""


def test_render_rules_refuses_a_file_that_is_not_pinaudits(tmp_path: Path) -> None:
    other = tmp_path / "other.yml"
    other.write_text("groups:\n  - name: x\n    rules: []\n")
    done = subprocess.run(
        [sys.executable, str(SCRIPT), str(other), "--certificate-warning-days", "10"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert "pinaudit:certificate_warning_days: not found in the rules file" in done.stderr


def _overlay(tmp_path: Path, p: Parameters, release: str = "kube-prometheus-stack") -> Path:
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    settings = yaml.safe_load(SETTINGS_EXAMPLE.read_text())
    settings["data"] = {"release": release, **{k: str(v) for k, v in asdict(p).items()}}
    (overlay / "pinaudit-monitoring.yaml").write_text(yaml.safe_dump(settings))
    k8s = os.path.relpath(K8S, overlay)
    (overlay / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "resources": [f"{k8s}/prometheus-operator", "pinaudit-monitoring.yaml"],
                "components": [f"{k8s}/components/alerting"],
            }
        )
    )
    return overlay


def test_the_alerting_component_sets_every_parameter_of_the_prometheus_rule(
    tmp_path: Path,
) -> None:
    docs = _render(_overlay(tmp_path, CUSTOM))
    assert sorted(d["kind"] for d in docs) == ["PrometheusRule", "ServiceMonitor"]
    (rule,) = (d for d in docs if d["kind"] == "PrometheusRule")
    _validate(rule, "alerting: PrometheusRule")
    check_parameters(rule["spec"]["groups"], CUSTOM, tmp_path / "promtool")
    # nothing else changed: the groups equal the rules file rendered with the same values
    done = render_rules(CUSTOM)
    assert done.returncode == 0, done.stderr
    assert rule["spec"]["groups"] == yaml.safe_load(done.stdout)["groups"]


def test_the_alerting_component_with_the_example_values_changes_nothing(tmp_path: Path) -> None:
    docs = _render(_overlay(tmp_path, DEFAULTS))
    (rule,) = (d for d in docs if d["kind"] == "PrometheusRule")
    (shipped,) = _load_all(K8S / "prometheus-operator" / "prometheusrule.yaml")
    assert rule == shipped
