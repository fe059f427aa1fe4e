"""Semantic checks on a policy that passed the JSON Schema.

Errors: unknown providers, models and features; rules that can never match (an empty prompt
range, an unknown model or feature) or are shadowed by an earlier rule; a model left with no
deployment after allow/deny; split weights that do not add up to 100; objective weights that do
not add up to 1; bad budgets; duplicate rule names.

Warnings (routable, but probably not what was meant): providers in `order` that allow/deny
exclude, a provider both allowed and denied, keys a reject rule ignores, rules that change
nothing, per-rule breakers, re-asks without `mode: retry`, split targets that serve nothing,
orderings that contradict each other or the objective (order with split, the pool first or
order with prefer: latency), a cache that can never serve (a rule for requests with tools
that does not allow them).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from gateway.catalogue.deployments import CAPABILITIES, Catalogue
from gateway.routing.policy.build import decimal_of
from gateway.routing.policy.model import Match, Policy, RouteSettings, Rule
from gateway.routing.policy.yaml_lines import Path, YamlDoc

#: Features a request necessarily has when it has the key (see `schema.chat.features_of`).
FEATURE_IMPLIES = {"stream_tools": frozenset({"stream", "tools"}), "tool_choice": frozenset({"tools"})}
_RULE_ONLY_KEYS = frozenset({"name", "description", "match", "reject"})
_PERIODS = {"day": "daily", "month": "monthly"}


@dataclass(frozen=True, slots=True)
class Finding:
    path: Path
    message: str
    error: bool = True


def _warn(path: Path, message: str) -> Finding:
    return Finding(path, message, error=False)


def request_features(features: frozenset[str]) -> frozenset[str]:
    """Every feature a request matching `features` must have (`stream_tools` implies `stream`...)."""
    out = set(features)
    for feature in features:
        out |= FEATURE_IMPLIES.get(feature, frozenset())
    if {"stream", "tools"} <= out:
        out.add("stream_tools")
    return frozenset(out)


def allowed(settings: RouteSettings, provider: str) -> bool:
    return (settings.allow is None or provider in settings.allow) and provider not in settings.deny


@dataclass(frozen=True, slots=True)
class Block:
    """One place that sets route settings: `defaults` or a rule."""

    at: Path
    raw: dict[str, Any]
    settings: RouteSettings
    rule: Rule | None = None
    index: int = -1


class Context:
    def __init__(self, doc: YamlDoc, policy: Policy, catalogue: Catalogue) -> None:
        self.doc = doc
        self.policy = policy
        self.catalogue = catalogue
        data: dict[str, Any] = doc.data
        self.raw_rules: list[dict[str, Any]] = data.get("rules", [])
        self.raw_budgets: list[dict[str, Any]] = data.get("budgets", [])
        defaults = Block(("defaults",), data.get("defaults", {}), policy.defaults)
        rules = [
            Block(("rules", i), raw, r.settings, r, i)
            for i, (raw, r) in enumerate(zip(self.raw_rules, policy.rules, strict=True))
        ]
        self.blocks = [defaults, *rules]
        self.rule_blocks = rules
        self.broken = {i for i in range(len(rules)) if any(True for _ in match_problems(self, i))}

    def servable(self, model: str, settings: RouteSettings, need: frozenset[str]) -> bool:
        deps = self.catalogue.deployments(model)
        return any(allowed(settings, d.provider) and need <= d.capabilities for d in deps)

    def models_of(self, match: Match) -> list[str]:
        return sorted(match.models or self.catalogue.models)

    def line(self, path: Path) -> int:
        return self.doc.line_of(path)


def semantic_findings(doc: YamlDoc, policy: Policy, catalogue: Catalogue) -> list[Finding]:
    ctx = Context(doc, policy, catalogue)
    return [finding for check in CHECKS for finding in check(ctx)]


def check_providers(ctx: Context) -> Iterator[Finding]:
    known = ", ".join(ctx.catalogue.providers)
    for b in ctx.blocks:
        named = [
            ((*b.at, key, i), name) for key in ("allow", "deny", "order") for i, name in enumerate(b.raw.get(key) or ())
        ]
        splits = enumerate(b.raw.get("split", ()))
        named += [((*b.at, "split", i, "provider"), t["provider"]) for i, t in splits if "provider" in t]
        for path, name in named:
            if name not in ctx.catalogue.providers:
                yield Finding(path, f"unknown provider {name!r}; known providers: {known}")


def check_rule_names(ctx: Context) -> Iterator[Finding]:
    seen: dict[str, int] = {}
    for i, raw in enumerate(ctx.raw_rules):
        first = seen.setdefault(raw["name"], i)
        if first != i:
            line = ctx.line(("rules", first))
            yield Finding(
                ("rules", i, "name"), f"rule name {raw['name']!r} is already used by rules[{first}] (line {line})"
            )


def match_problems(ctx: Context, index: int) -> Iterator[Finding]:
    """Reasons rule `index` can never match, on its own."""
    at: Path = ("rules", index, "match")
    raw: dict[str, Any] = ctx.raw_rules[index].get("match", {})
    models = ", ".join(ctx.catalogue.models)
    for j, name in enumerate(raw.get("models", ())):
        if ctx.catalogue.resolve(name) is None:
            yield Finding((*at, "models", j), f"unknown model {name!r} (known: {models}, or an alias); never matches")
    for j, name in enumerate(raw.get("features", ())):
        if name not in CAPABILITIES:
            known = ", ".join(sorted(CAPABILITIES))
            yield Finding((*at, "features", j), f"unknown feature {name!r} (known: {known}); never matches")
    low, high = raw.get("min_prompt_tokens"), raw.get("max_prompt_tokens")
    if low is not None and high is not None and low > high:
        message = f"min_prompt_tokens {low} > max_prompt_tokens {high}: the rule can never match"
        yield Finding((*at, "min_prompt_tokens"), message)


def check_matches(ctx: Context) -> Iterator[Finding]:
    for i in range(len(ctx.raw_rules)):
        yield from match_problems(ctx, i)


def _allow_path(b: Block) -> Path:
    for key in ("allow", "deny"):
        if key in b.raw:
            return (*b.at, key)
    return b.at


def check_deployments(ctx: Context) -> Iterator[Finding]:
    """Every model a block can route must keep at least one deployment that can serve it."""
    defaults = ctx.policy.defaults
    for model in sorted(ctx.catalogue.models):
        if not ctx.servable(model, defaults, frozenset()):
            yield Finding(_allow_path(ctx.blocks[0]), f"no deployment of {model} is left after allow/deny")
    for i, b in enumerate(ctx.rule_blocks):
        assert b.rule is not None
        if b.rule.reject or i in ctx.broken:
            continue
        need = request_features(b.rule.match.features)
        for model in ctx.models_of(b.rule.match):
            if ctx.servable(model, defaults, frozenset()) and not ctx.servable(model, b.settings, need):
                supports = f" that supports {', '.join(sorted(need))}" if need else ""
                yield Finding(_allow_path(b), f"no deployment of {model}{supports} is left after allow/deny")


def _match_of(b: Block) -> Match:
    return b.rule.match if b.rule else Match()


def check_splits(ctx: Context) -> Iterator[Finding]:
    for b in ctx.blocks:
        targets: list[dict[str, Any]] = b.raw.get("split", [])
        if not targets:
            continue
        at: Path = (*b.at, "split")
        weights = [decimal_of(ctx.doc, (*at, i, "weight_pct"), t["weight_pct"]) for i, t in enumerate(targets)]
        total = sum(weights, Decimal(0))
        if total != 100:
            yield Finding(at, f"split weights (weight_pct) add up to {total.normalize():f}, not 100")
        seen: set[str] = set()
        for i, target in enumerate(targets):
            if "provider" in target:
                yield from _split_target(ctx, b, (*at, i, "provider"), target["provider"], seen)
            elif "by objective" in seen:
                yield Finding((*at, i), "the split has two by_objective shares; merge them")
            else:
                seen.add("by objective")


def _split_target(ctx: Context, b: Block, path: Path, provider: str, seen: set[str]) -> Iterator[Finding]:
    if provider in seen:
        yield Finding(path, f"{provider!r} appears twice in the split")
    seen.add(provider)
    if provider not in ctx.catalogue.providers:
        return
    if not allowed(b.settings, provider):
        yield Finding(path, f"the split sends traffic to {provider!r}, which allow/deny exclude here")
        return
    if b.index in ctx.broken:
        return
    match = _match_of(b)
    need = request_features(match.features)
    deps = [d for m in ctx.models_of(match) for d in ctx.catalogue.deployments(m)]
    if not any(d.provider == provider and need <= d.capabilities for d in deps):
        yield _warn(path, f"{provider!r} has no deployment that can serve what this rule matches")


def check_objectives(ctx: Context) -> Iterator[Finding]:
    for b in ctx.blocks:
        objective: dict[str, Any] = b.raw.get("objective", {})
        weights: dict[str, Any] | None = objective.get("weights")
        if weights is None:
            continue
        at: Path = (*b.at, "objective", "weights")
        total = sum((decimal_of(ctx.doc, (*at, k), weights[k]) for k in ("cost", "latency")), Decimal(0))
        if total != 1:
            yield Finding(at, f"objective weights add up to {total.normalize():f}, not 1")
        prefer = objective.get("prefer", "balanced")
        if prefer != "balanced":
            yield _warn((*b.at, "objective", "prefer"), f"weights only apply with prefer: balanced, not {prefer}")


def check_money(ctx: Context) -> Iterator[Finding]:
    for b in ctx.blocks:
        if "max_price_usd" in b.raw and b.settings.max_price_usd is not None and b.settings.max_price_usd <= 0:
            yield Finding((*b.at, "max_price_usd"), "max_price_usd must be above 0 (null for no limit)")
    for i, budget in enumerate(ctx.policy.budgets):
        if budget.limit_usd <= 0:
            yield Finding(("budgets", i, "limit_usd"), "limit_usd must be above 0")


def check_budgets(ctx: Context) -> Iterator[Finding]:
    seen: dict[tuple[str, str, str], int] = {}
    for i, raw in enumerate(ctx.raw_budgets):
        whom = [k for k in ("team", "key") if k in raw]
        if len(whom) != 1:
            yield Finding(("budgets", i), "a budget applies to exactly one of team or key")
            continue
        kind, period = whom[0], raw["period"]
        first = seen.setdefault((kind, raw[kind], period), i)
        if first != i:
            where = f"budgets[{first}], line {ctx.line(('budgets', first))}"
            yield Finding(("budgets", i), f"{kind} {raw[kind]!r} already has a {_PERIODS[period]} budget ({where})")


def covers(a: Match, b: Match, universe: frozenset[str]) -> bool:
    """Every request `b` matches is also matched by `a` (a is at least as general)."""
    if not (b.models or universe) <= (a.models or universe):
        return False
    for wide, narrow in ((a.teams, b.teams), (a.keys, b.keys)):
        if wide and not (narrow and narrow <= wide):
            return False
    if not set(a.tags) <= set(b.tags) or not a.features <= request_features(b.features):
        return False
    if (a.min_prompt_tokens or 0) > (b.min_prompt_tokens or 0):
        return False
    return a.max_prompt_tokens is None or (
        b.max_prompt_tokens is not None and b.max_prompt_tokens <= a.max_prompt_tokens
    )


def check_shadowing(ctx: Context) -> Iterator[Finding]:
    universe = frozenset(ctx.catalogue.models)
    rules = ctx.policy.rules
    for j, later in enumerate(rules):
        earlier = next(
            (i for i in range(j) if i not in ctx.broken and covers(rules[i].match, later.match, universe)), None
        )
        if j in ctx.broken or earlier is None:
            continue
        path: Path = ("rules", j, "match") if "match" in ctx.raw_rules[j] else ("rules", j)
        line = ctx.line(("rules", earlier))
        message = (
            f"rule {later.name!r} can never match: the earlier rule {rules[earlier].name!r} (line {line}) "
            "matches every request it would"
        )
        yield Finding(path, message)


def warn_order_and_allow(ctx: Context) -> Iterator[Finding]:
    for b in ctx.blocks:
        s = b.settings
        if "order" in b.raw or "allow" in b.raw or "deny" in b.raw:
            for i, provider in enumerate(s.order):
                if provider in ctx.catalogue.providers and not allowed(s, provider):
                    path = (*b.at, "order", i) if "order" in b.raw else _allow_path(b)
                    why = "denied" if provider in s.deny else "not in allow"
                    yield _warn(path, f"{provider!r} is in order but {why}, so it is never tried")
        if "allow" in b.raw and s.allow is not None:
            for i, provider in enumerate(b.raw.get("deny", ())):
                if provider in s.allow:
                    yield _warn((*b.at, "deny", i), f"{provider!r} is both allowed and denied; deny wins")


def warn_rule_settings(ctx: Context) -> Iterator[Finding]:
    for b in ctx.rule_blocks:
        assert b.rule is not None
        ignored = sorted(set(b.raw) - _RULE_ONLY_KEYS)
        if b.rule.reject:
            for key in ignored:
                yield _warn((*b.at, key), "ignored: a reject rule refuses the requests it matches")
            if b.rule.match == Match():
                yield _warn((*b.at, "reject"), "this rule has no match, so it refuses every request")
        elif b.rule.settings == ctx.policy.defaults:
            yield _warn(b.at, "the rule sets nothing beyond the defaults; it only stops later rules matching")
        if "breaker" in b.raw:
            yield _warn((*b.at, "breaker"), "breakers are per deployment and shared by all rules: set defaults.breaker")


def warn_reasks(ctx: Context) -> Iterator[Finding]:
    for b in ctx.blocks:
        tools: dict[str, Any] = b.raw.get("tool_calls", {})
        if "reasks" in tools and b.settings.tool_calls.mode != "retry":
            yield _warn(
                (*b.at, "tool_calls", "reasks"), f"reasks only apply with mode: retry, not {b.settings.tool_calls.mode}"
            )


def warn_hedges(ctx: Context) -> Iterator[Finding]:
    """A hedge needs a second candidate and a second attempt: say so when the same block
    makes either impossible, so `hedge` is never set where it can never happen."""
    for b in ctx.blocks:
        hedge = b.settings.hedge
        if hedge is None or not ({"hedge", "retry", "fallback"} & set(b.raw)):
            continue
        where = (*b.at, "hedge") if "hedge" in b.raw else b.at
        if not b.settings.fallback:
            yield _warn(where, "hedge never happens: fallback is off, so the plan has one candidate")
        elif b.settings.retry.attempts < 2:
            yield _warn(where, "hedge never happens: retry.attempts is 1 and a hedge is a second attempt")
        if hedge.after_ms is not None and hedge.after_ms >= b.settings.retry.deadline_ms:
            yield _warn(where, f"hedge.after {hedge.after_ms:g} ms is not before the deadline, so it never starts")


def warn_contradictions(ctx: Context) -> Iterator[Finding]:
    """Settings that pull one request two ways. Each ordering ranks only among deployments
    expected to meet the SLO, in a fixed precedence (pool preference < policy order <
    request order < split), so a later one silently overrides an earlier one."""
    for b in ctx.blocks:
        s = b.settings
        set_here = {key for key in ("order", "split", "pool", "objective") if key in b.raw}
        if not set_here:
            continue
        named_split = [t for t in s.split if t.provider is not None]
        if s.order and named_split and {"order", "split"} & set_here:
            where = (*b.at, "split") if "split" in b.raw else (*b.at, "order")
            yield _warn(where, "both order and split are set: the split's pick goes first, order only ranks the rest")
        if s.pool.prefer_pool and s.objective.prefer == "latency" and {"pool", "objective"} & set_here:
            where = (*b.at, "pool") if "pool" in b.raw else (*b.at, "objective")
            yield _warn(
                where,
                "pool.prefer_pool puts the pool first even where another deployment is faster, "
                "contradicting prefer: latency (set prefer_pool: false, or state the speed you need as an SLO)",
            )
        if s.order and s.objective.prefer == "latency" and {"order", "objective"} & set_here:
            where = (*b.at, "order") if "order" in b.raw else (*b.at, "objective")
            yield _warn(where, "order overrides prefer: latency for the deployments it names")


def warn_cache(ctx: Context) -> Iterator[Finding]:
    """A rule matching only requests with tools never uses a cache that refuses tools."""
    for b in ctx.rule_blocks:
        assert b.rule is not None
        cache = b.settings.cache
        tools_only = "tools" in request_features(b.rule.match.features)
        if "cache" in b.raw and cache is not None and not cache.allow_tools and tools_only:
            yield _warn(
                (*b.at, "cache"),
                "every request this rule matches offers tools, and the cache bypasses those "
                "unless allow_tools: true (only if the tools have no side effects)",
            )


CHECKS: tuple[Callable[[Context], Iterator[Finding]], ...] = (
    check_providers,
    check_rule_names,
    check_matches,
    check_deployments,
    check_splits,
    check_objectives,
    check_money,
    check_budgets,
    check_shadowing,
    warn_order_and_allow,
    warn_rule_settings,
    warn_reasks,
    warn_hedges,
    warn_contradictions,
    warn_cache,
)
