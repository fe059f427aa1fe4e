"""Logical models and the deployments that can serve them, with per-backend facts."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Any

import yaml

CAPABILITIES = frozenset(
    {"stream", "tools", "tool_choice", "stream_tools", "images", "json_object", "json_schema", "logprobs"}
)
DEFAULT_PATH = Path(__file__).resolve().parent / "deployments.yaml"


class CatalogueError(ValueError):
    """The catalogue (or an operator's override of it) is not valid."""


@dataclass(frozen=True, slots=True)
class Retirement:
    date: date
    source: str


@dataclass(frozen=True, slots=True)
class Deployment:
    """One logical model served by one provider."""

    provider: str
    model: str
    model_id: str
    context_window: int
    max_output_tokens: int
    capabilities: frozenset[str]
    quantization: str = ""
    retired: Retirement | None = None
    #: Operator re-enabled a retired deployment (for example under an enterprise contract).
    reenabled: bool = False
    #: Served by the self-hosted pool (fixed GPU cost, live load, spill-over).
    pooled: bool = False
    #: "provider/model": the deployment's name in live state, metrics and config overrides.
    key: str = field(init=False, compare=False)
    #: Why a retired deployment is left out ("" when it is not retired); formatted once.
    retired_reason: str = field(init=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", f"{self.provider}/{self.model}")
        retired = self.retired
        reason = f"retired by {self.provider} on {retired.date.isoformat()}" if retired else ""
        object.__setattr__(self, "retired_reason", reason)

    def retired_on(self, today: date) -> bool:
        return self.retired is not None and not self.reenabled and self.retired.date <= today


@dataclass(frozen=True, slots=True)
class LogicalModel:
    name: str
    description: str
    aliases: tuple[str, ...]
    deployments: tuple[Deployment, ...]


@dataclass(frozen=True, slots=True)
class Catalogue:
    models: dict[str, LogicalModel]
    _by_alias: dict[str, str] = field(default_factory=dict)
    #: The providers rows may name (every provider Corral has an adapter for), and which of
    #: them is the self-hosted pool.
    providers: tuple[str, ...] = ()
    pooled: frozenset[str] = frozenset()

    def resolve(self, name: str) -> LogicalModel | None:
        """The logical model for a name or alias (case-insensitive), or None."""
        canonical = self._by_alias.get(name.lower())
        return self.models.get(canonical) if canonical else None

    def deployments(self, model: str) -> tuple[Deployment, ...]:
        found = self.models.get(model)
        return found.deployments if found else ()

    def with_overrides(self, overrides: dict[str, dict[str, Any]]) -> Catalogue:
        """Apply operator overrides keyed "provider/model" (e.g. `reenabled: true`)."""
        models = dict(self.models)
        for key, changes in overrides.items():
            provider, _, model = key.partition("/")
            logical = models.get(model)
            if logical is None or provider not in self.providers:
                raise CatalogueError(f"catalogue override {key!r}: no such provider/model")
            new_deps = []
            hit = False
            for dep in logical.deployments:
                if dep.provider == provider:
                    hit = True
                new_deps.append(_apply(dep, key, changes) if dep.provider == provider else dep)
            if not hit:
                new_deps.append(_deployment(provider, model, changes, key, provider in self.pooled))
            models[model] = replace(logical, deployments=tuple(new_deps))
        return _build(models, self.providers, self.pooled)


def _apply(dep: Deployment, key: str, changes: dict[str, Any]) -> Deployment:
    allowed = {"model_id", "context_window", "max_output_tokens", "capabilities", "reenabled", "quantization"}
    unknown = set(changes) - allowed
    if unknown:
        raise CatalogueError(f"catalogue override {key!r}: unknown field(s) {sorted(unknown)}")
    values: dict[str, Any] = dict(changes)
    if "capabilities" in values:
        values["capabilities"] = _capabilities(values["capabilities"], key)
    return replace(dep, **values)


def _capabilities(raw: Any, where: str) -> frozenset[str]:
    if not isinstance(raw, list) or not all(isinstance(c, str) for c in raw):
        raise CatalogueError(f"{where}: capabilities must be a list of names")
    unknown = set(raw) - CAPABILITIES
    if unknown:
        raise CatalogueError(f"{where}: unknown capabilities {sorted(unknown)}")
    return frozenset(raw)


def _deployment(provider: str, model: str, raw: dict[str, Any], where: str, pooled: bool) -> Deployment:
    try:
        retired_raw = raw.get("retired")
        retired = (
            Retirement(date=_as_date(retired_raw["date"]), source=str(retired_raw["source"])) if retired_raw else None
        )
        return Deployment(
            provider=provider,
            model=model,
            model_id=str(raw["model_id"]),
            context_window=int(raw["context_window"]),
            max_output_tokens=int(raw["max_output_tokens"]),
            capabilities=_capabilities(raw.get("capabilities", []), where),
            quantization=str(raw.get("quantization", "")),
            retired=retired,
            reenabled=bool(raw.get("reenabled", False)),
            pooled=pooled,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise CatalogueError(f"{where}: {exc}") from exc


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def _build(models: dict[str, LogicalModel], providers: tuple[str, ...], pooled: frozenset[str]) -> Catalogue:
    by_alias: dict[str, str] = {}
    for name, model in models.items():
        for alias in (name, *model.aliases):
            by_alias[alias.lower()] = name
    return Catalogue(models=models, _by_alias=by_alias, providers=providers, pooled=pooled)


def parse_catalogue(raw: dict[str, Any], providers: tuple[str, ...], pooled: frozenset[str]) -> Catalogue:
    models: dict[str, LogicalModel] = {}
    for name, spec in (raw.get("models") or {}).items():
        deployments = []
        for provider, dep in (spec.get("deployments") or {}).items():
            if provider not in providers:
                raise CatalogueError(f"models.{name}.deployments: unknown provider {provider!r}")
            where = f"models.{name}.deployments.{provider}"
            deployments.append(_deployment(provider, name, dep, where, provider in pooled))
        models[name] = LogicalModel(
            name=name,
            description=str(spec.get("description", "")),
            aliases=tuple(spec.get("aliases") or ()),
            deployments=tuple(deployments),
        )
    return _build(models, providers, pooled)


def load_catalogue(path: Path = DEFAULT_PATH) -> Catalogue:
    """The catalogue file, checked against the provider registry (imported here, when a
    catalogue is loaded: the adapters themselves read this module's types)."""
    from gateway.providers.registry import names, pooled

    with path.open() as handle:
        return parse_catalogue(yaml.safe_load(handle), names(), pooled())
