"""Process configuration: environment variables for secrets, an optional YAML file for the rest.

Precedence: built-in defaults < config file < environment. Secrets are `SecretStr`
so they never show up in a repr, a log line or an error message.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from gateway.catalogue.pool_prices import DEFAULT_GPU_HOUR_USD, DEFAULT_GPUS, STATED, PoolBasis, Throughput

if TYPE_CHECKING:
    from gateway.providers.spec import ProviderSpec

#: Where a local Ollama usually listens (set CORRAL_OLLAMA_BASE_URL to it to use one).
OLLAMA_LOCAL_URL = "http://localhost:11434/v1"


def _specs() -> dict[str, ProviderSpec]:
    """The provider registry, imported when first needed (the adapters import this module)."""
    from gateway.providers.registry import specs

    return specs()


class ConfigError(ValueError):
    """The configuration file or environment is not valid."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Timeouts(_Model):
    connect_s: float = Field(5.0, gt=0)
    #: Longest wait for the first byte of the answer (and between reads of a stream).
    first_byte_s: float = Field(60.0, gt=0)
    total_s: float = Field(600.0, gt=0)


class StreamLimits(_Model):
    """Bounds on one upstream stream: past any of them the upstream is malformed (the
    request falls over before the first byte is relayed; a clean SSE error after)."""

    #: Largest single SSE event (a real chunk is a few KiB, with logprobs tens of KiB).
    max_event_bytes: int = Field(4 * 1024 * 1024, ge=1024)
    #: Largest whole stream, counted as the bytes read from the upstream.
    max_answer_bytes: int = Field(64 * 1024 * 1024, ge=1024)
    #: Longest time without a complete event (keep-alive comments and trickled bytes do not
    #: count); a silent upstream is cut sooner by `first_byte_s`.
    event_idle_s: float = Field(60.0, gt=0)


class ValidationLimits(_Model):
    """Tool-call validation off the event loop (gateway/toolcalls/fence.py): a run that
    could be expensive goes to one of `workers` child processes and is stopped when it has
    used `cpu_budget_s` of CPU (the answer then fails validation, never freezes a worker)."""

    cpu_budget_s: float = Field(2.0, gt=0, le=600)
    workers: int = Field(2, ge=1, le=64)
    #: Address-space limit of each validation process.
    max_memory_mb: int = Field(1024, ge=256)


class BedrockConfig(_Model):
    region: str = "us-east-1"
    access_key_id: SecretStr | None = None
    secret_access_key: SecretStr | None = None
    session_token: SecretStr | None = None


class PoolThroughput(_Model):
    """What the pool's GPUs serve of one model together, under load (stated, not measured)."""

    output_tokens_per_s: Decimal = Field(gt=0)
    input_tokens_per_s: Decimal = Field(gt=0)
    #: Where the figures come from (a benchmark of your own pool, a public source, ...).
    source: str = "configured"
    #: The GPUs serving this model when each model has its own (default: the whole pool's `gpus`).
    gpus: int | None = Field(None, ge=1)


class VllmPoolConfig(_Model):
    urls: list[str] = Field(default_factory=list)
    api_key: SecretStr | None = None
    health_interval_s: float = Field(5.0, gt=0)
    metrics_interval_s: float = Field(2.0, gt=0)
    #: What the pool costs and serves: the one source of its fixed cost in spend reports and
    #: of its per-token prices (gateway.catalogue.pool_prices).
    gpu_hour_usd: str = str(DEFAULT_GPU_HOUR_USD)
    gpus: int = Field(DEFAULT_GPUS, ge=1)
    #: Per logical model; a model left out keeps the stated default (docs/providers.md).
    throughput: dict[str, PoolThroughput] = Field(default_factory=dict)

    def basis(self) -> PoolBasis:
        try:
            hourly = Decimal(self.gpu_hour_usd)
        except ArithmeticError as exc:
            raise ConfigError(f"vllm.gpu_hour_usd {self.gpu_hour_usd!r} is not a number") from exc
        if not hourly.is_finite() or hourly < 0:
            raise ConfigError(f"vllm.gpu_hour_usd {self.gpu_hour_usd!r} must be a non-negative number")
        configured = {
            model: Throughput(t.output_tokens_per_s, t.input_tokens_per_s, t.source, t.gpus)
            for model, t in self.throughput.items()
        }
        return PoolBasis(self.gpus, hourly, {**STATED, **configured})


class LitellmDeployment(_Model):
    """One logical model served through litellm (Vertex AI, Azure AI Foundry, the long tail).

    The key is a reference: `api_key_env` names the environment variable that holds it,
    read when the configuration loads (never written in the file)."""

    model: str
    #: litellm's model string, e.g. `vertex_ai/meta/llama-4-maverick-17b-128e-instruct-maas`.
    litellm_model: str = Field(min_length=1)
    api_base: str | None = None
    api_key_env: str | None = None
    api_key: SecretStr | None = None
    input_usd_per_1m: Decimal = Field(ge=0)
    output_usd_per_1m: Decimal = Field(ge=0)
    prices_effective: date = date(2025, 4, 5)
    context_window: int = Field(131072, ge=1)
    max_output_tokens: int = Field(8192, ge=1)
    capabilities: list[str] = Field(default_factory=lambda: ["stream", "tools"])
    #: Further keyword arguments for `litellm.acompletion` (e.g. vertex_project, vertex_location).
    extra: dict[str, Any] = Field(default_factory=dict)


class ProviderConfig(_Model):
    name: str
    enabled: bool = True
    base_url: str = ""
    api_key: SecretStr | None = None
    timeouts: Timeouts = Field(default_factory=Timeouts)
    #: Set from `Settings.streams` when the gateway starts.
    streams: StreamLimits = Field(default_factory=StreamLimits)
    pool_size: int = Field(256, ge=1)
    #: Points at one of Corral's own fakes rather than the real service.
    simulated: bool = False
    bedrock: BedrockConfig | None = None
    vllm: VllmPoolConfig | None = None
    #: litellm only: the deployments handed to litellm, at most one per logical model.
    deployments: list[LitellmDeployment] = Field(default_factory=list)

    @model_validator(mode="after")
    def _deployments_are_litellms(self) -> ProviderConfig:
        if self.deployments and _specs()[self.name].credentials != "deployments":
            raise ValueError("deployments: only the litellm provider takes a list of deployments")
        models = [d.model for d in self.deployments]
        if len(set(models)) != len(models):
            raise ValueError("deployments: at most one litellm deployment per logical model")
        return self

    def has_credentials(self) -> bool:
        kind = _specs()[self.name].credentials
        if kind == "aws":
            b = self.bedrock
            return b is not None and b.access_key_id is not None and b.secret_access_key is not None
        if kind == "pool":
            return self.vllm is not None and bool(self.vllm.urls)
        if kind == "url":
            return bool(self.base_url)
        if kind == "deployments":
            return bool(self.deployments)
        return self.api_key is not None


class Settings(_Model):
    host: str = "127.0.0.1"
    port: int = 8080
    database_url: str = "sqlite:///corral.db"
    #: Where usage events go while the ledger database is unreachable.
    journal_path: str = "corral-usage.journal"
    #: "process": a killed process loses no usage event (default); "fsync": an OS crash or
    #: power loss loses at most `journal_fsync_ms` of them (group commit, off the request path).
    journal_durability: Literal["process", "fsync"] = "process"
    journal_fsync_ms: int = Field(10, ge=1, le=10_000)
    #: Where ledger inserts run: a child process keeps their CPU off the serving core;
    #: "thread" runs them in-process (one process only, e.g. for debugging).
    ledger_writer: Literal["process", "thread"] = "process"
    #: The writer process's CPU scheduling: "idle" (Linux SCHED_IDLE: it runs only on CPU time
    #: nothing else wants, so its insert bursts never delay requests; under sustained full load
    #: the backlog waits in the journal, bounded in memory) or "normal".
    ledger_writer_priority: Literal["idle", "normal"] = "idle"
    redis_url: str | None = None
    policy_path: str | None = None
    max_body_bytes: int = Field(4 * 1024 * 1024, ge=1024)
    #: Slow clients (gateway/serve/guard.py): a request's line and headers must be in within
    #: this of the connection opening (or the request beginning), its body within
    #: `body_timeout_s` of the headers; at most `max_connections` connections per worker.
    header_timeout_s: float = Field(10.0, gt=0)
    body_timeout_s: float = Field(30.0, gt=0)
    max_connections: int = Field(512, ge=1)
    #: Bounds on every upstream stream (the `streams:` section of the config file).
    streams: StreamLimits = Field(default_factory=StreamLimits)
    #: Tool-call validation off the event loop (the `validation:` section).
    validation: ValidationLimits = Field(default_factory=ValidationLimits)
    #: How long an Idempotency-Key and its kept answer are remembered (seconds; 24 h).
    idempotency_retention_s: int = Field(86400, gt=0)
    #: A claim still running this long after it was made belongs to a process that died:
    #: a repeat then runs the request anew (longer than any request or stream may take).
    idempotency_lease_s: int = Field(900, gt=0)
    #: The response cache (gateway.cache): in memory without REDIS_URL, at most this many
    #: bytes per worker; an answer larger than `cache_max_entry_bytes` is not kept.
    cache_max_bytes: int = Field(64 * 1024 * 1024, ge=1024)
    cache_max_entry_bytes: int = Field(1024 * 1024, ge=256)
    #: Prefix of the cache's Redis keys (replicas sharing one must use the same).
    cache_redis_prefix: str = "corral:cache:"
    #: How long a Responses API answer's conversation is kept for `previous_response_id`
    #: (seconds; 24 h), in the ledger database (in memory without one).
    responses_retention_s: int = Field(86400, gt=0)
    #: Signs the spend page's browser sessions (CORRAL_SESSION_SECRET); give every replica
    #: the same one. Unset: a random one per process (sessions end with it, one replica only).
    session_secret: SecretStr | None = None
    #: How long a spend-page sign-in lasts (seconds; 8 h).
    session_ttl_s: int = Field(8 * 3600, gt=0)
    #: On SIGTERM, how long in-flight requests and streams may take to finish.
    shutdown_grace_s: int = Field(30, gt=0)
    #: Static API keys: admin-scoped bootstrap keys, beside the key store's keys.
    api_keys: list[SecretStr] = Field(default_factory=list)
    #: Authentication on every endpoint but health and metrics; off only when asked
    #: explicitly (`corral serve --no-auth`, CORRAL_AUTH=off), and said loudly at start.
    auth: bool = True
    #: Serve `/docs` and `/openapi.json` (off by default: they list every route; CORRAL_DOCS=on).
    docs: bool = False
    providers: dict[str, ProviderConfig] = Field(default_factory=dict)
    #: Catalogue overrides keyed "provider/model", e.g. {"groq/llama-4-scout": {"reenabled": true}}.
    catalogue: dict[str, dict[str, Any]] = Field(default_factory=dict)
    price_book_path: str | None = None
    #: How often the gateway compares the catalogue with the providers' model listings and takes
    #: vanished deployments out of rotation (seconds; 0 turns the check off). Never in demo mode.
    catalogue_check_interval_s: float = Field(3600.0, ge=0)
    #: With no provider credentials at all, start Corral's built-in fakes of every backend (demo mode).
    simulate_missing: bool = True

    def pool(self) -> tuple[str, VllmPoolConfig] | None:
        """The provider configured as the self-hosted pool (its `vllm:` section), if any."""
        for provider in self.providers.values():
            if provider.vllm is not None and provider.enabled:
                return provider.name, provider.vllm
        return None

    def pool_basis(self) -> PoolBasis:
        """What the pool costs and serves: configured, else the stated defaults."""
        found = self.pool()
        return found[1].basis() if found is not None else PoolBasis()


def _provider_from_env(provider: ProviderSpec, env: Mapping[str, str], base: dict[str, Any]) -> dict[str, Any]:
    name = provider.name
    spec = dict(base)
    spec["name"] = name
    url = env.get(f"CORRAL_{name.upper()}_BASE_URL")
    if url:
        spec["base_url"] = url
    spec.setdefault("base_url", provider.base_url)
    key_env = provider.key_env
    if provider.credentials == "pool":
        # A pool's and an AWS provider's own settings sit in a section named after the provider.
        pool = dict(spec.get(name) or {})
        urls = env.get(f"CORRAL_{name.upper()}_URLS")
        if urls:
            pool["urls"] = [u.strip() for u in urls.split(",") if u.strip()]
        if key_env and env.get(key_env):
            pool["api_key"] = env[key_env]
        spec[name] = pool
    elif key_env and env.get(key_env):
        spec["api_key"] = env[key_env]
    if provider.credentials == "aws":
        aws = dict(spec.get(name) or {})
        for field, var in (
            ("access_key_id", "AWS_ACCESS_KEY_ID"),
            ("secret_access_key", "AWS_SECRET_ACCESS_KEY"),
            ("session_token", "AWS_SESSION_TOKEN"),
        ):
            if env.get(var):
                aws[field] = env[var]
        region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
        if region:
            aws["region"] = region
        spec[name] = aws
    if provider.credentials == "deployments":
        spec["deployments"] = [_litellm_key(dict(d), env) for d in spec.get("deployments") or ()]
    return spec


def _litellm_key(deployment: dict[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
    """Resolve `api_key_env` to the key itself (a deployment without one sends none).
    A key written into the file is refused: credentials are references."""
    if "api_key" in deployment:
        raise ConfigError("providers.litellm.deployments: write api_key_env (a variable's name), not api_key")
    var = deployment.get("api_key_env")
    if isinstance(var, str) and env.get(var):
        deployment["api_key"] = env[var]
    return deployment


def load_settings(config_file: str | Path | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Defaults, then the YAML file (if any), then the environment."""
    env = os.environ if env is None else env
    raw: dict[str, Any] = {}
    path = config_file or env.get("CORRAL_CONFIG")
    if path:
        try:
            with Path(path).open() as handle:
                raw = yaml.safe_load(handle) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"{path}: {exc}") from exc
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: expected a mapping at the top level")
    for key, var in (("database_url", "DATABASE_URL"), ("redis_url", "REDIS_URL"), ("policy_path", "CORRAL_POLICY")):
        if env.get(var):
            raw[key] = env[var]
    if env.get("CORRAL_API_KEYS"):
        raw["api_keys"] = [k.strip() for k in env["CORRAL_API_KEYS"].split(",") if k.strip()]
    auth = env.get("CORRAL_AUTH", "").strip().lower()
    if auth in {"off", "0", "false", "no"}:
        raw["auth"] = False
    elif auth in {"on", "1", "true", "yes"}:
        raw["auth"] = True
    elif auth:
        raise ConfigError(f"CORRAL_AUTH={auth!r}: expected on or off")
    docs = env.get("CORRAL_DOCS", "").strip().lower()
    if docs in {"on", "1", "true", "yes"}:
        raw["docs"] = True
    elif docs in {"off", "0", "false", "no"}:
        raw["docs"] = False
    if env.get("CORRAL_SESSION_SECRET"):
        raw["session_secret"] = env["CORRAL_SESSION_SECRET"]
    if env.get("CORRAL_JOURNAL_DURABILITY"):
        raw["journal_durability"] = env["CORRAL_JOURNAL_DURABILITY"]
    if env.get("CORRAL_LEDGER_WRITER"):
        raw["ledger_writer"] = env["CORRAL_LEDGER_WRITER"]
    if env.get("CORRAL_LEDGER_WRITER_PRIORITY"):
        raw["ledger_writer_priority"] = env["CORRAL_LEDGER_WRITER_PRIORITY"]
    if env.get("CORRAL_SIMULATE") in {"0", "false", "no"}:
        raw["simulate_missing"] = False
    file_providers = raw.get("providers") or {}
    specs = _specs()
    unknown = set(file_providers) - set(specs)
    if unknown:
        known = sorted(specs)
        raise ConfigError(
            f"{path or 'configuration'}: providers: unknown provider(s) {sorted(unknown)}; known: {known}"
        )
    raw["providers"] = {
        name: _provider_from_env(spec, env, file_providers.get(name) or {}) for name, spec in specs.items()
    }
    try:
        return Settings.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"{path or 'configuration'}: {where}: {first['msg']}") from exc
