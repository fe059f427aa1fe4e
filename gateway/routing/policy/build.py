"""Build `policy_model` objects from schema-valid policy data.

Layering: `defaults` is laid over the built-in `RouteSettings()`, and each rule over the
policy's defaults. A key a rule sets replaces the default's value; the sections `objective`,
`retry`, `tool_calls`, `pool` and `breaker` merge key by key, so a rule that sets only
`retry.attempts` keeps the default deadline and error kinds.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, TypeVar

from gateway.catalogue.deployments import Catalogue
from gateway.routing.policy.model import (
    Budget,
    Cache,
    Hedge,
    Match,
    Objective,
    Policy,
    RouteSettings,
    Rule,
    SplitTarget,
    Teams,
)
from gateway.routing.policy.yaml_lines import Path, YamlDoc

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

Section = TypeVar("Section", bound="DataclassInstance")
Convert = Mapping[str, Callable[[Any], Any]]

_RETRY: Convert = {"attempts": int, "on": frozenset, "deadline_ms": float, "tries_per_deployment": int}
_TOOLS: Convert = {"mode": str, "reasks": int}
_POOL: Convert = {"prefer_pool": bool, "max_queue_depth": int, "max_kv_cache_usage": float, "cost_model": str}
_BREAKER: Convert = {
    "consecutive_failures": int,
    "error_rate": float,
    "min_requests": int,
    "window_s": float,
    "cooldown_s": float,
}
_SECTIONS: dict[str, Convert] = {"retry": _RETRY, "tool_calls": _TOOLS, "pool": _POOL, "breaker": _BREAKER}


def build_policy(doc: YamlDoc, source: str, default_name: str, catalogue: Catalogue) -> Policy:
    data: dict[str, Any] = doc.data
    defaults = build_settings(doc, data.get("defaults", {}), ("defaults",), RouteSettings())
    rules = tuple(
        build_rule(doc, raw, ("rules", i), defaults, source, catalogue) for i, raw in enumerate(data.get("rules", []))
    )
    budgets = tuple(build_budget(doc, raw, ("budgets", i)) for i, raw in enumerate(data.get("budgets", [])))
    revision = int(data.get("revision", 0))
    teams = Teams(require_key_team=bool(data.get("teams", {}).get("require_key_team", False)))
    return Policy(str(data.get("name") or default_name), defaults, rules, source, budgets, revision, teams)


def build_settings(doc: YamlDoc, raw: dict[str, Any], at: Path, base: RouteSettings) -> RouteSettings:
    changes: dict[str, Any] = {}
    if "allow" in raw:
        changes["allow"] = None if raw["allow"] is None else frozenset(raw["allow"])
    if "deny" in raw:
        changes["deny"] = frozenset(raw["deny"])
    if "order" in raw:
        changes["order"] = tuple(raw["order"])
    if "fallback" in raw:
        changes["fallback"] = bool(raw["fallback"])
    if "max_price_usd" in raw:
        value = raw["max_price_usd"]
        changes["max_price_usd"] = None if value is None else decimal_of(doc, (*at, "max_price_usd"), value)
    if "objective" in raw:
        changes["objective"] = build_objective(raw["objective"], base.objective)
    if "split" in raw:
        changes["split"] = tuple(SplitTarget(t.get("provider"), float(t["weight_pct"])) for t in raw["split"])
    if "cache" in raw:
        changes["cache"] = build_cache(raw["cache"])
    for name, convert in _SECTIONS.items():
        if name in raw:
            changes[name] = _section(getattr(base, name), raw[name], convert)
    if "hedge" in raw:
        changes["hedge"] = build_hedge(raw["hedge"], base.hedge)
    return replace(base, **changes)


def build_cache(raw: dict[str, Any] | None) -> Cache | None:
    """A rule's `cache` replaces the default's whole (`cache: null` turns it off)."""
    if raw is None:
        return None
    return Cache(
        ttl_s=int(raw["ttl_s"]),
        shared_across_teams=bool(raw.get("shared_across_teams", False)),
        allow_tools=bool(raw.get("allow_tools", False)),
    )


def build_hedge(raw: dict[str, Any] | None, base: Hedge | None) -> Hedge | None:
    """A `hedge` block merged key by key over the defaults' (null turns hedging off)."""
    if raw is None:
        return None
    changes: dict[str, Any] = {}
    if "after" in raw:
        changes["after_ms"] = None if raw["after"] == "p95" else float(raw["after"])
    if "max_hedges" in raw:
        changes["max_hedges"] = int(raw["max_hedges"])
    if "max_extra_cost_pct" in raw:
        changes["max_extra_cost_pct"] = float(raw["max_extra_cost_pct"])
    if "only" in raw:
        changes["only"] = raw["only"]
    if "allow_tools" in raw:
        changes["allow_tools"] = bool(raw["allow_tools"])
    return replace(base or Hedge(), **changes)


def _section(base: Section, raw: dict[str, Any], convert: Convert) -> Section:
    return replace(base, **{key: convert[key](value) for key, value in raw.items()})


def build_objective(raw: dict[str, Any], base: Objective) -> Objective:
    """Merge an `objective` block; weights without an explicit `prefer` imply `balanced`."""
    changes: dict[str, Any] = {}
    if "weights" in raw:
        changes["prefer"] = "balanced"
        changes["cost_weight"] = float(raw["weights"]["cost"])
        changes["latency_weight"] = float(raw["weights"]["latency"])
    if "prefer" in raw:
        changes["prefer"] = raw["prefer"]
    for key in ("max_ttft_ms", "max_latency_ms"):
        if key in raw:
            changes[key] = None if raw[key] is None else float(raw[key])
    if "percentile" in raw:
        changes["percentile"] = raw["percentile"]
    return replace(base, **changes)


def build_match(doc: YamlDoc, raw: dict[str, Any], at: Path, catalogue: Catalogue) -> Match:
    """A rule's match; model aliases become canonical names (unknown names are kept for the checks)."""
    models = frozenset(_canonical(name, catalogue) for name in raw.get("models", ()))
    tags = tuple(sorted((key, scalar_text(doc, (*at, "tags", key), v)) for key, v in raw.get("tags", {}).items()))
    return Match(
        models=models,
        teams=frozenset(raw.get("teams", ())),
        keys=frozenset(raw.get("keys", ())),
        tags=tags,
        features=frozenset(raw.get("features", ())),
        min_prompt_tokens=raw.get("min_prompt_tokens"),
        max_prompt_tokens=raw.get("max_prompt_tokens"),
    )


def _canonical(name: str, catalogue: Catalogue) -> str:
    found = catalogue.resolve(name)
    return found.name if found else name


def build_rule(
    doc: YamlDoc, raw: dict[str, Any], at: Path, defaults: RouteSettings, source: str, catalogue: Catalogue
) -> Rule:
    return Rule(
        name=str(raw["name"]),
        match=build_match(doc, raw.get("match", {}), (*at, "match"), catalogue),
        settings=build_settings(doc, raw, at, defaults),
        reject=raw.get("reject"),
        source=f"{source}:{doc.line_of(at)}",
    )


def build_budget(doc: YamlDoc, raw: dict[str, Any], at: Path) -> Budget:
    return Budget(
        limit_usd=decimal_of(doc, (*at, "limit_usd"), raw["limit_usd"]),
        period=raw["period"],
        team=raw.get("team"),
        key=raw.get("key"),
        warn_at=float(raw.get("warn_at", 0.8)),
    )


def scalar_text(doc: YamlDoc, path: Path, value: Any) -> str:
    """A scalar as written (`tier: 1` -> "1"), so tag values compare as the strings requests send."""
    return value if isinstance(value, str) else doc.raw.get(path, str(value))


def decimal_of(doc: YamlDoc, path: Path, value: Any) -> Decimal:
    """A number (money, weights) from the text it was written as: `0.10` is `Decimal("0.10")`, never via a float."""
    if isinstance(value, int):
        return Decimal(value)
    text = scalar_text(doc, path, value).replace("_", "")
    try:
        return Decimal(text)
    except InvalidOperation:
        return Decimal(repr(float(value)))
