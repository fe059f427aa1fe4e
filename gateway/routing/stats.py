"""Per-deployment latency model, learned only from what happened.

An answer's time is modelled as ``total_ms = ttft_ms + ms_per_token * output_tokens``,
and the two parameters come from a decayed, weighted least-squares fit over every kind
of observation we have, each entering as what it actually measured:

- a non-streamed answer without server timings measured only its *total* time, so it is
  one row ``total = ttft + ms_per_token * tokens``; answers of different lengths separate
  the two parameters (a slow starter that generates fast and a quick starter that
  generates slowly are told apart after a few mixed-length answers);
- a stream measured its time to first token and its generation time separately, and a
  provider that reports its own timings (Groq's usage timings) did too: two rows,
  ``ttft = ttft`` and ``generation = ms_per_token * tokens``.

Nothing the model estimates is ever fed back into it as a sample. Until enough samples
exist the provider's stated prior dominates: it enters the fit as `prior_weight` pseudo-
observations of each parameter (by default a quarter of an answer, so a few real answers
outweigh it) that never decay. Each real row's weight halves every `half_life_s`, so a
deployment that got slow a minute ago is judged on its recent behaviour, and one unused
for a while drifts back to its prior.

The spread around the fit (decayed residual standard deviation, prior: a quarter of the
prior TTFT) gives percentiles under a normal approximation: ``p = estimate + z_p * spread``.
The routing core reads it all from a handful of running sums (a 2x2 solve per candidate).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

Percentile = Literal["p50", "p90", "p95", "p99"]
#: Standard-normal quantiles for the percentiles an SLO may name.
Z_SCORES: dict[str, float] = {"p50": 0.0, "p90": 1.2816, "p95": 1.6449, "p99": 2.3263}
#: Answer length (tokens) at which the prior's generation pace is stated as a pseudo-row.
PRIOR_TOKENS = 30.0
#: Never believe a pace faster than this (guards the fit against noise on tiny answers).
MIN_MS_PER_TOKEN = 0.01


@dataclass(frozen=True, slots=True)
class Prior:
    ttft_ms: float
    tokens_per_s: float


#: Assumed for a provider that states no prior of its own.
FALLBACK_PRIOR = Prior(ttft_ms=500, tokens_per_s=100)


@dataclass(frozen=True, slots=True)
class Estimate:
    """The model's figures for one answer length (all in ms)."""

    ttft_ms: float
    latency_ms: float
    #: Standard deviation of an observation around the fit.
    spread_ms: float

    def at(self, percentile: str) -> tuple[float, float]:
        """(TTFT, whole-answer latency) at a percentile, under the normal approximation."""
        extra = Z_SCORES[percentile] * self.spread_ms
        return self.ttft_ms + extra, self.latency_ms + extra


def prior_estimate(prior: Prior, output_tokens: int) -> Estimate:
    """What the prior alone says (no observation yet)."""
    ttft = prior.ttft_ms
    return Estimate(ttft, ttft + 1000.0 * output_tokens / max(prior.tokens_per_s, 1e-3), 0.25 * ttft)


@dataclass(slots=True)
class LatencyStats:
    prior: Prior
    half_life_s: float = 60.0
    prior_weight: float = 0.25
    # Decayed normal-equation sums of the real rows (u·ttft + v·ms_per_token = y, weight 1):
    s_uu: float = 0.0
    s_uv: float = 0.0
    s_vv: float = 0.0
    s_uy: float = 0.0
    s_vy: float = 0.0
    s_yy: float = 0.0
    weight: float = 0.0
    samples: int = 0
    updated_at: float = 0.0
    # What the prior contributes, fixed at construction (the fit is read on every decision).
    _p_ttft: float = field(init=False, repr=False, default=0.0)
    _p_mpt: float = field(init=False, repr=False, default=0.0)
    _p_vv: float = field(init=False, repr=False, default=0.0)
    _prior_var: float = field(init=False, repr=False, default=0.0)

    def _decay(self, now: float) -> None:
        if self.weight:
            f = math.pow(0.5, max(0.0, now - self.updated_at) / self.half_life_s)
            self.s_uu *= f
            self.s_uv *= f
            self.s_vv *= f
            self.s_uy *= f
            self.s_vy *= f
            self.s_yy *= f
            self.weight *= f
        self.updated_at = now

    def _row(self, u: float, v: float, y: float) -> None:
        self.s_uu += u * u
        self.s_uv += u * v
        self.s_vv += v * v
        self.s_uy += u * y
        self.s_vy += v * y
        self.s_yy += y * y
        self.weight += 1.0

    def observe_total(self, total_ms: float, output_tokens: int, now: float) -> None:
        """A whole answer whose only measurement is its total time."""
        self._decay(now)
        self._row(1.0, float(output_tokens), total_ms)
        self.samples += 1

    def observe_split(self, ttft_ms: float, output_tokens: int, generation_s: float, now: float) -> None:
        """An answer whose time to first token and generation time were measured apart
        (a stream, or a provider's own timings)."""
        self._decay(now)
        self._row(1.0, 0.0, ttft_ms)
        if output_tokens > 0 and generation_s > 0:
            self._row(0.0, float(output_tokens), generation_s * 1000.0)
        self.samples += 1

    def __post_init__(self) -> None:
        pw = self.prior_weight
        self._p_ttft = self.prior.ttft_ms
        self._p_mpt = 1000.0 / max(self.prior.tokens_per_s, 1e-3)
        self._p_vv = pw * PRIOR_TOKENS * PRIOR_TOKENS
        self._prior_var = (0.25 * self._p_ttft) ** 2

    def _fit(self, now: float) -> tuple[float, float, float]:
        """(ttft_ms, ms_per_token, spread_ms) from the decayed rows plus the prior rows."""
        pw = self.prior_weight
        if not self.weight:
            return self._p_ttft, self._p_mpt, math.sqrt(self._prior_var)
        dt = now - self.updated_at
        f = 0.5 ** (dt / self.half_life_s) if dt > 0.0 else 1.0
        p_vv = self._p_vv
        a_uu = self.s_uu * f + pw
        a_uv = self.s_uv * f
        a_vv = self.s_vv * f + p_vv
        b_u = self.s_uy * f + pw * self._p_ttft
        b_v = self.s_vy * f + p_vv * self._p_mpt
        det = a_uu * a_vv - a_uv * a_uv
        ttft = (a_vv * b_u - a_uv * b_v) / det
        mpt = (a_uu * b_v - a_uv * b_u) / det
        if ttft < 0.0:
            ttft, mpt = 0.0, b_v / a_vv
        if mpt < MIN_MS_PER_TOKEN:
            mpt = MIN_MS_PER_TOKEN
            ttft = (b_u - a_uv * mpt) / a_uu
            ttft = ttft if ttft > 0.0 else 0.0
        rss = (
            self.s_yy
            - 2.0 * (ttft * self.s_uy + mpt * self.s_vy)
            + ttft * ttft * self.s_uu
            + 2.0 * ttft * mpt * self.s_uv
            + mpt * mpt * self.s_vv
        ) * f
        return ttft, mpt, math.sqrt(((rss if rss > 0.0 else 0.0) + pw * self._prior_var) / (self.weight * f + pw))

    def estimate(self, output_tokens: int, now: float) -> Estimate:
        ttft, mpt, spread = self._fit(now)
        return Estimate(ttft, ttft + mpt * output_tokens, spread)

    def expected(self, output_tokens: int, now: float) -> tuple[float, float]:
        """(TTFT, whole-answer latency) in ms, the fit's central estimate."""
        e = self.estimate(output_tokens, now)
        return e.ttft_ms, e.latency_ms

    def ttft_ms(self, now: float) -> float:
        return self._fit(now)[0]

    def tokens_per_s(self, now: float) -> float:
        return 1000.0 / self._fit(now)[1]

    def expected_latency_ms(self, output_tokens: int, now: float) -> float:
        return self.expected(output_tokens, now)[1]
