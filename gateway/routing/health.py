"""Circuit breaker per deployment, as a state machine driven by explicit timestamps.

closed --(N consecutive failures, or error rate over the window)--> open
open --(cooldown elapsed)--> half_open: one probe request is let through
half_open --(probe succeeds)--> closed;  --(probe fails)--> open again
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Literal

from gateway.routing.policy.model import Breaker as BreakerConfig

BreakerName = Literal["closed", "open", "half_open"]


@dataclass(slots=True)
class Breaker:
    config: BreakerConfig
    state: BreakerName = "closed"
    consecutive_failures: int = 0
    opened_at: float = 0.0
    probe_in_flight: bool = False
    #: (timestamp, ok) of recent results inside the error-rate window.
    recent: deque[tuple[float, bool]] = field(default_factory=deque)

    def _trim(self, now: float) -> None:
        horizon = now - self.config.window_s
        while self.recent and self.recent[0][0] < horizon:
            self.recent.popleft()

    def status(self, now: float) -> BreakerName:
        """The state as of `now` (an open breaker whose cooldown elapsed reads as half-open)."""
        if self.state == "open" and now - self.opened_at >= self.config.cooldown_s:
            return "half_open"
        return self.state

    def retry_in(self, now: float) -> float:
        return max(0.0, self.opened_at + self.config.cooldown_s - now) if self.state == "open" else 0.0

    def allow(self, now: float) -> bool:
        """May a request go to this deployment now? Claims the probe slot when half-open."""
        current = self.status(now)
        if current == "closed":
            return True
        if current == "half_open" and not self.probe_in_flight:
            self.state = "half_open"
            self.probe_in_flight = True
            return True
        return False

    def would_allow(self, now: float) -> bool:
        current = self.status(now)
        return current == "closed" or (current == "half_open" and not self.probe_in_flight)

    def record(self, ok: bool, now: float) -> None:
        self.recent.append((now, ok))
        self._trim(now)
        if self.state == "half_open":
            self.probe_in_flight = False
            if ok:
                self._close()
            else:
                self._open(now)
            return
        if ok:
            self.consecutive_failures = 0
            return
        self.consecutive_failures += 1
        if self.state == "closed" and self._tripped():
            self._open(now)

    def _tripped(self) -> bool:
        if self.consecutive_failures >= self.config.consecutive_failures:
            return True
        total = len(self.recent)
        if total < self.config.min_requests:
            return False
        failures = sum(1 for _, ok in self.recent if not ok)
        return failures / total >= self.config.error_rate

    def _open(self, now: float) -> None:
        self.state = "open"
        self.opened_at = now
        self.probe_in_flight = False

    def _close(self) -> None:
        self.state = "closed"
        self.consecutive_failures = 0
        self.recent.clear()

    def force(self, state: BreakerName, opened_at: float) -> None:
        """Adopt a state learned from another replica."""
        self.state = state
        self.opened_at = opened_at
        self.probe_in_flight = False
