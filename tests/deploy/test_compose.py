"""compose.yaml, the Dockerfile and deploy/: structure always, `docker-compose config` when installed."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.config import load_settings
from gateway.providers.registry import specs
from tests.deploy.conftest import (
    APT_LINE,
    COMPOSE,
    ENV_REF,
    REAL_SECRET,
    ROOT,
    SECRET_NAME,
    env_of,
    flags,
    load_yaml,
)

GATEWAYS = ("gateway-1", "gateway-2")
VLLM = {
    "vllm-scout": "meta-llama/Llama-4-Scout-17B-16E-Instruct",
    "vllm-maverick": "meta-llama/Llama-4-Maverick-17B-128E-Instruct-FP8",
}
CORE = {"lb", "postgres", "redis", "otel-collector", "prometheus", "grafana", *GATEWAYS}


def healthcheck_text(service: dict[str, Any]) -> str:
    test = service["healthcheck"]["test"]
    return " ".join(test) if isinstance(test, list) else str(test)


def test_services_and_profiles(services: dict[str, dict[str, Any]]) -> None:
    assert set(services) == CORE | set(VLLM)
    for name in CORE:
        assert "profiles" not in services[name], f"{name} must start without a profile"
    for name in VLLM:
        assert "gpu" in services[name]["profiles"], f"{name} belongs to the gpu profile"


def test_gateways_are_built_here_and_share_state(services: dict[str, dict[str, Any]]) -> None:
    envs = [env_of(services[name]) for name in GATEWAYS]
    for name, env in zip(GATEWAYS, envs, strict=True):
        service = services[name]
        assert service["build"]["context"] == "."
        assert (ROOT / service["build"].get("dockerfile", "Dockerfile")).is_file()
        assert env["DATABASE_URL"].startswith("postgresql+psycopg://")
        assert "@postgres:5432/" in env["DATABASE_URL"]
        assert "${POSTGRES_PASSWORD}" in env["DATABASE_URL"]
        assert env["REDIS_URL"].startswith("redis://redis:6379")
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector:4318"
        assert "CORRAL_VLLM_URLS" in env
        assert env["CORRAL_CONFIG"] == "/etc/corral/corral.yaml"
        assert any(str(v).startswith("./deploy/corral.yaml:/etc/corral/corral.yaml") for v in service["volumes"])
        assert "/healthz" in healthcheck_text(service)
        deps = service["depends_on"]
        assert deps["postgres"]["condition"] == "service_healthy"
        assert deps["redis"]["condition"] == "service_healthy"
        assert "otel-collector" in deps
    for key in ("DATABASE_URL", "REDIS_URL", "CORRAL_VLLM_URLS", "CORRAL_CONFIG", "CORRAL_POLICY"):
        assert envs[0][key] == envs[1][key], f"both gateways must share {key}"
    journals = [v for name in GATEWAYS for v in services[name]["volumes"] if str(v).endswith(":/var/lib/corral")]
    assert len(set(journals)) == 2, "each replica needs its own usage-journal volume"


def test_healthchecks_and_dependency_conditions(services: dict[str, dict[str, Any]]) -> None:
    for name in ("postgres", "redis", "lb", *GATEWAYS, *VLLM):
        assert "healthcheck" in services[name], f"{name} has no healthcheck"
    assert "pg_isready" in healthcheck_text(services["postgres"])
    assert "ping" in healthcheck_text(services["redis"])
    assert services["postgres"]["image"].startswith("postgres:16")
    assert services["redis"]["image"].startswith("redis:7")
    assert any("/var/lib/postgresql/data" in str(v) for v in services["postgres"]["volumes"])
    for name in ("lb", "prometheus"):
        for gateway in GATEWAYS:
            assert services[name]["depends_on"][gateway]["condition"] == "service_healthy"
    for name, service in services.items():
        deps = service.get("depends_on") or {}
        assert isinstance(deps, dict), f"{name}: depends_on must use conditions"
        for dep, spec in deps.items():
            assert dep in services
            assert spec["condition"] in {"service_healthy", "service_started", "service_completed_successfully"}
            if spec["condition"] == "service_healthy":
                assert "healthcheck" in services[dep], f"{name} waits for {dep} to be healthy but it has no check"
            assert dep not in VLLM, "nothing may depend on the optional gpu profile"


def test_vllm_pool(services: dict[str, dict[str, Any]]) -> None:
    for name, model in VLLM.items():
        service = services[name]
        assert service["image"].startswith("vllm/vllm-openai:")
        assert service["entrypoint"] == ["vllm", "serve"]
        args = flags(service["command"])
        assert args["model"] == model
        assert args["--tensor-parallel-size"] == "8"
        assert args["--kv-cache-dtype"] == "fp8"
        assert args["--tool-call-parser"] == "llama4_pythonic"
        assert args["--chat-template"].endswith("tool_chat_template_llama4_pythonic.jinja")
        assert "--enable-auto-tool-choice" in args
        assert "--enable-prefix-caching" in args
        assert "--no-enable-prefix-caching" not in args
        assert "--max-model-len" in args
        assert "/health" in healthcheck_text(service)
        devices = service["deploy"]["resources"]["reservations"]["devices"]
        assert any("gpu" in d["capabilities"] for d in devices)
        assert sum(len(d.get("device_ids", [])) or int(d.get("count", 0)) for d in devices) == 8
        env = env_of(service)
        assert ENV_REF.match(env["HF_TOKEN"]), "the HF token must come from the environment"
    ids = [set(services[n]["deploy"]["resources"]["reservations"]["devices"][0]["device_ids"]) for n in VLLM]
    assert not ids[0] & ids[1], "Scout and Maverick must not share GPUs"
    assert flags(services["vllm-scout"]["command"])["--max-model-len"] == "1000000"
    assert flags(services["vllm-maverick"]["command"])["--max-model-len"] == "430000"


def test_no_literal_secrets(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        for key, value in env_of(service).items():
            if SECRET_NAME.search(key):
                assert value == "" or ENV_REF.match(value), f"{name}.{key} holds a literal: {value!r}"
    for path in (COMPOSE, ROOT / "Dockerfile", *sorted(p for p in (ROOT / "deploy").rglob("*") if p.is_file())):
        assert not REAL_SECRET.search(path.read_text()), f"{path} contains what looks like a real credential"


def test_example_env_documents_every_variable() -> None:
    example = ROOT / "deploy" / "example.env"
    text = example.read_text()
    defined = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", text, flags=re.MULTILINE))
    code = "\n".join(line for line in COMPOSE.read_text().splitlines() if not line.lstrip().startswith("#"))
    used = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", code))
    assert used <= defined, f"variables used by compose.yaml but missing from example.env: {used - defined}"
    for line in text.splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            key, value = line.split("=", 1)
            if SECRET_NAME.search(key) and value:
                assert "change-me" in value, f"example.env: {key} must be empty or an obvious placeholder"
    assert ".env" in (ROOT / ".dockerignore").read_text()


def test_dockerfile() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim", text, flags=re.MULTILINE)
    user = re.findall(r"^USER\s+(\S+)", text, flags=re.MULTILINE)
    assert user and user[-1] not in {"root", "0"}
    assert "pip install ." in text
    assert "HEALTHCHECK" in text and "/healthz" in text
    assert '"serve", "--host", "0.0.0.0", "--port", "8080"' in text
    # gateway/data/default_policy.yaml and policy_schema.json are symlinks into policies/: the image
    # must copy policies/ before `pip install .` or the installed package ships without them.
    for link in (ROOT / "gateway" / "data").iterdir():
        if link.is_symlink():
            target = link.resolve().relative_to(ROOT)
            top = target.parts[0]
            copy = re.search(rf"^COPY\s+{top}\s", text, flags=re.MULTILINE)
            assert copy and copy.start() < text.index("pip install ."), f"Dockerfile must COPY {top}/ for {link.name}"
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert "policies" not in ignored and "gateway" not in ignored


def test_sidecar_configs() -> None:
    nginx = (ROOT / "deploy" / "nginx.conf").read_text()
    for gateway in GATEWAYS:
        assert f"server {gateway}:8080" in nginx
    assert "proxy_buffering off" in nginx  # SSE streams pass through
    prometheus = load_yaml(ROOT / "deploy" / "prometheus.yml")
    targets = {t for job in prometheus["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]}
    assert {"gateway-1:8080", "gateway-2:8080", "vllm-scout:8000", "vllm-maverick:8000"} <= targets
    otel = load_yaml(ROOT / "deploy" / "otel-collector.yaml")
    assert otel["receivers"]["otlp"]["protocols"]["http"]["endpoint"].endswith(":4318")
    pipeline = otel["service"]["pipelines"]["traces"]
    assert pipeline["receivers"] == ["otlp"]
    assert set(pipeline["exporters"]) & {"debug", "logging"}


def test_compose_gateway_config_loads(tmp_path: Path) -> None:
    settings = load_settings(ROOT / "deploy" / "corral.yaml", env={})
    pool = settings.providers["vllm"].vllm
    assert pool is not None and pool.urls == [] and pool.gpus == 16
    env = {"CORRAL_VLLM_URLS": "http://vllm-scout:8000,http://vllm-maverick:8000"}
    pool = load_settings(ROOT / "deploy" / "corral.yaml", env=env).providers["vllm"].vllm
    assert pool is not None and pool.urls == ["http://vllm-scout:8000", "http://vllm-maverick:8000"]


def _compose_env() -> dict[str, str]:
    # Only what the binary needs: the operator's secrets in this process must not leak into output.
    return {k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "LANG", "LC_ALL", "TMPDIR"}}


@pytest.mark.skipif(
    shutil.which("docker-compose") is None,
    reason=f"docker-compose is not installed; .ci/run should have: {APT_LINE}",
)
@pytest.mark.parametrize("profile", [None, "gpu"])
def test_docker_compose_config_accepts_it(profile: str | None) -> None:
    cmd = ["docker-compose", "--env-file", "deploy/example.env", "-f", "compose.yaml"]
    if profile:
        cmd += ["--profile", profile]
    for extra in (["config", "-q"], ["config"]):
        result = subprocess.run(
            [*cmd, *extra], cwd=ROOT, env=_compose_env(), capture_output=True, text=True, timeout=60, check=False
        )
        assert result.returncode == 0, result.stderr
    rendered = yaml.safe_load(result.stdout)
    assert set(rendered["services"]) >= CORE
    env = rendered["services"]["gateway-1"]["environment"]
    assert env["DATABASE_URL"] == rendered["services"]["gateway-2"]["environment"]["DATABASE_URL"]
    # Without any .env the file is still accepted (unset variables become empty, with a warning).
    bare = subprocess.run(
        ["docker-compose", "-f", "compose.yaml", "config", "-q"],
        cwd=ROOT,
        env=_compose_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert bare.returncode == 0, bare.stderr


def test_no_deployment_configuration_serves_simulated_answers() -> None:
    """The shipped deployment configurations (compose, Kubernetes) never fall back to the
    built-in fakes: an empty .env serves nothing rather than simulated answers."""
    assert load_settings(ROOT / "deploy" / "corral.yaml", env={}).simulate_missing is False
    manifest = (ROOT / "selfhost" / "k8s" / "gateway.yaml").read_text()
    assert "simulate_missing: false" in manifest and "simulate_missing: true" not in manifest


def test_compose_passes_every_providers_variables_through(services: dict[str, dict[str, Any]]) -> None:
    """Every provider that is turned on from the environment can be, in compose (derived from
    the providers' own descriptors, so a new provider cannot be forgotten)."""
    wanted = set()
    for name, spec in specs().items():
        if spec.dev_only or spec.credentials == "deployments":
            continue
        if spec.key_env:
            wanted.add(spec.key_env)
        if spec.credentials == "url":
            wanted.add(f"CORRAL_{name.upper()}_BASE_URL")
        if spec.credentials == "pool":
            wanted.add(f"CORRAL_{name.upper()}_URLS")
        if spec.credentials == "aws":
            wanted |= {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION"}
    for gateway in GATEWAYS:
        missing = wanted - set(env_of(services[gateway]))
        assert not missing, f"{gateway} lacks {sorted(missing)}"
