"""Per-deployment latency statistics: exponentially decayed means with priors.

Each sample's weight halves every `half_life_s`, so a deployment that got slow a
minute ago is judged on its recent behaviour, and one with few samples leans on
its prior (counted as `prior_weight` samples).
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Prior:
    ttft_ms: float
    tokens_per_s: float


#: Assumed for a provider that states no prior of its own.
FALLBACK_PRIOR = Prior(ttft_ms=500, tokens_per_s=100)


@dataclass(slots=True)
class LatencyStats:
    prior: Prior
    half_life_s: float = 60.0
    prior_weight: float = 3.0
    ttft_sum: float = 0.0
    tps_sum: float = 0.0
    weight: float = 0.0
    tps_weight: float = 0.0
    samples: int = 0
    updated_at: float = 0.0

    def _decay(self, now: float) -> None:
        if self.weight or self.tps_weight:
            factor = math.pow(0.5, max(0.0, now - self.updated_at) / self.half_life_s)
            self.ttft_sum *= factor
            self.weight *= factor
            self.tps_sum *= factor
            self.tps_weight *= factor
        self.updated_at = now

    def observe(self, ttft_ms: float, output_tokens: int, generation_s: float, now: float) -> None:
        self._decay(now)
        self.ttft_sum += ttft_ms
        self.weight += 1.0
        if output_tokens >= 8 and generation_s > 0:
            self.tps_sum += output_tokens / generation_s
            self.tps_weight += 1.0
        self.samples += 1

    def ttft_ms(self, now: float) -> float:
        factor = math.pow(0.5, max(0.0, now - self.updated_at) / self.half_life_s) if self.weight else 0.0
        w = self.weight * factor
        return (self.ttft_sum * factor + self.prior.ttft_ms * self.prior_weight) / (w + self.prior_weight)

    def tokens_per_s(self, now: float) -> float:
        factor = math.pow(0.5, max(0.0, now - self.updated_at) / self.half_life_s) if self.tps_weight else 0.0
        w = self.tps_weight * factor
        return (self.tps_sum * factor + self.prior.tokens_per_s * self.prior_weight) / (w + self.prior_weight)

    def expected_latency_ms(self, output_tokens: int, now: float) -> float:
        return self.expected(output_tokens, now)[1]

    def expected(self, output_tokens: int, now: float) -> tuple[float, float]:
        """(TTFT, whole-answer latency) in ms, decaying both sums with one factor."""
        factor = math.pow(0.5, max(0.0, now - self.updated_at) / self.half_life_s)
        ttft_w = self.weight * factor if self.weight else 0.0
        tps_w = self.tps_weight * factor if self.tps_weight else 0.0
        ttft = (self.ttft_sum * factor + self.prior.ttft_ms * self.prior_weight) / (ttft_w + self.prior_weight)
        tps = (self.tps_sum * factor + self.prior.tokens_per_s * self.prior_weight) / (tps_w + self.prior_weight)
        return ttft, ttft + 1000.0 * output_tokens / max(tps, 1e-3)
