"""The route the gateway would take for a request (`POST /v1/route/explain`), modelled loosely:
the commonly used members are attributes, everything else stays in `extra` / `raw`."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from corral.types._dump import Dumpable
from corral.types._parse import dict_list, extras, opt_decimal, opt_float, opt_str
from corral.types.corral import CorralInfo

_STEP_KEYS = frozenset({"provider", "model_id", "score", "reason", "expected_cost_usd"})
_DROPPED_KEYS = frozenset({"provider", "model_id", "reason"})
_TOP_KEYS = frozenset({"model", "plan", "dropped", "rule", "rejected"})


@dataclass(slots=True)
class PlanStep:
    """One backend in the ordered plan. `extra` holds whatever else the gateway explains
    (rank, expected latency, breaker state, whether it meets the SLO, ...)."""

    provider: str
    model_id: str | None = None
    reason: str | None = None
    expected_cost_usd: Decimal | None = None
    score: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PlanStep:
        return cls(
            provider=opt_str(data.get("provider")) or "",
            model_id=opt_str(data.get("model_id")),
            reason=_text(data.get("reason")),
            expected_cost_usd=opt_decimal(data.get("expected_cost_usd")),
            score=opt_float(data.get("score")),
            extra=extras(data, _STEP_KEYS),
        )


@dataclass(slots=True)
class DroppedCandidate:
    provider: str
    reason: str
    model_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DroppedCandidate:
        return cls(
            provider=opt_str(data.get("provider")) or "",
            reason=_text(data.get("reason")) or "",
            model_id=opt_str(data.get("model_id")),
            extra=extras(data, _DROPPED_KEYS),
        )


def _text(value: Any) -> str | None:
    return None if value is None else value if isinstance(value, str) else str(value)


@dataclass(slots=True)
class RouteExplanation(Dumpable):
    """Usage:
        explanation = client.explain(model="llama-4-scout", messages=[...], prefer="cost")
        for step in explanation.plan: print(step.provider, step.reason, step.expected_cost_usd)
        for gone in explanation.dropped: print(gone.provider, gone.reason)

    `rule` is the name of the policy rule that applied (None: no rule matched, the policy's
    defaults did); `rejected` says why the policy would refuse the
    request (None when it would not); `extra` holds the rest (objective, fallback, retry, ...).
    """

    model: str | None
    plan: list[PlanStep]
    dropped: list[DroppedCandidate]
    rule: str | None = None
    rejected: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    corral: CorralInfo = field(default_factory=CorralInfo)
    raw: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, corral: CorralInfo | None = None) -> RouteExplanation:
        return cls(
            model=opt_str(data.get("model")),
            plan=[PlanStep.from_dict(item) for item in dict_list(data.get("plan"))],
            dropped=[DroppedCandidate.from_dict(item) for item in dict_list(data.get("dropped"))],
            rule=_text(data.get("rule")),
            rejected=_text(data.get("rejected")),
            extra=extras(data, _TOP_KEYS),
            corral=corral or CorralInfo(),
            raw=data,
        )

    @property
    def providers(self) -> list[str]:
        """The providers the gateway would try, in order."""
        return [step.provider for step in self.plan]
