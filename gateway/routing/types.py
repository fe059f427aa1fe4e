"""The router's vocabulary: what it is given (the live view) and what it returns (a plan of
candidates with their figures, and the deployments it dropped with why). Data only."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Final

from gateway.catalogue.deployments import Deployment
from gateway.routing.health import Breaker
from gateway.routing.policy.model import DEFAULT_POLICY, Objective, RouteSettings
from gateway.routing.stats import LatencyStats, Prior
from gateway.schema.chat import ChatRequest

if TYPE_CHECKING:
    from gateway.routing.hedge import HedgeDecision, HedgeSpend


# Immutable by type (`Final` fields, checked by mypy), not frozen: 4x cheaper to build, once a request.
@dataclass(slots=True, unsafe_hash=True)
class Figures:
    """The numbers behind a candidate's rank (shown by /v1/route/explain)."""

    cost_usd: Final[Decimal]
    #: Cost used for ranking (the pool's is zero under the "sunk" cost model).
    rank_cost_usd: Final[Decimal]
    ttft_ms: Final[float]
    latency_ms: Final[float]
    samples: Final[int]
    meets_slo: Final[bool | None] = None
    #: TTFT and total latency at the SLO's percentile (set when the objective has an SLO).
    slo_ttft_ms: Final[float | None] = None
    slo_latency_ms: Final[float | None] = None
    #: The deployment's own p95 TTFT and whole-answer latency (the default hedge delays).
    p95_ttft_ms: Final[float] = 0.0
    p95_latency_ms: Final[float] = 0.0

    def describe(self) -> str:
        slo = "" if self.meets_slo is None else (", meets SLO" if self.meets_slo else ", misses SLO")
        return (
            f"expected cost {self.cost_usd:.6f} USD, TTFT {self.ttft_ms:.0f} ms, "
            f"total {self.latency_ms:.0f} ms ({self.samples} samples){slo}"
        )


# Immutable by type (`Final` fields, checked by mypy), not frozen: 4x cheaper to build, once a request.
@dataclass(slots=True, unsafe_hash=True)
class Candidate:
    deployment: Final[Deployment]
    expected_cost_usd: Final[Decimal]
    figures: Final[Figures | None] = None

    @property
    def reason(self) -> str:
        """Why it ranks where it does (formatted only when someone asks, e.g. explain)."""
        if self.figures is None:
            return f"expected cost {self.expected_cost_usd:.6f} USD"
        return self.figures.describe()


#: How the reason of a deployment dropped for its open circuit breaker begins.
BREAKER_OPEN = "circuit breaker open"

#: Why a deployment whose provider this gateway has no adapter for is left out.
NOT_CONFIGURED = "provider not configured"


@dataclass(frozen=True, slots=True)
class Dropped:
    deployment: Deployment
    reason: str
    #: Seconds until the deployment may be tried again, when it is only cooling down.
    retry_after_s: float | None = None
    #: The request parameter that rules the deployment out (e.g. tool_choice, max_tokens).
    param: str | None = None
    #: Dropped for the moment (breaker, cooldown, pool load, out of rotation): waiting may help.
    live: bool = False
    #: Dropped by the operator's policy (allow / deny).
    by_policy: bool = False


# Immutable by type (`Final` fields, checked by mypy), not frozen: 4x cheaper to build, once a request.
@dataclass(slots=True, unsafe_hash=True)
class Plan:
    model: Final[str]
    candidates: Final[tuple[Candidate, ...]]
    dropped: Final[tuple[Dropped, ...]]
    rule: Final[str | None] = None
    settings: Final[RouteSettings] = DEFAULT_POLICY.defaults
    #: Set when the policy refuses the request outright (the rule's message).
    rejected: Final[str | None] = None
    #: The objective this request was ranked by (the policy's, narrowed by the request's preferences).
    objective: Final[Objective | None] = None
    #: What the policy's split chose for this request: a provider, or "by objective".
    split: Final[str | None] = None
    #: The hedge in force (None: the policy does not hedge).
    hedge: Final[HedgeDecision | None] = None


@dataclass(frozen=True, slots=True)
class ReplicaLoad:
    """One healthy replica's load, from its last recent scrape and our own in-flight count."""

    queue_depth: int
    kv_cache_usage: float


@dataclass(frozen=True, slots=True)
class PoolLoad:
    """The self-hosted pool's load for one model, summed over healthy replicas."""

    healthy_replicas: int
    queue_depth: int
    running: int
    #: KV-cache usage of the least-loaded healthy replica (0..1).
    kv_cache_usage: float
    #: Per healthy replica serving the model, its load, or None when unknown (never scraped
    #: or stale). Empty: only the totals above are known (the simulator's pools).
    replicas: tuple[ReplicaLoad | None, ...] = ()


# Immutable by type (`Final` fields, checked by mypy), not frozen: 4x cheaper to build, once a request.
@dataclass(slots=True, unsafe_hash=True)
class LiveView:
    """What the router needs to know about the world right now (read-only)."""

    now: Final[float]
    today: Final[date]
    #: Providers this gateway has an adapter for (configured or simulated).
    available: Final[frozenset[str]]
    #: deployment key -> monotonic time until which it is cooling down (e.g. after a 429).
    cooldowns: Final[Mapping[str, float]]
    #: deployment key -> why it was taken out of rotation (e.g. the provider said the model is gone).
    out_of_rotation: Final[Mapping[str, str]]
    breakers: Final[Mapping[str, Breaker] | None] = None
    #: deployment key -> feature -> monotonic time until which the deployment is not offered it
    #: (it refused the feature as unsupported).
    capability_misses: Final[Mapping[str, Mapping[str, float]] | None] = None
    stats: Final[Mapping[str, LatencyStats] | None] = None
    #: logical model -> pool load (absent: no pool information yet).
    pool: Final[Mapping[str, PoolLoad] | None] = None
    priors: Final[Mapping[str, Prior] | None] = None
    #: rule name (or "(defaults)") -> its rolling spend and hedging's extra share of it.
    hedge_spend: Final[Mapping[str, HedgeSpend] | None] = None


Refusal = Callable[[ChatRequest, Deployment], str | None]
