"""The deployment files: Kubernetes manifests, compose file, Prometheus, Grafana, Dockerfile.

Offline only: Kubernetes manifests are checked against the schemas bundled with
`kubernetes-validate`; the compose file structurally (and against a Compose JSON schema only
if an installed package happens to ship one); metric names against the names the services
export and FastStream's Prometheus middleware defines.
"""

from __future__ import annotations

import importlib.metadata
import json
import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from faststream.prometheus.container import MetricsContainer
from packaging.specifiers import SpecifierSet
from prometheus_client import CollectorRegistry

from schemas import topics
from schemas.topics import AUDIT_PARTITIONS, DEFAULT_PARTITIONS

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
#: The optional overlay: the base with KEDA ScaledObjects instead of the intake HPA.
KEDA = DEPLOY / "k8s-keda"
K8S_VERSION = "1.37.0"

PORTS = {"reporting": 8000, "intake": 8001, "analysis": 8002, "followup": 8003}
REPLICAS = {"intake": 3, "analysis": 2, "followup": 2, "reporting": 2}
CONSUMES = {
    "intake": (topics.APPLICATIONS, topics.NOTIFICATIONS),
    "analysis": (topics.CASE_REVIEWS,),
    "followup": (topics.MILESTONES,),
    "reporting": (topics.REPORTING, topics.COMMANDS),
}
APP_ENV = ("KAFKA_BOOTSTRAP_SERVERS", "MONGODB_URL", "TASKFORCE_HTTP_HOST",
           "TASKFORCE_HTTP_PORT", "TASKFORCE_TOKENS_FILE")
TOKENS_FILE = "/run/secrets/tokens.json"
SECRETS_DIR = "/run/secrets/"
#: The connection and secret settings (issue 24): every secret only as a file under /run/secrets.
SECURE_ENV = ("KAFKA_SECURITY_PROTOCOL", "KAFKA_SASL_MECHANISM", "KAFKA_SASL_USERNAME_FILE",
              "KAFKA_SASL_PASSWORD_FILE", "KAFKA_SSL_CAFILE", "MONGODB_URL_FILE")
#: Names whose value would be a secret: in a manifest only as a reference or a file path.
SECRET_NAME = re.compile(r"(PASSWORD|SECRET|TOKEN|MONGODB_URL)(?!_FILE|_PATH)", re.I)
#: Keys that name a Secret object rather than hold a value.
REFERENCES = {"secretName"}

#: The metrics the services export (services/common/metrics.py), by type.
OUR_METRICS = {
    "taskforce_events_applied": "counter",
    "taskforce_duplicates_skipped": "counter",
    "taskforce_dlq_records": "counter",
    "taskforce_batch_size": "histogram",
    "taskforce_batch_seconds": "histogram",
    "taskforce_consumer_lag": "gauge",
    "taskforce_consumer_lag_seconds": "gauge",
    "taskforce_summaries_published": "counter",
    "taskforce_store_retries": "counter",
    "taskforce_ready": "gauge",
}
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}

TOPIC_FLAGS = re.compile(
    r'--topic\s+"?(?:\$\{?\w+\}?)?(?P<topic>[\w.-]+)"?\s+--partitions\s+(?P<count>\d+)')
METRIC_NAME = re.compile(r"\b((?:taskforce|faststream)_[a-z0-9_]+)\b")


# ----------------------------------------------------------------------------- helpers


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def k8s_files() -> list[Path]:
    return sorted(p for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")


def k8s_resources() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in k8s_files():
        docs.extend(d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d)
    return docs


def k8s(kind: str, name: str) -> dict[str, Any]:
    found = [r for r in k8s_resources() if r["kind"] == kind and r["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
    return found[0]


def compose() -> dict[str, Any]:
    return load_yaml(DEPLOY / "compose.yaml")


def compose_managed() -> dict[str, Any]:
    return load_yaml(DEPLOY / "compose.managed.yaml")


def required_variable(value: str) -> str | None:
    """The variable of a compose value `${VAR:?message}` (required, no default), else None."""
    found = re.fullmatch(r"\$\{(\w+):\?[^}]+\}", value)
    return found[1] if found else None


def projected_files(pod: dict[str, Any]) -> dict[str, tuple[str, str, bool]]:
    """Where the pod's projected `secrets` volume puts each Secret key: {path: (secret, key, optional)}."""
    (container,) = pod["containers"]
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    (volume,) = [v for v in pod["volumes"] if v["name"] == "secrets"]
    assert mounts["secrets"]["readOnly"] is True
    root = mounts["secrets"]["mountPath"].rstrip("/") + "/"
    files = {}
    for source in volume["projected"]["sources"]:
        secret = source["secret"]
        for item in secret["items"]:
            files[root + item["path"]] = (secret["name"], item["key"], bool(secret.get("optional")))
    return files


def literal_secrets(doc: Any, where: str = "") -> list[str]:
    """Every key of a manifest whose name says secret and whose value is a literal string."""
    found = []
    if isinstance(doc, dict):
        items = doc.items()
        if {"name", "value"} <= set(doc) and isinstance(doc["name"], str):  # a container's env entry
            items = [*items, (doc["name"], doc["value"])]
        for key, value in items:
            if isinstance(value, str) and SECRET_NAME.search(str(key)) and key not in REFERENCES and not (
                    value.startswith(SECRETS_DIR) or required_variable(value)
                    or (str(key) == "MONGODB_URL" and "@" not in value)):  # no credentials in it
                found.append(f"{where}.{key}")
            found += literal_secrets(value, f"{where}.{key}")
    elif isinstance(doc, list):
        for index, value in enumerate(doc):
            found += literal_secrets(value, f"{where}[{index}]")
    return found


def topic_partitions(script: str) -> dict[str, int]:
    """`{topic: partitions}` from the `kafka-topics.sh --create` lines of a shell script."""
    assert "--create" in script
    found: dict[str, int] = {}
    for m in TOPIC_FLAGS.finditer(script):
        assert m["topic"] not in found, f"{m['topic']} created twice"
        found[m["topic"]] = int(m["count"])
    return found


def compose_default(value: str) -> str:
    """A compose value with `${VAR:-default}` replaced by its default."""
    return re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", value)


def exported_metric_names() -> set[str]:
    """Every sample name a service's /metrics can carry: ours and FastStream's middleware's."""
    names = {base + suffix for base, kind in OUR_METRICS.items() for suffix in SUFFIXES[kind]}
    registry = CollectorRegistry()
    MetricsContainer(registry, metrics_prefix="faststream", custom_label_names=[])
    names |= set(registry._names_to_collectors)
    return names


def referenced_metrics(expr: str) -> set[str]:
    return set(METRIC_NAME.findall(expr))


# ----------------------------------------------------------------------------- Kubernetes


@pytest.mark.parametrize("path", k8s_files(), ids=lambda p: p.name)
def test_k8s_manifest_validates_against_bundled_schema(path: Path) -> None:
    resources = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]
    assert resources, f"{path.name} holds no resource"
    for resource in resources:
        try:
            kubernetes_validate.validate(resource, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{path.name} {resource['kind']}/{resource['metadata']['name']}: "
                        f"{'.'.join(map(str, exc.path))}: {exc.message}")
        assert resource["metadata"].get("namespace", "taskforce") == "taskforce"


def test_kustomization_lists_every_manifest() -> None:
    kustomization = load_yaml(K8S / "kustomization.yaml")
    assert kustomization["kind"] == "Kustomization"
    assert sorted(kustomization["resources"]) == sorted(p.name for p in k8s_files())


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl (built-in kustomize) absent")
def test_kustomize_build_validates() -> None:
    out = subprocess.run(["kubectl", "kustomize", str(K8S)], check=True, capture_output=True,
                         text=True, timeout=60).stdout
    resources = [d for d in yaml.safe_load_all(out) if d]
    assert len(resources) == len(k8s_resources())
    for resource in resources:
        kubernetes_validate.validate(resource, K8S_VERSION, strict=True)


@pytest.mark.parametrize("service", sorted(PORTS))
def test_deployment(service: str) -> None:
    deployment = k8s("Deployment", f"taskforce-{service}")
    spec = deployment["spec"]
    assert spec["replicas"] == REPLICAS[service]
    # Replicas beyond the partition count idle: the starting size never exceeds it.
    assert spec["replicas"] <= min(DEFAULT_PARTITIONS[t] for t in CONSUMES[service])
    assert spec["strategy"]["rollingUpdate"]["maxSurge"] == 0
    pod = spec["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] >= 30
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    (container,) = pod["containers"]
    assert container["command"] == ["python", "-m", f"services.{service}"]
    assert container["ports"][0]["containerPort"] == PORTS[service]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert {"cpu", "memory"} <= set(container["resources"]["requests"])
    assert {"cpu", "memory"} <= set(container["resources"]["limits"])
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    env = {e["name"]: e for e in container["env"]}
    assert env["TASKFORCE_HTTP_PORT"]["value"] == str(PORTS[service])
    assert container["envFrom"] == [{"configMapRef": {"name": "taskforce-config"}}]
    # Secrets only as files: no env var takes a Secret's value (it would show in `kubectl
    # describe`, crash dumps and child processes).
    assert not [e for e in container["env"] if "secretKeyRef" in e.get("valueFrom", {})]
    assert "MONGODB_URL" not in env and "TASKFORCE_SESSION_SECRET" not in env
    files = projected_files(pod)
    assert files[TOKENS_FILE] == ("taskforce-tokens", "tokens.json", False)
    config = k8s("ConfigMap", "taskforce-config")["data"]
    assert files[config["MONGODB_URL_FILE"]] == ("taskforce-mongodb", "url", False)
    for name in ("KAFKA_SASL_USERNAME_FILE", "KAFKA_SASL_PASSWORD_FILE", "KAFKA_SSL_CAFILE"):
        assert files[config[name]][0] == "taskforce-kafka", name
    if service == "reporting":
        assert files[env["TASKFORCE_SESSION_SECRET_FILE"]["value"]] == (
            "taskforce-session", "session_secret", False)
    else:
        assert "taskforce-session" not in {secret for secret, _key, _optional in files.values()}

    svc = k8s("Service", f"taskforce-{service}")
    assert svc["spec"]["selector"] == spec["selector"]["matchLabels"]
    assert svc["spec"]["ports"][0]["port"] == PORTS[service]


def test_configmap_is_secure_by_default_and_holds_no_secret() -> None:
    config = k8s("ConfigMap", "taskforce-config")["data"]
    assert config["TASKFORCE_HTTP_HOST"] == "0.0.0.0"
    assert config["TASKFORCE_TOKENS_FILE"] == TOKENS_FILE
    assert "KAFKA_BOOTSTRAP_SERVERS" in config
    assert "MONGODB_URL" not in config, "the Mongo URL holds credentials: a Secret's file only"
    assert config["KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert config["KAFKA_SASL_MECHANISM"].startswith("SCRAM-SHA-")
    assert config["TASKFORCE_SECURE_COOKIES"] == "true"
    for name in SECURE_ENV:
        assert name in config, name
        if name.endswith("_FILE"):
            assert config[name].startswith(SECRETS_DIR), name
    # The settings the ConfigMap gives are ones the services read.
    from services.common.settings import Settings

    aliases = {field.alias for field in Settings.model_fields.values()}
    assert set(config) <= aliases, set(config) - aliases


def test_no_manifest_holds_a_secret_or_a_default_token() -> None:
    """Issue 24: no Secret object, token or session secret in any manifest; Secrets are made by
    the operator (docs/operations.md) and mounted as files."""
    assert not [r for r in k8s_resources() if r["kind"] == "Secret"]
    assert not (DEPLOY / "tokens.example.json").exists()
    for path in [*k8s_files(), DEPLOY / "compose.yaml", DEPLOY / "compose.managed.yaml"]:
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            assert not literal_secrets(doc), f"{path.name}: {literal_secrets(doc)}"


def test_network_policies_expose_only_reporting_http_and_metrics() -> None:
    policies = {r["metadata"]["name"]: r["spec"] for r in k8s_resources()
                if r["kind"] == "NetworkPolicy"}
    deny = [p for p in policies.values() if p["podSelector"] == {} and p["policyTypes"] == ["Ingress"]
            and not p.get("ingress")]
    assert deny, "a default-deny ingress policy for every pod of the namespace"
    allowed: dict[str, list[tuple[str, Any]]] = {}
    for spec in policies.values():
        for rule in spec.get("ingress", []):
            assert rule.get("from"), "every allow names who may connect"
            ports = rule["ports"]
            assert [p["port"] for p in ports] == ["http"] and ports[0]["protocol"] == "TCP"
            peers = [(peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"],
                      peer["podSelector"]["matchLabels"]["app.kubernetes.io/name"]) for peer in rule["from"]]
            for service in PORTS:
                labels = k8s("Deployment", f"taskforce-{service}")["spec"]["template"]["metadata"]["labels"]
                if _selects(spec["podSelector"], labels):
                    allowed.setdefault(service, []).extend(peers)
    prometheus = ("monitoring", "prometheus")
    ingress_controller = ("ingress-nginx", "ingress-nginx")
    assert {service: set(peers) for service, peers in allowed.items()} == {
        "reporting": {ingress_controller, prometheus}, "intake": {prometheus}, "analysis": {prometheus},
        "followup": {prometheus}}
    for service in PORTS:  # the named port the policies open is the service's HTTP port (its /metrics)
        (container,) = k8s("Deployment", f"taskforce-{service}")["spec"]["template"]["spec"]["containers"]
        assert container["ports"][0] == {"name": "http", "containerPort": PORTS[service], "protocol": "TCP"}


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        assert expression["operator"] == "In"
        if labels.get(expression["key"]) not in expression["values"]:
            return False
    return True


def test_ingress_serves_reporting_over_tls_only_and_not_its_operational_endpoints() -> None:
    ingress = k8s("Ingress", "taskforce-reporting")
    spec = ingress["spec"]
    (tls,) = spec["tls"]
    (rule,) = spec["rules"]
    assert tls["secretName"] and rule["host"] in tls["hosts"]
    annotations = ingress["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/force-ssl-redirect"] == "true"
    paths = rule["http"]["paths"]
    assert {(p["path"], p["pathType"]) for p in paths} == {
        ("/", "Exact"), ("/login", "Exact"), ("/logout", "Exact"), ("/municipalities", "Prefix")}
    for path in paths:
        assert path["backend"]["service"] == {"name": "taskforce-reporting", "port": {"name": "http"}}
    for hidden in ("/metrics", "/healthz", "/readyz", "/docs", "/openapi.json"):
        assert not any(hidden == p["path"] or (p["pathType"] == "Prefix" and hidden.startswith(p["path"]))
                       for p in paths), hidden
    # HSTS: the reporting service sends it whenever its cookies are Secure (the ConfigMap says so).
    assert k8s("ConfigMap", "taskforce-config")["data"]["TASKFORCE_SECURE_COOKIES"] == "true"
    assert "HSTS" in (K8S / "ingress.yaml").read_text(encoding="utf-8")


def test_intake_hpa_scales_on_lag_up_to_partitions() -> None:
    hpa = k8s("HorizontalPodAutoscaler", "taskforce-intake")["spec"]
    assert hpa["scaleTargetRef"]["name"] == "taskforce-intake"
    assert hpa["minReplicas"] == REPLICAS["intake"]
    assert hpa["maxReplicas"] == min(DEFAULT_PARTITIONS[t] for t in CONSUMES["intake"])
    (metric,) = hpa["metrics"]
    assert metric["type"] == "External"
    assert metric["external"]["metric"]["name"] == "taskforce_consumer_lag"


# ----------------------------------------------------------------------------- KEDA overlay


def keda_resources() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for name in load_yaml(KEDA / "kustomization.yaml")["resources"]:
        if (KEDA / name).is_file():
            docs.extend(d for d in yaml.safe_load_all((KEDA / name).read_text(encoding="utf-8")) if d)
    return docs


def scaled_object(service: str) -> dict[str, Any]:
    (found,) = [r for r in keda_resources()
                if r["kind"] == "ScaledObject" and r["metadata"]["name"] == f"taskforce-{service}"]
    return found


def test_keda_overlay_is_optional_and_replaces_the_intake_hpa() -> None:
    kustomization = load_yaml(KEDA / "kustomization.yaml")
    assert kustomization["kind"] == "Kustomization"
    assert kustomization["namespace"] == "taskforce"
    # The base, plus every file of the overlay; the base does not name the overlay.
    files = sorted(p.name for p in KEDA.glob("*.yaml") if p.name != "kustomization.yaml")
    assert kustomization["resources"][0] == "../k8s"
    assert sorted(kustomization["resources"][1:]) == files
    assert "k8s-keda" not in (K8S / "kustomization.yaml").read_text(encoding="utf-8")
    assert not [r for r in k8s_resources() if r["apiVersion"].startswith("keda.sh/")]
    # Two autoscalers on one Deployment fight: the overlay deletes the base's HPA.
    (patch,) = kustomization["patches"]
    assert patch["target"]["kind"] == "HorizontalPodAutoscaler"
    deleted = yaml.safe_load(patch["patch"])
    assert deleted["$patch"] == "delete" and deleted["kind"] == "HorizontalPodAutoscaler"
    assert {h["metadata"]["name"] for h in k8s_resources() if h["kind"] == "HorizontalPodAutoscaler"} == {
        deleted["metadata"]["name"]}
    for resource in keda_resources():
        assert resource["metadata"]["namespace"] == "taskforce"
        assert not literal_secrets(resource), literal_secrets(resource)


@pytest.mark.parametrize("service", sorted(PORTS))
def test_keda_scaled_object_scales_on_the_groups_lag_up_to_the_partition_count(service: str) -> None:
    so = scaled_object(service)
    assert so["apiVersion"] == "keda.sh/v1alpha1"
    spec = so["spec"]
    deployment = k8s("Deployment", spec["scaleTargetRef"]["name"])
    assert spec["scaleTargetRef"]["name"] == f"taskforce-{service}"
    assert spec["scaleTargetRef"].get("kind", "Deployment") == "Deployment"
    assert spec["minReplicaCount"] == deployment["spec"]["replicas"] == REPLICAS[service]
    config = k8s("ConfigMap", "taskforce-config")["data"]
    from services.common.settings import load_settings

    group = load_settings(service, TASKFORCE_TOPIC_PREFIX=config.get("TASKFORCE_TOPIC_PREFIX", ""),
                          TASKFORCE_GROUP_SUFFIX=config.get("TASKFORCE_GROUP_SUFFIX", "")).group_id
    triggers = spec["triggers"]
    assert triggers and all(t["type"] == "kafka" for t in triggers)
    scaled_on = [t["metadata"]["topic"] for t in triggers]
    assert set(scaled_on) <= set(CONSUMES[service]) and len(set(scaled_on)) == len(scaled_on)
    # The replica ceiling is the partition count: a member beyond it gets no partition.
    assert {DEFAULT_PARTITIONS[t] for t in scaled_on} == {spec["maxReplicaCount"]}
    assert spec["maxReplicaCount"] <= max(DEFAULT_PARTITIONS[t] for t in CONSUMES[service])
    assert spec["minReplicaCount"] <= spec["maxReplicaCount"]
    text = (KEDA / f"{service}-scaledobject.yaml").read_text(encoding="utf-8")
    assert "maxReplicaCount is the partition count" in text
    mechanism = {"SCRAM-SHA-512": "scram_sha512", "SCRAM-SHA-256": "scram_sha256", "PLAIN": "plaintext"}
    auths = {r["metadata"]["name"]: r["spec"] for r in keda_resources()
             if r["kind"] == "TriggerAuthentication"}
    for trigger in triggers:
        meta = trigger["metadata"]
        assert meta["consumerGroup"] == group
        assert int(meta["lagThreshold"]) > 0
        assert meta["offsetResetPolicy"] == "earliest"  # as the services' consumers
        assert meta.get("allowIdleConsumers", "false") == "false"
        # The brokers and the connection as the services' (the ConfigMap, the Kafka Secret).
        assert meta["bootstrapServersFromEnv"] == "KAFKA_BOOTSTRAP_SERVERS" in config
        assert deployment["spec"]["template"]["spec"]["containers"][0]["envFrom"] == [
            {"configMapRef": {"name": "taskforce-config"}}]
        assert meta["tls"] == ("enable" if config["KAFKA_SECURITY_PROTOCOL"].endswith("SSL") else "disable")
        assert meta["sasl"] == mechanism[config["KAFKA_SASL_MECHANISM"]]
        refs = auths[trigger["authenticationRef"]["name"]]["secretTargetRef"]
        files = projected_files(deployment["spec"]["template"]["spec"])
        wanted = {"username": config["KAFKA_SASL_USERNAME_FILE"],
                  "password": config["KAFKA_SASL_PASSWORD_FILE"], "ca": config["KAFKA_SSL_CAFILE"]}
        assert {r["parameter"]: (r["name"], r["key"]) for r in refs} == {
            parameter: files[path][:2] for parameter, path in wanted.items()}


def test_keda_scales_every_consuming_service() -> None:
    scaled = {r["spec"]["scaleTargetRef"]["name"] for r in keda_resources() if r["kind"] == "ScaledObject"}
    assert scaled == {f"taskforce-{service}" for service in PORTS}


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl (built-in kustomize) absent")
def test_keda_overlay_builds_with_one_autoscaler_per_deployment() -> None:
    out = subprocess.run(["kubectl", "kustomize", str(KEDA)], check=True, capture_output=True,
                         text=True, timeout=60).stdout
    resources = [d for d in yaml.safe_load_all(out) if d]
    kinds = [r["kind"] for r in resources]
    assert "HorizontalPodAutoscaler" not in kinds
    assert kinds.count("ScaledObject") == len(PORTS)
    assert len(resources) == len(k8s_resources()) - 1 + len(keda_resources())
    for resource in resources:
        assert resource["metadata"].get("namespace", "taskforce") == "taskforce"
        if not resource["apiVersion"].startswith("keda.sh/"):
            kubernetes_validate.validate(resource, K8S_VERSION, strict=True)


def test_topic_job_creates_every_topic_with_its_partitions() -> None:
    job = k8s("Job", "taskforce-create-topics")
    (container,) = job["spec"]["template"]["spec"]["containers"]
    script = " ".join(container["command"] + container.get("args", []))
    assert "--if-not-exists" in script
    assert topic_partitions(script) == DEFAULT_PARTITIONS | AUDIT_PARTITIONS


def test_topic_job_connects_like_the_services() -> None:
    """The same ConfigMap and Kafka Secret files: SASL_SSL works for it as for the services,
    through client properties written in memory (never the manifest or the log)."""
    pod = k8s("Job", "taskforce-create-topics")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["envFrom"] == [{"configMapRef": {"name": "taskforce-config"}}]
    script = container["args"][0]
    assert "--command-config $C" in script and "set -x" not in script
    for setting in ("KAFKA_SECURITY_PROTOCOL", "KAFKA_SASL_MECHANISM", "KAFKA_SASL_USERNAME_FILE",
                    "KAFKA_SASL_PASSWORD_FILE", "KAFKA_SSL_CAFILE"):
        assert f"${setting}" in script or f"${{{setting}" in script, setting
    config = k8s("ConfigMap", "taskforce-config")["data"]
    files = projected_files(pod)
    for name in ("KAFKA_SASL_USERNAME_FILE", "KAFKA_SASL_PASSWORD_FILE", "KAFKA_SSL_CAFILE"):
        assert files[config[name]][0] == "taskforce-kafka", name
    (tmp,) = [v for v in pod["volumes"] if v["name"] == "tmp"]
    assert tmp["emptyDir"]["medium"] == "Memory"


# ----------------------------------------------------------------------------- compose


#: Images with no shell or HTTP client inside (distroless), whose compose health check is
#: Compose's explicit "NONE"; nothing may wait for them to be healthy.
NO_CLIENT_INSIDE = {"otel-collector"}


def test_compose_every_service_has_image_and_healthcheck() -> None:
    services = compose()["services"]
    for name, service in services.items():
        assert "image" in service or "build" in service, name
        test = service.get("healthcheck", {}).get("test")
        assert test, f"{name} has no healthcheck"
        assert (test == ["NONE"]) == (name in NO_CLIENT_INSIDE), (name, test)
    for name, service in services.items():
        for needed, condition in (service.get("depends_on") or {}).items():
            if needed in NO_CLIENT_INSIDE:
                assert condition["condition"] != "service_healthy", (name, needed)


def test_compose_traces_go_through_the_collector_to_jaeger() -> None:
    """Every service exports OTLP/HTTP to the collector; the collector receives on that port
    and forwards to Jaeger's OTLP/gRPC port; Jaeger's UI is on loopback only."""
    doc = compose()
    services = doc["services"]
    env = doc["x-taskforce-env"]
    endpoint = env["OTEL_EXPORTER_OTLP_ENDPOINT"]  # `${VAR-default}`: an empty VAR switches off
    assert re.fullmatch(r"\$\{OTEL_EXPORTER_OTLP_ENDPOINT-http://otel-collector:4318\}", endpoint), endpoint
    assert env["OTEL_TRACES_SAMPLER"] == "parentbased_traceidratio"
    assert 0 < float(compose_default(env["OTEL_TRACES_SAMPLER_ARG"])) <= 1
    for name in (*PORTS, "gateway"):
        assert services[name]["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"] == endpoint
    collector = services["otel-collector"]
    mounted = {v.split(":")[1]: DEPLOY / v.split(":")[0] for v in collector["volumes"]}
    config_path = next(a.split("=", 1)[1] for a in collector["command"] if a.startswith("--config="))
    config = load_yaml(mounted[config_path])
    assert config["receivers"]["otlp"]["protocols"]["http"]["endpoint"].endswith(":4318")
    exporters = config["service"]["pipelines"]["traces"]["exporters"]
    assert [config["exporters"][e]["endpoint"] for e in exporters] == ["jaeger:4317"]
    assert set(config["service"]["pipelines"]["traces"]["processors"]) <= set(config["processors"])
    assert services["jaeger"]["environment"]["JAEGER_LISTEN_HOST"] == "0.0.0.0"
    assert services["jaeger"]["ports"] == ["127.0.0.1:16686:16686"]


@pytest.mark.parametrize("service", sorted(PORTS))
def test_compose_app_service(service: str) -> None:
    spec = compose()["services"][service]
    assert spec["build"]["dockerfile"] == "Dockerfile"
    assert (DEPLOY / spec["build"]["context"] / "Dockerfile").is_file()
    assert spec["command"] == ["python", "-m", f"services.{service}"]
    env = spec["environment"]
    assert set(APP_ENV) <= set(env), set(APP_ENV) - set(env)
    assert env["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
    assert env["MONGODB_URL"].startswith("mongodb://mongodb:27017")
    assert env["TASKFORCE_HTTP_HOST"] == "0.0.0.0"
    assert env["TASKFORCE_HTTP_PORT"] == str(PORTS[service])
    assert env["TASKFORCE_TOKENS_FILE"] == TOKENS_FILE
    assert compose_default(env["TASKFORCE_SECURE_COOKIES"]) == "true"
    assert "TASKFORCE_SESSION_SECRET" not in env
    if service == "reporting":
        assert env["TASKFORCE_SESSION_SECRET_FILE"] == "/run/secrets/session_secret"
        targets = {s["target"] for s in spec["secrets"]}
        assert targets == {"tokens.json", "session_secret"}
    # Every port on loopback only: reporting reaches other machines through a TLS proxy.
    assert all(p.startswith("127.0.0.1:") for p in spec["ports"]), spec["ports"]
    published = [p.removeprefix("127.0.0.1:") for p in spec["ports"]]
    assert f"{PORTS[service]}:{PORTS[service]}" in published
    depends = spec["depends_on"]
    assert depends["kafka"]["condition"] == "service_healthy"
    assert depends["mongodb"]["condition"] == "service_healthy"
    assert depends["topics"]["condition"] == "service_completed_successfully"
    check = " ".join(spec["healthcheck"]["test"])
    assert "urllib" in check
    assert f"127.0.0.1:{PORTS[service]}/healthz" in check
    assert f"/run/secrets/{spec['secrets'][0]['target']}" == TOKENS_FILE


def test_compose_infrastructure() -> None:
    doc = compose()
    services = doc["services"]
    kafka = services["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    assert "broker,controller" in kafka["environment"]["KAFKA_PROCESS_ROLES"]
    assert "PLAINTEXT://kafka:9092" in kafka["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    assert services["mongodb"]["image"] == "mongo:8.0"
    # No default secret: compose refuses to start until each file is named.
    for name in ("tokens", "session_secret", "grafana_admin_password"):
        assert required_variable(doc["secrets"][name]["file"]), name
    grafana = services["grafana"]
    assert grafana["environment"]["GF_SECURITY_ADMIN_PASSWORD__FILE"] == "/run/secrets/grafana_admin_password"
    assert "GF_SECURITY_ADMIN_PASSWORD" not in grafana["environment"]
    for name in ("prometheus", "grafana"):
        for volume in services[name]["volumes"]:
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), f"{name} mounts missing {source}"


def test_compose_topic_creation_matches_schemas() -> None:
    spec = compose()["services"]["topics"]
    script = " ".join(spec.get("entrypoint", []) + spec["command"])
    assert "kafka-topics.sh" in script
    assert "--if-not-exists" in script
    assert topic_partitions(script) == DEFAULT_PARTITIONS | AUDIT_PARTITIONS
    assert spec["depends_on"]["kafka"]["condition"] == "service_healthy"


@pytest.mark.parametrize("service", sorted(PORTS))
def test_compose_managed_variant_uses_sasl_ssl_and_tls_with_secret_files(service: str) -> None:
    """deploy/compose.managed.yaml: the services against SASL_SSL Kafka and TLS MongoDB."""
    doc = compose_managed()
    spec = doc["services"][service]
    env = spec["environment"]
    assert env["KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert required_variable(env["KAFKA_BOOTSTRAP_SERVERS"]) == "KAFKA_BOOTSTRAP_SERVERS"
    assert compose_default(env["KAFKA_SASL_MECHANISM"]).startswith("SCRAM-SHA-")
    assert env["TASKFORCE_HTTP_PORT"] == str(PORTS[service])
    targets = {s if isinstance(s, str) else s["target"] for s in spec["secrets"]}
    for name in ("KAFKA_SASL_USERNAME_FILE", "KAFKA_SASL_PASSWORD_FILE", "MONGODB_URL_FILE"):
        assert env[name].removeprefix("/run/secrets/") in targets, name
    cafile = re.sub(r"\$\{\w+-([^}]*)\}", r"\1", env["KAFKA_SSL_CAFILE"])
    assert cafile.removeprefix("/run/secrets/") in targets
    assert "MONGODB_URL" not in env  # the URL is a file (MONGODB_URL_FILE wins over compose.yaml's)
    sources = {s if isinstance(s, str) else s["source"] for s in spec["secrets"]}
    assert sources <= set(compose()["secrets"]) | set(doc["secrets"])
    for secret in doc["secrets"].values():
        assert required_variable(secret["file"])


def _compose_schema() -> dict[str, Any] | None:
    """A Compose JSON schema shipped by an installed distribution, if there is one."""
    for dist in importlib.metadata.distributions():
        for file in dist.files or ():
            if file.name in {"compose-spec.json", "compose_spec.json", "config_schema_v3.9.json"}:
                return json.loads(Path(str(file.locate())).read_text(encoding="utf-8"))
    return None


def test_compose_against_json_schema_if_installed() -> None:
    schema = _compose_schema()
    if schema is None:
        pytest.skip("no installed package ships a Compose JSON schema; structural checks only")
    jsonschema.validate(compose(), schema)


# ----------------------------------------------------------------------------- Prometheus


def test_prometheus_scrapes_every_service() -> None:
    config = load_yaml(DEPLOY / "prometheus" / "prometheus.yml")
    targets = {
        target
        for job in config["scrape_configs"]
        if job.get("metrics_path", "/metrics") == "/metrics"
        for static in job.get("static_configs", [])
        for target in static["targets"]
    }
    assert {f"{name}:{port}" for name, port in PORTS.items()} <= targets
    assert "/etc/prometheus/alerts.yml" in config["rule_files"]


def test_prometheus_scrapes_the_gateway_as_a_taskforce_job() -> None:
    """Its own job (so TaskforceServiceDown's `job=~"taskforce-.*"` covers it), at the port the
    compose service and the Kubernetes pod annotations give."""
    config = load_yaml(DEPLOY / "prometheus" / "prometheus.yml")
    (job,) = [job for job in config["scrape_configs"]
              if any("gateway:8004" in static["targets"] for static in job.get("static_configs", []))]
    assert job["job_name"] == "taskforce-gateway"
    assert job.get("metrics_path", "/metrics") == "/metrics"
    service = compose()["services"]["gateway"]
    assert service["environment"]["TASKFORCE_HTTP_PORT"] == "8004"
    annotations = k8s("Deployment", "taskforce-gateway")["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == "8004"
    assert annotations["prometheus.io/scrape"] == "true"
    alerts = [r for g in load_yaml(DEPLOY / "prometheus" / "alerts.yml")["groups"] for r in g["rules"]]
    down = next(r for r in alerts if r["alert"] == "TaskforceServiceDown")
    assert re.search(r'job=~"taskforce-\.\*"', down["expr"]), down["expr"]


def test_alerts_name_exported_metrics() -> None:
    rules = [r for g in load_yaml(DEPLOY / "prometheus" / "alerts.yml")["groups"]
             for r in g["rules"]]
    exported = exported_metric_names()
    for rule in rules:
        names = referenced_metrics(rule["expr"])
        assert names or "up{" in rule["expr"], f"{rule['alert']} names no metric"
        assert names <= exported, f"{rule['alert']}: unknown {names - exported}"
    covered = set().union(*(referenced_metrics(r["expr"]) for r in rules))
    for needed in ("taskforce_consumer_lag", "taskforce_consumer_lag_seconds",
                   "taskforce_dlq_records_total", "taskforce_ready",
                   "taskforce_summaries_published_total", "taskforce_store_retries_total"):
        assert needed in covered, f"no alert on {needed}"


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool absent (Debian: prometheus)")
def test_promtool_accepts_config_rules_and_dashboard_queries(tmp_path: Path) -> None:
    config = load_yaml(DEPLOY / "prometheus" / "prometheus.yml")
    config["rule_files"] = [str(DEPLOY / "prometheus" / "alerts.yml")]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config), encoding="utf-8")
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "taskforce.json").read_text(
        encoding="utf-8"))
    exprs = [t["expr"].replace("$service", ".*") for p in dashboard["panels"]
             for t in p.get("targets", [])]
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:query{i}", "expr": e} for i, e in enumerate(exprs)]}]}
    (tmp_path / "dashboard.yml").write_text(yaml.safe_dump(rules), encoding="utf-8")
    for args in (["check", "config", "prometheus.yml"], ["check", "rules", "dashboard.yml"]):
        done = subprocess.run(["promtool", *args], cwd=tmp_path, capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr


def test_our_metric_names_are_what_the_services_export() -> None:
    from services.common.metrics import ServiceMetrics

    registered = set(ServiceMetrics("intake").registry._names_to_collectors)
    expected = {b + s for b, kind in OUR_METRICS.items() for s in SUFFIXES[kind]}
    assert expected <= registered, expected - registered


# ----------------------------------------------------------------------------- Grafana


def test_dashboard_queries_exported_metrics() -> None:
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "taskforce.json").read_text(
        encoding="utf-8"))
    assert dashboard["uid"] and dashboard["title"]
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    exprs += [v["definition"] for v in dashboard["templating"]["list"]]
    assert exprs
    exported = exported_metric_names()
    queried: set[str] = set()
    for expr in exprs:
        names = referenced_metrics(expr)
        assert names or "up{" in expr, f"query names no metric: {expr}"
        assert names <= exported, f"unknown metrics {names - exported} in {expr}"
        queried |= names
    bases = {n.removesuffix(s) for n in queried for s in ("_total", "_bucket", "_sum", "_count")
             if n.endswith(s)} | queried
    assert set(OUR_METRICS) <= bases, set(OUR_METRICS) - bases


@pytest.mark.parametrize("service", sorted(PORTS))
def test_dashboard_has_a_lag_panel_per_service(service: str) -> None:
    """Records and seconds behind, per partition, of one service."""
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "taskforce.json").read_text(
        encoding="utf-8"))

    def lag_queried(panel: dict[str, Any]) -> set[str]:
        return {name for target in panel.get("targets", []) for name in referenced_metrics(target["expr"])
                if f'service="{service}"' in target["expr"] and "partition" in target["expr"]}

    (panel,) = [p for p in dashboard["panels"]
                if lag_queried(p) == {"taskforce_consumer_lag", "taskforce_consumer_lag_seconds"}]
    assert service in panel["title"]


def test_lag_alerts_wait_before_firing() -> None:
    rules = {r["alert"]: r for g in load_yaml(DEPLOY / "prometheus" / "alerts.yml")["groups"]
             for r in g["rules"]}
    on_lag = [r for r in rules.values() if referenced_metrics(r["expr"]) & {
        "taskforce_consumer_lag", "taskforce_consumer_lag_seconds"}]
    assert {m for r in on_lag for m in referenced_metrics(r["expr"])} == {
        "taskforce_consumer_lag", "taskforce_consumer_lag_seconds"}
    for rule in on_lag:
        assert re.fullmatch(r"\d+m", rule["for"]), rule["alert"]


def test_grafana_provisioning() -> None:
    provisioning = DEPLOY / "grafana" / "provisioning"
    datasources = load_yaml(provisioning / "datasources" / "prometheus.yml")["datasources"]
    assert datasources[0]["type"] == "prometheus"
    (provider,) = load_yaml(provisioning / "dashboards" / "taskforce.yml")["providers"]
    mounts = compose()["services"]["grafana"]["volumes"]
    assert f"./grafana/dashboards:{provider['options']['path']}:ro" in mounts
    uids = {d["uid"] for d in datasources}
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "taskforce.json").read_text(
        encoding="utf-8"))
    for panel in dashboard["panels"]:
        if "datasource" in panel:
            assert panel["datasource"]["uid"] in uids


# ----------------------------------------------------------------------------- image


def test_dockerfile_installs_runtime_only_as_non_root() -> None:
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    # Both stages on the newest Python that requires-python admits (and .ci/run tests on).
    supported = SpecifierSet(project["project"]["requires-python"])
    newest = max(minor for minor in range(30) if f"3.{minor}" in supported)
    assert re.findall(r"^FROM python:(\S+)", text, re.M) == [f"3.{newest}-slim"] * 2
    installs = re.findall(r"^RUN .*pip install (.*)$", text, re.M)
    assert installs == ["."], f"install the project only, without extras: {installs}"
    users = re.findall(r"^USER\s+(\S+)", text, re.M)
    assert users and users[-1].split(":")[0] not in {"0", "root"}
    lines = [ln.strip() for ln in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
             if ln.strip() and not ln.startswith("#")]
    assert lines[0] == "*", ".dockerignore is an allowlist: exclude everything first"
    allowed = {ln[1:].rstrip("/") for ln in lines if ln.startswith("!")}
    packages = {p.rstrip("*") for p in project["tool"]["setuptools"]["packages"]["find"]["include"]}
    assert allowed == {"pyproject.toml", *packages}


def test_operations_doc_names_every_env_var() -> None:
    text = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    for var in (*APP_ENV, "TASKFORCE_GRACE_DAYS", "TASKFORCE_SESSION_SECRET",
                "TASKFORCE_TOPIC_PREFIX", "TASKFORCE_LOG_LEVEL", *SECURE_ENV, "KAFKA_SASL_USERNAME",
                "KAFKA_SASL_PASSWORD", "KAFKA_SSL_CERTFILE", "KAFKA_SSL_KEYFILE",
                "TASKFORCE_SESSION_SECRET_FILE", "TASKFORCE_SECURE_COOKIES", "TASKFORCE_TOKENS_PATH",
                "TASKFORCE_SESSION_SECRET_PATH", "GRAFANA_ADMIN_PASSWORD_PATH"):
        assert var in text, var
    section = text.split("## Connecting to a managed Kafka and MongoDB", 1)[1].split("\n## ", 1)[0]
    for provider in ("Confluent Cloud", "Aiven", "MSK", "Atlas"):
        assert provider in section, provider
