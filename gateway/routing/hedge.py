"""Whether a request is hedged, and after how long (pure: everything comes from the plan,
the policy and the live view).

A hedge starts the plan's second candidate when the first has produced no first byte
(stream) or no answer (non-stream) within the delay; `gateway.dispatch.hedge` runs the
race. The delay is the policy's `hedge.after` in ms, or by default the first deployment's
own p95 from its latency model: TTFT for a stream, the whole answer (at the request's
expected length) otherwise, since that is what a non-streamed client waits for.

A request is not hedged when duplicating it may be unsafe or pointless:
- it carries tools (or legacy functions) and the rule does not say `allow_tools: true`:
  a tool call is an instruction the caller may act on, and two backends may each answer
  with one, so the duplicate is not harmless;
- the plan has one candidate, or the attempt budget (`retry.attempts`) leaves no room
  for a second attempt, or the delay is not before the deadline;
- the request's kind (stream / non-stream) is not the rule's `only`;
- the rule's rolling extra cost is above `max_extra_cost_pct` (the cap; see `HedgeSpend`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from gateway.routing.policy.model import Hedge, RouteSettings
from gateway.routing.types import Candidate

#: Half-life of the rolling sums the extra-cost cap is judged on (seconds).
HEDGE_SPEND_HALF_LIFE_S = 120.0
#: The key of the policy's defaults (requests no rule matched) in per-rule figures.
DEFAULTS_KEY = "(defaults)"


@dataclass(slots=True)
class HedgeSpend:
    """One rule's decayed spend: all of it, and the part hedging added (what the attempts
    that lost a hedge race were billed). Both decay with the same half-life, so their
    ratio is the recent share of extra cost."""

    total_usd: float = 0.0
    extra_usd: float = 0.0
    updated_at: float = 0.0

    def _decay(self, now: float) -> float:
        return math.pow(0.5, max(0.0, now - self.updated_at) / HEDGE_SPEND_HALF_LIFE_S)

    def add(self, total_usd: float, extra_usd: float, now: float) -> None:
        f = self._decay(now)
        self.total_usd = self.total_usd * f + total_usd
        self.extra_usd = self.extra_usd * f + extra_usd
        self.updated_at = now

    def extra_pct(self) -> float:
        """Extra cost as a share (%) of all spend; 0 before any spend (decay cancels out)."""
        return 100.0 * self.extra_usd / self.total_usd if self.total_usd > 0 else 0.0


@dataclass(frozen=True, slots=True)
class HedgeDecision:
    """The hedge in force for one request: `delay_ms` None means no hedge, `reason` says why
    (or how the delay was chosen), as explain shows it."""

    delay_ms: float | None
    reason: str
    config: Hedge


def rule_key(rule: str | None) -> str:
    return rule if rule is not None else DEFAULTS_KEY


def decide(
    settings: RouteSettings,
    candidates: tuple[Candidate, ...],
    *,
    stream: bool,
    has_tools: bool,
    extra_pct: float,
) -> HedgeDecision | None:
    """None when the policy does not hedge at all; else the decision for this request."""
    hedge = settings.hedge
    if hedge is None:
        return None
    kind = "stream" if stream else "non_stream"
    if hedge.only not in ("both", kind):
        return HedgeDecision(None, f"not hedged: the rule hedges {hedge.only} requests only", hedge)
    if has_tools and not hedge.allow_tools:
        return HedgeDecision(None, "not hedged: the request carries tools (hedge.allow_tools is false)", hedge)
    if len(candidates) < 2:
        return HedgeDecision(None, "not hedged: no second candidate to hedge on", hedge)
    if settings.retry.attempts < 2:
        return HedgeDecision(None, "not hedged: the attempt budget (retry.attempts) leaves no second attempt", hedge)
    if extra_pct > hedge.max_extra_cost_pct:
        why = f"hedging paused: rolling extra cost {extra_pct:.1f}% > max_extra_cost_pct {hedge.max_extra_cost_pct:g}%"
        return HedgeDecision(None, why, hedge)
    delay, how = _delay(hedge, candidates[0], stream)
    if delay >= settings.retry.deadline_ms:
        return HedgeDecision(None, f"not hedged: delay {delay:.0f} ms is not before the deadline", hedge)
    second = candidates[1].deployment.provider
    return HedgeDecision(delay, f"hedge on {second} after {delay:.0f} ms ({how})", hedge)


def _delay(hedge: Hedge, first: Candidate, stream: bool) -> tuple[float, str]:
    if hedge.after_ms is not None:
        return hedge.after_ms, "policy's hedge.after"
    figures = first.figures
    what = "TTFT" if stream else "whole-answer latency"
    if figures is None:
        return math.inf, "no latency figures"
    value = figures.p95_ttft_ms if stream else figures.p95_latency_ms
    source = f"{figures.samples} samples" if figures.samples else "prior, no samples yet"
    return value, f"{first.deployment.provider}'s p95 {what}, {source}"
