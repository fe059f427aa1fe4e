"""The routing policy as validated, immutable data (what `policies/*.yaml` load into).

A policy is an ordered list of rules over defaults. The first rule whose `match`
fits a request applies; its settings are layered over `defaults`. Loading, JSON
Schema and semantic validation live in `gateway.routing.policy.load`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

Prefer = Literal["cost", "latency", "balanced"]
ToolMode = Literal["off", "report", "repair", "retry"]
Percentile = Literal["p50", "p90", "p95", "p99"]
#: The percentile an SLO is judged on when the policy names none.
DEFAULT_SLO_PERCENTILE: Percentile = "p90"


@dataclass(frozen=True, slots=True)
class Match:
    """Every given condition must hold (an empty match matches everything)."""

    models: frozenset[str] = frozenset()
    teams: frozenset[str] = frozenset()
    keys: frozenset[str] = frozenset()
    #: Request tags that must all be present with these values.
    tags: tuple[tuple[str, str], ...] = ()
    #: Features the request must use (tools, images, json_schema, json_object, stream).
    features: frozenset[str] = frozenset()
    min_prompt_tokens: int | None = None
    max_prompt_tokens: int | None = None


@dataclass(frozen=True, slots=True)
class Objective:
    """How to rank eligible deployments.

    `prefer=cost|latency` sorts on one figure; `balanced` (or explicit weights) mixes both
    after normalising; `max_ttft_ms` makes it "cheapest that meets this TTFT SLO"
    (deployments expected to miss it go last, fastest first). Both SLOs are judged on
    `percentile` of the deployment's decayed latency model (default p90), not its mean.
    """

    prefer: Prefer = "cost"
    cost_weight: float = 0.5
    latency_weight: float = 0.5
    max_ttft_ms: float | None = None
    max_latency_ms: float | None = None
    percentile: Percentile = DEFAULT_SLO_PERCENTILE


@dataclass(frozen=True, slots=True)
class Retry:
    attempts: int = 3
    #: Error kinds worth another attempt (on the same or the next deployment).
    on: frozenset[str] = frozenset({"rate_limited", "overloaded", "timeout", "connection", "upstream_5xx"})
    deadline_ms: float = 60_000.0
    tries_per_deployment: int = 2


@dataclass(frozen=True, slots=True)
class Breaker:
    consecutive_failures: int = 5
    error_rate: float = 0.5
    min_requests: int = 20
    window_s: float = 30.0
    cooldown_s: float = 15.0


@dataclass(frozen=True, slots=True)
class PoolSpill:
    """Prefer the self-hosted pool while it has headroom, then burst to hosted backends."""

    prefer_pool: bool = True
    max_queue_depth: int = 8
    max_kv_cache_usage: float = 0.9
    #: How the pool's cost counts when ranking: "sunk" (free until full) or "effective" (price book).
    cost_model: Literal["sunk", "effective"] = "sunk"


@dataclass(frozen=True, slots=True)
class ToolCalls:
    mode: ToolMode = "retry"
    reasks: int = 1


HedgeOnly = Literal["stream", "non_stream", "both"]


@dataclass(frozen=True, slots=True)
class Hedge:
    """Hedged requests (see `gateway.dispatch.hedge`): after `after_ms` without a first byte
    (stream) or an answer (non-stream), start the plan's next candidate as well; the first
    to answer wins and the other is cancelled. `after_ms=None` means the first deployment's
    own measured p95 (TTFT for a stream, the whole answer otherwise)."""

    after_ms: float | None = None
    max_hedges: int = 1
    #: Hedging pauses while the rule's rolling extra cost is above this share (%) of its spend.
    max_extra_cost_pct: float = 10.0
    only: HedgeOnly = "both"
    #: Hedge requests carrying tools too (off: a tool call's side effects could happen twice).
    allow_tools: bool = False


@dataclass(frozen=True, slots=True)
class Cache:
    """The response cache for a rule's requests (see `gateway.cache`): whole answers of
    deterministic requests kept for `ttl_s`, per team unless `shared_across_teams`, and
    requests offering tools only with `allow_tools` (a tool may have side effects)."""

    ttl_s: int
    shared_across_teams: bool = False
    allow_tools: bool = False


@dataclass(frozen=True, slots=True)
class SplitTarget:
    #: None: this share goes wherever the objective would send it.
    provider: str | None
    weight: float


@dataclass(frozen=True, slots=True)
class RouteSettings:
    """Everything a rule can set; a rule's settings are layered over the defaults."""

    allow: frozenset[str] | None = None
    deny: frozenset[str] = frozenset()
    order: tuple[str, ...] = ()
    objective: Objective = field(default_factory=Objective)
    max_price_usd: Decimal | None = None
    retry: Retry = field(default_factory=Retry)
    fallback: bool = True
    tool_calls: ToolCalls = field(default_factory=ToolCalls)
    split: tuple[SplitTarget, ...] = ()
    pool: PoolSpill = field(default_factory=PoolSpill)
    breaker: Breaker = field(default_factory=Breaker)
    #: None: answers are cached only for requests that ask (`corral.cache`).
    cache: Cache | None = None
    #: None: requests are never hedged.
    hedge: Hedge | None = None


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    match: Match
    settings: RouteSettings
    #: When set, matching requests are refused with this message (HTTP 403, code policy_rejected).
    reject: str | None = None
    #: Where the rule was written, for error messages ("policies/prod.yaml:42").
    source: str = ""


@dataclass(frozen=True, slots=True)
class Budget:
    """A spend limit for one team or one API key per period (enforced by `gateway.metering.budgets`)."""

    limit_usd: Decimal
    period: Literal["day", "month"]
    team: str | None = None
    key: str | None = None
    #: Fraction of the limit at which to warn (0..1].
    warn_at: float = 0.8


@dataclass(frozen=True, slots=True)
class Teams:
    """How requests are tied to teams."""

    #: Refuse a `team` tag from a key without a team (default: such a key may name any team).
    require_key_team: bool = False


@dataclass(frozen=True, slots=True)
class Policy:
    name: str
    defaults: RouteSettings
    rules: tuple[Rule, ...] = ()
    source: str = ""
    budgets: tuple[Budget, ...] = ()
    #: The file's `revision`: raising it lets a reload drop rules or budgets (see live/policy.py).
    revision: int = 0
    teams: Teams = Teams()

    def rule_for(
        self,
        model: str,
        team: str | None,
        key: str | None,
        tags: dict[str, str],
        features: frozenset[str],
        prompt_tokens: int,
    ) -> Rule | None:
        for rule in self.rules:
            if matches(rule.match, model, team, key, tags, features, prompt_tokens):
                return rule
        return None


def matches(
    m: Match,
    model: str,
    team: str | None,
    key: str | None,
    tags: dict[str, str],
    features: frozenset[str],
    prompt_tokens: int,
) -> bool:
    if m.models and model not in m.models:
        return False
    if m.teams and team not in m.teams:
        return False
    if m.keys and key not in m.keys:
        return False
    if any(tags.get(k) != v for k, v in m.tags):
        return False
    if not m.features <= features:
        return False
    if m.min_prompt_tokens is not None and prompt_tokens < m.min_prompt_tokens:
        return False
    return m.max_prompt_tokens is None or prompt_tokens <= m.max_prompt_tokens


DEFAULT_POLICY = Policy(name="built-in default", defaults=RouteSettings())
