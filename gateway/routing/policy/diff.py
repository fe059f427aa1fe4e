"""What changes for traffic between two policies.

Both policies are evaluated on the same grid of probe requests: every catalogue model, each
feature set {none, tools, images, json_schema, stream} plus those the rules match on, every
team, key and tag set the rules mention (alone and as each rule combines them), and a small
and a large prompt plus every prompt-size boundary the rules draw. A probe is reported when
its matched rule or any effective setting differs. Pure and fast: no network, no gateway.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from gateway.catalogue.deployments import Catalogue
from gateway.routing.policy.checks import request_features
from gateway.routing.policy.model import Policy, RouteSettings, Rule

SMALL_PROMPT = 500
LARGE_PROMPT = 100_000
BASE_FEATURES: tuple[frozenset[str], ...] = (
    frozenset(),
    frozenset({"tools"}),
    frozenset({"images"}),
    frozenset({"json_schema"}),
    frozenset({"stream"}),
)
Identity = tuple[str | None, str | None, tuple[tuple[str, str], ...]]


@dataclass(frozen=True, slots=True)
class Probe:
    model: str
    features: tuple[str, ...]
    team: str | None
    key: str | None
    tags: tuple[tuple[str, str], ...]
    prompt_tokens: int

    def describe(self) -> str:
        parts = [self.model, "features=" + ("+".join(self.features) or "none")]
        parts += [f"team={self.team}"] if self.team else []
        parts += [f"key={self.key}"] if self.key else []
        parts += [f"tag {k}={v}" for k, v in self.tags]
        parts.append(f"prompt={self.prompt_tokens}")
        return " ".join(parts)


@dataclass(frozen=True, slots=True)
class Change:
    probe: Probe
    #: (field, old value, new value) for every field that differs.
    fields: tuple[tuple[str, str, str], ...]


def _feature_sets(rules: Iterable[Rule]) -> list[tuple[str, ...]]:
    sets = [*BASE_FEATURES, *(request_features(r.match.features) for r in rules)]
    return list(dict.fromkeys(tuple(sorted(s)) for s in sets))


def _identities(rules: Iterable[Rule]) -> list[Identity]:
    out: list[Identity] = [(None, None, ())]
    for rule in rules:
        m = rule.match
        teams: list[str | None] = [*sorted(m.teams)] or [None]
        keys: list[str | None] = [*sorted(m.keys)] or [None]
        out += [(t, k, m.tags) for t in teams for k in keys]
        out += [(None, None, (pair,)) for pair in m.tags]
        out += [(t, None, ()) for t in sorted(m.teams)]
        out += [(None, k, ()) for k in sorted(m.keys)]
    return list(dict.fromkeys(out))


def _sizes(rules: Iterable[Rule]) -> list[int]:
    sizes = {SMALL_PROMPT, LARGE_PROMPT}
    for rule in rules:
        low, high = rule.match.min_prompt_tokens, rule.match.max_prompt_tokens
        sizes |= {low, max(low - 1, 0)} if low is not None else set()
        sizes |= {high, high + 1} if high is not None else set()
    return sorted(sizes)


def probes(old: Policy, new: Policy, catalogue: Catalogue) -> list[Probe]:
    rules = (*old.rules, *new.rules)
    features, identities, sizes = _feature_sets(rules), _identities(rules), _sizes(rules)
    return [
        Probe(model, feats, team, key, tags, size)
        for model in sorted(catalogue.models)
        for feats in features
        for team, key, tags in identities
        for size in sizes
    ]


def _objective(s: RouteSettings) -> str:
    o = s.objective
    text = f"prefer {o.prefer}"
    if o.prefer == "balanced":
        text += f" (cost {o.cost_weight:g}, latency {o.latency_weight:g})"
    text += f", TTFT <= {o.max_ttft_ms:g} ms" if o.max_ttft_ms is not None else ""
    text += f", latency <= {o.max_latency_ms:g} ms" if o.max_latency_ms is not None else ""
    if o.max_ttft_ms is not None or o.max_latency_ms is not None:
        text += f" at {o.percentile}"
    return text


def _retry(s: RouteSettings) -> str:
    r = s.retry
    return (
        f"{r.attempts} attempts on {', '.join(sorted(r.on)) or 'nothing'}, "
        f"{r.tries_per_deployment} per deployment, deadline {r.deadline_ms:g} ms"
    )


def _pool(s: RouteSettings) -> str:
    p = s.pool
    first = "pool first" if p.prefer_pool else "pool not preferred"
    return f"{first}, spill at queue {p.max_queue_depth} or KV cache {p.max_kv_cache_usage:.0%}, cost {p.cost_model}"


def _breaker(s: RouteSettings) -> str:
    b = s.breaker
    return (
        f"{b.consecutive_failures} in a row or {b.error_rate:.0%} of >= {b.min_requests} in {b.window_s:g} s, "
        f"cool down {b.cooldown_s:g} s"
    )


def _hedge(s: RouteSettings) -> str:
    h = s.hedge
    if h is None:
        return "off"
    after = "p95" if h.after_ms is None else f"{h.after_ms:g} ms"
    tools = ", tools too" if h.allow_tools else ""
    return f"after {after}, {h.max_hedges} hedge, extra cost <= {h.max_extra_cost_pct:g}%, {h.only}{tools}"


_RENDER: dict[str, Callable[[RouteSettings], str]] = {
    "allow": lambda s: "every provider" if s.allow is None else ", ".join(sorted(s.allow)),
    "deny": lambda s: ", ".join(sorted(s.deny)) or "none",
    "order": lambda s: " > ".join(s.order) or "none",
    "objective": _objective,
    "split": lambda s: ", ".join(f"{t.provider or 'by objective'} {t.weight:g}%" for t in s.split) or "none",
    "fallback": lambda s: "on" if s.fallback else "off",
    "tool_calls": lambda s: (
        s.tool_calls.mode + (f", {s.tool_calls.reasks} re-asks" if s.tool_calls.mode == "retry" else "")
    ),
    "max_price_usd": lambda s: "no limit" if s.max_price_usd is None else f"{s.max_price_usd} USD",
    "retry": _retry,
    "pool": _pool,
    "breaker": _breaker,
    "hedge": _hedge,
}
FIELDS = ("rule", "reject", *_RENDER)


def effective(policy: Policy, probe: Probe) -> dict[str, str]:
    """The matched rule and the settings a probe gets, rendered for comparison."""
    tags = dict(probe.tags)
    team = probe.team or tags.get("team")
    rule = policy.rule_for(probe.model, team, probe.key, tags, frozenset(probe.features), probe.prompt_tokens)
    if rule is not None and rule.reject:
        return {"rule": rule.name, "reject": rule.reject}
    settings = rule.settings if rule else policy.defaults
    out = {"rule": rule.name if rule else "(defaults)", "reject": "no"}
    out.update((name, render(settings)) for name, render in _RENDER.items())
    return out


def diff_policies(old: Policy, new: Policy, catalogue: Catalogue) -> list[Change]:
    changes: list[Change] = []
    for probe in probes(old, new, catalogue):
        before, after = effective(old, probe), effective(new, probe)
        fields = tuple(
            (name, before.get(name, "-"), after.get(name, "-"))
            for name in FIELDS
            if before.get(name) != after.get(name)
        )
        if fields:
            changes.append(Change(probe, fields))
    return changes


def render_changes(changes: list[Change]) -> list[str]:
    """Changes grouped by what changed, each group followed by the probes it applies to."""
    groups: dict[tuple[tuple[str, str, str], ...], list[Probe]] = {}
    for change in changes:
        groups.setdefault(change.fields, []).append(change.probe)
    lines: list[str] = []
    for fields, group in groups.items():
        lines.append(f"{len(group)} probe request(s):")
        lines += [f"  {name}: {old}  ->  {new}" for name, old, new in fields]
        lines += [f"    {probe.describe()}" for probe in group]
    return lines
