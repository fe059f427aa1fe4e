"""Live, per-process routing state fed by dispatch outcomes (cooldowns, model-gone)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import date

from gateway.routing.planner import LiveView

#: Cooldown applied after a 429 that did not say how long to wait.
DEFAULT_COOLDOWN_S = 5.0
#: Never trust a retry-after longer than this (a misbehaving header must not park a backend for hours).
MAX_COOLDOWN_S = 300.0


@dataclass(slots=True)
class LiveState:
    available: frozenset[str] = frozenset()
    cooldowns: dict[str, float] = field(default_factory=dict)
    out_of_rotation: dict[str, str] = field(default_factory=dict)

    def view(self) -> LiveView:
        return LiveView(
            now=time.monotonic(),
            today=date.today(),
            available=self.available,
            cooldowns=self.cooldowns,
            out_of_rotation=self.out_of_rotation,
        )

    def cool_down(self, key: str, retry_after: float | None) -> None:
        wait = DEFAULT_COOLDOWN_S if retry_after is None else min(max(retry_after, 0.0), MAX_COOLDOWN_S)
        self.cooldowns[key] = time.monotonic() + wait

    def take_out(self, key: str, reason: str) -> None:
        self.out_of_rotation[key] = reason
