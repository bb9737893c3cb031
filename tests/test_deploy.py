"""deploy/ checked offline: Kubernetes manifests against the Kubernetes
schemas (kubernetes-validate), their security settings, the Kustomize
layout (rendered when a kustomize is available), the container image recipe,
the alert rules with the real promtool (check + unit tests), the Grafana
dashboard's queries, and the runbook every alert links to.

Regenerate deploy/kubernetes/prometheus-operator/prometheusrule.yaml from the
rules file with ``python tests/test_deploy.py``.
"""

from __future__ import annotations

import copy
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "kubernetes"
RULES = DEPLOY / "prometheus" / "pinaudit-rules.yml"
RULE_TESTS = sorted((DEPLOY / "prometheus" / "tests").glob("*.yml"))
PROMETHEUS_RULE = K8S / "prometheus-operator" / "prometheusrule.yaml"
DASHBOARD = DEPLOY / "grafana" / "pinaudit.json"
DOCKERFILE = DEPLOY / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
RUNBOOK = ROOT / "docs" / "runbook.md"
RUNBOOK_URL = "https://pinaudit.invalid/docs/runbook.md#"

# The Kubernetes versions the manifests are validated against (schemas shipped
# by kubernetes-validate, no network): the oldest supported one (Indexed Jobs'
# backoffLimitPerIndex needs 1.29) and a recent one.
KUBERNETES_VERSIONS = ("1.30.0", "1.33.0")
# Custom resources of the Prometheus Operator: no schema in kubernetes-validate,
# checked by hand below.
CRDS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
    ("monitoring.coreos.com/v1", "PrometheusRule"),
}
# Metric names the rules and the dashboard may use besides the contract
# (scanner/exporters/metrics.py SPECS): the Pushgateway's and Prometheus' own.
ALLOWED_EXTRA_METRICS = {"push_time_seconds", "up"}
# What issue 5 asks the rules to cover, at least.
REQUIRED_ALERTS = {
    "PinauditPinDrift",
    "PinauditPinsetExpiringSoon",
    "PinauditPinsetExpired",
    "PinauditCertificateExpiringSoon",
    "PinauditCertificateExpiringCritical",
    "PinauditChainInvalid",
    "PinauditEndpointDown",
    "PinauditNoBackupPin",
    "PinauditScanStale",
    "PinauditShardMissing",
    "PinauditRotationNotReady",
    # issue 16: an exporter whose scrape fails, addresses serving different chains
    "PinauditExporterDown",
    "PinauditChainDivergence",
    # issue 12 item 1: a pin on some of the paths cross-signs allow
    "PinauditPinPathDependent",
}
# Concrete values for Grafana's variables, to parse the dashboard's queries.
GRAFANA_VARIABLES = {
    "${datasource}": "prometheus",
    "$__rate_interval": "5m",
    "$__interval": "1m",
    "$__range": "1h",
    "$endpoint": "api.example.com:443",
    "$job": "pinaudit",
}


def _load_all(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


# YAML under deploy/kubernetes that is not a Kubernetes resource.
NOT_RESOURCES = {"base/inventory.yaml"}  # the example inventory of the ConfigMap


def manifest_files() -> list[Path]:
    """Every Kubernetes resource file under deploy/kubernetes."""
    return sorted(
        p
        for p in K8S.rglob("*.yaml")
        if p.name != "kustomization.yaml" and p.relative_to(K8S).as_posix() not in NOT_RESOURCES
    )


def resources() -> list[tuple[Path, dict[str, Any]]]:
    return [(path, doc) for path in manifest_files() for doc in _load_all(path)]


def _by_kind(kind: str) -> list[tuple[Path, dict[str, Any]]]:
    return [(path, doc) for path, doc in resources() if doc["kind"] == kind]


def _one(relative: str) -> dict[str, Any]:
    (doc,) = _load_all(K8S / relative)
    return doc


def pod_templates() -> list[tuple[str, dict[str, Any]]]:
    """(where, pod template) of every workload."""
    found = []
    for path, doc in resources():
        where = f"{path.relative_to(K8S)}:{doc['kind']}/{doc['metadata']['name']}"
        if doc["kind"] == "CronJob":
            found.append((where, doc["spec"]["jobTemplate"]["spec"]["template"]))
        elif doc["kind"] in ("Deployment", "Job", "StatefulSet", "DaemonSet"):
            found.append((where, doc["spec"]["template"]))
    return found


def _container(template: dict[str, Any]) -> dict[str, Any]:
    (container,) = template["spec"]["containers"]
    return container


def _contract() -> set[str]:
    from scanner.exporters.contract import SPECS

    return {spec.name for spec in SPECS}


# --- Kubernetes: schemas ------------------------------------------------------------


def _validate(doc: dict[str, Any], where: str) -> None:
    import kubernetes_validate  # the test extra: schemas of every Kubernetes version, offline

    if (doc["apiVersion"], doc["kind"]) in CRDS:
        check_crd_shape(doc, where)
        return
    for version in KUBERNETES_VERSIONS:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = ".".join(str(p) for p in exc.path)
            pytest.fail(f"{where}: Kubernetes {version}: {path}: {exc.message}")


@pytest.mark.parametrize("path", manifest_files(), ids=lambda p: str(p.relative_to(K8S)))
def test_every_manifest_validates_against_the_kubernetes_schemas(path: Path) -> None:
    docs = _load_all(path)
    assert docs, f"{path}: no resource"
    for doc in docs:
        _validate(doc, f"{path.relative_to(ROOT)}:{doc.get('kind')}")


def check_crd_shape(doc: dict[str, Any], where: str) -> None:
    """What the Prometheus Operator requires of its resources (kubernetes-validate
    has no schema for them)."""
    assert set(doc) <= {"apiVersion", "kind", "metadata", "spec"}, where
    assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", doc["metadata"]["name"]), where
    spec = doc["spec"]
    if doc["kind"] == "ServiceMonitor":
        assert set(spec) <= {"selector", "endpoints", "namespaceSelector", "jobLabel"}, where
        assert spec["selector"]["matchLabels"], where
        assert spec["endpoints"], where
        for endpoint in spec["endpoints"]:
            assert set(endpoint) <= {
                "port",
                "path",
                "interval",
                "scrapeTimeout",
                "honorLabels",
                "scheme",
                "tlsConfig",
                "basicAuth",
            }, where
            if "basicAuth" in endpoint:  # SecretKeySelectors in the monitor's namespace
                for key in ("username", "password"):
                    assert set(endpoint["basicAuth"][key]) == {"name", "key"}, where
            if "tlsConfig" in endpoint:
                assert set(endpoint["tlsConfig"]) <= {"ca", "serverName", "cert", "keySecret"}
            assert isinstance(endpoint["port"], str), where  # a named Service port
            for key in ("interval", "scrapeTimeout"):
                if key in endpoint:
                    assert re.fullmatch(r"[0-9]+[smh]", endpoint[key]), where
    else:  # PrometheusRule: spec.groups[].{name, rules[].{alert|record, expr, ...}}
        assert set(spec) == {"groups"}, where
        for group in spec["groups"]:
            assert set(group) <= {"name", "interval", "rules"} and group["name"], where
            for rule in group["rules"]:
                assert ("alert" in rule) != ("record" in rule), where
                assert set(rule) <= {"alert", "record", "expr", "for", "labels", "annotations"}
                assert isinstance(rule["expr"], str) and rule["expr"].strip(), where


def test_the_prometheus_operator_resources_select_the_exporter() -> None:
    monitor = _one("prometheus-operator/servicemonitor.yaml")
    service = _one("exporter/service.yaml")
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    ports = {p["name"] for p in service["spec"]["ports"]}
    assert {e["port"] for e in monitor["spec"]["endpoints"]} <= ports
    gateway = _one("prometheus-operator/pushgateway-servicemonitor.yaml")
    assert all(e["honorLabels"] is True for e in gateway["spec"]["endpoints"])


# Files generated from others (Kustomize reads nothing outside a kustomization's
# directory): (generated, source, PrometheusRule name or None for a plain copy).
COMPAT_RULES = DEPLOY / "prometheus" / "pinaudit-compat-rules.yml"
COMPAT_PROMETHEUS_RULE = K8S / "components" / "blackbox-compat" / "prometheusrule.yaml"
DASHBOARD_COPY = K8S / "components" / "grafana-dashboard" / "pinaudit.json"
GENERATED = (
    (PROMETHEUS_RULE, RULES, "pinaudit"),
    (COMPAT_PROMETHEUS_RULE, COMPAT_RULES, "pinaudit-compat"),
    (DASHBOARD_COPY, DASHBOARD, None),
)


def prometheus_rule_manifest(rules: Path = RULES, name: str = "pinaudit") -> str:
    """A PrometheusRule holding the groups of a rules file, as committed."""
    groups = yaml.safe_load(rules.read_text())["groups"]
    doc = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {
            "name": name,
            "labels": {
                "app.kubernetes.io/name": "pinaudit",
                "app.kubernetes.io/part-of": "pinaudit",
            },
        },
        "spec": {"groups": groups},
    }

    class Dumper(yaml.SafeDumper):
        pass

    def text(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
        style = "|" if "\n" in value else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    Dumper.add_representer(str, text)
    source = rules.relative_to(ROOT).as_posix()
    header = (
        f"# Generated from {source} by `python tests/test_deploy.py`;\n"
        "# edit the rules file, not this one (tests/test_deploy.py checks they are equal).\n"
    )
    return header + yaml.dump(doc, Dumper=Dumper, sort_keys=False, width=100, allow_unicode=True)


def generated_text(source: Path, name: str | None) -> str:
    return source.read_text() if name is None else prometheus_rule_manifest(source, name)


@pytest.mark.parametrize(
    ("generated", "source", "name"), GENERATED, ids=lambda v: getattr(v, "name", v)
)
def test_generated_files_hold_exactly_their_source(
    generated: Path, source: Path, name: str | None
) -> None:
    if name is not None:
        (rule,) = _load_all(generated)
        assert rule["spec"]["groups"] == yaml.safe_load(source.read_text())["groups"], (
            "regenerate it: python tests/test_deploy.py"
        )
    assert generated.read_text() == generated_text(source, name), (
        "regenerate it: python tests/test_deploy.py"
    )


# --- Kubernetes: what the manifests must say ------------------------------------------


def test_every_pod_is_locked_down() -> None:
    from scanner import __version__

    templates = pod_templates()
    assert {where.split(":")[1] for where, _ in templates} == {
        "CronJob/pinaudit",
        "CronJob/pinaudit-sharded",
        "Deployment/pinaudit-exporter",
    }
    for where, template in templates:
        spec = template["spec"]
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True, where
        assert pod["runAsUser"] == pod["runAsGroup"] == 10001, where  # the image's user
        assert pod["seccompProfile"] == {"type": "RuntimeDefault"}, where
        assert spec["automountServiceAccountToken"] is False, where
        assert spec["serviceAccountName"] == "pinaudit", where
        container = _container(template)
        assert container["image"] == f"pinaudit:{__version__}", where
        security = container["securityContext"]
        assert security["allowPrivilegeEscalation"] is False, where
        assert security["readOnlyRootFilesystem"] is True, where
        assert security["runAsNonRoot"] is True, where
        assert security["privileged"] is False, where
        assert security["capabilities"] == {"drop": ["ALL"]}, where
        assert security["seccompProfile"] == {"type": "RuntimeDefault"}, where
        for kind in ("requests", "limits"):
            assert set(container["resources"][kind]) == {"cpu", "memory"}, where
        # the only writable places: an emptyDir on /tmp (and volumes mounted on purpose)
        volumes = {v["name"]: v for v in spec["volumes"]}
        mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
        assert "emptyDir" in volumes[mounts["/tmp"]["name"]], where
        inventory = mounts["/etc/pinaudit"]
        assert inventory["readOnly"] is True, where
        assert volumes[inventory["name"]]["configMap"]["name"] == "pinaudit-inventory", where
        args = container["args"]
        assert args[args.index("--inventory") + 1] == "/etc/pinaudit/inventory.yaml", where


def _args(doc: dict[str, Any]) -> list[str]:
    return list(_container(doc["spec"]["jobTemplate"]["spec"]["template"])["args"])


def _seconds(text: str) -> float:
    from scanner.units import parse_duration

    return parse_duration(text)


def test_the_cronjob_runs_one_scan_at_a_time_and_pushes() -> None:
    for relative in ("cronjob/cronjob.yaml", "sharded/cronjob.yaml"):
        cronjob = _one(relative)
        spec = cronjob["spec"]
        assert spec["concurrencyPolicy"] == "Forbid", relative
        assert spec["schedule"] == "17 * * * *", relative  # hourly: the rules' 3600 s
        job = spec["jobTemplate"]["spec"]
        assert job["template"]["spec"]["restartPolicy"] == "Never", relative
        assert "backoffLimit" in job or "backoffLimitPerIndex" in job, relative
        args = _args(cronjob)
        pairs = dict(itertools.pairwise(args))  # each flag → the argument after it
        assert pairs["--push-gateway"] == "$(PUSHGATEWAY_URL)", relative
        assert pairs["--fail-on"] == "never", relative
        # the scan's own deadline comes first, so that it still pushes what it found
        assert _seconds(pairs["--deadline"]) < job["activeDeadlineSeconds"], relative
        env = {e["name"]: e for e in _container(job["template"])["env"]}
        assert env["PUSHGATEWAY_URL"]["valueFrom"]["configMapKeyRef"] == {
            "name": "pinaudit-settings",
            "key": "PUSHGATEWAY_URL",
        }, relative
        for name in ("PINAUDIT_PUSH_USERNAME", "PINAUDIT_PUSH_PASSWORD"):
            assert env[name]["valueFrom"]["secretKeyRef"]["optional"] is True, relative
    settings = _load_all(K8S / "base" / "kustomization.yaml")[0]["configMapGenerator"]
    literals = next(g["literals"] for g in settings if g["name"] == "pinaudit-settings")
    assert any(item.startswith("PUSHGATEWAY_URL=http") for item in literals)


def _without_sharding(cronjob: dict[str, Any]) -> dict[str, Any]:
    plain = copy.deepcopy(cronjob)
    plain["metadata"]["name"] = "pinaudit"
    job = plain["spec"]["jobTemplate"]["spec"]
    for key in ("completionMode", "completions", "parallelism", "backoffLimitPerIndex"):
        del job[key]
    job["backoffLimit"] = 2
    container = _container(job["template"])
    at = container["args"].index("--shard")
    del container["args"][at : at + 2]
    container["env"] = [e for e in container["env"] if e["name"] != "JOB_COMPLETION_INDEX"]
    return plain


def test_the_sharded_job_is_the_cronjob_split_in_n_indexed_shards() -> None:
    sharded = _one("sharded/cronjob.yaml")
    job = sharded["spec"]["jobTemplate"]["spec"]
    assert job["completionMode"] == "Indexed"
    shards = job["completions"]
    assert shards > 1 and job["parallelism"] == shards
    args = _args(sharded)
    assert args[args.index("--shard") + 1] == f"$(JOB_COMPLETION_INDEX)/{shards}"
    assert "--grouping" not in args  # --shard adds shard=I to the grouping key itself
    env = {e["name"]: e for e in _container(job["template"])["env"]}
    assert env["JOB_COMPLETION_INDEX"]["valueFrom"]["fieldRef"]["fieldPath"] == (
        "metadata.annotations['batch.kubernetes.io/job-completion-index']"
    )
    assert _without_sharding(sharded) == _one("cronjob/cronjob.yaml")


def test_the_exporter_deployment_serves_what_the_service_selects() -> None:
    deployment = _one("exporter/deployment.yaml")
    service = _one("exporter/service.yaml")
    template = deployment["spec"]["template"]
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector.items() <= template["metadata"]["labels"].items()
    assert service["spec"]["selector"].items() <= template["metadata"]["labels"].items()
    assert deployment["spec"]["replicas"] == 1
    container = _container(template)
    args = container["args"]
    assert args[args.index("--serve") + 1] == ":9918"
    interval = _seconds(args[args.index("--interval") + 1])
    assert _seconds(args[args.index("--deadline") + 1]) < interval
    (port,) = container["ports"]
    assert (port["name"], port["containerPort"]) == ("metrics", 9918)
    (service_port,) = service["spec"]["ports"]
    assert service_port["targetPort"] == "metrics"
    from scanner.exporters.web import HEALTH_PATHS

    # the lifecycle endpoints, which need no basic auth (a probe cannot send it)
    paths = {
        probe: container[probe]["httpGet"]["path"] for probe in ("readinessProbe", "livenessProbe")
    }
    assert paths == {"readinessProbe": "/-/ready", "livenessProbe": "/-/healthy"}
    assert set(paths.values()) <= set(HEALTH_PATHS)
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["port"] == "metrics"


def test_the_example_inventory_of_the_config_map_is_valid() -> None:
    from scanner.inventory import load_inventory

    inventory = load_inventory(str(K8S / "base" / "inventory.yaml"))
    assert len(inventory.endpoints) == 2


def _kustomizations() -> list[Path]:
    return sorted(K8S.rglob("kustomization.yaml"))


def test_every_kustomization_refers_to_files_that_exist() -> None:
    from scanner import __version__

    assert {p.parent.relative_to(K8S).as_posix() for p in _kustomizations()} == {
        "base",
        "cronjob",
        "sharded",
        "exporter",
        "components/state",
        "components/alerting",
        "components/blackbox-compat",
        "components/grafana-dashboard",
        "components/kube-prometheus-stack",
        "components/web-config",
        "prometheus-operator",
        "examples/kube-prometheus-stack",
    }
    referenced: set[Path] = set()
    for path in _kustomizations():
        doc = yaml.safe_load(path.read_text())
        here = path.parent
        kind = doc["kind"]
        assert kind in ("Kustomization", "Component"), path
        for item in [*doc.get("resources", []), *doc.get("components", [])]:
            target = (here / item).resolve()
            assert target.exists(), f"{path}: {item}"
            if target.is_dir():
                assert (target / "kustomization.yaml").exists(), f"{path}: {item}"
            referenced.add(target)
        for generator in doc.get("configMapGenerator", []):
            for item in generator.get("files", []):
                assert (here / item.split("=")[-1]).is_file(), f"{path}: {item}"
                referenced.add((here / item.split("=")[-1]).resolve())
        for patch in doc.get("patches", []):
            assert "target" in patch and ("patch" in patch or "path" in patch), path
        for image in doc.get("images", []):  # the overlays pin the release they belong to
            assert image == {"name": "pinaudit", "newTag": __version__}, path
    # every file is used by some kustomization, except the documented example
    used = {p.relative_to(K8S).as_posix() for p in referenced if p.is_file()}
    files = {p.relative_to(K8S).as_posix() for p in manifest_files()} | NOT_RESOURCES
    assert files - used == {"prometheus-operator/pushgateway-servicemonitor.yaml"}


def _kustomize() -> list[str] | None:
    """A kustomize that knows components, `labels:` and replacements with
    wildcards and delimiters (v5 or later): the standalone binary, or the one
    inside kubectl. Debian's kubernetes-client (1.20) embeds kustomize 2.0.3,
    too old; the machines this project runs on ship a kubectl 1.32 with
    kustomize v5.5, so under PINAUDIT_REQUIRE_PEERS=1 a missing one fails."""
    standalone = shutil.which("kustomize")
    if standalone:
        return [standalone, "build"]
    kubectl = shutil.which("kubectl")
    if kubectl:
        shown = subprocess.run(
            [kubectl, "version", "--client"], capture_output=True, text=True, check=False
        ).stdout
        match = re.search(r"Kustomize Version: v(\d+)", shown)
        if match and int(match.group(1)) >= 5:
            return [kubectl, "kustomize"]
    return None


def kustomize_build(target: Path) -> subprocess.CompletedProcess[str]:
    from peers import REQUIRE_PEERS_ENV, peers_required

    command = _kustomize()
    if command is None:
        message = "no kustomize v5+ (standalone or in kubectl); Debian packages none"
        if peers_required():
            pytest.fail(f"{message}; {REQUIRE_PEERS_ENV}=1 requires it")
        pytest.skip(message)
    return subprocess.run(
        [*command, str(target)], capture_output=True, text=True, check=False, timeout=120
    )


def _render(target: Path) -> list[dict[str, Any]]:
    done = kustomize_build(target)
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


@pytest.mark.parametrize("overlay", ["cronjob", "sharded", "exporter", "prometheus-operator"])
def test_each_overlay_renders_to_valid_resources(overlay: str) -> None:
    docs = _render(K8S / overlay)
    kinds = sorted(doc["kind"] for doc in docs)
    expected = {
        "cronjob": ["ConfigMap", "ConfigMap", "CronJob", "ServiceAccount"],
        "sharded": ["ConfigMap", "ConfigMap", "CronJob", "ServiceAccount"],
        "exporter": ["ConfigMap", "ConfigMap", "Deployment", "Service", "ServiceAccount"],
        "prometheus-operator": ["PrometheusRule", "ServiceMonitor"],
    }[overlay]
    assert kinds == expected
    for doc in docs:
        _validate(doc, f"{overlay}: {doc['kind']}/{doc['metadata']['name']}")
    config_maps = {d["metadata"]["name"] for d in docs if d["kind"] == "ConfigMap"}
    for doc in docs:  # generated names (with their content hash) are referenced everywhere
        if doc["kind"] in ("CronJob", "Deployment"):
            text = json.dumps(doc)
            for name in re.findall(r'"name": "(pinaudit-(?:inventory|settings)[^"]*)"', text):
                assert name in config_maps, (overlay, name)


@pytest.mark.parametrize("overlay", ["cronjob", "exporter"])
def test_the_state_component_adds_a_volume_to_the_scan(overlay: str, tmp_path: Path) -> None:
    """--state on a PersistentVolumeClaim, for the CronJob and for the exporter
    (`scan --serve --state`: drift since the previous scan survives a new pod)."""
    directory = tmp_path / "overlay"
    directory.mkdir()
    relative = os.path.relpath(K8S, directory)
    (directory / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        f"resources:\n  - {relative}/{overlay}\ncomponents:\n  - {relative}/components/state\n"
    )
    docs = _render(directory)
    for doc in docs:
        _validate(doc, f"{overlay}+state: {doc['kind']}")
    (workload,) = (d for d in docs if d["kind"] in ("CronJob", "Deployment"))
    spec = workload["spec"]
    template = (
        spec["jobTemplate"]["spec"]["template"] if "jobTemplate" in spec else spec["template"]
    )
    args = _container(template)["args"]
    assert args.count("--state=/var/lib/pinaudit/state.json") == 1
    mounts = {m["mountPath"]: m["name"] for m in _container(template)["volumeMounts"]}
    volumes = {v["name"]: v for v in template["spec"]["volumes"]}
    assert volumes[mounts["/var/lib/pinaudit"]]["persistentVolumeClaim"] == {
        "claimName": "pinaudit-state"
    }
    (claim,) = (d for d in docs if d["kind"] == "PersistentVolumeClaim")
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    if overlay == "exporter":  # one writer: a single replica, never two pods at once
        assert spec["replicas"] == 1 and spec["strategy"] == {"type": "Recreate"}


# --- the container image --------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[int, str, str]]:
    """(stage, INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    lines: list[str] = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        if raw.lstrip().startswith("#"):
            continue
        if raw.rstrip().endswith("\\"):
            pending += raw.rstrip()[:-1] + " "
            continue
        line = (pending + raw).strip()
        pending = ""
        if line:
            lines.append(line)
    stage = -1
    out = []
    for line in lines:
        instruction, _, args = line.partition(" ")
        if instruction.upper() == "FROM":
            stage += 1
        out.append((stage, instruction.upper(), args.strip()))
    return out


def test_the_dockerfile_builds_a_small_non_root_image_without_installing_at_runtime() -> None:
    instructions = dockerfile_instructions()
    final = max(stage for stage, _, _ in instructions)
    assert final >= 1, "a multi-stage build"
    args = {a.split("=", 1)[0]: a.split("=", 1)[1] for _, i, a in instructions if i == "ARG"}
    for _, instruction, arguments in instructions:
        if instruction == "FROM":
            image = arguments.split()[0]
            image = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], image)
            assert re.fullmatch(r"python:3\.\d+-slim-[a-z]+", image), image  # small, pinned
    last = [(i, a) for stage, i, a in instructions if stage == final]
    users = [a for i, a in last if i == "USER"]
    assert users, "the final stage sets a USER"
    user = users[-1].split(":")[0]
    assert user.isdigit() and int(user) != 0, "a numeric non-root user (runAsNonRoot checks it)"
    index = [i for i, _ in last].index("USER")
    assert all(i != "RUN" for i, _ in last[index:]), "nothing runs as the user at build time"
    for instruction, arguments in last:
        if instruction == "RUN":
            assert "pip" not in arguments and "apt" not in arguments, arguments
        if instruction == "COPY":
            assert arguments.startswith("--from=build "), arguments  # only the built venv
    assert ("ENTRYPOINT", '["scan"]') in last
    env = " ".join(a for i, a in last if i == "ENV")
    for setting in ("PYTHONDONTWRITEBYTECODE=1", "PYTHONUNBUFFERED=1", "HOME=/tmp", "TMPDIR=/tmp"):
        assert setting in env, setting
    assert ("EXPOSE", "9918") in last
    # the user matches what the manifests run as
    for where, template in pod_templates():
        assert template["spec"]["securityContext"]["runAsUser"] == int(user), where


def dockerignore_rules() -> list[tuple[bool, str]]:
    rules = []
    for raw in DOCKERIGNORE.read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            negate = line.startswith("!")
            rules.append((negate, line.lstrip("!").strip("/")))
    return rules


def _pattern(pattern: str) -> re.Pattern[str]:
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
        elif pattern.startswith("**", i):
            out += ".*"
            i += 2
        else:
            out += {"*": "[^/]*", "?": "[^/]"}.get(pattern[i], re.escape(pattern[i]))
            i += 1
    return re.compile(out)


def in_build_context(relative: str) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parents wins."""
    parts = relative.split("/")
    prefixes = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    ignored = False
    for negate, pattern in dockerignore_rules():
        if any(_pattern(pattern).fullmatch(prefix) for prefix in prefixes):
            ignored = not negate
    return not ignored


def test_the_build_context_holds_only_what_the_image_is_built_from() -> None:
    files = [p.relative_to(ROOT).as_posix() for p in ROOT.rglob("*") if p.is_file()]
    context = {f for f in files if in_build_context(f)}
    sources = {f for f in files if f.startswith("scanner/") and "__pycache__" not in f}
    assert context == {"pyproject.toml", "README.md"} | sources
    for excluded in (".git/HEAD", ".venv/pyvenv.cfg", "tests/test_deploy.py", "deploy/Dockerfile"):
        assert not in_build_context(excluded), excluded
    # what the Dockerfile copies from the context is in it
    for _, instruction, arguments in dockerfile_instructions():
        if instruction == "COPY" and not arguments.startswith("--from"):
            for source in arguments.split()[:-1]:
                assert in_build_context(source) and (ROOT / source).exists(), source


def test_hadolint_finds_nothing_to_say() -> None:
    hadolint = shutil.which("hadolint")
    if hadolint is None:  # not packaged by Debian: not a required peer
        pytest.skip("hadolint is not installed (Debian does not package it)")
    done = subprocess.run([hadolint, str(DOCKERFILE)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def _reachable_by_others(path: Path) -> bool:
    """Can a user that owns nothing here execute or read `path`?"""
    real = path.resolve()
    if not real.exists() or not real.stat().st_mode & 0o005:
        return False
    return all(parent.stat().st_mode & 0o001 for parent in real.parents)


def _interpreter_for_the_image_user() -> tuple[str, str]:
    """An interpreter uid 10001 can run, and the PYTHONPATH that gives it
    pinaudit and its dependencies: this one, or (when it lives under a private
    home, as pyenv's do) the system's Python of the same version with this
    environment's site-packages."""
    import sysconfig

    site_packages = sysconfig.get_paths()["purelib"]
    if _reachable_by_others(Path(sys.executable)) and _reachable_by_others(Path(site_packages)):
        return sys.executable, str(ROOT)
    version = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    system = shutil.which(version, path="/usr/bin:/usr/local/bin")
    if system and _reachable_by_others(Path(system)) and _reachable_by_others(Path(site_packages)):
        return system, f"{ROOT}:{site_packages}"
    pytest.skip(f"no {version} that uid 10001 can run")


def _can_emulate_the_container() -> str | None:
    if os.geteuid() != 0:
        return "needs root (a mount namespace and another user)"
    for tool in ("unshare", "setpriv", "mount"):
        if shutil.which(tool) is None:
            return f"needs {tool}"
    probe = subprocess.run(["unshare", "-m", "true"], capture_output=True, check=False)
    if probe.returncode != 0:
        return "cannot create a mount namespace here"
    return None


def test_scan_and_exporter_run_on_a_read_only_root_as_the_image_user() -> None:
    """What `docker run --read-only --user 10001` would show, without Docker:
    in a private mount namespace the whole root filesystem is remounted
    read-only, only one directory (the emptyDir / volume) stays writable, and
    `scan` runs as uid/gid 10001 with the image's environment. It scans the
    simulated fleet, writes its report, textfile and state there, and the
    exporter serves a scrape."""
    reason = _can_emulate_the_container()
    if reason is not None:
        pytest.skip(reason)
    from peers import free_port

    from scanner.fleet.scenarios import build_fleet
    from scanner.fleet.server import FleetProcess, write_config

    base = Path(tempfile.mkdtemp(prefix="pinaudit-ro-"))
    try:
        base.chmod(0o755)
        data, writable = base / "etc", base / "tmp"
        data.mkdir()
        writable.mkdir()
        writable.chmod(0o777)
        fleet = build_fleet(datetime.now(timezone.utc), scenarios=["healthy", "rotated"], base=11)
        with FleetProcess(write_config(fleet.sites, base / "sites")) as served:
            inventory = fleet.write(data, served.listening)
            port = free_port()
            python, pythonpath = _interpreter_for_the_image_user()
            scan = f"{python} -m scanner scan -i {inventory}"
            url = f"http://127.0.0.1:{port}/metrics"
            scrape = (
                f"import urllib.request as u; print(u.urlopen('{url}', timeout=10).read().decode())"
            )
            script = f"""
set -e
RUN="setpriv --reuid 10001 --regid 10001 --clear-groups env -i PATH=/usr/bin:/bin \\
  HOME={writable} TMPDIR={writable} PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \\
  PYTHONPATH={pythonpath}"
mount --make-rprivate /
mount --bind {writable} {writable}
mount -o remount,bind,ro /
if touch /pinaudit-probe 2>/dev/null; then echo "root is writable"; exit 99; fi
cd {writable}
$RUN {scan} --fail-on never --format json -o {writable}/report.json \\
  --textfile {writable}/pinaudit.prom --state {writable}/state.json
$RUN {scan} --serve 127.0.0.1:{port} --interval 1h --log-format json 2> {writable}/exporter.log &
exporter=$!
trap 'kill -TERM $exporter 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  if grep -q '"scan finished"' {writable}/exporter.log; then break; fi
  sleep 0.1
done
$RUN {python} -c "{scrape}" > {writable}/scrape.txt
kill -TERM $exporter
wait $exporter
"""
            done = subprocess.run(
                ["unshare", "-m", "sh", "-c", script],
                capture_output=True,
                text=True,
                check=False,
                timeout=120,
            )
        assert done.returncode == 0, done.stdout + done.stderr
        written = {p.name for p in writable.iterdir()}
        assert written == {
            "report.json",
            "pinaudit.prom",
            "state.json",
            "exporter.log",
            "scrape.txt",
        }
        report = json.loads((writable / "report.json").read_text())
        assert report["summary"] == {"endpoints": 2, "ok": 1, "drift": 1, "error": 0}
        assert "pinaudit_pin_match" in (writable / "pinaudit.prom").read_text()
        assert 'pinaudit_pin_match{endpoint="rotated-1"' in (writable / "scrape.txt").read_text()
        assert (writable / "state.json").stat().st_uid == 10001
    finally:
        shutil.rmtree(base, ignore_errors=True)


# --- Prometheus rules -------------------------------------------------------------------


def all_rules(path: Path = RULES) -> list[dict[str, Any]]:
    return [rule for group in yaml.safe_load(path.read_text())["groups"] for rule in group["rules"]]


def alert_rules() -> list[dict[str, Any]]:
    return [rule for rule in all_rules() if "alert" in rule]


def recorded_names(path: Path = RULES) -> set[str]:
    return {rule["record"] for rule in all_rules(path) if "record" in rule}


def test_promtool_checks_the_rules() -> None:
    from peers import require_program

    promtool = require_program("promtool")
    for path in (RULES, COMPAT_RULES):
        done = subprocess.run(
            [promtool, "check", "rules", str(path)], capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"SUCCESS: {len(all_rules(path))} rules found" in done.stdout


def test_promtool_unit_tests_of_the_rules_pass() -> None:
    from peers import require_program

    promtool = require_program("promtool")
    done = subprocess.run(
        [promtool, "test", "rules", *(str(p) for p in RULE_TESTS)],
        capture_output=True,
        text=True,
        check=False,
        cwd=DEPLOY / "prometheus",
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("SUCCESS") == len(RULE_TESTS), done.stdout


def test_every_alert_is_tested_firing_and_silent() -> None:
    fires: set[str] = set()
    silent: set[str] = set()
    recorded: set[str] = set()
    for path in RULE_TESTS:
        doc = yaml.safe_load(path.read_text())
        assert doc["rule_files"] in (["../pinaudit-rules.yml"], ["../pinaudit-compat-rules.yml"])
        for test in doc["tests"]:
            for case in test.get("promql_expr_test", []):
                if case.get("exp_samples"):
                    recorded |= set(re.findall(r"[a-z_:]+", case["expr"]))
            for case in test.get("alert_rule_test", []):
                (fires if case.get("exp_alerts") else silent).add(case["alertname"])
    names = {rule["alert"] for rule in alert_rules()}
    assert names >= REQUIRED_ALERTS
    assert fires == names, f"never seen firing: {names - fires}"
    assert silent == names, f"never seen silent: {names - silent}"
    # every recording rule (the parameters, the blackbox / ssl_exporter series)
    # is queried with expected samples
    records = recorded_names() | recorded_names(COMPAT_RULES)
    assert records - recorded <= {"pinaudit:cert_not_after_timestamp_seconds:named"}


def test_every_alert_has_severity_summary_description_and_a_runbook_section() -> None:
    anchors = runbook_anchors()
    names = []
    for rule in alert_rules():
        name = rule["alert"]
        names.append(name)
        assert re.fullmatch(r"Pinaudit[A-Z][A-Za-z]+", name), name
        assert rule["labels"]["severity"] in ("warning", "critical"), name
        annotations = rule["annotations"]
        assert set(annotations) == {"summary", "description", "runbook_url"}, name
        assert annotations["runbook_url"] == RUNBOOK_URL + name.lower(), name
        assert name.lower() in anchors, f"docs/runbook.md has no section {name}"
        assert "for" in rule, name
    assert len(set(names)) == len(names)
    assert set(anchors) >= {n.lower() for n in names}


def promql_metric_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression: identifiers that are not functions,
    keywords, label names (in braces or grouping clauses) or durations."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"|`[^`]*`', '""', expr)
    text = re.sub(r"\{[^}]*\}", "", text)
    text = re.sub(r"\[[^\]]*\]", "", text)
    grouping = r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)"
    text = re.sub(grouping, "", text)
    text = re.sub(r"\b(?:group_left|group_right)\b", "", text)
    words = {"and", "or", "unless", "by", "without", "on", "ignoring", "offset", "bool"}
    words |= {"inf", "nan"}
    names = set()
    for match in re.finditer(r"(?<![\w:.])[A-Za-z_:][\w:]*", text):
        if text[match.end() :].lstrip().startswith("("):
            continue  # a function or an aggregation
        if match.group(0).lower() not in words:
            names.add(match.group(0))
    return names


def test_the_metric_name_reader_itself() -> None:
    expr = (
        'count by (job) (time() - a_b{x="y"} > 2 * (c or d * 0 + 3600)) '
        "< max by (job) (e) and ignoring (address) max_over_time(f[1d]) offset 1h"
    )
    assert promql_metric_names(expr) == {"a_b", "c", "d", "e", "f"}


def test_the_rules_read_only_the_metric_contract() -> None:
    used: set[str] = set()
    for path in (RULES, COMPAT_RULES):
        # what the contract has, and the constants / intermediate series the same
        # file records (never another exporter's series)
        allowed = (
            _contract()
            | ALLOWED_EXTRA_METRICS
            | {name for name in recorded_names(path) if name.startswith("pinaudit:")}
        )
        for rule in all_rules(path):
            names = promql_metric_names(rule["expr"])
            assert names <= allowed, (rule.get("alert") or rule["record"], names - allowed)
            used |= names
    assert "push_time_seconds" not in used or "push_time_seconds" in ALLOWED_EXTRA_METRICS


# --- Grafana ----------------------------------------------------------------------------


def dashboard() -> dict[str, Any]:
    return dict(json.loads(DASHBOARD.read_text()))


def all_panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from all_panels(panel.get("panels", []))


def dashboard_queries() -> list[tuple[str, str]]:
    """(where, expr) of every query of the dashboard, panels and variables."""
    found = []
    for panel in all_panels(dashboard()["panels"]):
        for target in panel.get("targets", []):
            found.append(
                (f"panel {panel['id']} {panel['title']!r} {target['refId']}", target["expr"])
            )
    for variable in dashboard()["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]["query"]
            match = re.fullmatch(r"label_values\((.+),\s*([A-Za-z_]\w*)\)", query)
            assert match, query
            found.append((f"variable {variable['name']}", match.group(1)))
    return found


def _concrete(expr: str) -> str:
    for variable, value in sorted(GRAFANA_VARIABLES.items(), key=lambda kv: -len(kv[0])):
        expr = expr.replace(variable, value)
    assert "$" not in expr, expr
    return expr


def test_the_dashboard_has_overview_drill_down_and_template_variables() -> None:
    board = dashboard()
    assert board["uid"] == "pinaudit" and board["schemaVersion"] >= 36
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert variables["job"]["type"] == variables["endpoint"]["type"] == "query"
    assert variables["filters"]["type"] == "adhoc"  # inventory labels: team, env, ...
    assert "$job" in variables["endpoint"]["query"]["query"]
    rows = [p["title"] for p in board["panels"] if p["type"] == "row"]
    assert rows == ["Fleet overview", "Endpoint: $endpoint"]
    titles = {p["title"] for p in all_panels(board["panels"])}
    assert {
        "Pin drift",
        "Endpoints up",
        "Scan age",
        "Scan duration",
        "Pin-sets expiring soonest",
        "Certificates expiring soonest",
        "Drifted endpoints",
        # issue 13: the handshake's facts, fleet-wide and per endpoint
        "OCSP staples",
        "OCSP staples expiring soonest",
        "TLS versions",
        "TLS handshake",
        "OCSP staple",
        "Staple expires in",
    } <= titles
    ids = [p["id"] for p in all_panels(board["panels"])]
    assert len(ids) == len(set(ids))
    # every panel below the endpoint row is about $endpoint, none above it
    (row_y,) = (p["gridPos"]["y"] for p in board["panels"] if p["title"] == "Endpoint: $endpoint")
    drill = [p for p in board["panels"] if p.get("targets") and p["gridPos"]["y"] > row_y]
    fleet = [p for p in board["panels"] if p.get("targets") and p["gridPos"]["y"] < row_y]
    assert drill and all('endpoint="$endpoint"' in t["expr"] for p in drill for t in p["targets"])
    assert fleet and not any("$endpoint" in t["expr"] for p in fleet for t in p["targets"])
    titles_below = {p["title"] for p in drill}
    assert {"TLS handshake", "OCSP staple", "Staple expires in"} <= titles_below
    for panel in all_panels(board["panels"]):
        if panel["type"] != "row":
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
            for target in panel["targets"]:
                assert target["datasource"] == panel["datasource"]
                assert 'job=~"$job"' in target["expr"], (panel["title"], target["expr"])


def test_every_dashboard_query_is_valid_promql(tmp_path: Path) -> None:
    from peers import require_program

    promtool = require_program("promtool")
    queries = dashboard_queries()
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"dashboard:query_{n}", "expr": _concrete(expr)}
                    for n, (_, expr) in enumerate(queries)
                ],
            }
        ]
    }
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump(rules))
    done = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(queries)} rules found" in done.stdout


def test_the_dashboard_reads_only_the_metric_contract() -> None:
    allowed = _contract() | ALLOWED_EXTRA_METRICS
    used: set[str] = set()
    for where, expr in dashboard_queries():
        names = promql_metric_names(_concrete(expr))
        assert names <= allowed, (where, names - allowed)
        used |= names
    # the overview and drill-down show every per-endpoint fact of the contract
    assert {
        "pinaudit_pin_match",
        "pinaudit_pins_enforced",
        "pinaudit_pinset_expiry_timestamp_seconds",
        "pinaudit_cert_not_after_timestamp_seconds",
        "pinaudit_chain_valid",
        "pinaudit_endpoint_up",
        "pinaudit_scan_duration_seconds",
        "pinaudit_scan_timestamp_seconds",
        "pinaudit_leaf_info",
        "pinaudit_findings",
        "pinaudit_tls_info",
        "pinaudit_ocsp_status",
        "pinaudit_ocsp_next_update_timestamp_seconds",
    } <= used


# --- runbook and docs/deploy.md ---------------------------------------------------------------


def runbook_anchors() -> dict[str, str]:
    """GitHub-style anchors of the runbook's headings → the section's text."""
    text = RUNBOOK.read_text()
    sections: dict[str, str] = {}
    parts = re.split(r"^(#{2,3}) (.+)$", text, flags=re.MULTILINE)
    for n in range(1, len(parts), 3):
        title = parts[n + 1].strip()
        anchor = re.sub(r"[^\w\- ]", "", title.lower()).replace(" ", "-")
        sections[anchor] = parts[n + 2]
    return sections


def test_the_runbook_says_what_clients_see_and_what_to_do() -> None:
    anchors = runbook_anchors()
    for rule in alert_rules():
        section = anchors[rule["alert"].lower()]
        assert "**Clients:**" in section and "**Do:**" in section, rule["alert"]
    assert "rotate to the backup pin" in anchors["pinauditpindrift"].lower()
    assert "ship an app update before the pin-set expires" in (
        anchors["pinauditpinsetexpiringsoon"].lower()
    )


def test_the_docs_explain_deploying_sharding_and_the_alerts() -> None:
    section = (ROOT / "docs" / "deploy.md").read_text()
    for needle in (
        "deploy/Dockerfile",
        "deploy/kubernetes",
        "deploy/prometheus/pinaudit-rules.yml",
        "deploy/grafana/pinaudit.json",
        "docs/runbook.md",
        "--shard",
        "JOB_COMPLETION_INDEX",
        "honor_labels",
    ):
        assert needle in section, needle


def test_docs_deploy_lists_every_alert_and_parameter() -> None:
    """docs/deploy.md (linked from the README's Deploying section) has the alert
    table and the parameters of the rules and of the Kustomize components."""
    text = (ROOT / "docs" / "deploy.md").read_text()
    for rule in alert_rules():
        assert f"| `{rule['alert']}` |" in text, rule["alert"]
    settings = _one("examples/kube-prometheus-stack/pinaudit-monitoring.yaml")["data"]
    for key in settings:
        assert f"`{key}`" in text, key
    for name in recorded_names():
        assert f"`{name}`" in text, name
    for component in (K8S / "components").iterdir():
        assert f"components/{component.name}" in text, component.name


if __name__ == "__main__":
    for generated, source, name in GENERATED:
        generated.write_text(generated_text(source, name))
        print(f"wrote {generated.relative_to(ROOT)}")
