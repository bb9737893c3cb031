"""The Kustomize components of deploy/kubernetes/components and the
kube-prometheus-stack example overlay, rendered by the real Kustomize (v5,
inside kubectl) and validated against the Kubernetes schemas: what a
kube-prometheus-stack installation needs to pick pinaudit up (the `release`
label its rule and monitor selectors require, the dashboard ConfigMap its
Grafana sidecar loads), the web-config Secret, and a missing parameters
ConfigMap. The alert parameters themselves are checked with promtool in
tests/test_prometheus_alerts_parameters.py."""

from __future__ import annotations

import base64
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from test_deploy import (
    DASHBOARD,
    K8S,
    PROMETHEUS_RULE,
    _container,
    _load_all,
    _render,
    _validate,
    kustomize_build,
)

pytestmark = pytest.mark.peers

EXAMPLE = K8S / "examples" / "kube-prometheus-stack"
SETTINGS = yaml.safe_load((EXAMPLE / "pinaudit-monitoring.yaml").read_text())
MONITORING_GROUP = "monitoring.coreos.com"


def _overlay(tmp_path: Path, **spec: Any) -> Path:
    """A kustomization in a temporary directory; resource and component
    entries starting with "@" are paths under deploy/kubernetes."""
    overlay = tmp_path / "overlay"
    overlay.mkdir(parents=True, exist_ok=True)
    relative = os.path.relpath(K8S, overlay)
    for key in ("resources", "components"):
        if key in spec:
            spec[key] = [
                f"{relative}/{item[1:]}" if item.startswith("@") else item for item in spec[key]
            ]
    doc = {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization", **spec}
    (overlay / "kustomization.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return overlay


def _settings(overlay: Path, **data: str) -> None:
    doc = json.loads(json.dumps(SETTINGS))
    doc["data"].update(data)
    (overlay / "pinaudit-monitoring.yaml").write_text(yaml.safe_dump(doc))


def _by(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    (doc,) = (d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name)
    return doc


def test_the_kube_prometheus_stack_example_renders_everything_the_chart_selects() -> None:
    docs = _render(EXAMPLE)
    names = sorted(f"{d['kind']}/{d['metadata']['name']}" for d in docs)
    assert [re.sub(r"-[a-z0-9]{10}$", "-<hash>", n) for n in names] == [
        "ConfigMap/pinaudit-dashboard",
        "ConfigMap/pinaudit-inventory-<hash>",
        "ConfigMap/pinaudit-settings-<hash>",
        "Deployment/pinaudit-exporter",
        "PrometheusRule/pinaudit",
        "PrometheusRule/pinaudit-compat",
        "Service/pinaudit-exporter",
        "ServiceAccount/pinaudit",
        "ServiceMonitor/pinaudit-exporter",
    ]  # the parameters ConfigMap (local-config) is not among them
    for doc in docs:
        _validate(doc, f"example: {doc['kind']}/{doc['metadata']['name']}")
        assert doc["metadata"]["namespace"] == "monitoring", doc["metadata"]["name"]
    release = SETTINGS["data"]["release"]
    # what kube-prometheus-stack's Prometheus selects with its default
    # ruleSelectorNilUsesHelmValues / serviceMonitorSelectorNilUsesHelmValues
    selector = {"release": release}
    monitoring = [d for d in docs if d["apiVersion"].startswith(MONITORING_GROUP + "/")]
    assert len(monitoring) == 3
    for doc in monitoring:
        assert selector.items() <= doc["metadata"]["labels"].items(), doc["metadata"]["name"]
    for doc in docs:  # and nothing else is labelled for it
        if doc not in monitoring:
            assert "release" not in doc["metadata"].get("labels", {}), doc["metadata"]["name"]
    # the Grafana sidecar's label (chart defaults: grafana_dashboard "1", all namespaces)
    dashboard = _by(docs, "ConfigMap", "pinaudit-dashboard")
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert dashboard["data"] == {"pinaudit.json": DASHBOARD.read_text()}
    assert json.loads(dashboard["data"]["pinaudit.json"])["uid"] == "pinaudit"
    # the example's parameters are the shipped defaults: the rules are as shipped
    rule = _by(docs, "PrometheusRule", "pinaudit")
    (shipped,) = _load_all(PROMETHEUS_RULE)
    assert rule["spec"] == shipped["spec"]
    # the ServiceMonitor selects the exporter's Service in the same namespace
    monitor = _by(docs, "ServiceMonitor", "pinaudit-exporter")
    service = _by(docs, "Service", "pinaudit-exporter")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= (
        service["metadata"]["labels"].items()
    )


def test_the_release_label_follows_the_parameters(tmp_path: Path) -> None:
    overlay = _overlay(
        tmp_path,
        resources=["@prometheus-operator", "pinaudit-monitoring.yaml"],
        components=["@components/blackbox-compat", "@components/kube-prometheus-stack"],
    )
    _settings(overlay, release="monitoring-stack")
    docs = _render(overlay)
    assert sorted(f"{d['kind']}/{d['metadata']['name']}" for d in docs) == [
        "PrometheusRule/pinaudit",
        "PrometheusRule/pinaudit-compat",
        "ServiceMonitor/pinaudit-exporter",
    ]
    for doc in docs:
        assert doc["metadata"]["labels"]["release"] == "monitoring-stack"
        assert doc["metadata"]["labels"]["app.kubernetes.io/name"] == "pinaudit"


def test_the_components_name_the_missing_parameters_configmap(tmp_path: Path) -> None:
    for component in ("alerting", "kube-prometheus-stack"):
        overlay = _overlay(
            tmp_path / component,
            resources=["@prometheus-operator"],
            components=[f"@components/{component}"],
        )
        done = kustomize_build(overlay)
        assert done.returncode != 0
        assert "nothing selected by ConfigMap.[noVer].[noGrp]/pinaudit-monitoring" in (
            done.stderr
        ), done.stderr


def test_a_parameters_configmap_from_before_a_new_parameter_names_the_missing_key(
    tmp_path: Path,
) -> None:
    """An overlay's copy of the ConfigMap made before tls_minimum_version
    existed: the build stops and names the key to add (docs/deploy.md), rather
    than shipping rules without it."""
    overlay = _overlay(
        tmp_path,
        resources=["@prometheus-operator", "pinaudit-monitoring.yaml"],
        components=["@components/alerting"],
    )
    doc = json.loads(json.dumps(SETTINGS))
    del doc["data"]["tls_minimum_version"]
    (overlay / "pinaudit-monitoring.yaml").write_text(yaml.safe_dump(doc))
    done = kustomize_build(overlay)
    assert done.returncode != 0
    assert "fieldPath `data.tls_minimum_version` is missing for replacement source" in (
        done.stderr
    ), done.stderr


def test_the_dashboard_component_alone_is_one_labelled_configmap(tmp_path: Path) -> None:
    docs = _render(
        _overlay(tmp_path, namespace="grafana", components=["@components/grafana-dashboard"])
    )
    (dashboard,) = docs
    _validate(dashboard, "grafana-dashboard")
    assert dashboard["metadata"] == {
        "name": "pinaudit-dashboard",  # no hash: a new version replaces the old one
        "namespace": "grafana",
        "labels": {"grafana_dashboard": "1", "app.kubernetes.io/name": "pinaudit"},
    }
    # under the 256 KiB that `kubectl apply` can keep in its last-applied annotation
    assert len(dashboard["data"]["pinaudit.json"].encode()) < 256 * 1024


def test_the_compat_component_adds_the_compatibility_rules(tmp_path: Path) -> None:
    (rule,) = _render(_overlay(tmp_path, components=["@components/blackbox-compat"]))
    _validate(rule, "blackbox-compat")
    records = [r["record"] for g in rule["spec"]["groups"] for r in g["rules"]]
    assert {
        "probe_success",
        "probe_ssl_earliest_cert_expiry",
        "probe_ssl_last_chain_expiry_timestamp_seconds",
        "probe_ssl_last_chain_info",
        "ssl_probe_success",
        "ssl_cert_not_after",
        "ssl_verified_cert_not_after",
        "probe_tls_version_info",
        "ssl_tls_version_info",
    } <= set(records)


WEB_CONFIG = """\
tls_server_config:
  cert_file: /etc/pinaudit-tls/tls.crt
  key_file: /etc/pinaudit-tls/tls.key
basic_auth_users:
  prometheus: $2b$10$TWC3gH/GFNg4H1SOyqDaP.kTSpy2WKgoHHUU.5Z0KwOrjIlJUQ7j6
"""


def test_the_web_config_component_mounts_the_secret_and_scrapes_over_https(
    tmp_path: Path,
) -> None:
    overlay = _overlay(
        tmp_path,
        resources=["@exporter", "@prometheus-operator"],
        components=["@components/web-config"],
        secretGenerator=[
            {"name": "pinaudit-web-config", "files": ["web-config.yml"]},
            {
                "name": "pinaudit-scrape-auth",
                "options": {"disableNameSuffixHash": True},
                "literals": ["username=prometheus", "password=secret"],
            },
        ],
    )
    (overlay / "web-config.yml").write_text(WEB_CONFIG)
    docs = _render(overlay)
    for doc in docs:
        _validate(doc, f"web-config: {doc['kind']}/{doc['metadata']['name']}")
    secrets = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Secret"}
    (web_secret,) = (n for n in secrets if n.startswith("pinaudit-web-config-"))
    assert base64.b64decode(secrets[web_secret]["data"]["web-config.yml"]).decode() == WEB_CONFIG

    template = _by(docs, "Deployment", "pinaudit-exporter")["spec"]["template"]
    container = _container(template)
    (flag,) = (a for a in container["args"] if a.startswith("--web-config"))
    config_path = flag.split("=", 1)[1]
    volumes = {v["name"]: v for v in template["spec"]["volumes"]}
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    # the web config the flag names is the key of the generated Secret (hash and all)
    web = volumes["web-config"]["secret"]
    assert web["secretName"] == web_secret and "optional" not in web
    assert config_path == f"{mounts['web-config']['mountPath']}/web-config.yml"
    # the certificate files the web config names come from the TLS Secret's mount
    tls = yaml.safe_load(WEB_CONFIG)["tls_server_config"]
    assert volumes["tls"]["secret"] == {
        "secretName": "pinaudit-exporter-tls",
        "defaultMode": 0o440,
        "optional": True,
    }
    for key in ("cert_file", "key_file"):
        assert Path(tls[key]).parent == Path(mounts["tls"]["mountPath"])
    for name in ("web-config", "tls"):
        assert mounts[name]["readOnly"] is True
        assert not mounts[name]["mountPath"].startswith("/etc/pinaudit/")  # not in the ConfigMap
    # the lifecycle paths need no password: the probes keep them, over HTTPS
    for probe, path in (("readinessProbe", "/-/ready"), ("livenessProbe", "/-/healthy")):
        assert container[probe]["httpGet"] == {"path": path, "port": "metrics", "scheme": "HTTPS"}

    (endpoint,) = _by(docs, "ServiceMonitor", "pinaudit-exporter")["spec"]["endpoints"]
    assert endpoint["scheme"] == "https"
    assert endpoint["basicAuth"] == {
        "username": {"name": "pinaudit-scrape-auth", "key": "username"},
        "password": {"name": "pinaudit-scrape-auth", "key": "password"},
    }
    assert "pinaudit-scrape-auth" in secrets  # the name the monitor refers to, unhashed
    assert endpoint["tlsConfig"] == {
        "serverName": "pinaudit-exporter",
        "ca": {"secret": {"name": "pinaudit-exporter-tls", "key": "ca.crt"}},
    }


def test_the_docs_web_config_example_matches_the_component() -> None:
    """docs/deploy.md's web-config.yml names the files where the component
    mounts them."""
    text = (K8S.parent.parent / "docs" / "deploy.md").read_text()
    block = text.split("# web-config.yml\n", 1)[1].split("```", 1)[0]
    documented = yaml.safe_load(block)
    assert documented["tls_server_config"] == yaml.safe_load(WEB_CONFIG)["tls_server_config"]
    assert set(documented["basic_auth_users"]) == {"prometheus"}
