"""The Kubernetes manifests parse, are hardened, wire mutual TLS and carry no real secret."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
MANIFESTS = sorted(path for path in K8S.glob("*.yaml") if path.name != "kustomization.yaml")
NAMESPACE = "fhir-directory"
APP_PORT = 8000
# A secret value is either empty or says plainly that it is to be replaced.
PLACEHOLDER = re.compile(r"^$|CHANGE-ME")


def documents(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def all_documents() -> list[dict]:
    return [doc for path in MANIFESTS for doc in documents(path)]


def of_kind(kind: str) -> list[dict]:
    return [doc for doc in all_documents() if doc["kind"] == kind]


def the(kind: str) -> dict:
    found = of_kind(kind)
    if kind == "Deployment":  # the server's; the subscription worker is another Deployment
        found = [
            d for d in found if d["metadata"]["labels"]["app.kubernetes.io/component"] == "server"
        ]
    (one,) = found
    return one


def pod_specs() -> list[tuple[str, dict]]:
    """(name, pod spec) of the Deployment and every CronJob."""
    specs = [
        (doc["metadata"]["name"], doc["spec"]["template"]["spec"]) for doc in of_kind("Deployment")
    ]
    for job in of_kind("CronJob"):
        specs.append(
            (job["metadata"]["name"], job["spec"]["jobTemplate"]["spec"]["template"]["spec"])
        )
    return specs


def server_container() -> dict:
    (container,) = the("Deployment")["spec"]["template"]["spec"]["containers"]
    return container


@pytest.mark.parametrize("path", [*MANIFESTS, K8S / "kustomization.yaml"], ids=lambda p: p.name)
def test_every_document_names_its_api_kind_and_name(path):
    docs = documents(path)
    assert docs
    for doc in docs:
        assert doc.get("apiVersion") and doc.get("kind"), path.name
        assert doc.get("metadata", {}).get("name"), path.name


def test_kustomization_lists_every_manifest():
    kustomization = documents(K8S / "kustomization.yaml")[0]
    assert sorted(kustomization["resources"]) == sorted(path.name for path in MANIFESTS)
    assert kustomization["namespace"] == NAMESPACE


def test_every_kind_is_there():
    kinds = {doc["kind"] for doc in all_documents()}
    assert {
        "Deployment", "Service", "Ingress", "ConfigMap", "Secret", "HorizontalPodAutoscaler",
        "NetworkPolicy", "CronJob", "PodDisruptionBudget",
    } <= kinds  # fmt: skip


def test_probes_use_the_health_endpoints_on_the_container_port():
    container = server_container()
    port_names = {port["name"]: port["containerPort"] for port in container["ports"]}
    allowed_hosts = the("ConfigMap")["data"]["ALLOWED_HOSTS"].split(",")
    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        get = container[probe]["httpGet"]
        assert get["path"] == path
        assert port_names.get(get["port"], get["port"]) == APP_PORT
        # Django answers 400 to a Host outside ALLOWED_HOSTS, which would fail the probe.
        hosts = [h["value"] for h in get.get("httpHeaders", []) if h["name"].lower() == "host"]
        assert hosts and hosts[0] in allowed_hosts


@pytest.mark.parametrize("name", [name for name, _ in pod_specs()])
def test_every_pod_is_hardened(name):
    spec = dict(pod_specs())[name]
    pod = spec["securityContext"]
    assert pod["runAsNonRoot"] is True and pod["runAsUser"] != 0
    assert pod["seccompProfile"]["type"] == "RuntimeDefault"
    assert spec["automountServiceAccountToken"] is False
    for container in spec["containers"]:
        context = container["securityContext"]
        assert context["allowPrivilegeEscalation"] is False
        assert context["readOnlyRootFilesystem"] is True
        assert context["capabilities"]["drop"] == ["ALL"]
        assert not context.get("capabilities", {}).get("add")
        assert container["resources"]["requests"] and container["resources"]["limits"]
        env_from = {next(iter(ref.values()))["name"] for ref in container["envFrom"]}
        assert env_from == {"fhir-directory-config", "fhir-directory-secrets"}


def test_ingress_requires_and_passes_client_certificates():
    annotations = the("Ingress")["metadata"]["annotations"]
    prefix = "nginx.ingress.kubernetes.io/"
    assert annotations[prefix + "auth-tls-verify-client"] == "on"
    assert annotations[prefix + "auth-tls-pass-certificate-to-upstream"] == "true"
    assert int(annotations[prefix + "auth-tls-verify-depth"]) >= 2
    namespace, secret = annotations[prefix + "auth-tls-secret"].split("/")
    assert namespace == NAMESPACE
    assert secret in {doc["metadata"]["name"] for doc in of_kind("Secret")}
    assert the("Ingress")["spec"]["tls"]


def test_the_app_reads_the_certificate_the_way_ingress_nginx_passes_it():
    env = {item["name"]: item.get("value") for item in server_container()["env"]}
    assert env["SECURITY_CLIENT_CERT_FORMAT"] == "ingress-nginx"
    proxies = the("ConfigMap")["data"]["SECURITY_TRUSTED_PROXIES"].split(",")
    assert proxies and all("/" in cidr for cidr in proxies)
    assert "0.0.0.0/0" not in proxies


def test_the_server_takes_requests_only_from_ingress_nginx_on_the_app_port():
    policies = {doc["metadata"]["name"]: doc["spec"] for doc in of_kind("NetworkPolicy")}
    default_deny = [p for p in policies.values() if p["podSelector"] == {}]
    assert default_deny and not default_deny[0].get("ingress") and not default_deny[0].get("egress")
    server = policies["fhir-directory-server"]
    assert {"Ingress", "Egress"} <= set(server["policyTypes"])
    (rule,) = server["ingress"]
    (source,) = rule["from"]
    assert source["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "ingress-nginx"
    }
    assert [port["port"] for port in rule["ports"]] == [APP_PORT]
    egress_ports = {port["port"] for rule in server["egress"] for port in rule["ports"]}
    assert egress_ports == {5432, 6379, 53}  # PostgreSQL, Redis (request limits), DNS


def test_the_service_and_policies_select_the_server_pods():
    labels = the("Deployment")["spec"]["template"]["metadata"]["labels"]
    assert the("Service")["spec"]["selector"].items() <= labels.items()
    assert the("PodDisruptionBudget")["spec"]["selector"]["matchLabels"].items() <= labels.items()
    target = the("HorizontalPodAutoscaler")["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", the("Deployment")["metadata"]["name"])


def test_cpu_autoscaling():
    hpa = the("HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    (metric,) = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu"
    assert hpa["spec"]["minReplicas"] >= 2


@pytest.mark.parametrize(
    ("command", "schedule"),
    [("refreshcrls", "0 * * * *"), ("expirekeys", None), ("rollup_audit", "7 * * * *")],
)
def test_cronjobs_run_the_management_commands_one_at_a_time(command, schedule):
    jobs = {
        job["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["command"][-1]: job
        for job in of_kind("CronJob")
    }
    job = jobs[command]
    assert job["spec"]["concurrencyPolicy"] == "Forbid"
    if schedule:
        assert job["spec"]["schedule"] == schedule
    assert (ROOT / "security" / "management" / "commands" / f"{command}.py").is_file()


def test_server_pods_and_the_export_runner_share_one_exports_volume():
    """A job written by one pod is downloaded through any other: one ReadWriteMany claim."""
    (claim,) = of_kind("PersistentVolumeClaim")
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    folder = the("ConfigMap")["data"]["BULK_EXPORT_DIR"]
    runner = next(
        job for job in of_kind("CronJob") if job["metadata"]["name"] == "fhir-directory-runexports"
    )
    pods = [
        the("Deployment")["spec"]["template"]["spec"],
        runner["spec"]["jobTemplate"]["spec"]["template"]["spec"],
    ]
    for pod in pods:
        volumes = {v["name"]: v for v in pod["volumes"]}
        (mount,) = [m for m in pod["containers"][0]["volumeMounts"] if m["mountPath"] == folder]
        assert (
            volumes[mount["name"]]["persistentVolumeClaim"]["claimName"]
            == (claim["metadata"]["name"])
        )
    assert runner["spec"]["concurrencyPolicy"] == "Forbid"
    command = runner["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["command"]
    assert command[-1] == "runexports"
    policies = {doc["metadata"]["name"]: doc["spec"] for doc in of_kind("NetworkPolicy")}
    egress = {port["port"] for rule in policies["fhir-directory-exports"]["egress"]
              for port in rule["ports"]}  # fmt: skip
    assert egress == {5432, 53}


def test_secrets_hold_placeholders_only():
    for secret in of_kind("Secret"):
        assert "data" not in secret, "base64 data hides what it holds: use stringData placeholders"
        for key, value in secret["stringData"].items():
            assert PLACEHOLDER.search(value), f"{secret['metadata']['name']}.{key} looks real"


def test_no_secret_setting_in_the_configmap():
    data = the("ConfigMap")["data"]
    for key in ("SECRET_KEY", "SECURITY_API_KEY_PEPPER", "DATABASE_URL", "DATABASE_REPLICA_URLS"):
        assert key not in data


def test_the_subscription_worker_runs_its_command_without_inbound_traffic():
    (worker,) = [
        d
        for d in of_kind("Deployment")
        if d["metadata"]["labels"]["app.kubernetes.io/component"] == "subscriptions"
    ]
    (container,) = worker["spec"]["template"]["spec"]["containers"]
    assert container["command"][-1] == "deliversubscriptions"
    assert (
        ROOT / "subscriptions" / "management" / "commands" / "deliversubscriptions.py"
    ).is_file()
    labels = worker["spec"]["template"]["metadata"]["labels"]
    policies = [
        p
        for p in of_kind("NetworkPolicy")
        if p["spec"]["podSelector"].get("matchLabels", {}).items() <= labels.items()
        and p["spec"]["podSelector"].get("matchLabels")
    ]
    (policy,) = policies
    assert policy["spec"]["ingress"] == []
    public = [r for r in policy["spec"]["egress"] if "ipBlock" in r.get("to", [{}])[0]]
    blocked = {c for r in public for c in r["to"][0]["ipBlock"].get("except", [])}
    assert "169.254.0.0/16" in blocked  # cloud metadata endpoints
