"""selfhost/k8s: multi-document YAML valid against the Kubernetes schemas (offline), with the
fields a cluster needs, a gateway that scales out, and a gateway config that loads."""

from __future__ import annotations

import copy
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import kubernetes_validate
import pytest

from gateway.catalogue.pool_prices import derive
from gateway.config import load_settings
from tests.deploy.conftest import ENV_REF, K8S, REAL_SECRET, SECRET_NAME, flags, load_all, load_yaml

MANIFESTS = sorted(p for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")


def all_docs() -> list[dict[str, Any]]:
    return [doc for path in MANIFESTS for doc in load_all(path)]


def by_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in all_docs() if d["kind"] == kind}


def containers(deployment: dict[str, Any]) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = deployment["spec"]["template"]["spec"]["containers"]
    return result


def gateway_config_text() -> str:
    text: str = by_kind("ConfigMap")["corral-config"]["data"]["corral.yaml"]
    return text


def test_manifests_exist_and_kustomization_lists_them() -> None:
    names = {p.name for p in MANIFESTS}
    assert {"vllm-scout.yaml", "vllm-maverick.yaml", "gateway.yaml"} <= names
    kustomization = load_yaml(K8S / "kustomization.yaml")
    assert set(kustomization["resources"]) == names


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_every_document_has_required_fields(path: Path) -> None:
    docs = load_all(path)
    assert docs
    for doc in docs:
        assert doc.get("apiVersion"), f"{path.name}: apiVersion missing"
        assert doc.get("kind"), f"{path.name}: kind missing"
        assert doc.get("metadata", {}).get("name"), f"{path.name}: metadata.name missing"
        assert doc["kind"] != "Secret", f"{path.name}: secrets are referenced, never embedded"
    assert not REAL_SECRET.search(path.read_text())


def test_vllm_deployments() -> None:
    deployments = by_kind("Deployment")
    services = by_kind("Service")
    for name, model in (
        ("vllm-scout", "meta-llama/Llama-4-Scout-17B-16E-Instruct"),
        ("vllm-maverick", "meta-llama/Llama-4-Maverick-17B-128E-Instruct-FP8"),
    ):
        deployment = deployments[name]
        template = deployment["spec"]["template"]
        annotations = template["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true"
        assert annotations["prometheus.io/path"] == "/metrics"
        (container,) = containers(deployment)
        assert container["image"].startswith("vllm/vllm-openai:")
        args = flags(container["args"])
        assert args["model"] == model
        gpus = int(container["resources"]["limits"]["nvidia.com/gpu"])
        assert gpus == int(args["--tensor-parallel-size"]) == 8
        assert args["--tool-call-parser"] == "llama4_pythonic"
        assert "--enable-prefix-caching" in args
        for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
            assert container[probe]["httpGet"]["path"] == "/health", f"{name}: {probe}"
        env = {e["name"]: e for e in container["env"]}
        assert "secretKeyRef" in env["HF_TOKEN"]["valueFrom"]
        service = services[name]
        assert service["spec"]["selector"].items() <= template["metadata"]["labels"].items()
        assert deployment["spec"]["selector"]["matchLabels"].items() <= template["metadata"]["labels"].items()


def test_gateway_deployment() -> None:
    deployment = by_kind("Deployment")["corral-gateway"]
    assert deployment["spec"]["replicas"] == 2
    template = deployment["spec"]["template"]
    assert template["metadata"]["annotations"]["prometheus.io/port"] == "8080"
    assert template["spec"]["securityContext"]["runAsNonRoot"] is True
    (container,) = containers(deployment)
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    env = {e["name"]: e for e in container["env"]}
    for name in ("DATABASE_URL", "REDIS_URL"):
        assert "secretKeyRef" in env[name]["valueFrom"]
    for name, entry in env.items():
        if SECRET_NAME.search(name):
            assert "value" not in entry or ENV_REF.match(entry["value"]), f"{name} must come from a Secret"
    config_mount = next(m for m in container["volumeMounts"] if m["name"] == "config")
    assert env["CORRAL_CONFIG"]["value"].startswith(config_mount["mountPath"] + "/")
    service = by_kind("Service")["corral-gateway"]
    assert service["spec"]["selector"].items() <= template["metadata"]["labels"].items()


def test_configmap_config_loads_and_lists_the_pool(tmp_path: Path) -> None:
    path = tmp_path / "corral.yaml"
    path.write_text(gateway_config_text())
    settings = load_settings(path, env={})
    pool = settings.providers["vllm"].vllm
    assert pool is not None
    assert pool.gpus == 16
    # Each model on its own 8 GPUs: priced on those, not on all 16 (0.617284, not 1.234568).
    assert {m: derive(pool.basis(), m).output for m in ("llama-4-scout", "llama-4-maverick")} == {
        "llama-4-scout": Decimal("0.617284"),
        "llama-4-maverick": Decimal("0.617284"),
    }
    assert settings.simulate_missing is False
    services = by_kind("Service")
    assert len(pool.urls) == 2
    for url in pool.urls:
        parts = urlsplit(url)
        assert parts.hostname is not None
        service_name, namespace = parts.hostname.split(".")[:2]
        service = services[service_name]
        assert service["metadata"]["namespace"] == namespace
        assert parts.port in {p["port"] for p in service["spec"]["ports"]}


#: The Kubernetes release whose OpenAPI schemas the manifests are checked against (bundled
#: with the kubernetes-validate package: no cluster and no network needed).
K8S_VERSION = "1.30"


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_manifests_validate_against_the_kubernetes_schemas(path: Path) -> None:
    """Strict: an unknown or misspelt field fails, as does a value of the wrong type."""
    for doc in load_all(path):
        try:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            where = ".".join(str(p) for p in exc.path)
            pytest.fail(f"{path.name}: {doc['kind']} {doc['metadata']['name']}: {where}: {exc.message}")


def test_the_validation_catches_a_misspelt_field() -> None:
    deployment = copy.deepcopy(by_kind("Deployment")["corral-gateway"])
    deployment["spec"]["replica"] = 3
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSION, strict=True)


def test_gateway_scales_out_and_keeps_a_replica_through_disruptions() -> None:
    deployment = by_kind("Deployment")["corral-gateway"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    hpa = by_kind("HorizontalPodAutoscaler")["corral-gateway"]
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", "corral-gateway")
    assert hpa["spec"]["minReplicas"] >= 2 and hpa["spec"]["maxReplicas"] > hpa["spec"]["minReplicas"]
    (cpu,) = [m["resource"] for m in hpa["spec"]["metrics"] if m["type"] == "Resource"]
    (container,) = containers(deployment)
    assert cpu["name"] == "cpu" and "cpu" in container["resources"]["requests"], "utilisation needs a request"
    pdb = by_kind("PodDisruptionBudget")["corral-gateway"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert 1 <= pdb["spec"]["minAvailable"] < hpa["spec"]["minReplicas"], "a drain can still move one pod"
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert "http" in {p["name"] for p in container["ports"]}
